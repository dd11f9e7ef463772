"""Run ViT-BERT's chain and its baselines on the embedded shapes benchmark, beside the paper's Tables 1-2 and Fig. 2.

    python tools/reproduce_vit_bert.py main      # teachers -> ViT-BERT (KD + GM) -> image and SST-2 fine-tuning,
                                                 # and random init: the project's main command
    python tools/reproduce_vit_bert.py table1    # every row of Table 1: Rand. Init., BERT, ViT, Joint, ViT-BERT,
                                                 # w/o KD, w/o GM
    python tools/reproduce_vit_bert.py table2    # the alpha / temperature grid of distillation (without GM)
    python tools/reproduce_vit_bert.py fig2      # the beta sweep of gradient masking and the random mask
    python tools/reproduce_vit_bert.py table1 --seeds 1 2 3
    python tools/reproduce_vit_bert.py all --dry-run   # validate every config of the plan, run nothing

Every run is a ``projects/vit_bert`` config with ``variant=shapes``, carried out in this process in
its own folder under ``--out`` (one tree per seed); a run whose record is there is reused. Each
pre-training row is then fine-tuned on the benchmark's image folder (``finetune_image.yaml``, at a
higher resolution than pre-training) and on SST-2 (``finetune_sst2.yaml``), keeping the tokenizer of
the task's modality and the shared encoder when the source has them (the paper: "when BERT is
fine-tuned on images, only the transformer is initialised"). The table (mean and spread over seeds)
goes to ``<out>/<command>.md`` and ``.json`` and is printed; speed is reported, never asserted.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tools")]  # run from a checkout without installing

from reproduction import (Runs, accuracy_baselines, command_line, fmt, has_weights, passed_on,  # noqa: E402
                          start_from)

VIT_BERT = REPO / "projects" / "vit_bert"
VARIANT = "shapes"

# task -> (fine-tuning config, metric key, baselines.json task, what the table calls it)
TASKS = {
    "image": ("finetune_image.yaml", "images/accuracy", "imagefolder", "image folder (FT, accuracy)"),
    "sst2": ("finetune_sst2.yaml", "sst2/accuracy", "sst2", "SST-2 (FT, accuracy)"),
}
KEEP = {"image": [r"^image_tokenizer\.", r"^encoder\."], "sst2": [r"^text_tokenizer\.", r"^encoder\."]}

# Table 1 rows: name -> (pre-training config, or a teacher's run name, or None for random init; paper IN-1K / SST-2)
TABLE1 = {
    "Rand. Init.": (None, (19.5, 80.5)),
    "BERT": ("text_teacher", (17.9, 92.5)),
    "ViT": ("image_teacher", (77.9, 68.0)),
    "Joint": ("ablations/pretrain_joint.yaml", (74.2, 80.5)),
    "ViT-BERT": ("pretrain.yaml", (78.3, 90.4)),
    "w/o KD": ("ablations/pretrain_no_kd.yaml", (75.4, 89.2)),
    "w/o GM": ("ablations/pretrain_no_gm.yaml", (79.1, 91.1)),
}
# Table 2 (without GM): (alpha, temperature) -> paper text / vision averages
TABLE2 = {(0.0, 1.0): (79.0, 87.6), (0.3, 1.0): (78.9, 87.9), (0.5, 1.0): (79.4, 88.4), (0.7, 1.0): (81.7, 88.7),
          (1.0, 1.0): (81.6, 89.0), (1.0, 0.0): (80.8, 88.0), (1.0, 0.1): (78.5, 86.5), (1.0, 10.0): (75.7, 88.9),
          (1.0, 100.0): (67.2, 75.3)}
FIG2_BETAS = (0.1, 0.3, 0.5, 0.7, 0.9)  # the paper: beta 0.5 the best compromise; random masks clearly worse


@dataclass
class Runner(Runs):
    """ViT-BERT's runs of one seed: the teachers and the pre-training runs, then their fine-tuning."""

    def every(self) -> list[str]:
        return [f"env.seed={self.seed}", f"vars.image_teacher_run={self.root / 'image_teacher'}",
                f"vars.text_teacher_run={self.root / 'text_teacher'}", f"vars.pretrain_run={self.root / 'pretrain'}"]

    def pretrain(self, name: str, config: str, overrides: list[str] = ()) -> Path:
        """A pre-training run (its teachers trained first when absent, the same ones for every row)."""
        self.run(name, config, [*self.every(), "vars.stage_overrides=" + passed_on(self.every(), depth=1),
                                *overrides])
        return self.root / name

    def finetune(self, task: str, source: Path | None, name: str) -> float | None:
        config, key, _, _ = TASKS[task]
        keep = None if source is None else [k for k in KEEP[task] if self.dry_run or has_weights(source, k)]
        init = start_from(source, keep)
        if keep is not None and task == "image" and r"^image_tokenizer\." not in keep:
            init.append("checkpoint.init_resize=[]")  # no position table to resize: the tokenizer starts random
        return self.run(name, config, [*self.every(), *init]).get(key)

    def row(self, label: str, source: Path | None) -> dict[str, float | None]:
        slug = label.lower().replace(" ", "_").replace(".", "").replace("/", "")
        return {task: self.finetune(task, source, f"{task}_from_{slug}") for task in TASKS}


