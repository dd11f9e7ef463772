"""Run MoMo's chain on the embedded shapes benchmark and set its results beside the paper's and the baselines.

    python tools/reproduce_momo.py main         # stages 1 -> 2 -> 3, then SST-2, linear evaluation, VQAv2,
                                                # zero-shot retrieval: the project's main command (minutes on 2 CPU cores)
    python tools/reproduce_momo.py table4       # the three downstream tasks after each stage, and from random init
    python tools/reproduce_momo.py ablations    # Table 5 (stages 2 + 3 combined) and Table 6's four ablations
    python tools/reproduce_momo.py all --seeds 1 2 3
    python tools/reproduce_momo.py main --dry-run   # validate every config of the plan, run nothing

Every run is a ``projects/momo`` config with ``variant=shapes``, carried out in this process by
``unimm.session.prepare`` / ``execute`` in its own folder under ``--out`` (one tree per seed); a run
whose checkpoint is already there is reused, not trained again. The downstream tasks are the
paper's (Table 2-4) on the benchmark: GLUE SST-2 fine-tuning (accuracy), linear evaluation on the
image folder (top-1 accuracy; the paper's ImageNet "LE"), VQAv2 fine-tuning (VQA score) and zero-shot COCO retrieval (the mean of
R@1 and R@5 both ways, Table 2's "average recall at top-1/5"). The tables (mean and the spread over
seeds) go to ``<out>/<command>.md`` and ``.json`` and are printed. Speed is reported, never asserted.
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

MOMO = REPO / "projects" / "momo"
VARIANT = "shapes"

# task -> (config, its metric key, the baselines.json task, paper's MoMo base numbers after stage 1 / 2 / 3)
TASKS = {
    "sst2": ("finetune_sst2.yaml", "sst2/accuracy", "sst2", (80.1, 89.4, 89.6)),
    "linear_eval": ("linear_eval.yaml", "images/accuracy", "imagefolder", (66.9, 52.9, 75.7)),
    "vqa2": ("finetune_vqa2.yaml", "vqa2/vqa_accuracy", "vqa2", (56.7, 57.1, 71.2)),
    "retrieval": ("zero_shot_retrieval.yaml", "coco_retrieval/ir_tr_r1_r5_mean", "retrieval_coco",
                  (None, None, 64.0)),
}
# What a downstream run keeps of a pre-trained one (the encoder side its inputs need).
KEEP = {"sst2": [r"^text_tokenizer\.", r"^encoder\."], "linear_eval": [r"^image_tokenizer\.", r"^encoder\."],
        "vqa2": [r"^image_tokenizer\.", r"^text_tokenizer\.", r"^encoder\."],
        "retrieval": [r"^image_tokenizer\.", r"^text_tokenizer\.", r"^encoder\.", r"^image_projection\.",
                      r"^text_projection\."]}
TASK_LABELS = {"sst2": "SST-2 (FT, accuracy)", "linear_eval": "image folder (LE, accuracy)",
               "vqa2": "VQAv2 (FT, VQA score)",
               "retrieval": "COCO zero-shot (R@1/5 mean)"}

# Table 5 and 6: ablation run -> (config, the chain level it starts from + 1, whether it trains the contrastive
# projections (then zero-shot retrieval follows it), what it is, the paper's deltas on our tasks in points)
ABLATIONS = {
    "stage2_text_only": ("ablations/stage2_text_only.yaml", 2, False, "Table 6: stage 2 without images",
                         {"linear_eval": -43.4, "sst2": +0.7}),
    "stage2_shared_decoder": ("ablations/stage2_shared_decoder.yaml", 2, False, "Table 6: stage 2, shared decoder",
                              {"linear_eval": -1.1, "sst2": 0.0}),
    "stage3_pairs_only": ("ablations/stage3_pairs_only.yaml", 3, True, "Table 6: stage 3 without text",
                          {"linear_eval": -2.1, "sst2": -1.1, "vqa2": +0.3, "retrieval": +2.6}),
    "stage3_alternating": ("ablations/stage3_alternating.yaml", 3, True, "Table 6: without CMGA (alternating)",
                           {"linear_eval": -0.3, "sst2": -1.6, "vqa2": -0.9, "retrieval": -1.3}),
    "stages23_combined": ("ablations/stages23_combined.yaml", 2, True, "Table 5: stages 2 and 3 combined",
                          {"linear_eval": +1.5, "sst2": -1.8, "vqa2": +1.4, "retrieval": +1.4}),
}


@dataclass
class Runner(Runs):
    """MoMo's runs of one seed: the chain's stage folders and what each run passes down the chain."""

    def stage_run(self, stage: int) -> Path:
        return self.root / f"stage{stage}"

    def chain_overrides(self, level: int) -> list[str]:
        """What a run of this seed is told, and what it passes on to the ``level - 1`` stages before it.

        A stage's ``init_run`` checks that the earlier stage it finds was made by the config it would
        train now, overrides included; so a run at level ``n`` (stage ``n``, or an ablation in its place)
        passes on exactly what stage ``n`` of the chain passes on.
        """
        every = [f"env.seed={self.seed}", *(f"vars.stage{i}_run={self.stage_run(i)}" for i in (1, 2, 3))]
        chain = ["vars.stage_overrides=" + passed_on(every, depth=level - 1)] if level > 1 else []
        return [*every, *chain]

    def stage(self, stage: int) -> None:
        """Train stages 1 .. ``stage`` (reused when present): ``stage`` trains the earlier ones first."""
        if not (self.stage_run(stage) / "checkpoints" / "last").exists() or self.dry_run:
            self.run(f"stage{stage}", f"stage{stage}.yaml", self.chain_overrides(stage))

    def downstream(self, task: str, source: Path | None, name: str) -> float | None:
        """``task`` fine-tuned / probed / evaluated from ``source``'s checkpoint (None: random init)."""
        config, key, _, _ = TASKS[task]
        keep = None if source is None else [k for k in KEEP[task] if self.dry_run or has_weights(source, k)]
        return self.run(name, config, [*self.chain_overrides(0), *start_from(source, keep)]).get(key)


