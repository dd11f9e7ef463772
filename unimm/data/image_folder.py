"""Image classification from a folder per split with one sub-folder per class."""
from __future__ import annotations

from itertools import chain, zip_longest
from pathlib import Path
from typing import Any, Mapping, Sequence

from torch.utils.data import Dataset

from unimm.config.errors import ConfigError
from unimm.data.collate import collate_batch
from unimm.data.common import TRAIN_SPLIT, choose_transform, read_image, take
from unimm.data.files import require_files, split_file
from unimm.data.images import IMAGE_EXTENSIONS
from unimm.registry import DATASETS

IMAGE_FOLDER_SPLITS = {"train": "train", "val": "val", "test": "test"}


def class_names(folder: Path) -> list[str]:
    """The sub-folder names, sorted: class ``i`` is the ``i``-th name."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_images(folder: Path, classes: Sequence[str]) -> list[tuple[Path, int]]:
    """(image, class index), taking the classes in turn so that any prefix mixes all classes."""
    per_class = []
    for label, name in enumerate(classes):
        directory = folder / name
        files = sorted(directory.iterdir()) if directory.is_dir() else []
        per_class.append([(p, label) for p in files if p.suffix.lower() in IMAGE_EXTENSIONS])
    return [item for item in chain.from_iterable(zip_longest(*per_class)) if item is not None]


class ImageFolder(Dataset):
    """Samples hold ``image`` ``[3, H, W]`` and ``label``; batches ``image``, ``pixel_mask``, ``label`` ``[B]``."""

    task_type = "classification"

    def __init__(self, items: Sequence[tuple[Path, int]], classes: Sequence[str], transform: Any, name: str) -> None:
        self.items = list(items)
        self.classes = list(classes)
        self.transform = transform
        self.name = name

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, label = self.items[index]
        image, _ = read_image(path, f"class '{self.classes[label]}' of {self.name}", self.transform)
        return {"image": image, "label": label}

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate_batch(samples, self.name, self.task_type)

    def info(self) -> dict[str, Any]:
        return {"num_classes": len(self.classes), "labels": list(self.classes)}


@DATASETS.register(parts={"train_transform": "processors", "eval_transform": "processors"})
def image_folder(
    *,
    data_dir: str,
    split: str,
    name: str,
    split_dirs: Mapping[str, str] | None = None,
    max_samples: int | None = None,
    train_transform: Any = None,
    eval_transform: Any = None,
) -> ImageFolder:
    """Image classification: ``<data_dir>/<split>/<class name>/<image>``.

    Classes are the sub-folders of the train folder (of the split's own folder when there
    is no train folder), sorted by name, so every split shares one class numbering.

    Args:
        data_dir: the folder holding one folder per split.
        split: ``train`` / ``val`` / ``test`` (runtime).
        name: the dataset's config key (runtime).
        split_dirs: split -> folder name.
        max_samples: keep only the first images, taken from the classes in turn (None: all).
        train_transform: image transform of the train split (e.g. ``mae_train_transform``).
        eval_transform: image transform of the other splits.

    Returns:
        Batches hold ``image`` ``[B, 3, H, W]``, ``pixel_mask`` ``[B, H, W]`` and ``label`` ``[B]``.
    """
    dirs = split_dirs or IMAGE_FOLDER_SPLITS
    root = Path(data_dir)
    folder = root / split_file(dirs, split, name)
    require_files([folder], "imagefolder", what="folder")
    train_folder = root / dirs.get(TRAIN_SPLIT, TRAIN_SPLIT)
    classes = class_names(train_folder if train_folder.is_dir() else folder)
    items = list_images(folder, classes)
    if not items:
        raise ConfigError(f"{folder}: no images found in class folders ({', '.join(classes) or 'none'}); "
                          "expected <class name>/<image> files (.jpg, .png, ...)")
    transform = choose_transform(split, train_transform, eval_transform)
    return ImageFolder(take(items, max_samples, name), classes, transform, name)
