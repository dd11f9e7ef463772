"""Oxford-IIIT Pets image classification (37 breeds), read as distributed.

https://www.robots.ox.ac.uk/~vgg/data/pets/ gives ``images.tar.gz`` and ``annotations.tar.gz``;
extracted side by side in one folder (``data_dir``) they make:

- ``images/<Breed_name>_<n>.jpg`` (cats' breeds are capitalised, dogs' are not: ``Abyssinian_100``,
  ``american_bulldog_10``);
- ``annotations/trainval.txt`` (3,680 pictures) and ``annotations/test.txt`` (3,669), one picture a
  line: ``Abyssinian_100 1 1 1`` is the image name, the class id (1..37), the species (1 cat,
  2 dog) and the breed id within the species. Lines starting with ``#`` are comments (``list.txt``
  has some).

The class names are the image names without their number (``Abyssinian``, ``american_bulldog``),
class id ``c`` at label ``c - 1``. Every line is checked: one name always with one class id.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from unimm.config.errors import ConfigError
from unimm.data.common import choose_transform, take
from unimm.data.files import named_splits, read_text, split_file
from unimm.data.labelled_pictures import LabelledPicture, LabelledPictures, interleave_classes, require_present
from unimm.registry import DATASETS

PETS_PAGE = "https://www.robots.ox.ac.uk/~vgg/data/pets/"
FETCH = (f"get images.tar.gz and annotations.tar.gz from {PETS_PAGE} and extract both into data_dir (they make "
         "images/ and annotations/); nothing is downloaded at run time")
NUM_CLASSES = 37
SPECIES = {1: "cat", 2: "dog"}
ANNOTATION_DIR, PICTURE_DIR = "annotations", "images"
# split -> list under annotations/. Pets has no validation list: val reads the test list (as CIFAR's val does).
PETS_SPLITS = {"train": "trainval.txt", "val": "test.txt", "test": "test.txt"}
IMAGE_NAME = re.compile(r"^(?P<breed>.+)_(?P<number>\d+)$")
LINE_FORMAT = "'<image name> <class id 1..37> <species 1|2> <breed id>', e.g. 'Abyssinian_100 1 1 1'"
LISTED = 20  # bad lines named in one error; the rest are counted


def parse_line(line: str) -> tuple[str, str, int] | str:
    """``(image name, breed name, class id)`` of one list line, or what is wrong with it."""
    fields = line.split()
    if len(fields) != 4:
        return f"expected 4 fields {LINE_FORMAT}, got {len(fields)}: {line.strip()[:80]!r}"
    image, *numbers = fields
    if not all(re.fullmatch(r"\d+", n) for n in numbers):
        return f"class id, species and breed id should be whole numbers {LINE_FORMAT}, got {line.strip()[:80]!r}"
    class_id, species, breed_id = (int(n) for n in numbers)
    if not 1 <= class_id <= NUM_CLASSES:
        return f"class id {class_id} of {image} is outside 1..{NUM_CLASSES}"
    if species not in SPECIES:
        return f"species {species} of {image} is neither 1 (cat) nor 2 (dog)"
    if breed_id < 1:
        return f"breed id {breed_id} of {image} should be at least 1"
    match = IMAGE_NAME.match(image)
    if not match:
        return f"image name {image!r} is not '<Breed_name>_<number>', as the names of images/ are"
    return image, match["breed"], class_id


def read_list(path: Path) -> list[tuple[int, str, str, int]]:
    """``(line number, image name, breed name, class id)`` of every picture line of a list file.

    Raises:
        ConfigError: every malformed line (the first ``LISTED`` named), in one error.
    """
    rows, problems, seen = [], [], {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parsed = parse_line(line)
        if isinstance(parsed, str):
            problems.append(f"{path}, line {number}: {parsed}")
        elif parsed[0] in seen:
            problems.append(f"{path}, line {number}: {parsed[0]} is listed again (first on line {seen[parsed[0]]}); "
                            "list each picture once")
        else:
            seen[parsed[0]] = number
            rows.append((number, *parsed))
    if problems:
        shown = problems[:LISTED] + ([f"... and {len(problems) - LISTED} more bad lines"]
                                     if len(problems) > LISTED else [])
        raise ConfigError(shown, source=f"the Oxford-IIIT Pets lists (the official files have one picture a line, "
                                        f"{LINE_FORMAT}; {FETCH})")
    return rows


def class_names(lists: Mapping[Path, list[tuple[int, str, str, int]]]) -> list[str]:
    """The breed name of each class id, class 1 first, from the lines of every list.

    Raises:
        ConfigError: a name with two class ids, a class id with two names, or a class id no line names.
    """
    first: dict[int, tuple[str, str]] = {}  # class id -> (breed name, where first seen)
    by_name: dict[str, tuple[int, str]] = {}  # breed name -> (class id, where first seen)
    problems = []
    for path, rows in lists.items():
        for number, image, breed, class_id in rows:
            where = f"{path}, line {number}"
            name_seen = first.setdefault(class_id, (breed, where))
            id_seen = by_name.setdefault(breed, (class_id, where))
            if id_seen[0] != class_id:
                problems.append(f"{where}: {image} has class id {class_id}, but {id_seen[1]} gives {breed} class id "
                                f"{id_seen[0]}; one breed has one class id: correct the line")
            elif name_seen[0] != breed:
                problems.append(f"{where}: class id {class_id} is {breed} here, but {name_seen[0]} at {name_seen[1]}; "
                                "one class id names one breed: correct the line")
    unnamed = [c for c in range(1, NUM_CLASSES + 1) if c not in first]
    if unnamed:
        problems.append(f"class ids {', '.join(map(str, unnamed))} are named by no line of "
                        f"{', '.join(str(p) for p in lists)}; the official lists name all {NUM_CLASSES} breeds")
    if problems:
        raise ConfigError(problems[:LISTED], source=f"the Oxford-IIIT Pets lists ({FETCH})")
    return [first[c][0] for c in range(1, NUM_CLASSES + 1)]


@DATASETS.register(parts={"train_transform": "processors", "eval_transform": "processors"})
def oxford_pets(
    *,
    data_dir: str,
    split: str,
    name: str,
    split_files: Mapping[str, str] | None = None,
    max_samples: int | None = None,
    check_images: bool = True,
    train_transform: Any = None,
    eval_transform: Any = None,
) -> LabelledPictures:
    """Oxford-IIIT Pets breed classification (37 classes) from the distributed files (nothing is downloaded).

    ``data_dir`` holds ``images/<Breed_name>_<n>.jpg`` and ``annotations/{trainval,test}.txt``.
    ``train`` reads ``trainval.txt``; Pets has no validation list, so ``val`` and ``test`` both
    read ``test.txt``, the split papers report on. The class names come from the image names of
    every list the splits name, so all splits share one numbering. Samples take the classes in
    turn (list order within a class; the lists are sorted by breed), so that a prefix mixes them.

    Args:
        data_dir: the folder holding ``images/`` and ``annotations/``.
        split: ``train`` / ``val`` / ``test`` (runtime).
        name: the dataset's config key (runtime).
        split_files: split -> list file under ``annotations/`` (only the splits it changes), e.g. a
            held-out part of trainval for a learning-rate sweep.
        max_samples: keep only the first samples (None: all).
        check_images: check every picture of the split exists when the dataset is built.
        train_transform: image transform of the train split (e.g. ``mae_train_transform``).
        eval_transform: image transform of the other splits.

    Returns:
        Batches hold ``image`` ``[B, 3, H, W]``, ``pixel_mask`` ``[B, H, W]`` and ``label`` ``[B]``
        (class id - 1).
    """
    files = named_splits(PETS_SPLITS, split_files)
    root = Path(data_dir)
    chosen = root / ANNOTATION_DIR / split_file(files, split, name)
    paths = list(dict.fromkeys(root / ANNOTATION_DIR / f for f in files.values()))
    require_present([*paths, root / PICTURE_DIR], "file or folder", f"the Oxford-IIIT Pets data ({FETCH})")
    lists = {path: read_list(path) for path in paths}
    classes = class_names(lists)
    pictures = [LabelledPicture(root / PICTURE_DIR / f"{image}.jpg", class_id - 1, f"{chosen}, line {number}")
                for number, image, _, class_id in lists[chosen]]
    pictures = take(interleave_classes(pictures, NUM_CLASSES), max_samples, name)
    if check_images:
        require_present((p.path for p in pictures), "picture",
                        f"the Oxford-IIIT Pets pictures ({FETCH}; check_images=false skips this check)")
    return LabelledPictures(pictures, classes, choose_transform(split, train_transform, eval_transform), name)
