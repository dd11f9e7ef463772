"""ViT-BERT's Figs. 4-5 from a pre-training run folder: the gradient mask's sparsity per block.

    python tools/plot_mask_sparsity.py save/reproduce_vit_bert/seed1/pretrain
    python tools/plot_mask_sparsity.py <run folder> --out <folder>      # default: <run folder>/mask_figures

The run's ``metrics.jsonl`` holds, on every train row of a run with ``iterative_gradient_mask``,
``mask/round`` (pruning rounds done) and ``mask/block/<block>`` (the fraction of the block's entries
with ``M = 0``; ``unimm/training/hooks.py``). From them, written atomically under ``--out``:

- ``fig4_sparsity_per_block.png``: Fig. 4, "the sparsity of masks for all blocks in the transformer
  encoder at different iterations of mask updating": block on x, one line per pruning round, the
  last round (the end of pre-training) drawn thickest.
- ``sparsity_over_updates.png``: each block's sparsity against the update (how Fig. 5's masks darken).
- ``fig5_masks.png``: Fig. 5, "gradient masks for blocks 0, 6, and 11 ... reshaped into squares",
  from the mask state in the run's kept checkpoints (first, middle and last block; one row per
  checkpoint); left out, and said so, when no checkpoint holds a mask.
- ``mask_sparsity.md`` / ``.json``: the table, per block and round, in percent.

A round shows when a logged row shows it: with ``training.log_every`` larger than the mask's
``every`` (e.g. 50 and 20) some rounds fall between two rows; the table names them (the shapes
variant logs every 20 updates, a row per round).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from unimm.utils.fileio import atomic_write_bytes, atomic_write_text  # noqa: E402
from unimm.utils.mask_plots import PREFIX, natural_key  # noqa: E402

LAYER = re.compile(r"\.(\d+)$")  # encoder.blocks.11 -> 11: the transformer blocks of Fig. 4's x axis


class MaskRunError(ValueError):
    """A run folder that cannot give Figs. 4-5; the message names the file and the fix."""


def read_rows(run: Path) -> list[dict[str, Any]]:
    """The rows of ``<run>/metrics.jsonl`` that hold the mask's per-block sparsity, in file order."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise MaskRunError(f"{path} does not exist: give the folder of a pre-training run (the one with "
                           "metrics.jsonl and checkpoints/, e.g. save/reproduce_vit_bert/seed1/pretrain)")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise MaskRunError(f"{path}:{number} is not a JSON line ({err.msg}); the run log writes one "
                               "object a line: remove the damaged line or rerun") from None
        if any(key.startswith(PREFIX) for key in row):
            rows.append(row)
    if not rows:
        raise MaskRunError(f"{path} has no {PREFIX}<block> rows: the run trained without gradient masking. "
                           "Use a run whose training.optimizer_hooks has iterative_gradient_mask "
                           "(projects/vit_bert/pretrain.yaml or ablations/pretrain_random_mask.yaml; not "
                           "pretrain_joint / pretrain_no_gm)")
    return rows


