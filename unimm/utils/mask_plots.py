"""Pictures of a gradient mask's sparsity per block over training (ViT-BERT Figs. 4-5).

The rows are the run's metric rows (``RunLog.history`` or the lines of ``metrics.jsonl``): each
has ``"update"`` and, when the ``iterative_gradient_mask`` hook logged it, one
``"mask/block/<block>"`` value per block (the fraction of its entries with ``M = 0``). Rows
without such keys (evaluation rows) are passed over.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

PREFIX = "mask/block/"


def natural_key(text: str) -> list[Any]:
    """Sort key that puts ``layers.2`` before ``layers.10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def sparsity_series(rows: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[str], list[list[float]]]:
    """``(updates, blocks, values)``: ``values[i][j]`` is block ``j``'s sparsity at ``updates[i]``.

    Blocks are in natural order; a block missing from a row is NaN there.
    """
    kept = [row for row in rows if any(key.startswith(PREFIX) for key in row)]
    blocks = sorted({key[len(PREFIX):] for row in kept for key in row if key.startswith(PREFIX)}, key=natural_key)
    values = [[float(row.get(PREFIX + block, float("nan"))) for block in blocks] for row in kept]
    return [int(row["update"]) for row in kept], blocks, values


def plot_mask_sparsity(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path | None:
    """Draw the mask's sparsity per block and write it as a PNG, atomically.

    Left: each block's sparsity against updates (one line per block, shallow to deep from dark
    to light). Right: sparsity against block at each distinct mask state, i.e. after each pruning
    round (ViT-BERT Fig. 4).

    Returns:
        The path written, or None when no row holds a ``mask/block/...`` value.
    """
    updates, blocks, values = sparsity_series(rows)
    if not blocks:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (over_time, by_block) = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.get_cmap("viridis")
    for j, block in enumerate(blocks):
        over_time.plot(updates, [row[j] for row in values], color=colors(j / max(1, len(blocks) - 1)),
                       label=block, marker="o" if len(updates) < 20 else None, markersize=3)
    over_time.set_xlabel("update")
    over_time.set_ylabel("masked fraction")
    over_time.set_title("gradient mask sparsity per block")
    if len(blocks) <= 16:
        over_time.legend(fontsize=6, ncol=2)
    states = [i for i in range(len(values)) if i == 0 or values[i] != values[i - 1]]
    for n, i in enumerate(states):
        by_block.plot(range(len(blocks)), values[i], marker="o", markersize=3,
                      color=plt.get_cmap("plasma")(n / max(1, len(states) - 1)), label=f"update {updates[i]}")
    by_block.set_xticks(range(len(blocks)))
    by_block.set_xticklabels(blocks, rotation=60, ha="right", fontsize=6)
    by_block.set_ylabel("masked fraction")
    by_block.set_title("per block at each mask state")
    by_block.legend(fontsize=6)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path
