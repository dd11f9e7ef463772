"""``unimm_data check``: inspect every file a config will read, and report all problems at once.

Training on half-downloaded or misplaced data fails late (an image missing after hours) or, worse,
not at all (an empty split that scores 0). The check builds every dataset of a config for each split
the run reads, exactly as the run would, and then looks further than the builders do:

- presence and format: a builder's errors (missing files, malformed records) are collected per
  dataset and split instead of stopping at the first; records a reader drops or repairs (its
  warnings) are listed too;
- counts: samples per split; an empty split is a problem;
- labels: examples per label (``label_counts()``), labels the train split never shows, and an
  evaluated split without labels;
- pictures (``image_files()``): every file exists, opens, is not cut short (JPEG and PNG end
  markers; ``decode=True`` decodes every picture instead), and has the size its annotations state;
- overlap: pictures of an evaluated split that the train split of the same dataset also reads.

Nothing is written and nothing is downloaded.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from PIL import Image

from unimm.config.errors import ConfigError

SHOWN = 5  # files named per kind of picture problem; the rest are counted
LABELS_SHOWN = 8


@dataclass
class SplitReport:
    """What the check found in one split of one dataset."""

    dataset: str
    split: str
    summary: list[str] = field(default_factory=list)  # what was found (counts, labels, pictures)
    problems: list[str] = field(default_factory=list)  # what stops or spoils a run
    notes: list[str] = field(default_factory=list)  # worth a look, not an error
    images: set[Path] = field(default_factory=set)


@dataclass
class DataReport:
    """Every split of every dataset of a config, in config order."""

    title: str
    splits: list[SplitReport]

    @property
    def problem_count(self) -> int:
        return sum(len(s.problems) for s in self.splits)

    def text(self) -> str:
        lines = [self.title, ""]
        current = None
        for s in self.splits:
            if s.dataset != current:
                current = s.dataset
                lines.append(f"datasets.{s.dataset}")
            status = "PROBLEM" if s.problems else "ok"
            lines.append((f"  {s.split:<6} {status:<9}" + "; ".join(s.summary)).rstrip())
            lines += [f"      problem: {p}" for p in s.problems]
            lines += [f"      note: {n}" for n in s.notes]
        datasets = len({s.dataset for s in self.splits if s.problems})
        lines.append("")
        lines.append(f"{self.problem_count} problem(s) in {datasets} dataset(s); fix them before training"
                     if self.problem_count else "no problems found")
        return "\n".join(lines) + "\n"


class _Collect(logging.Handler):
    """The warnings a dataset builder logs (records it dropped or repaired)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def splits_read(cfg: dict[str, Any]) -> tuple[list[str], set[str]]:
    """The splits a run of ``cfg`` reads, and those of them it scores with metrics."""
    run_type, evaluated = cfg["run_type"], cfg["evaluation"]["split"]
    if run_type == "train":
        return ["train"], set()
    if run_type == "train_val":
        return ["train", evaluated], {evaluated}
    if run_type == "test":
        return ["test"], {"test"}
    if run_type == "val":
        return [evaluated], {evaluated}
    return [evaluated], set()  # predict


def check_config(cfg: dict[str, Any], *, splits: Sequence[str] | None = None, decode: bool = False,
                 title: str = "") -> DataReport:
    """Build and inspect every dataset of a validated config for each split it reads (or ``splits``).

    Args:
        cfg: a validated config (``unimm.session.prepare``).
        splits: the splits to inspect (None: those the run type reads).
        decode: decode every picture in full (slow; finds corrupt data inside a file).
        title: the report's first line.
    """
    from unimm.registry import DATASETS

    read, scored = splits_read(cfg)
    chosen = list(splits) if splits else read
    reports = []
    for name, node in cfg["datasets"].items():
        built: dict[str, Any] = {}
        for split in chosen:
            report = SplitReport(name, split)
            reports.append(report)
            dataset = build_quietly(DATASETS, node, name, split, report)
            if dataset is None:
                continue
            built[split] = dataset
            inspect_dataset(dataset, report, scored=split in scored, decode=decode)
        compare_splits(built, [r for r in reports if r.dataset == name])
    return DataReport(title, reports)


def without_image_checks(registry: Any, node: Any) -> Any:
    """``node`` with ``check_images: false`` on every dataset node whose builder takes it: the check
    inspects the pictures itself (``image_files()``), all of them, instead of stopping at the first
    missing one."""
    if isinstance(node, list):
        return [without_image_checks(registry, n) for n in node]
    if not (isinstance(node, dict) and "type" in node) or node["type"] not in registry:
        return node
    out = {key: without_image_checks(registry, value) for key, value in node.items()}
    if "check_images" in inspect.signature(registry.get(node["type"]).builder).parameters:
        out["check_images"] = False
    return out


