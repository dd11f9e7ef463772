"""Reproduce UniT's comparisons on the embedded shapes benchmark, beside the paper's numbers.

    python tools/reproduce_unit.py                         # every run of Tables 1 and 3 (hours on 2 CPU cores)
    python tools/reproduce_unit.py --only all8,all8_separate --updates 300
    python tools/reproduce_unit.py --dry-run               # validate every config, print the plan

Each run is a ``projects/unit`` config with ``variant=shapes``, carried out in this process by
``unimm.session.prepare`` / ``execute`` in its own folder ``<out>/<run name>``: single-task
against joint training, shared against separate decoders, COCO init., and the shared 8-dataset
model without task embeddings. The runs with pictures start from the benchmark's pretrained
trunk (``includes/shapes/backbone.yaml``), trained once, before them, into
``<out>/shapes_backbone``. The final validation metrics of every run found under ``--out``
(read from its ``metrics.jsonl``) are set beside the paper's Tables 1 and 3 (and Table 4 for the
ablation runs, which only ``--only`` selects), with the benchmark's best baselines and the
differences the paper's conclusions rest on. The tables go to ``<out>/results.md`` and
``<out>/results.json`` and between the ``reproduce_unit`` markers of ``projects/unit/README.md``.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from unimm.config.errors import ConfigError  # noqa: E402
from unimm.utils.fileio import atomic_write_text  # noqa: E402

BEGIN, END = "<!-- reproduce_unit:begin -->", "<!-- reproduce_unit:end -->"
VARIANT = "shapes"
RUN_RECORD = "reproduce.json"  # what this script notes in a run folder (config, updates, wall time, status)
BACKBONE_RUN = "shapes_backbone"  # the pretrained trunk of every run with pictures (includes/shapes/backbone.yaml)

# Our metric key -> the benchmark's task name in baselines.json (as all8.yaml's baseline_table).
BASELINE_TASKS = {
    "coco/map": "coco_detection", "vg/map": "vg_detection", "vqa2/vqa_accuracy": "vqa2",
    "snli_ve/accuracy": "snli_ve", "qnli/accuracy": "qnli", "mnli/accuracy": "mnli_mismatched",
    "qqp/accuracy": "qqp", "sst2/accuracy": "sst2",
}


@dataclass(frozen=True)
class Row:
    """One line of a paper table: its number there (None: not in the paper), label, values (%)."""

    line: int | None
    label: str
    paper: tuple[float | None, ...]


@dataclass(frozen=True)
class PaperTable:
    """A table of the paper, typed in: our metric keys and the paper's values in percent."""

    key: str
    title: str
    metrics: tuple[str, ...]
    columns: tuple[str, ...]
    rows: tuple[Row, ...]

    def row(self, line: int | None, label: str | None = None) -> Row:
        return next(r for r in self.rows if r.line == line and (label is None or r.label == label))


T8 = ("coco/map", "vg/map", "vqa2/vqa_accuracy", "snli_ve/accuracy", "qnli/accuracy", "mnli/accuracy",
      "qqp/accuracy", "sst2/accuracy")
NO_TASK_EMBEDDING = "shared, no task embedding"

# Table 1 (val2017 / VG and VQAv2 on COCO val2017 images; test-dev numbers left out).
TABLE1 = PaperTable(
    "table1", "Table 1: detection and VQA (Sec. 4.1)", T8[:3], ("COCO det. mAP", "VG det. mAP", "VQAv2 acc."),
    (Row(1, "single-task training", (40.6, 3.87, 66.38)),
     Row(2, "separate decoders", (40.8, 3.91, 68.84)),
     Row(3, "shared decoder", (37.2, 4.05, 68.79)),
     Row(4, "shared decoder (COCO init.)", (40.8, 4.53, 67.30))))
