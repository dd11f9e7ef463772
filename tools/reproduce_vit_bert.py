"""Run ViT-BERT's chain and its baselines on the embedded shapes benchmark, beside the paper's Tables 1-2 and Fig. 2.

    python tools/reproduce_vit_bert.py main      # teachers -> ViT-BERT (KD + GM) -> image and SST-2 fine-tuning,
                                                 # and random init: the project's main command
    python tools/reproduce_vit_bert.py table1    # every row of Table 1: Rand. Init., BERT, ViT, Joint, ViT-BERT,
                                                 # w/o KD, w/o GM
    python tools/reproduce_vit_bert.py table2    # the alpha / temperature grid of distillation (without GM)
    python tools/reproduce_vit_bert.py fig2      # the beta sweep of gradient masking and the random mask
    python tools/reproduce_vit_bert.py table1 --seeds 1 2 3
    python tools/reproduce_vit_bert.py main --glue all   # every GLUE column of Table 1 (MNLI m/mm, QQP, QNLI,
                                                         # SST-2, RTE) and their average; --glue sst2 is the default
    python tools/reproduce_vit_bert.py all --dry-run   # validate every config of the plan, run nothing

Every run is a ``projects/vit_bert`` config with ``variant=shapes``, carried out in this process in
its own folder under ``--out`` (one tree per seed); a run whose record is there is reused. Each
pre-training row is then fine-tuned on the benchmark's image folder (``finetune_image.yaml``, at a
higher resolution than pre-training) and on the GLUE tasks of ``--glue`` (``finetune_<task>.yaml``;
SST-2 alone by default, which keeps ``main`` near 6.5 minutes on 2 CPU cores; ``--glue all`` adds
MNLI, QQP, QNLI and RTE, about 2.5 more minutes a row), keeping the tokenizer of the task's modality
and the shared encoder when the source has them (the paper: "when BERT is fine-tuned on images, only
the transformer is initialised"). MNLI's fine-tuned weights are evaluated a second time on dev
mismatched (``run_type=val`` with ``datasets.mnli.mnli_dev=mismatched``); its column is the mean of
matched and mismatched, both shown (Table 1's caption), and "text avg" the mean of the five GLUE
columns, MNLI counted once (Table 1: ViT-BERT's 83.1 = mean(81.8, 88.9, 89.7, 90.4, 64.6)). The
ViT-BERT pre-training run's mask figures (Figs. 4-5, ``tools/plot_mask_sparsity.py``) go to its
``mask_figures/``. The table (mean and spread over seeds) goes to ``<out>/<command>.md`` and
``.json`` and is printed; speed is reported, never asserted.
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

# task -> (fine-tuning config, metric key)
TASKS = {"image": ("finetune_image.yaml", "images/accuracy"), "mnli": ("finetune_mnli.yaml", "mnli/accuracy"),
         "qqp": ("finetune_qqp.yaml", "qqp/accuracy"), "qnli": ("finetune_qnli.yaml", "qnli/accuracy"),
         "sst2": ("finetune_sst2.yaml", "sst2/accuracy"), "rte": ("finetune_rte.yaml", "rte/accuracy")}
GLUE = ("mnli", "qqp", "qnli", "sst2", "rte")  # Table 1's text columns, in its order
KEEP = {task: [r"^text_tokenizer\.", r"^encoder\."] for task in GLUE} | {"image": [r"^image_tokenizer\.", r"^encoder\."]}
# What a seed's rows hold besides TASKS (derived per seed, so that the spread over seeds is the average's own)
MISMATCHED, TEXT_AVG = "mnli_mm", "text_avg"  # MNLI on dev mismatched; the mean of the five GLUE columns
# the table's columns: row key -> (header, the paper's column of Table 1)
COLUMNS = {"image": ("image folder (FT, accuracy)", "IN-1K"), "mnli": ("MNLI avg (m / mm)", "MNLI"),
           "qqp": ("QQP", "QQP"), "qnli": ("QNLI", "QNLI"), "sst2": ("SST-2 (FT, accuracy)", "SST-2"),
           "rte": ("RTE", "RTE"), TEXT_AVG: ("text avg", "text avg")}
BASELINES = {"image": "imagefolder", "mnli": "mnli_matched", MISMATCHED: "mnli_mismatched", "qqp": "qqp",
             "qnli": "qnli", "sst2": "sst2", "rte": "rte"}
PAPER_COLUMNS = ("MNLI", "QQP", "QNLI", "SST-2", "RTE", "text avg", "IN-1K")

# Table 1 rows: name -> (pre-training config, or a teacher's run name, or None for random init; the paper's row)
TABLE1 = {
    "Rand. Init.": (None, (43.4, 75.5, 49.4, 80.5, 51.6, 60.1, 19.5)),
    "BERT": ("text_teacher", (84.4, 90.6, 91.0, 92.5, 81.9, 88.1, 17.9)),
    "ViT": ("image_teacher", (51.6, 75.7, 49.5, 68.0, 52.0, 59.4, 77.9)),
    "Joint": ("ablations/pretrain_joint.yaml", (78.4, 88.4, 87.4, 80.5, 60.3, 79.0, 74.2)),
    "ViT-BERT": ("pretrain.yaml", (81.8, 88.9, 89.7, 90.4, 64.6, 83.1, 78.3)),
    "w/o KD": ("ablations/pretrain_no_kd.yaml", (81.9, 89.6, 90.0, 89.2, 58.8, 81.9, 75.4)),
    "w/o GM": ("ablations/pretrain_no_gm.yaml", (80.8, 89.6, 88.9, 91.1, 57.4, 81.6, 79.1)),
}
# Table 2 (without GM): (alpha, temperature) -> paper text / vision averages
TABLE2 = {(0.0, 1.0): (79.0, 87.6), (0.3, 1.0): (78.9, 87.9), (0.5, 1.0): (79.4, 88.4), (0.7, 1.0): (81.7, 88.7),
          (1.0, 1.0): (81.6, 89.0), (1.0, 0.0): (80.8, 88.0), (1.0, 0.1): (78.5, 86.5), (1.0, 10.0): (75.7, 88.9),
          (1.0, 100.0): (67.2, 75.3)}
FIG2_BETAS = (0.1, 0.3, 0.5, 0.7, 0.9)  # the paper: beta 0.5 the best compromise; random masks clearly worse


@dataclass
class Runner(Runs):
    """ViT-BERT's runs of one seed: the teachers and the pre-training runs, then their fine-tuning.

    ``glue``: the GLUE tasks each pre-training row is fine-tuned on (``--glue``), besides the image folder.
    """

    glue: tuple[str, ...] = ("sst2",)

    def every(self) -> list[str]:
        return [f"env.seed={self.seed}", f"vars.image_teacher_run={self.root / 'image_teacher'}",
                f"vars.text_teacher_run={self.root / 'text_teacher'}", f"vars.pretrain_run={self.root / 'pretrain'}"]

    def pretrain(self, name: str, config: str, overrides: list[str] = ()) -> Path:
        """A pre-training run (its teachers trained first when absent, the same ones for every row)."""
        self.run(name, config, [*self.every(), "vars.stage_overrides=" + passed_on(self.every(), depth=1),
                                *overrides])
        return self.root / name

    def finetune(self, task: str, source: Path | None, name: str) -> float | None:
        config, key = TASKS[task]
        keep = None if source is None else [k for k in KEEP[task] if self.dry_run or has_weights(source, k)]
        init = start_from(source, keep)
        if keep is not None and task == "image" and r"^image_tokenizer\." not in keep:
            init.append("checkpoint.init_resize=[]")  # no position table to resize: the tokenizer starts random
        return self.run(name, config, [*self.every(), *init]).get(key)

    def mismatched(self, tuned: str) -> float | None:
        """MNLI dev mismatched accuracy of the fine-tuned run ``tuned`` (its every weight, the head included).

        finetune_mnli.yaml's second command evaluates in the run's own folder (``checkpoint.resume=true``);
        here the evaluation gets a folder of its own, so that its record is not the fine-tuning's.
        """
        overrides = [*self.every(), *start_from(self.root / tuned), "~checkpoint.init_include", "run_type=val",
                     "datasets.mnli.mnli_dev=mismatched"]
        return self.run(f"{tuned}_mismatched", TASKS["mnli"][0], overrides).get(TASKS["mnli"][1])

    def row(self, label: str, source: Path | None) -> dict[str, float | None]:
        """One pre-training row: task -> accuracy in [0, 1] (None: not measured), with MNLI's mismatched
        accuracy, MNLI's m/mm mean and the text average when every GLUE task ran."""
        slug = label.lower().replace(" ", "_").replace(".", "").replace("/", "")
        row = {task: self.finetune(task, source, f"{task}_from_{slug}") for task in ("image", *self.glue)}
        if "mnli" in self.glue:
            row[MISMATCHED] = self.mismatched(f"mnli_from_{slug}")
        return with_averages(row)


