"""CIFAR-10 and CIFAR-100 image classification, read from the official "python version" pickles.

The archives from https://www.cs.toronto.edu/~kriz/cifar.html hold pickled dicts written by
Python 2's cPickle: bytes keys, ``b"data"`` a uint8 array ``[N, 3072]`` (each row is a 32x32
picture, the R plane row by row, then G, then B), labels a list of ints. Unpickling can run
arbitrary code, so the files are read by an unpickler that only accepts the three numpy globals
those files name (a uint8 array) and refuses anything else before it runs.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from unimm.config.errors import ConfigError
from unimm.data.collate import collate_batch
from unimm.data.common import TRAIN_SPLIT, check_tensor, choose_transform
from unimm.registry import DATASETS

SIDE = 32
PIXELS = 3 * SIDE * SIDE  # one row of b"data": the R plane, then G, then B, each 32x32 row-major
CIFAR_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
# What the official pickles name: numpy 1.x's way of pickling an array (Python 2 cPickle, protocol 2).
OFFICIAL_GLOBALS = frozenset({("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")})


@dataclass(frozen=True)
class CifarLayout:
    """The files of one extracted archive.

    Attributes:
        archive: the archive's name on the CIFAR page.
        folder: the folder the archive extracts to.
        train_files: the batches of the train split, in order.
        test_file: the batch of the test split.
        meta_file: the file with the class names.
        fields: label kind -> (labels field of a batch, names field of the meta file).
    """

    archive: str
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    fields: Mapping[str, tuple[str, str]]


CIFAR_LAYOUTS = {
    "cifar10": CifarLayout("CIFAR-10 python version", "cifar-10-batches-py",
                           tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta",
                           {"fine": ("labels", "label_names")}),
    "cifar100": CifarLayout("CIFAR-100 python version", "cifar-100-python", ("train",), "test", "meta",
                            {"fine": ("fine_labels", "fine_label_names"),
                             "coarse": ("coarse_labels", "coarse_label_names")}),
}
NUM_CLASSES = {("cifar10", "fine"): 10, ("cifar100", "fine"): 100, ("cifar100", "coarse"): 20}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle named a global that the official CIFAR files never name."""