# Table 3 lines 1-5 (val / dev numbers; line 6 fine-tunes per task, lines 7-9 are other models).
TABLE3 = PaperTable(
    "table3", "Table 3: 7 tasks on 8 datasets (Sec. 4.2)", T8,
    ("COCO det. mAP", "VG det. mAP", "VQAv2", "SNLI-VE", "QNLI", "MNLI-mm", "QQP", "SST-2"),
    (Row(1, "single-task training", (40.6, 3.87, 66.38, 70.52, 91.62, 84.23, 91.18, 91.63)),
     Row(2, "separate decoders", (32.2, 2.54, 67.38, 74.31, 87.68, 81.76, 90.44, 89.40)),
     Row(3, "shared decoder", (33.8, 2.69, 67.36, 74.14, 87.99, 81.40, 90.62, 89.40)),
     Row(4, "separate decoders (COCO init.)", (38.9, 3.22, 67.58, 74.20, 87.99, 81.33, 90.61, 89.17)),
     Row(5, "shared decoder (COCO init.)", (39.0, 3.29, 66.97, 73.16, 87.95, 80.91, 90.64, 89.29)),
     Row(None, NO_TASK_EMBEDDING, (None,) * 8)))
# Table 4 (the ablation setting: COCO, SNLI-VE, MNLI-mm).
TABLE4 = PaperTable(
    "table4", "Table 4: ablations on COCO, SNLI-VE and MNLI-mm (Sec. 4.2)",
    ("coco/map", "snli_ve/accuracy", "mnli/accuracy"), ("COCO det. mAP", "SNLI-VE", "MNLI-mm"),
    (Row(1, "default (d_t^d = 768, N_d = 6)", (38.79, 69.27, 81.41)),
     Row(2, "N_d = 8", (40.13, 68.17, 80.58)),
     Row(3, "N_d = 12", (39.02, 68.82, 81.15)),
     Row(4, "d_t^d = 256", (36.32, 69.68, 81.09)),
     Row(5, "all BERT hidden states", (38.24, 69.76, 81.31)),
     Row(6, "losses on all decoder layers for SNLI-VE and MNLI-mm", (39.46, 69.06, 81.67)),
     Row(7, "no task embedding", (38.61, 70.22, 81.45)),
     Row(8, "batch size 32", (35.03, 68.57, 79.62))))
TABLES = (TABLE1, TABLE3, TABLE4)


@dataclass(frozen=True)
class Run:
    """A config run with ``variant=shapes`` and the table rows (table key, line, label) it fills.

    Attributes:
        needs: the run whose ``checkpoints/last`` it starts from (COCO init.).
        default: part of a plain invocation; the others run only when ``--only`` names them.
    """

    name: str
    config: str
    rows: tuple[tuple[str, int | None], ...]
    needs: str | None = None
    default: bool = True


def single(dataset: str, *rows: tuple[str, int]) -> Run:
    return Run(f"single_task_{dataset}", f"projects/unit/single_task/{dataset}.yaml", rows)


RUNS: tuple[Run, ...] = (
    *(single(d, ("table1", 1), ("table3", 1)) for d in ("coco", "vg", "vqa2")),
    *(single(d, ("table3", 1)) for d in ("snli_ve", "qnli", "mnli", "qqp", "sst2")),
    Run("coco_vg_vqa2_separate", "projects/unit/coco_vg_vqa2_separate.yaml", (("table1", 2),)),
    Run("coco_vg_vqa2", "projects/unit/coco_vg_vqa2.yaml", (("table1", 3),)),
    Run("coco_vg_vqa2_coco_init", "projects/unit/coco_vg_vqa2_coco_init.yaml", (("table1", 4),),
        needs="single_task_coco"),
    Run("all8_separate", "projects/unit/all8_separate.yaml", (("table3", 2),)),
    Run("all8", "projects/unit/all8.yaml", (("table3", 3),)),
    Run("all8_separate_coco_init", "projects/unit/all8_separate_coco_init.yaml", (("table3", 4),),
        needs="single_task_coco"),
    Run("all8_coco_init", "projects/unit/all8_coco_init.yaml", (("table3", 5),), needs="single_task_coco"),
    Run("all8_no_task_embedding", "projects/unit/all8_no_task_embedding.yaml", (("table3", None),)),
    *(Run(f"ablation_{name}", f"projects/unit/ablations/{name}.yaml", (("table4", line),), default=False)
      for line, name in ((1, "default"), (2, "decoder_layers_8"), (3, "decoder_layers_12"),
                         (4, "decoder_hidden_256"), (5, "all_bert_states"), (6, "all_layer_losses"),
                         (7, "no_task_embedding"), (8, "batch_size_32"))),
)
BY_NAME = {run.name: run for run in RUNS}

