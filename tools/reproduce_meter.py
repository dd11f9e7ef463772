"""Run METER's pre-training and fine-tuning on the embedded shapes benchmark, beside the paper and the baselines.

    python tools/reproduce_meter.py main               # MLM + ITM pre-training, then VQAv2, SNLI-VE and NLVR2 fine-tuning,
                                                       # each also from random init: the project's main command
    python tools/reproduce_meter.py main --seeds 1 2 3
    python tools/reproduce_meter.py main --dry-run     # validate every config of the plan, run nothing

Every run is a ``projects/meter`` config with ``variant=shapes``, carried out in this process in its
own folder under ``--out`` (one tree per seed); a run whose record is there is reused. The fine-tuning
runs start from this seed's pre-training run (everything but the heads, the reference code's rule) or
from random init. The table (mean and spread over seeds) goes to ``<out>/main.md`` and ``.json`` and
is printed; speed is reported, never asserted. Tables 3-10's grids are not in this script yet.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tools")]  # run from a checkout without installing

from reproduction import Runs, accuracy_baselines, command_line, fmt, start_from  # noqa: E402

METER = REPO / "projects" / "meter"
VARIANT = "shapes"

# task -> (fine-tuning config, metric key, baselines.json task, label, the paper's METER-CLIP-ViT-B/16 number)
TASKS = {
    "vqa2": ("vqa2.yaml", "vqa2/vqa_accuracy", "vqa2", "VQAv2 (VQA score)", 77.68),
    "snli_ve": ("snli_ve.yaml", "snli_ve/accuracy", "snli_ve", "SNLI-VE (accuracy)", 80.86),
    "nlvr2": ("nlvr2.yaml", "nlvr2/accuracy", "nlvr2", "NLVR2 (accuracy, dev)", 82.33),
}


@dataclass
class Runner(Runs):
    """METER's runs of one seed: its pre-training, then each task from it and from random init."""

    def pretrain(self) -> Path:
        self.run("pretrain", "pretrain.yaml", [f"env.seed={self.seed}"])
        return self.root / "pretrain"

    def finetune(self, task: str, source: Path | None, name: str) -> float | None:
        config, key, _, _, _ = TASKS[task]
        return self.run(name, config, [f"env.seed={self.seed}", *start_from(source)]).get(key)


def main_rows(runner: Runner) -> dict[str, dict[str, float | None]]:
    source = runner.pretrain()
    return {task: {"pre-trained": runner.finetune(task, source, f"{task}_pretrained"),
                   "random init": runner.finetune(task, None, f"{task}_random_init")} for task in TASKS}


COMMANDS = {"main": main_rows}


def baselines_of(data_dir: Path) -> dict[str, str]:
    baselines = json.loads((data_dir / "shapes" / "baselines.json").read_text())
    shown = {}
    for task, (_, _, name, _, _) in TASKS.items():
        entry = dict(baselines[name])
        extra = {k: v for k, v in entry.items() if k in ("hypothesis_only", "hypothesis_template_prior",
                                                         "sentence_only", "sentence_template_prior")}
        shown[task] = accuracy_baselines(entry) + "".join(f", {k} {100 * v:.1f}" for k, v in extra.items())
    return shown


def render(command: str, table: dict, baselines: dict[str, str], seeds: list[int]) -> str:
    columns = list(dict.fromkeys(c for task in table.values() for c in task))
    title = (f"METER on the shapes benchmark, `python tools/reproduce_meter.py {command}`, seeds {seeds} "
             "(mean ± standard deviation over seeds, %)")
    lines = [title, "", "| task | paper (METER-CLIP-ViT-B/16) | " + " | ".join(columns) + " | baselines |",
             "|---" * (len(columns) + 3) + "|"]
    for task, values in table.items():
        cells = " | ".join(fmt(values.get(c)) for c in columns)
        lines.append(f"| {TASKS[task][3]} | {TASKS[task][4]} | {cells} | {baselines[task]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return command_line(__doc__, COMMANDS, list(COMMANDS), lambda out, data, seed, dry: Runner(
        METER, VARIANT, out, data, seed, dry), render, baselines_of, "save/reproduce_meter", argv)


if __name__ == "__main__":
    sys.exit(main())