def with_averages(row: dict[str, float | None]) -> dict[str, float | None]:
    """Table 1's averages: MNLI is the mean of matched and mismatched (its caption), ``text_avg`` the mean
    of MNLI, QQP, QNLI, SST-2 and RTE (MNLI counted once); absent (None) unless every part was measured.
    The matched accuracy stays under ``mnli_m``."""
    out = dict(row)
    if "mnli" in row:
        matched, mismatched = row["mnli"], row.get(MISMATCHED)
        out["mnli_m"] = matched
        out["mnli"] = None if matched is None or mismatched is None else (matched + mismatched) / 2
    parts = [out.get(task) for task in GLUE]
    out[TEXT_AVG] = None if any(p is None for p in parts) else sum(parts) / len(parts)
    return out


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
    rows: dict[str, dict[str, float | None]] = {}
    for label in labels or list(TABLE1):
        source = source_of(runner, TABLE1[label][0])
        for task, value in runner.row(label, source).items():
            rows.setdefault(task, {})[label] = value
    return rows


def main_rows(runner: Runner) -> dict[str, dict[str, float | None]]:
    rows = table1(runner, ["ViT-BERT", "Rand. Init."])
    if not runner.dry_run:
        mask_figures(runner.root / "pretrain")
    return rows


def mask_figures(run: Path) -> None:
    """Figs. 4-5 of the ViT-BERT pre-training run, under ``<run>/mask_figures``."""
    from plot_mask_sparsity import write_figures

    for name, path in write_figures(run).items():
        print(f"mask figures: {name} -> {path}")