# The paper's comparisons: (title, table, line of the setting, line of the reference), and
# for the task embedding, our 8-dataset pair against the paper's ablation pair (Table 4).
COMPARISONS = (
    ("joint (shared decoder) - single-task", "table1", 3, 1),
    ("joint (separate decoders) - single-task", "table1", 2, 1),
    ("shared - separate decoders", "table1", 3, 2),
    ("joint (shared decoder) - single-task", "table3", 3, 1),
    ("joint (separate decoders) - single-task", "table3", 2, 1),
    ("shared - separate decoders", "table3", 3, 2),
    ("COCO init. - none (shared decoder)", "table3", 5, 3),
)


# ----------------------------------------------------------------------------- plan

def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="save/reproduce_unit", help="folder of the run folders and results "
                        "(default: save/reproduce_unit)")
    parser.add_argument("--updates", type=int, default=None, help="training.max_updates of every run; a "
                        "warm-up longer than half of it is cut to a tenth of it (default: each config's own)")
    parser.add_argument("--only", default=None, help="comma-separated run names (default: every run of "
                        "Tables 1 and 3); see --dry-run for the names")
    parser.add_argument("--dry-run", action="store_true", help="validate every config, print the plan, run nothing")
    parser.add_argument("--data-dir", default=None, help="env.data_dir of every run (default: the configs')")
    parser.add_argument("--size", default=None, choices=("tiny", "default", "large"),
                        help="env.benchmark.size (default: the configs', i.e. default)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra override for every run, e.g. env.device=cpu (repeatable)")
    parser.add_argument("--readme", default=str(REPO / "projects/unit/README.md"),
                        help="the README whose reproduce_unit markers receive the tables")
    args = parser.parse_args(argv)
    if args.updates is not None and args.updates < 1:
        parser.error(f"--updates must be at least 1, got {args.updates}")
    return args