def build_quietly(registry: Any, node: Any, name: str, split: str, report: SplitReport) -> Any:
    """Build one split as the run would; its errors and warnings go into ``report``."""
    logger = logging.getLogger("unimm")
    collect = _Collect()
    logger.addHandler(collect)
    try:
        return registry.build(without_image_checks(registry, node), path=f"datasets.{name}", split=split, name=name)
    except ConfigError as err:
        prefix = f"datasets.{name}: "  # the report's heading names the dataset already
        report.problems += [p[len(prefix):] if p.startswith(prefix) else p for p in err.problems]
        if err.source and report.problems:
            report.problems[-1] += f" (from {err.source})"
    except Exception as err:  # a plugin's builder failing some other way
        report.problems.append(f"building it failed: {type(err).__name__}: {err}")
    finally:
        logger.removeHandler(collect)
        report.notes += [" ".join(m.split()) for m in collect.messages]
    return None


def inspect_dataset(dataset: Any, report: SplitReport, *, scored: bool, decode: bool) -> None:
    count = len(dataset)
    report.summary.append(f"{count} samples")
    if count == 0:
        report.problems.append(f"the '{report.split}' split has no samples; check the files it reads")
    if not getattr(dataset, "has_labels", True):
        report.summary.append("no labels")
        if scored:
            report.problems.append(f"the '{report.split}' split has no labels, and this run scores it with metrics; "
                                   f"use run_type=predict evaluation.split={report.split} for submission files")
    counts = dataset.label_counts() if hasattr(dataset, "label_counts") else None
    if counts:
        report.summary.append("labels: " + format_counts(counts))
        known = list((dataset.info() or {}).get("labels") or []) if hasattr(dataset, "info") else []
        unseen = [label for label in known if not counts.get(label)]
        if unseen and report.split == "train":
            report.notes.append(f"{len(unseen)} of {len(known)} labels never occur in train: "
                                + ", ".join(map(str, unseen[:LABELS_SHOWN])) + (" ..." if len(unseen) > LABELS_SHOWN else ""))
    if hasattr(dataset, "image_files"):
        files = list(dataset.image_files())
        report.images = {Path(p) for p, _ in files}
        report.summary.append(f"{len(files)} pictures" + ("" if decode else " (headers and end markers read)"))
        report.problems += inspect_images(files, decode)
    elif count and not str(getattr(dataset, "task_type", "")).startswith("text"):
        report.notes.append(f"pictures not inspected: {type(dataset).__name__} has no image_files()")


def format_counts(counts: dict[str, int]) -> str:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    shown = ", ".join(f"{label} {n}" for label, n in ranked[:LABELS_SHOWN])
    return shown + (f", ... ({len(ranked) - LABELS_SHOWN} more)" if len(ranked) > LABELS_SHOWN else "")


def inspect_images(files: Iterable[tuple[Path, tuple[int, int] | None]], decode: bool) -> list[str]:
    """Problems of the picture files: missing, unreadable, cut short, another size than annotated."""
    found: dict[str, list[str]] = {}
    for path, size in files:
        path = Path(path)
        if not path.is_file():
            found.setdefault("missing pictures", []).append(str(path))
            continue
        if cut_short(path):
            found.setdefault("pictures cut short (no end marker: an interrupted download?)", []).append(str(path))
            continue
        try:
            with Image.open(path) as image:
                real = image.size
                if decode:
                    image.load()
        except Exception as err:  # PIL raises OSError, SyntaxError, ValueError ... on a bad file
            found.setdefault("pictures that cannot be read", []).append(f"{path} ({err})")
            continue
        if size is not None and tuple(size) != tuple(real):
            found.setdefault("pictures whose size differs from their annotations (boxes would be wrong: use the "
                             "original pictures)", []).append(
                f"{path}: {real[0]}x{real[1]}, annotated {size[0]}x{size[1]}")
    out = []
    for kind, items in found.items():
        listed = "; ".join(items[:SHOWN]) + (f"; ... (+{len(items) - SHOWN})" if len(items) > SHOWN else "")
        out.append(f"{kind} ({len(items)}): {listed}")
    return out


def cut_short(path: Path) -> bool:
    """A JPEG without its end-of-image marker or a PNG without its IEND chunk at the end."""
    suffix = path.suffix.lower()
    if suffix not in (".jpg", ".jpeg", ".png"):
        return False
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 32))
        tail = f.read()
    if suffix == ".png":
        return b"IEND" not in tail[-12:]
    return b"\xff\xd9" not in tail.rstrip(b"\x00\r\n ")[-2:]


def compare_splits(built: dict[str, Any], reports: list[SplitReport]) -> None:
    """Pictures an evaluated split shares with the train split of the same dataset."""
    train = next((r for r in reports if r.split == "train"), None)
    if train is None or not train.images:
        return
    for report in reports:
        if report is train or not report.images:
            continue
        shared = sorted(report.images & train.images)
        if shared:
            report.problems.append(f"{len(shared)} of its {len(report.images)} pictures are also pictures of the "
                                   f"train split (e.g. {shared[0]}): its scores would not measure unseen pictures")