def table2(runner: Runner) -> dict[str, dict[str, float | None]]:
    rows: dict[str, dict[str, float | None]] = {}
    for (alpha, temperature) in TABLE2:
        name = f"pretrain_no_gm_a{alpha:g}_t{temperature:g}"
        source = runner.pretrain(name, "ablations/pretrain_no_gm.yaml",
                                 [f"model.distillation.alpha={alpha}", f"model.distillation.temperature={temperature}"])
        for task, value in runner.row(f"a{alpha:g} t{temperature:g}", source).items():
            rows.setdefault(task, {})[f"α {alpha:g}, τ {temperature:g}"] = value
    return rows


def fig2(runner: Runner) -> dict[str, dict[str, float | None]]:
    rows: dict[str, dict[str, float | None]] = {}
    for beta in FIG2_BETAS:
        if beta == 0.5:  # pretrain.yaml's own beta: the ViT-BERT run of Table 1
            source = runner.pretrain("pretrain", "pretrain.yaml")
        else:
            source = runner.pretrain(f"pretrain_beta{beta:g}", "pretrain.yaml",
                                     [f"training.optimizer_hooks[0].beta={beta}"])
        for task, value in runner.row(f"beta {beta:g}", source).items():
            rows.setdefault(task, {})[f"β {beta:g}"] = value
    source = runner.pretrain("pretrain_random_mask", "ablations/pretrain_random_mask.yaml")
    for task, value in runner.row("random mask", source).items():
        rows.setdefault(task, {})["random mask, β 0.5"] = value
    return rows