def select_runs(only: str | None, out: Path) -> list[Run]:
    """The runs to carry out, each after the run it starts from.

    A COCO-init run whose COCO model is neither selected nor already under ``out`` brings the
    single-task COCO run with it.
    """
    if only is None:
        chosen = [run for run in RUNS if run.default]
    else:
        names = [n.strip() for n in only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            raise ConfigError(f"--only: unknown run {', '.join(unknown)}; the runs are: {', '.join(BY_NAME)}")
        chosen = [BY_NAME[n] for n in dict.fromkeys(names)]
    for run in list(chosen):
        if run.needs and BY_NAME[run.needs] not in chosen and not (out / run.needs / "checkpoints" / "last").exists():
            print(f"{run.name} starts from {run.needs}, which has no checkpoint under {out}: running it first")
            chosen.insert(0, BY_NAME[run.needs])
    order = {run.name: i for i, run in enumerate(RUNS)}
    return sorted(chosen, key=lambda r: (r.needs is not None, order[r.name]))


def overrides_for(run: Run, args: argparse.Namespace, out: Path) -> list[str]:
    """Command-line overrides of one run (its folder, the data, the updates, the COCO model)."""
    items = [f"env.save_dir={out / run.name}", f"vars.backbone_run={out / BACKBONE_RUN}"]
    if args.data_dir is not None:
        items.append(f"env.data_dir={args.data_dir}")
    if args.size is not None:
        items.append(f"env.benchmark.size={args.size}")
    if args.updates is not None:
        items.append(f"training.max_updates={args.updates}")
    if run.needs:
        items.append(f"checkpoint.init_from={out / run.needs / 'checkpoints' / 'last'}")
    return items + list(args.overrides)


def prepare_run(run: Run, args: argparse.Namespace, out: Path) -> tuple[dict[str, Any], str]:
    """The validated config of a run; with ``--updates`` a warm-up longer than half the run
    is cut to a tenth of it (the scheduler refuses a warm-up longer than the run)."""
    from unimm.session import prepare

    from unimm.config import load_config

    items = overrides_for(run, args, out)
    warmup = load_config(REPO / run.config, items, variant=VARIANT).scheduler.get("warmup_steps")
    if args.updates is not None and isinstance(warmup, int) and warmup > args.updates // 2:
        items.append(f"scheduler.warmup_steps={args.updates // 10}")
    return prepare(REPO / run.config, items, variant=VARIANT)


def print_plan(runs: list[Run], configs: dict[str, dict[str, Any]]) -> None:
    print(f"{'run':26} {'updates':>7}  {'config':48} fills")
    for run in runs:
        cfg = configs[run.name]
        fills = ", ".join(f"{table} line {line}" if line else f"{table} (extra row)" for table, line in run.rows)
        start = f"; starts from {cfg['checkpoint']['init_from']}" if cfg["checkpoint"]["init_from"] else ""
        print(f"{run.name:26} {cfg['training']['max_updates']:>7}  {run.config:48} {fills}{start}")


# ----------------------------------------------------------------------------- run

def check_folder(folder: Path) -> None:
    """A run's folder is replaced; refuse to replace anything but an earlier run's folder."""
    if folder.exists() and not ((folder / RUN_RECORD).exists() or (folder / "config.yaml").exists()):
        raise ConfigError(f"{folder} exists and is not a run folder (no {RUN_RECORD} or config.yaml); "
                          "move it away or choose another --out")


def carry_out(run: Run, cfg: dict[str, Any], text: str, folder: Path) -> dict[str, Any]:
    """Run one config in ``folder`` (an earlier run's folder is removed first) and note how it
    went in ``reproduce.json``."""
    from unimm.session import execute

    check_folder(folder)
    if folder.exists():
        shutil.rmtree(folder)
    record = {"name": run.name, "config": run.config, "variant": VARIANT,
              "updates": cfg["training"]["max_updates"], "status": "running"}
    atomic_write_text(folder / RUN_RECORD, json.dumps(record, indent=1) + "\n")
    start = time.perf_counter()
    try:
        execute(cfg, text)
        record["status"] = "finished"
    except Exception as err:  # one failed run must not hide the others' results
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        record["status"] = f"failed: {type(err).__name__}: {message}"
        traceback.print_exc()
    record["wall_s"] = round(time.perf_counter() - start, 1)
    atomic_write_text(folder / RUN_RECORD, json.dumps(record, indent=1) + "\n")
    return record


def train_backbone(configs: Iterable[dict[str, Any]], out: Path) -> None:
    """Train the runs' shared backbone stage up front when one needs it and it is absent, so
    that no run's wall time includes it (a run would otherwise train it first by itself)."""
    from unimm.session import ensure_init_run, setup_logging

    target = out / BACKBONE_RUN / "checkpoints" / "last"
    needing = next((cfg for cfg in configs if cfg["checkpoint"]["init_from"] == str(target)), None)
    if needing is None or target.exists():
        return
    setup_logging("info", None)
    print(f"== {BACKBONE_RUN}: {needing['checkpoint']['init_run']['config']} -> {out / BACKBONE_RUN}", flush=True)
    start = time.perf_counter()
    ensure_init_run(needing)
    print(f"== {BACKBONE_RUN}: finished in {time.perf_counter() - start:.1f}s", flush=True)


# ----------------------------------------------------------------------------- collect

def final_metrics(folder: Path) -> tuple[int | None, dict[str, float]]:
    """(update, metrics) of the last validation row of a run's metrics.jsonl."""
    path = folder / "metrics.jsonl"
    if not path.exists():
        return None, {}
    last: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("phase") == "val":
                last = row
    metrics = {k: float(v) for k, v in last.items() if "/" in k and isinstance(v, (int, float))}
    return last.get("update"), metrics


def collect(out: Path) -> dict[str, dict[str, Any]]:
    """Every known run found under ``out``: its record and final validation metrics."""
    found = {}
    for run in RUNS:
        folder = out / run.name
        if not folder.exists():
            continue
        record_path = folder / RUN_RECORD
        record = json.loads(record_path.read_text()) if record_path.exists() else {"status": "unknown"}
        update, metrics = final_metrics(folder)
        found[run.name] = {**record, "evaluated_at": update, "metrics": metrics}
    return found


def read_baselines(path: Path) -> dict[str, tuple[str, float]]:
    """Metric key -> (name, value) of the benchmark's best baseline, from baselines.json."""
    from unimm.benchmark.baseline_table import numeric_baselines

    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    best = {}
    for metric, task in BASELINE_TASKS.items():
        values = numeric_baselines(data.get(task, {}))
        if values:
            name = max(values, key=values.get)
            best[metric] = (name, values[name])
    return best


def build_tables(results: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per table, one entry per row: the paper's values and ours (percent), and the runs used
    (finished ones only: a failed run's last evaluation is not its result)."""
    tables = {}
    for table in TABLES:
        rows = []
        for row in table.rows:
            ours: dict[str, float | None] = {m: None for m in table.metrics}
            runs = []
            for run in RUNS:
                if (table.key, row.line) not in run.rows or results.get(run.name, {}).get("status") != "finished":
                    continue
                runs.append(run.name)
                for metric, value in results[run.name]["metrics"].items():
                    if metric in ours and ours[metric] is None:
                        ours[metric] = 100.0 * value
            rows.append({"line": row.line, "label": row.label, "runs": runs,
                         "paper": dict(zip(table.metrics, row.paper)), "ours": ours})
        tables[table.key] = rows
    return tables


def difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def comparisons(tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The paper's comparisons, as differences of ours beside the paper's, per dataset."""
    def find(key: str, line: int | None, label: str | None = None) -> dict[str, Any]:
        return next(r for r in tables[key] if r["line"] == line and (label is None or r["label"] == label))

    found = []
    for title, key, line, reference in COMPARISONS:
        a, b = find(key, line), find(key, reference)
        found.append({"title": f"{title} ({key.replace('table', 'Table ')} line {line} - line {reference})",
                      "ours": {m: difference(a["ours"][m], b["ours"][m]) for m in a["ours"]},
                      "paper": {m: difference(a["paper"][m], b["paper"][m]) for m in a["paper"]}})
    # Task embedding: ours on 8 datasets; the paper's on its ablation setting (Table 4 line 7 - line 1).
    without, with_ = find("table3", None, NO_TASK_EMBEDDING), find("table3", 3)
    paper4 = {r["line"]: r["paper"] for r in tables["table4"]}
    found.append({"title": "no task embedding - with (ours: 8 datasets; paper: Table 4 line 7 - line 1)",
                  "ours": {m: difference(without["ours"][m], with_["ours"][m]) for m in without["ours"]},
                  "paper": {m: difference(paper4[7].get(m), paper4[1].get(m)) for m in without["ours"]}})
    return found


# ----------------------------------------------------------------------------- report

def fmt(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def markdown(tables: dict[str, list[dict[str, Any]]], found: list[dict[str, Any]],
             results: dict[str, dict[str, Any]], baselines: dict[str, tuple[str, float]],
             setting: str) -> str:
    """The README section: how it was run, one table per paper table, the comparisons, the runs."""
    lines = [f"Measured by `python tools/reproduce_unit.py` ({setting}). Ours: the final validation "
             "metrics on the embedded shapes benchmark, in percent; paper: the real datasets. The "
             "benchmark is a small synthetic world, so compare directions (which setting is better), "
             "not values.", ""]
    for table in TABLES:
        rows = tables[table.key]
        if table.key == "table4" and not any(r["runs"] for r in rows):
            continue  # the ablations were not run
        lines += [f"**{table.title}** — ours / paper", "",
                  "| line | setting | " + " | ".join(table.columns) + " |",
                  "|---|---|" + "---|" * len(table.columns)]
        for row in rows:
            cells = [f"{fmt(row['ours'][m])} / {fmt(row['paper'][m])}" for m in table.metrics]
            line = str(row["line"]) if row["line"] is not None else "–"
            label = row["label"] if row["runs"] else f"{row['label']} (no finished run)"
            lines.append(f"| {line} | {label} | " + " | ".join(cells) + " |")
        if baselines:
            cells = [f"{fmt(100 * baselines[m][1])} ({baselines[m][0]})" if m in baselines else "–"
                     for m in table.metrics]
            lines.append("| | best baseline of the benchmark | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["**The paper's comparisons** — difference of ours (difference in the paper); the last "
              "column counts the datasets where both were measured and the signs agree", "",
              "| comparison | " + " | ".join(TABLE3.columns) + " | same sign |",
              "|---|" + "---|" * (len(TABLE3.columns) + 1)]
    for item in found:
        cells, agree, measured = [], 0, 0
        for metric in T8:
            if metric not in item["ours"]:
                cells.append("")
                continue
            ours, paper = item["ours"][metric], item["paper"][metric]
            cells.append(f"{fmt(ours, True)} ({fmt(paper, True)})" if ours is not None or paper is not None else "–")
            if ours is not None and paper is not None:
                measured += 1
                agree += same_sign(ours, paper)
        lines.append(f"| {item['title']} | " + " | ".join(cells) + f" | {agree}/{measured} |")
    lines += ["", "**Runs** (folders under the script's `--out`)", "",
              "| run | config | updates | evaluated at | wall time (s) | status |", "|---|---|---|---|---|---|"]
    for name, result in results.items():
        lines.append(f"| {name} | `{result.get('config', '?')}` | {result.get('updates', '?')} | "
                     f"{result.get('evaluated_at') if result.get('evaluated_at') is not None else '–'} | "
                     f"{result.get('wall_s', '–')} | {result.get('status', '?')} |")
    return "\n".join(lines) + "\n"


def write_readme(path: Path, section: str) -> None:
    """Replace what lies between the markers of ``path`` (atomically)."""
    text = read_readme(path)
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    atomic_write_text(path, f"{head}{BEGIN}\n{section}{END}{tail}")


def read_readme(path: Path) -> str:
    """The README's text, checked for the two markers in order."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"--readme {path}: cannot read it ({err.strerror})") from None
    if BEGIN not in text or END not in text or text.index(BEGIN) > text.index(END):
        raise ConfigError(f"{path}: the markers {BEGIN} and {END} are not there in this order; add them "
                          "where the results table should go")
    return text


def same_sign(ours: float, paper: float) -> bool:
    """Both differences up, both down, or both zero (a zero never agrees with a change)."""
    return (ours > 0) - (ours < 0) == (paper > 0) - (paper < 0)


def report(out: Path, readme: Path, baselines_path: Path | None, setting: str) -> None:
    """Collect every run under ``out`` and write results.md, results.json and the README section."""
    results = collect(out)
    tables = build_tables(results)
    found = comparisons(tables)
    baselines = read_baselines(baselines_path) if baselines_path else {}
    section = markdown(tables, found, results, baselines, setting)
    atomic_write_text(out / "results.md", section)
    payload = {"setting": setting, "runs": results, "tables": tables, "comparisons": found,
               "best_baselines": {m: {"name": n, "value": 100 * v} for m, (n, v) in baselines.items()}}
    atomic_write_text(out / "results.json", json.dumps(payload, indent=1, sort_keys=True) + "\n")
    write_readme(readme, section)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    out, readme = Path(args.out), Path(args.readme)
    try:
        read_readme(readme)
        runs = select_runs(args.only, out)
        prepared = {run.name: prepare_run(run, args, out) for run in runs}
        for run in runs:
            check_folder(out / run.name)
    except ConfigError as err:
        print(f"reproduce_unit: {err}", file=sys.stderr)
        return 2
    configs = {name: cfg for name, (cfg, _) in prepared.items()}
    print_plan(runs, configs)
    if args.dry_run:
        print(f"dry run: {len(runs)} configs valid; nothing was run")
        return 0
    any_cfg = next(iter(configs.values()))
    baselines_path = Path(any_cfg["env"]["data_dir"]) / "shapes" / "baselines.json"
    setting = (f"benchmark size {any_cfg['env']['benchmark']['size']}, "
               + (f"{args.updates} updates per run" if args.updates else "each config's updates"))
    failed = []
    train_backbone(configs.values(), out)
    for run in runs:
        if run.needs in failed:
            print(f"== {run.name}: skipped, {run.needs} failed")
            failed.append(run.name)
            continue
        print(f"== {run.name}: {run.config} variant={VARIANT} -> {out / run.name}", flush=True)
        record = carry_out(run, *prepared[run.name], out / run.name)
        print(f"== {run.name}: {record['status']} in {record['wall_s']}s", flush=True)
        if record["status"] != "finished":
            failed.append(run.name)
        report(out, readme, baselines_path, setting)  # after every run: partial results show early
    print(f"results: {out / 'results.md'}, {out / 'results.json'}, and {readme}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