def main_rows(runner: Runner) -> dict[str, dict[str, float | None]]:
    """The chain, then each downstream task from stage 3 and from random init."""
    runner.stage(3)
    rows = {}
    for task in TASKS:
        rows[task] = {"stage 3": runner.downstream(task, runner.stage_run(3), f"{task}_after_stage3")}
        if task != "retrieval":  # zero-shot needs trained projections
            rows[task]["random init"] = runner.downstream(task, None, f"{task}_random_init")
    return rows


def table4_rows(runner: Runner) -> dict[str, dict[str, float | None]]:
    """Table 4: every downstream task after each stage (retrieval after stage 3 only, as the paper)."""
    rows = main_rows(runner)
    for stage in (1, 2):
        for task in ("sst2", "linear_eval", "vqa2"):
            rows[task][f"stage {stage}"] = runner.downstream(task, runner.stage_run(stage), f"{task}_after_stage{stage}")
    return rows


def ablation_rows(runner: Runner) -> dict[str, dict[str, float | None]]:
    """Tables 5 and 6: each ablated stage, then the downstream tasks from it, beside the default run."""
    rows = main_rows(runner)
    runner.stage(2)
    for task in ("sst2", "linear_eval", "vqa2"):
        rows[task]["stage 2"] = runner.downstream(task, runner.stage_run(2), f"{task}_after_stage2")
    for name, (config, level, contrastive, _, _) in ABLATIONS.items():
        runner.run(name, config, runner.chain_overrides(level))
        for task in TASKS:
            if task == "retrieval" and not contrastive:
                continue
            rows[task][name] = runner.downstream(task, runner.root / name, f"{task}_after_{name}")
    return rows


def baselines_of(data_dir: Path) -> dict[str, str]:
    """task -> the benchmark's baselines (percent), from its baselines.json."""
    baselines = json.loads((data_dir / "shapes" / "baselines.json").read_text())
    shown = {}
    for task, (_, _, name, _) in TASKS.items():
        entry = baselines[name]
        if task == "retrieval":
            chance = entry["chance"]
            mean = (chance["image_to_text"]["r1"] + chance["image_to_text"]["r5"] + chance["text_to_image"]["r1"]
                    + chance["text_to_image"]["r5"]) / 4
            shown[task] = f"chance {100 * mean:.1f}"
        else:
            shown[task] = accuracy_baselines(entry)
    return shown


def render(command: str, table: dict[str, dict[str, tuple[float, float, int]]], baselines: dict[str, str],
           seeds: list[int]) -> str:
    columns = list(dict.fromkeys(c for task in table.values() for c in task))
    title = (f"MoMo on the shapes benchmark, `python tools/reproduce_momo.py {command}`, seeds {seeds} "
             "(mean ± standard deviation over seeds, %)")
    lines = [title, "",
             "| task | paper (MoMo, stage 1 / 2 / 3) | " + " | ".join(columns) + " | baselines |",
             "|---" * (len(columns) + 3) + "|"]
    for task, values in table.items():
        paper = " / ".join("-" if v is None else f"{v}" for v in TASKS[task][3])
        cells = " | ".join(fmt(values.get(c)) for c in columns)
        lines.append(f"| {TASK_LABELS[task]} | {paper} | {cells} | {baselines[task]} |")
    if command in ("ablations", "all"):
        lines += ["", "| ablation | paper's change on these tasks (points) |", "|---|---|"]
        for name, (_, _, _, what, deltas) in ABLATIONS.items():
            lines.append(f"| `{name}`: {what} | " + ", ".join(f"{TASK_LABELS[t].split(' (')[0]} {d:+.1f}"
                                                           for t, d in deltas.items()) + " |")
    return "\n".join(lines) + "\n"


COMMANDS = {"main": main_rows, "table4": table4_rows, "ablations": ablation_rows}


def main(argv: list[str] | None = None) -> int:
    return command_line(__doc__, COMMANDS, list(COMMANDS), lambda out, data, seed, dry: Runner(
        MOMO, VARIANT, out, data, seed, dry), render, baselines_of, "save/reproduce_momo", argv)


if __name__ == "__main__":
    sys.exit(main())