class OfficialCifarUnpickler(pickle.Unpickler):
    """Builds dicts, lists, strings, numbers and numpy arrays; any other global is refused unloaded.

    Every global a pickle uses (``GLOBAL``, ``STACK_GLOBAL``, ``INST``, extension codes) passes
    through ``find_class``, so refusing here stops a malicious file before anything is called.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in OFFICIAL_GLOBALS:
            raise RefusedGlobal(f"{module}.{name}")
        return super().find_class(module, name)


def load_pickle(path: Path, layout: CifarLayout) -> dict[bytes, Any]:
    """A CIFAR pickle as a dict with bytes keys (``pickle.load(f, encoding="bytes")``, restricted)."""
    redo = f"extract the official '{layout.archive}' archive ({CIFAR_PAGE}) again"
    try:
        with path.open("rb") as f:
            data = OfficialCifarUnpickler(f, encoding="bytes").load()
    except RefusedGlobal as err:
        raise ConfigError(
            f"{path}: refused to unpickle: it names the global '{err}', which the official CIFAR files never "
            f"do (they hold only a numpy uint8 array, lists, strings and numbers); nothing in it was run. "
            f"Only read files you trust: {redo}") from None
    except Exception as err:  # a damaged pickle fails in many ways: EOFError, KeyError of a bad memo, ...
        raise ConfigError(f"{path}: not a readable CIFAR pickle ({type(err).__name__}: {err}); {redo}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a pickled dict, got {type(data).__name__}; {redo}")
    return data


def batch_field(batch: Mapping[bytes, Any], key: str, path: Path) -> Any:
    """``batch[key]`` (keys are bytes), or an error naming the file, the field and the fields there are."""
    if key.encode() not in batch:
        found = ", ".join(k.decode("latin-1") if isinstance(k, bytes) else repr(k) for k in batch) or "none"
        raise ConfigError(f"{path}: field '{key}' is missing (fields found: {found})")
    return batch[key.encode()]


def read_names(path: Path, key: str, count: int, layout: CifarLayout) -> list[str]:
    """The ``count`` class names of field ``key`` of the meta file, class ``i`` first at ``i``."""
    names = batch_field(load_pickle(path, layout), key, path)
    if not isinstance(names, list) or not all(isinstance(n, (bytes, str)) for n in names):
        raise ConfigError(f"{path}: field '{key}' should be a list of strings, got {describe(names)}")
    if len(names) != count:
        raise ConfigError(f"{path}: field '{key}' has {len(names)} names; {layout.archive} has {count} classes")
    return [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]


def read_batch(path: Path, key: str, num_classes: int, layout: CifarLayout) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: pixels uint8 ``[N, 3072]`` and labels int64 ``[N]`` of field ``key``, checked."""
    batch = load_pickle(path, layout)
    pixels = batch_field(batch, "data", path)
    if not (isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8 and pixels.ndim == 2
            and pixels.shape[1] == PIXELS):
        raise ConfigError(f"{path}: field 'data' should be a uint8 array [N, {PIXELS}] (32x32 pixels: the R plane, "
                          f"then G, then B), got {describe(pixels)}")
    labels = batch_field(batch, key, path)
    if not isinstance(labels, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        raise ConfigError(f"{path}: field '{key}' should be a list of ints, got {describe(labels)}")
    if len(labels) != len(pixels):
        raise ConfigError(f"{path}: field '{key}' has {len(labels)} labels for {len(pixels)} images in field 'data'")
    labels = np.asarray(labels, dtype=np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise ConfigError(f"{path}: field '{key}'[{bad[0]}] is {labels[bad[0]]}, outside 0..{num_classes - 1} "
                          f"({bad.size} labels out of range)")
    return pixels, labels


def describe(value: Any) -> str:
    """A short description of a value of the wrong kind."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {list(value.shape)}"
    if isinstance(value, list):
        kinds = sorted({type(v).__name__ for v in value})
        return f"a list of {len(value)} ({', '.join(kinds) or 'empty'})"
    return type(value).__name__


def require_cifar_files(root: Path, layout: CifarLayout, names: Sequence[str]) -> None:
    """One error listing every missing file, with where the official archive comes from."""
    missing = [root] if not root.is_dir() else [root / n for n in names if not (root / n).is_file()]
    if not missing:
        return
    problems = [f"missing {'folder' if p == root else 'file'}: {p}" for p in missing]
    if (root / layout.folder).is_dir():
        problems.append(f"{root / layout.folder} exists: set data_dir to that folder")
    where = (f"the {layout.archive} data (get the '{layout.archive}' archive from {CIFAR_PAGE} and extract it; "
             f"data_dir is the extracted {layout.folder} folder; nothing is downloaded)")
    raise ConfigError(problems, source=where)


class CifarImages(Dataset):
    """Samples hold ``image`` ``[3, H, W]`` and ``label``; batches ``image``, ``pixel_mask``, ``label`` ``[B]``.

    Args:
        pixels: uint8 ``[N, 3072]``, the official rows (kept as they are; pictures are made per sample).
        labels: int64 ``[N]``.
        classes: the class names, class ``i`` at ``i``.
        transform: applied to the 32x32 RGB PIL picture, as for an image file.
        name: the dataset's config key.
    """

    task_type = "classification"

    def __init__(self, pixels: np.ndarray, labels: np.ndarray, classes: Sequence[str], transform: Any,
                 name: str) -> None:
        self.pixels, self.labels = pixels, labels
        self.classes = list(classes)
        self.transform = transform
        self.name = name

    def __len__(self) -> int:
        return len(self.labels)

    def picture(self, index: int) -> Image.Image:
        """Sample ``index`` as the RGB picture an image file of it would decode to."""
        planes = self.pixels[index].reshape(3, SIDE, SIDE)  # (C, H, W)
        return Image.fromarray(np.ascontiguousarray(planes.transpose(1, 2, 0)))  # (H, W, C) uint8 -> RGB

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, _ = self.transform(self.picture(index), None)
        return {"image": check_tensor(image, self.transform), "label": int(self.labels[index])}

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate_batch(samples, self.name, self.task_type)

    def info(self) -> dict[str, Any]:
        return {"num_classes": len(self.classes), "labels": list(self.classes)}


@DATASETS.register(parts={"train_transform": "processors", "eval_transform": "processors"})
def cifar(
    *,
    data_dir: str,
    split: str,
    name: str,
    variant: Literal["cifar10", "cifar100"] = "cifar10",
    label_kind: Literal["fine", "coarse"] = "fine",
    max_samples: int | None = None,
    train_transform: Any = None,
    eval_transform: Any = None,
) -> CifarImages:
    """CIFAR-10 / CIFAR-100 classification from the official python-version pickles (nothing is downloaded).

    ``train`` reads ``data_batch_1`` .. ``data_batch_5`` in order (CIFAR-10) or ``train``
    (CIFAR-100). CIFAR has no validation split: ``val`` and ``test`` both read ``test_batch`` /
    ``test``, the split papers report on. The batches are already shuffled, so a prefix mixes
    the classes. The pixels stay in memory as uint8 (180 MB for all of CIFAR-10); each sample
    becomes a 32x32 RGB picture that the transform takes like a decoded image file.

    Security: pickle files can run code when loaded; read only files you trust, the official
    archives. The reader refuses any pickle that names more than a numpy uint8 array.

    Args:
        data_dir: the extracted archive, ``cifar-10-batches-py`` or ``cifar-100-python``.
        split: ``train`` / ``val`` / ``test`` (runtime).
        name: the dataset's config key (runtime).
        variant: ``cifar10`` (10 classes) or ``cifar100``.
        label_kind: CIFAR-100's ``fine`` labels (100 classes) or ``coarse`` superclasses (20).
        max_samples: keep only the first images (None: all).
        train_transform: image transform of the train split (e.g. ``mae_train_transform``).
        eval_transform: image transform of the other splits.

    Returns:
        Batches hold ``image`` ``[B, 3, H, W]``, ``pixel_mask`` ``[B, H, W]`` and ``label`` ``[B]``.
    """
    if variant not in CIFAR_LAYOUTS:
        raise ConfigError(f"'{variant}' is not one of {', '.join(CIFAR_LAYOUTS)}", key="variant")
    layout = CIFAR_LAYOUTS[variant]
    if label_kind not in layout.fields:
        raise ConfigError(f"{variant} has only {', '.join(layout.fields)} labels, got '{label_kind}' "
                          "(coarse labels are CIFAR-100's 20 superclasses)", key="label_kind")
    if max_samples is not None and max_samples < 1:
        raise ConfigError(f"must be at least 1 or null, got {max_samples}", key="max_samples")
    if split not in (TRAIN_SPLIT, "val", "test"):
        raise ConfigError(f"{name}: unknown split '{split}'; CIFAR has train, and test (which val reads too)")
    files = layout.train_files if split == TRAIN_SPLIT else (layout.test_file,)
    root = Path(data_dir)
    require_cifar_files(root, layout, (*files, layout.meta_file))
    labels_key, names_key = layout.fields[label_kind]
    num_classes = NUM_CLASSES[variant, label_kind]
    classes = read_names(root / layout.meta_file, names_key, num_classes, layout)
    pixels, labels, count = [], [], 0
    for file in files:  # a short run (max_samples) stops at the batch that fills it
        batch_pixels, batch_labels = read_batch(root / file, labels_key, num_classes, layout)
        left = None if max_samples is None else max_samples - count
        pixels.append(batch_pixels[:left])
        labels.append(batch_labels[:left])
        count += len(labels[-1])
        if count == max_samples:
            break
    transform = choose_transform(split, train_transform, eval_transform)
    return CifarImages(np.concatenate(pixels), np.concatenate(labels), classes, transform, name)
