"""Oxford Flowers-102 image classification, read as distributed.

https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ gives three downloads, put side by side in one
folder (``data_dir``):

- ``102flowers.tgz``, which extracts to ``jpg/image_00001.jpg`` .. ``jpg/image_08189.jpg``;
- ``imagelabels.mat``: a MATLAB v5 file whose variable ``labels`` (1 x 8189) holds the class
  number, 1..102, of picture ``k`` at column ``k``;
- ``setid.mat``: variables ``trnid`` (1,020 pictures, 10 per class), ``valid`` (1,020) and
  ``tstid`` (6,149), the picture numbers (1-based) of the official train, validation and test sets.

The distribution names no classes: they are called by their official numbers, "1" .. "102"
(``class_names_file`` gives names instead). Labels are 0-based: class number ``c`` is label ``c - 1``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from unimm.config.errors import ConfigError
from unimm.data.common import choose_transform, take
from unimm.data.files import read_text
from unimm.data.labelled_pictures import LabelledPicture, LabelledPictures, interleave_classes, require_present
from unimm.registry import DATASETS

FLOWERS_PAGE = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
FETCH = (f"get 102flowers.tgz (extract it: it makes jpg/), imagelabels.mat and setid.mat from {FLOWERS_PAGE} "
         "into data_dir; nothing is downloaded at run time")
NUM_CLASSES = 102
LABELS_FILE, SETID_FILE, PICTURE_DIR = "imagelabels.mat", "setid.mat", "jpg"
SetVariable = Literal["trnid", "valid", "tstid"]
# split -> the setid.mat variables it reads: the official train / validation / test sets
FLOWERS_SPLITS: dict[str, tuple[str, ...]] = {"train": ("trnid",), "val": ("valid",), "test": ("tstid",)}


def picture_path(root: Path, number: int) -> Path:
    """Picture ``number`` (1-based, as the .mat files count) of the extracted ``102flowers.tgz``."""
    return root / PICTURE_DIR / f"image_{number:05d}.jpg"


def read_mat(path: Path) -> dict[str, Any]:
    """The variables of a MATLAB file (``scipy.io.loadmat``), or an error naming the file and the fix."""
    from scipy.io import loadmat  # scipy is a core dependency (setup.py); imported here, where it is needed

    try:
        return loadmat(str(path))
    except NotImplementedError:  # scipy's answer to a v7.3 (HDF5) file
        raise ConfigError(f"{path}: a MATLAB v7.3 file, not the v5 file of the official download "
                          f"(was it re-saved?); {FETCH}") from None
    except Exception as err:  # a damaged or foreign file fails in many ways: ValueError, TypeError, ...
        raise ConfigError(f"{path}: not a readable MATLAB file ({type(err).__name__}: {err}); {FETCH}") from None


def mat_vector(variables: Mapping[str, Any], key: str, path: Path) -> np.ndarray:
    """Variable ``key``, a 1 x N (or N x 1) vector of whole numbers, as int64 ``[N]``."""
    if key not in variables:
        found = ", ".join(k for k in variables if not k.startswith("__")) or "none"
        raise ConfigError(f"{path}: variable '{key}' is missing (variables found: {found}); {FETCH}")
    value = variables[key]
    if not (isinstance(value, np.ndarray) and value.ndim <= 2 and np.issubdtype(value.dtype, np.number)
            and (value.ndim < 2 or 1 in value.shape)):
        kind = f"a {value.dtype} array of shape {list(value.shape)}" if isinstance(value, np.ndarray) else \
            type(value).__name__
        raise ConfigError(f"{path}: variable '{key}' should be a 1 x N vector of numbers, got {kind}; {FETCH}")
    flat = value.reshape(-1)
    whole = np.isfinite(flat) & (flat == np.round(flat)) if np.issubdtype(flat.dtype, np.floating) else \
        np.ones(flat.shape, dtype=bool)
    if not whole.all():
        at = int(np.flatnonzero(~whole)[0])
        raise ConfigError(f"{path}: {key}({at + 1}) is {flat[at]}, not a whole number; {FETCH}")
    return flat.astype(np.int64)


def read_labels(path: Path) -> np.ndarray:
    """``labels`` of ``imagelabels.mat``: the class number (1..102) of picture ``k`` at ``k - 1``."""
    labels = mat_vector(read_mat(path), "labels", path)
    bad = np.flatnonzero((labels < 1) | (labels > NUM_CLASSES))
    if bad.size:
        at = int(bad[0])
        raise ConfigError(f"{path}: labels({at + 1}), the class of image_{at + 1:05d}.jpg, is {labels[at]}, outside "
                          f"the class numbers 1..{NUM_CLASSES} ({bad.size} labels out of range); {FETCH}")
    return labels


def read_split(path: Path, variables: Sequence[str], count: int, split: str) -> list[tuple[str, int, int]]:
    """``(variable, position, picture number)`` of every picture the split's setid.mat variables list.

    Args:
        path: ``setid.mat``.
        variables: the split's variables, read in this order.
        count: the pictures ``imagelabels.mat`` labels; every number must be 1..count.
        split: the split's name, for errors.
    """
    sets = read_mat(path)
    out, seen = [], {}
    for key in variables:
        numbers = mat_vector(sets, key, path)
        bad = np.flatnonzero((numbers < 1) | (numbers > count))
        if bad.size:
            at = int(bad[0])
            raise ConfigError(f"{path}: {key}({at + 1}) is picture {numbers[at]}, but {LABELS_FILE} labels pictures "
                              f"1..{count} ({bad.size} numbers out of range); the two files come from different "
                              f"downloads: {FETCH}")
        for at, number in enumerate(numbers.tolist()):
            if number in seen:
                raise ConfigError(f"{path}: picture {number} is in {seen[number]} and in {key}({at + 1}), both read "
                                  f"by split '{split}' ({', '.join(variables)}); the official sets are disjoint: "
                                  "name each set once in split_sets")
            seen[number] = f"{key}({at + 1})"
            out.append((key, at, number))
    return out


def read_class_names(path: Path) -> list[str]:
    """One class name a line, class number 1 first; blank lines are an error (a name would shift)."""
    lines = read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    blank = [i + 1 for i, line in enumerate(lines) if not line.strip()]
    if blank:
        raise ConfigError(f"{path}, line {blank[0]}: empty; give one class name a line, class 1 on line 1",
                          key="class_names_file")
    if len(lines) != NUM_CLASSES:
        raise ConfigError(f"{path}: {len(lines)} names; Flowers-102 has {NUM_CLASSES} classes: give one name a line, "
                          "class 1 on line 1", key="class_names_file")
    return [line.strip() for line in lines]


@DATASETS.register(parts={"train_transform": "processors", "eval_transform": "processors"})
def oxford_flowers102(
    *,
    data_dir: str,
    split: str,
    name: str,
    split_sets: Mapping[str, Sequence[SetVariable]] | None = None,
    class_names_file: str | None = None,
    max_samples: int | None = None,
    check_images: bool = True,
    train_transform: Any = None,
    eval_transform: Any = None,
) -> LabelledPictures:
    """Oxford Flowers-102 classification (102 classes) from the distributed files (nothing is downloaded).

    ``data_dir`` holds ``jpg/image_<number:05d>.jpg``, ``imagelabels.mat`` and ``setid.mat``. A
    split reads the pictures its ``setid.mat`` variables list: by default ``train`` is ``trnid``,
    ``val`` is ``valid`` and ``test`` is ``tstid``, the official sets. Fine-tuning on train and
    validation together, as ViT's and BiT's transfer protocol does for its final numbers, is
    ``split_sets: {train: [trnid, valid]}``; the other splits keep their defaults. Samples take
    the classes in turn (set order within a class), so that a prefix mixes them.

    Args:
        data_dir: the folder of the three downloads.
        split: ``train`` / ``val`` / ``test`` (runtime).
        name: the dataset's config key (runtime).
        split_sets: split -> the ``setid.mat`` variables it reads, in order (only the splits it changes).
        class_names_file: a text file naming the classes, one a line, class 1 first (None: the
            official class numbers "1" .. "102", the only names the distribution has).
        max_samples: keep only the first samples (None: all).
        check_images: check every picture of the split exists when the dataset is built.
        train_transform: image transform of the train split (e.g. ``mae_train_transform``).
        eval_transform: image transform of the other splits.

    Returns:
        Batches hold ``image`` ``[B, 3, H, W]``, ``pixel_mask`` ``[B, H, W]`` and ``label`` ``[B]``
        (class number - 1).
    """
    sets = {**FLOWERS_SPLITS, **{k: tuple(v) for k, v in (split_sets or {}).items()}}
    if split not in sets:
        raise ConfigError(f"{name}: unknown split '{split}'; known splits: {', '.join(sets)} (split_sets adds one)")
    if not sets[split]:
        raise ConfigError(f"split '{split}' reads no set; name trnid, valid and/or tstid",
                          key=f"split_sets.{split}")
    root = Path(data_dir)
    require_present([root / LABELS_FILE, root / SETID_FILE, root / PICTURE_DIR], "file or folder",
                    f"the Oxford Flowers-102 data ({FETCH})")
    classes = read_class_names(Path(class_names_file)) if class_names_file else \
        [str(c) for c in range(1, NUM_CLASSES + 1)]
    labels = read_labels(root / LABELS_FILE)
    pictures = [LabelledPicture(picture_path(root, number), int(labels[number - 1]) - 1,
                                f"{root / SETID_FILE} {key}({at + 1})")
                for key, at, number in read_split(root / SETID_FILE, sets[split], len(labels), split)]
    pictures = take(interleave_classes(pictures, NUM_CLASSES), max_samples, name)
    if check_images:
        require_present((p.path for p in pictures), "picture",
                        f"the Oxford Flowers-102 pictures ({FETCH}; check_images=false skips this check)")
    return LabelledPictures(pictures, classes, choose_transform(split, train_transform, eval_transform), name)