def source_of(runner: Runner, spec: str | None) -> Path | None:
    if spec is None:
        return None
    if spec.endswith("_teacher"):
        runner.pretrain("pretrain", "pretrain.yaml")  # trains both teachers first
        return runner.root / spec
    name = "pretrain" if spec == "pretrain.yaml" else Path(spec).stem
    return runner.pretrain(name, spec)


def table1(runner: Runner, labels: list[str] | None = None) -> dict[str, dict[str, float | None]]:
    """Rows of Table 1: task -> row label -> accuracy."""
    rows: dict[str, dict[str, float | None]] = {task: {} for task in TASKS}
    for label in labels or list(TABLE1):
        source = source_of(runner, TABLE1[label][0])
        for task, value in runner.row(label, source).items():
            rows[task][label] = value
    return rows


def main_rows(runner: Runner) -> dict[str, dict[str, float | None]]:
    return table1(runner, ["ViT-BERT", "Rand. Init."])


def table2(runner: Runner) -> dict[str, dict[str, float | None]]:
    rows: dict[str, dict[str, float | None]] = {task: {} for task in TASKS}
    for (alpha, temperature) in TABLE2:
        name = f"pretrain_no_gm_a{alpha:g}_t{temperature:g}"
        source = runner.pretrain(name, "ablations/pretrain_no_gm.yaml",
                                 [f"model.distillation.alpha={alpha}", f"model.distillation.temperature={temperature}"])
        for task, value in runner.row(f"a{alpha:g} t{temperature:g}", source).items():
            rows[task][f"α {alpha:g}, τ {temperature:g}"] = value
    return rows


def fig2(runner: Runner) -> dict[str, dict[str, float | None]]:
    rows: dict[str, dict[str, float | None]] = {task: {} for task in TASKS}
    for beta in FIG2_BETAS:
        if beta == 0.5:  # pretrain.yaml's own beta: the ViT-BERT run of Table 1
            source = runner.pretrain("pretrain", "pretrain.yaml")
        else:
            source = runner.pretrain(f"pretrain_beta{beta:g}", "pretrain.yaml",
                                     [f"training.optimizer_hooks[0].beta={beta}"])
        for task, value in runner.row(f"beta {beta:g}", source).items():
            rows[task][f"β {beta:g}"] = value
    source = runner.pretrain("pretrain_random_mask", "ablations/pretrain_random_mask.yaml")
    for task, value in runner.row("random mask", source).items():
        rows[task]["random mask, β 0.5"] = value
    return rows


COMMANDS = {"main": main_rows, "table1": table1, "table2": table2, "fig2": fig2}


def render(command: str, table: dict, baselines: dict[str, str], seeds: list[int]) -> str:
    columns = list(dict.fromkeys(c for task in table.values() for c in task))
    title = (f"ViT-BERT on the shapes benchmark, `python tools/reproduce_vit_bert.py {command}`, seeds {seeds} "
             "(mean ± standard deviation over seeds, %)")
    lines = [title, "", "| pre-training | " + " | ".join(TASKS[t][3] for t in table) + " | paper (IN-1K, SST-2) |",
             "|---" * (len(table) + 2) + "|"]
    for column in columns:
        paper = TABLE1[column][1] if column in TABLE1 else None
        cells = " | ".join(fmt(table[t].get(column)) for t in table)
        lines.append(f"| {column} | {cells} | {'-' if paper is None else f'{paper[0]} / {paper[1]}'} |")
    lines += ["", "baselines: " + "; ".join(f"{TASKS[t][3]}: {b}" for t, b in baselines.items())]
    if command in ("table2", "all"):
        lines += ["", "Table 2 (paper, without GM): " + ", ".join(
            f"α {a:g} τ {t:g}: text {p[0]} / vision {p[1]}" for (a, t), p in TABLE2.items())]
    return "\n".join(lines) + "\n"


def baselines_of(data_dir: Path) -> dict[str, str]:
    baselines = json.loads((data_dir / "shapes" / "baselines.json").read_text())
    return {task: accuracy_baselines(baselines[TASKS[task][2]]) for task in TASKS}


def main(argv: list[str] | None = None) -> int:
    return command_line(__doc__, COMMANDS, [c for c in COMMANDS if c != "main"], lambda out, data, seed, dry: Runner(
        VIT_BERT, VARIANT, out, data, seed, dry), render, baselines_of, "save/reproduce_vit_bert", argv)


if __name__ == "__main__":
    sys.exit(main())