COMMANDS = {"main": main_rows, "table1": table1, "table2": table2, "fig2": fig2}


def cell(table: dict, column: str, row: str) -> str:
    """One cell: ``mean ± spread``; MNLI's also shows matched / mismatched means."""
    text = fmt(table.get(column, {}).get(row))
    if column == "mnli" and text != "-":
        parts = [table.get(key, {}).get(row) for key in ("mnli_m", MISMATCHED)]
        text += " (" + " / ".join("-" if p is None else f"{p[0]:.1f}" for p in parts) + ")"
    return text


def render(command: str, table: dict, baselines: dict[str, str], seeds: list[int]) -> str:
    """The markdown table: a row per pre-training, a column per task that ran (Table 1's order), the paper's."""
    columns = [c for c in COLUMNS if c in table and (c != TEXT_AVG or table[c])]
    rows = list(dict.fromkeys(r for c in columns for r in table[c]))
    paper = [PAPER_COLUMNS.index(COLUMNS[c][1]) for c in columns]
    title = (f"ViT-BERT on the shapes benchmark, `python tools/reproduce_vit_bert.py {command}`, seeds {seeds} "
             "(mean ± standard deviation over seeds, %)")
    lines = [title, "", "| pre-training | " + " | ".join(COLUMNS[c][0] for c in columns)
             + f" | paper ({', '.join(COLUMNS[c][1] for c in columns)}) |", "|---" * (len(columns) + 2) + "|"]
    for row in rows:
        cells = " | ".join(cell(table, c, row) for c in columns)
        ours = " / ".join(str(TABLE1[row][1][i]) for i in paper) if row in TABLE1 else "-"
        lines.append(f"| {row} | {cells} | {ours} |")
    shown = [t for t in BASELINES if t in table or (t == MISMATCHED and "mnli" in table)]
    lines += ["", "baselines: " + "; ".join(f"{name_of(t)}: {baselines[t]}" for t in shown if t in baselines)]
    if command in ("table2", "all"):
        lines += ["", "Table 2 (paper, without GM): " + ", ".join(
            f"α {a:g} τ {t:g}: text {p[0]} / vision {p[1]}" for (a, t), p in TABLE2.items())]
    return "\n".join(lines) + "\n"


def name_of(task: str) -> str:
    return {MISMATCHED: "MNLI-mm", "mnli": "MNLI-m"}.get(task, COLUMNS[task][0] if task in COLUMNS else task)


def baselines_of(data_dir: Path) -> dict[str, str]:
    baselines = json.loads((data_dir / "shapes" / "baselines.json").read_text())
    return {task: accuracy_baselines(baselines[entry]) for task, entry in BASELINES.items() if entry in baselines}


def main(argv: list[str] | None = None) -> int:
    import argparse

    # --glue is this script's own; the rest is the command line every reproduction script shares
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--glue", nargs="+", default=["sst2"], choices=[*GLUE, "all"])
    known, rest = parser.parse_known_args(argv)
    glue = GLUE if "all" in known.glue else tuple(t for t in GLUE if t in known.glue)
    return command_line(__doc__, COMMANDS, [c for c in COMMANDS if c != "main"], lambda out, data, seed, dry: Runner(
        VIT_BERT, VARIANT, out, data, seed, dry, glue=glue), render, baselines_of, "save/reproduce_vit_bert", rest)


if __name__ == "__main__":
    sys.exit(main())