def sparsity_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-block sparsity after each pruning round (the first logged row of each round).

    Returns:
        ``{"blocks": [...], "updates": [...], "values": [[...]], "rounds": [{"round", "update",
        "sparsity": {block: %}, "overall": %}], "final": {...}}``; ``values[i][j]`` is block ``j`` at
        ``updates[i]`` (a fraction), the rest in percent. Round 0 (nothing pruned) is left out of
        ``rounds``; ``final`` is the last row, i.e. the end of pre-training.
    """
    blocks = sorted({key[len(PREFIX):] for row in rows for key in row if key.startswith(PREFIX)}, key=natural_key)
    updates = [int(row["update"]) for row in rows]
    values = [[float(row.get(PREFIX + b, math.nan)) for b in blocks] for row in rows]

    def entry(i: int, round_: int) -> dict[str, Any]:
        return {"round": round_, "update": updates[i], "overall": 100 * float(rows[i].get("mask/sparsity", math.nan)),
                "sparsity": {b: 100 * v for b, v in zip(blocks, values[i])}}

    rounds, seen = [], set()
    for i, row in enumerate(rows):
        round_ = int(row.get("mask/round", 0))
        if round_ > 0 and round_ not in seen:
            seen.add(round_)
            rounds.append(entry(i, round_))
    final = entry(len(rows) - 1, int(rows[-1].get("mask/round", 0)))
    return {"blocks": blocks, "updates": updates, "values": values, "rounds": rounds, "final": final}


def layer_blocks(blocks: list[str]) -> list[str]:
    """The numbered transformer blocks (``encoder.blocks.<i>``); the final norm and the like are table-only."""
    return [b for b in blocks if LAYER.search(b)]


def label(block: str) -> str:
    match = LAYER.search(block)
    return match.group(1) if match else block


def render_markdown(table: dict[str, Any], run: Path) -> str:
    """Rows: blocks; columns: each pruning round, then the end of pre-training (the last logged row)."""
    final = table["final"]
    columns = [(f"round {r['round']} (update {r['update']})", r) for r in table["rounds"]]
    columns.append((f"end (update {final['update']}, round {final['round']})", final))
    head = " | ".join(name for name, _ in columns)
    columns = [c for _, c in columns]
    lines = [f"Gradient-mask sparsity per block (% of entries with M = 0), `{run}` (Figs. 4-5)", "",
             f"| block | {head} |", "|---" * (len(columns) + 1) + "|"]
    for block in table["blocks"]:
        lines.append(f"| {block} | " + " | ".join(f"{c['sparsity'][block]:.1f}" for c in columns) + " |")
    lines.append("| whole mask | " + " | ".join(f"{c['overall']:.1f}" for c in columns) + " |")
    unlogged = missing_rounds(table)
    if unlogged:
        lines += ["", f"Rounds {', '.join(map(str, unlogged))} fell between two logged rows (training.log_every is "
                      "larger than the mask's every): rerun with training.log_every <= every to see each round."]
    return "\n".join(lines) + "\n"


def missing_rounds(table: dict[str, Any]) -> list[int]:
    """Pruning rounds that no logged row shows (each row logs the state at its update only)."""
    seen = {r["round"] for r in table["rounds"]}
    return [r for r in range(1, table["final"]["round"] + 1) if r not in seen]


def png_bytes(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_fig4(table: dict[str, Any]) -> bytes:
    """Fig. 4: sparsity (%) against block, one line per pruning round, the end of pre-training thickest."""
    plt = pyplot()
    blocks = layer_blocks(table["blocks"])
    fig, ax = plt.subplots(figsize=(6.5, 4))
    rounds = table["rounds"] or [table["final"]]
    for n, r in enumerate(rounds):
        last = n == len(rounds) - 1
        ax.plot(range(len(blocks)), [r["sparsity"][b] for b in blocks], marker="o", markersize=4 if last else 3,
                linewidth=2.5 if last else 1.2, color=plt.get_cmap("viridis")(n / max(1, len(rounds) - 1)),
                label=f"round {r['round']} (update {r['update']})")
    ax.set_xticks(range(len(blocks)), [label(b) for b in blocks])
    ax.set_xlabel("transformer block")
    ax.set_ylabel("mask sparsity (%)")
    ax.set_title("Fig. 4: mask sparsity per block at each mask update")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return png_bytes(fig)


def draw_over_updates(table: dict[str, Any]) -> bytes:
    """Each block's sparsity (%) against the update, shallow (dark) to deep (light)."""
    plt = pyplot()
    blocks = table["blocks"]
    layers = layer_blocks(blocks)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for block in layers:
        j = blocks.index(block)
        ax.step(table["updates"], [100 * row[j] for row in table["values"]], where="post", label=f"block {label(block)}",
                color=plt.get_cmap("viridis")(layers.index(block) / max(1, len(layers) - 1)))
    ax.set_xlabel("update")
    ax.set_ylabel("mask sparsity (%)")
    ax.set_title("mask sparsity of each block over pre-training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return png_bytes(fig)


def checkpoint_masks(run: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(update, {parameter: bool mask})`` of each kept checkpoint whose training state holds a gradient mask."""
    import torch

    found = []
    for folder in sorted((run / "checkpoints").glob("update_*"), key=lambda p: natural_key(p.name)):
        state_file = folder / "training_state.pt"
        if not state_file.is_file():
            continue
        state = torch.load(state_file, map_location="cpu", weights_only=True)
        masks = next((h["masks"] for h in state.get("hooks", []) if isinstance(h, dict) and "masks" in h), None)
        if masks:
            found.append((int(state["counters"]["update"]), masks))
    return found


def square(masks: dict[str, Any], block: str):
    """A block's mask entries, flattened in parameter order and padded (grey) to the next square."""
    import torch

    flat = torch.cat([m.reshape(-1).float() for name, m in masks.items() if name.startswith(block + ".")])
    side = math.ceil(math.sqrt(flat.numel()))
    padded = torch.full((side * side,), 0.5)
    padded[:flat.numel()] = flat
    return padded.reshape(side, side).numpy()


def draw_fig5(states: list[tuple[int, dict[str, Any]]], blocks: list[str]) -> bytes:
    """Fig. 5: the masks of the first, middle and last block (white: M = 1, text gradient; black: M = 0)."""
    plt = pyplot()
    layers = layer_blocks(blocks)
    shown = list(dict.fromkeys([layers[0], layers[len(layers) // 2], layers[-1]]))
    fig, axes = plt.subplots(len(states), len(shown), figsize=(2.4 * len(shown), 2.4 * len(states)), squeeze=False)
    for i, (update, masks) in enumerate(states):
        for j, block in enumerate(shown):
            ax = axes[i][j]
            ax.imshow(square(masks, block), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"block {label(block)}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"update {update}", fontsize=9)
    fig.suptitle("Fig. 5: gradient masks (black: M = 0)", fontsize=10)
    fig.tight_layout()
    return png_bytes(fig)


def write_figures(run: Path, out: Path | None = None) -> dict[str, Path]:
    """Write Figs. 4-5 and the table of ``run`` under ``out`` (default ``<run>/mask_figures``); name -> path."""
    run = Path(run)
    out = Path(out) if out is not None else run / "mask_figures"
    table = sparsity_table(read_rows(run))
    if not layer_blocks(table["blocks"]):
        raise MaskRunError(f"{run / 'metrics.jsonl'}: no numbered block among {table['blocks']}; the mask must "
                           "cover the transformer blocks (iterative_gradient_mask.params: '^encoder\\.')")
    written = {
        "fig4": atomic_write_bytes(out / "fig4_sparsity_per_block.png", draw_fig4(table)),
        "over_updates": atomic_write_bytes(out / "sparsity_over_updates.png", draw_over_updates(table)),
        "markdown": atomic_write_text(out / "mask_sparsity.md", render_markdown(table, run)),
        "json": atomic_write_text(out / "mask_sparsity.json", json.dumps(
            {"run": str(run), "blocks": table["blocks"], "rounds": table["rounds"], "final": table["final"],
             "unlogged_rounds": missing_rounds(table)},
            indent=1) + "\n"),
    }
    states = checkpoint_masks(run)
    if states:
        written["fig5"] = atomic_write_bytes(out / "fig5_masks.png", draw_fig5(states, table["blocks"]))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a pre-training run folder (metrics.jsonl, checkpoints/)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: <run>/mask_figures)")
    args = parser.parse_args(argv)
    try:
        written = write_figures(args.run, args.out)
    except MaskRunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, path in written.items():
        print(f"{name}: {path}")
    if "fig5" not in written:
        print(f"fig5: no checkpoint under {args.run / 'checkpoints'} holds a gradient mask; Fig. 5 needs one")
    print((Path(written["markdown"])).read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
