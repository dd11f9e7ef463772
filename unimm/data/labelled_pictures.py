"""Picture files with one class each, listed by an annotation file: the dataset the Oxford Flowers-102
and Oxford-IIIT Pets readers build.

A reader parses its annotation files into ``LabelledPicture`` records (the file, the 0-based class,
and the record that named it, for errors) and hands them here; the samples, batches and what
``unimm_data check`` inspects are the same as the image folder reader's.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import chain, zip_longest
from pathlib import Path
from typing import Any, Iterable, Sequence

from torch.utils.data import Dataset

from unimm.config.errors import ConfigError
from unimm.data.collate import collate_batch
from unimm.data.common import read_image

LISTED = 20  # missing files named in one error; the rest are counted


@dataclass(frozen=True)
class LabelledPicture:
    """One sample: the picture file, its class index (0-based), and the record that names it."""

    path: Path
    label: int
    record: str  # e.g. "setid.mat 'trnid'[3]" or "annotations/test.txt, line 5"


def interleave_classes(pictures: Sequence[LabelledPicture], num_classes: int) -> list[LabelledPicture]:
    """The classes taken in turn, file order within a class, so that any prefix (max_samples) mixes them.

    Official lists are often sorted by class (the Pets lists are): a prefix of one would hold a single class.
    """
    per_class: list[list[LabelledPicture]] = [[] for _ in range(num_classes)]
    for picture in pictures:
        per_class[picture.label].append(picture)
    return [p for p in chain.from_iterable(zip_longest(*per_class)) if p is not None]


def require_present(paths: Iterable[Path], what: str, fix: str) -> None:
    """One error naming every path that does not exist (the first ``LISTED`` and a count), with the fix.

    Args:
        paths: the files (or folders) a reader will open.
        what: their noun in the message ("file", "picture").
        fix: where they come from, shown in the heading.
    """
    missing = [p for p in paths if not p.exists()]
    if not missing:
        return
    problems = [f"missing {what}: {p}" for p in missing[:LISTED]]
    if len(missing) > LISTED:
        problems.append(f"... and {len(missing) - LISTED} more missing {what}s")
    raise ConfigError(problems, source=fix)


class LabelledPictures(Dataset):
    """Samples hold ``image`` ``[3, H, W]`` and ``label``; batches ``image``, ``pixel_mask``, ``label`` ``[B]``.

    Args:
        pictures: the samples of the split, in order.
        classes: the class names, class ``i`` at ``i``.
        transform: the image transform.
        name: the dataset's config key.
    """

    task_type = "classification"

    def __init__(self, pictures: Sequence[LabelledPicture], classes: Sequence[str], transform: Any,
                 name: str) -> None:
        self.pictures = list(pictures)
        self.classes = list(classes)
        self.transform = transform
        self.name = name

    def __len__(self) -> int:
        return len(self.pictures)

    def __getitem__(self, index: int) -> dict[str, Any]:
        picture = self.pictures[index]
        image, _ = read_image(picture.path, f"{picture.record} of dataset '{self.name}'", self.transform)
        return {"image": image, "label": picture.label}

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate_batch(samples, self.name, self.task_type)

    def info(self) -> dict[str, Any]:
        return {"num_classes": len(self.classes), "labels": list(self.classes)}

    @property
    def labels(self) -> list[int]:
        """The class index of every sample, in order."""
        return [p.label for p in self.pictures]

    def label_counts(self) -> dict[str, int]:
        """Samples per class name, every class in index order (0 included)."""
        counts = Counter(self.labels)
        return {name: counts[i] for i, name in enumerate(self.classes)}

    def image_files(self) -> list[tuple[Path, tuple[int, int] | None]]:
        """Every picture of the split, in order; no sizes (the annotations state none)."""
        return [(p.path, None) for p in self.pictures]
