"""Image-caption pre-training data beyond COCO: Visual Genome region phrases, Conceptual Captions, SBU Captions.

METER (Sec. 3.3, Table 2) pre-trains on COCO, Visual Genome, Conceptual Captions (CC3M) and SBU Captions,
about 4M images and 10M captions. Each reader here gives the samples of ``coco_captions`` (one per caption,
task type ``image_text``), so that ``train_extended`` adds them to the COCO captions' train split and
``image_text_pretraining`` draws MLM and ITM samples over all four.

CC and SBU are distributed as captions and URLs; the pictures are fetched by the user. unimm reads the
``files`` output of img2dataset (https://github.com/rom1504/img2dataset): shard folders ``00000/``,
``00001/`` ... of ``<key>.jpg`` pictures (with ``<key>.txt`` / ``<key>.json`` beside them), where the key
is the 0-based row of the official file, zero-padded (img2dataset numbers the rows so when
``number_sample_per_shard`` is a power of ten, as its default 10000). A flat folder of ``<row>.jpg`` files
is read too. Rows whose picture is missing (dead links) are skipped, counted and reported; ``strict: true``
makes them an error.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from torch.utils.data import Dataset

from unimm.config.errors import ConfigError
from unimm.data.common import TRAIN_SPLIT, choose_transform, take
from unimm.data.files import coco_image_ids, field, json_list, named_splits, read_json, read_text, split_file
from unimm.data.image_text import Caption, ImageTextPairs
from unimm.data.images import IMAGE_EXTENSIONS, require_images
from unimm.data.visual_genome import read_image_data, record_image_id
from unimm.registry import DATASETS

logger = logging.getLogger("unimm")

# Where each dataset's official files come from (shown when one is missing).
SOURCES = {
    "vg_regions": "Visual Genome v1.2 / v1.4 region_descriptions.json, image_data.json and the pictures (VG_100K, "
                  "VG_100K_2), https://homes.cs.washington.edu/~ranjay/visualgenome/api.html",
    "karpathy": "Karpathy splits (caption_datasets.zip), https://cs.stanford.edu/people/karpathy/deepimagesent/, "
                "or a COCO annotations file",
    "cc3m": "the Conceptual Captions TSV files (caption<TAB>url), https://ai.google.com/research/ConceptualCaptions/"
            "download",
    "sbu": "SBU_captioned_photo_dataset_urls.txt and SBU_captioned_photo_dataset_captions.txt, "
           "https://www.cs.rice.edu/~vo9/sbucaptions/",
}
CC_SPLITS = {"train": "Train_GCC-training.tsv", "val": "Validation_GCC-1.1.0-Validation.tsv"}
CC_IMAGE_DIRS = {"train": "train", "val": "val"}
SBU_URLS, SBU_CAPTIONS = "SBU_captioned_photo_dataset_urls.txt", "SBU_captioned_photo_dataset_captions.txt"
KARPATHY_EXCLUDED = ("val", "test")
SHOWN = 5  # rows named in a missing-picture error; the rest are counted
FETCH_HINT = ("fetch the pictures with img2dataset (--output_format files, the default number_sample_per_shard), "
              "so that each picture is <key>.jpg with key = its 0-based row of {file}")


class PretrainingCaptions(Dataset):
    """The per-caption samples of ``ImageTextPairs`` (see ``coco_captions``), plus what ``unimm_data check``
    reads (``image_files()``) and the counts of what the reader left out (``info()``).

    Args:
        pairs: the samples.
        sizes: picture file -> its ``(width, height)`` as annotated, or None where the annotation states none.
        left_out: what the reader did not keep, by kind (``missing_pictures``, ``excluded_images`` ...).
    """

    def __init__(self, pairs: ImageTextPairs, sizes: Mapping[Path, tuple[int, int] | None],
                 left_out: Mapping[str, int]) -> None:
        self.pairs = pairs
        self.sizes = dict(sizes)
        self.left_out = dict(left_out)
        self.task_type = pairs.task_type

    @property
    def name(self) -> str:
        return self.pairs.name

    @name.setter
    def name(self, value: str) -> None:  # train_extended gives the extras the base's name
        self.pairs.name = value

    @property
    def captions(self) -> list[Caption]:
        return self.pairs.captions

    @property
    def tokenizer(self) -> Any:
        return self.pairs.tokenizer

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.pairs[index]

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return self.pairs.collate(samples)

    def image_files(self) -> list[tuple[Path, tuple[int, int] | None]]:
        """Every picture of the kept captions, once, with its annotated size (None: not stated)."""
        return [(path, self.sizes.get(path)) for path in dict.fromkeys(c.image_path for c in self.captions)]

    def info(self) -> dict[str, Any]:
        return {**self.pairs.info(), **self.left_out}


def require_official(paths: Sequence[Path], dataset: str) -> None:
    """One ``ConfigError`` naming every missing file of ``paths`` and where the official files come from."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ConfigError([f"missing file: {p}" for p in missing],
                          source=f"the {dataset} data (get it from: {SOURCES[dataset]}; nothing is downloaded at run time)")


def numbered(captions: Sequence[tuple[int, int, Path, str]]) -> list[Caption]:
    """``Caption`` records from ``(caption_id, image_id, path, text)``, numbering the distinct pictures."""
    index: dict[Path, int] = {}
    return [Caption(cid, iid, index.setdefault(path, len(index)), path, text) for cid, iid, path, text in captions]


# --- Visual Genome region descriptions ------------------------------------------------------------------------

def read_regions(path: Path, images: Mapping[int, Any]) -> tuple[list[tuple[int, int, Path, str]], int]:
    """``(region_id, image_id, picture, phrase)`` of every region, in file order, and the count of empty phrases.

    A record's image id is its ``id`` (``image_id`` where a release names it so); the image must be one of
    ``image_data.json``.
    """
    out, empty = [], 0
    for i, record in enumerate(json_list(read_json(path), None, path)):
        where = f"{path}, [{i}]"
        image_id = record_image_id(record, where)
        if image_id not in images:
            raise ConfigError(f"{where}: image {image_id} is not in image_data.json; give the image_data.json of "
                              "the same Visual Genome release as region_descriptions.json")
        for j, region in enumerate(field(record, "regions", where, list)):
            inner = f"{where}.regions[{j}]"
            phrase = " ".join(field(region, "phrase", inner, str).split())
            if not phrase:
                empty += 1
                continue
            out.append((field(region, "region_id", inner, int), image_id, images[image_id].path, phrase))
    return out, empty


def excluded_vg_images(images: Mapping[int, Any], exclude_image_ids: Sequence[int] | None,
                       exclude_coco_file: Path | None, karpathy_splits: Sequence[str]) -> set[int]:
    """The VG image ids left out: those listed, and those whose ``coco_id`` is a COCO image of the file."""
    out = set(exclude_image_ids or ())
    if exclude_coco_file is None:
        return out
    coco = karpathy_coco_ids(exclude_coco_file, karpathy_splits)
    if coco is None:
        coco = coco_image_ids(exclude_coco_file)
    return out | {i for i, image in images.items() if image.coco_id in coco}


def karpathy_coco_ids(path: Path, splits: Sequence[str]) -> set[int] | None:
    """The COCO ids of the Karpathy ``splits`` of ``dataset_coco.json``, or None when ``path`` is not that file."""
    data = read_json(path)
    records = data.get("images") if isinstance(data, dict) else None
    if not (isinstance(records, list) and records and isinstance(records[0], dict) and "cocoid" in records[0]):
        return None
    return {field(r, "cocoid", f"{path}, images[{i}]", int) for i, r in enumerate(records)
            if field(r, "split", f"{path}, images[{i}]", str) in splits}


@DATASETS.register(parts={"tokenizer": "processors", "train_transform": "processors",
                          "eval_transform": "processors"})
def vg_region_captions(
    *,
    data_dir: str,
    split: str,
    name: str,
    tokenizer: Any,
    region_file: str = "region_descriptions.json",
    exclude_image_ids: list[int] | None = None,
    exclude_coco_file: str | None = None,
    exclude_karpathy_splits: list[str] | None = None,
    max_samples: int | None = None,
    check_images: bool = True,
    train_transform: Any = None,
    eval_transform: Any = None,
) -> PretrainingCaptions:
    """Visual Genome region phrases as captions of the whole picture (METER's and ViLT's reading).

    Reads ``<data_dir>/region_descriptions.json`` (VG 1.2 / 1.4: a list of ``{"id": image id, "regions":
    [{"region_id", "image_id", "phrase", "x", "y", "width", "height"}, ...]}``) and ``image_data.json``,
    whose ``url`` names the picture (``VG_100K/<id>.jpg`` or ``VG_100K_2/<id>.jpg``), as ``visual_genome``
    does. Every non-empty phrase is one caption of its image; the boxes are not used (108K images, 5.4M
    captions, Table 2). Empty phrases are counted and reported. There is one split, ``train``: VG is
    pre-training data here.

    Pictures that are COCO val / test images must stay out of pre-training when the model is evaluated on
    them (COCO Karpathy test retrieval): ``exclude_coco_file`` leaves out the VG images whose ``coco_id`` is
    one of its images. It takes Karpathy's ``dataset_coco.json`` (the images of ``exclude_karpathy_splits``,
    default val and test) or a COCO annotations / image-info file (all its images, e.g.
    ``instances_val2017.json``). The count left out is logged and given by ``info()``.

    Args:
        data_dir: the Visual Genome folder (``image_data.json``, the picture folders).
        split: ``train`` (runtime).
        name: the dataset's config key (runtime).
        tokenizer: a text processor node.
        region_file: the region descriptions, relative to ``data_dir``.
        exclude_image_ids: Visual Genome image ids left out.
        exclude_coco_file: a file of COCO images whose VG counterparts are left out (None: none).
        exclude_karpathy_splits: the Karpathy splits left out when ``exclude_coco_file`` is ``dataset_coco.json``.
        max_samples: keep only the first captions (None: all).
        check_images: check every picture exists when the dataset is built.
        train_transform: image transform of the train split.
        eval_transform: image transform of the other splits.

    Returns:
        One sample per region phrase, with the fields of ``coco_captions`` (``caption_id`` the
        ``region_id``, ``image_id`` the VG image id); task type ``image_text``. ``info()`` adds
        ``excluded_images`` and ``empty_phrases``.
    """
    if split != TRAIN_SPLIT:
        raise ConfigError(f"vg_region_captions has only a 'train' split (pre-training data), not '{split}'; "
                          "add it as an extra of train_extended, which builds extras for train only")
    root = Path(data_dir)
    regions_path, image_data = root / region_file, root / "image_data.json"
    coco_file = Path(exclude_coco_file) if exclude_coco_file else None
    require_official([regions_path, image_data], "vg_regions")
    if coco_file is not None:
        require_official([coco_file], "karpathy")
    images = read_image_data(image_data, root)
    excluded = excluded_vg_images(images, exclude_image_ids, coco_file,
                                  KARPATHY_EXCLUDED if exclude_karpathy_splits is None else exclude_karpathy_splits)
    rows, empty = read_regions(regions_path, images)
    kept = [row for row in rows if row[1] not in excluded]
    if excluded:
        logger.info("dataset '%s': %d Visual Genome images left out (%d region captions), as asked (%s)", name,
                    len(excluded), len(rows) - len(kept), coco_file or "exclude_image_ids")
    if empty:
        logger.warning("dataset '%s': %d regions of %s have an empty phrase; they are not captions and are skipped",
                       name, empty, regions_path)
    captions = numbered(take(kept, max_samples, name))
    if check_images:
        require_images((c.image_path for c in captions), name)
    sizes = {image.path: (image.width, image.height) for image in images.values()}
    pairs = ImageTextPairs(captions, tokenizer, choose_transform(split, train_transform, eval_transform), name,
                           regions_path, task_type="image_text")
    return PretrainingCaptions(pairs, sizes, {"excluded_images": len(excluded), "empty_phrases": empty})


# --- Conceptual Captions and SBU: captions of web pictures the user fetched ----------------------------------

def find_pictures(image_dir: Path) -> dict[int, Path]:
    """key -> picture file, for every ``<key>.<ext>`` with a numeric key in ``image_dir`` or one folder below."""
    found: dict[int, Path] = {}
    folders = [image_dir, *sorted(p for p in image_dir.iterdir() if p.is_dir())]
    for folder in folders:
        with os.scandir(folder) as entries:
            for entry in entries:
                stem, ext = os.path.splitext(entry.name)
                if not (stem.isdigit() and ext.lower() in IMAGE_EXTENSIONS and entry.is_file()):
                    continue
                key = int(stem)
                if key in found:
                    raise ConfigError(f"{image_dir}: two pictures have the key {key} ({found[key]}, {entry.path}); "
                                      "keep one picture per row (one img2dataset output per file)")
                found[key] = Path(entry.path)
    return found


def check_keys(pictures: Mapping[int, Path], urls: Sequence[str], source: Path, image_dir: Path) -> None:
    """Every key is a row of ``source``; the first picture of each folder, when img2dataset wrote its
    ``<key>.json``, has the URL of that row (another shard size numbers the rows otherwise)."""
    beyond = [key for key in pictures if key >= len(urls)]
    if beyond:
        raise ConfigError(f"{image_dir}: picture key {max(beyond)} (and {len(beyond) - 1} more) is past the "
                          f"{len(urls)} rows of {source}; the pictures belong to another file, or were numbered "
                          f"otherwise: {FETCH_HINT.format(file=source.name)}")
    first: dict[Path, int] = {}
    for key, path in sorted(pictures.items()):
        first.setdefault(path.parent, key)
    for folder, key in first.items():
        sidecar = pictures[key].with_suffix(".json")
        if not sidecar.is_file():
            continue
        meta = read_json(sidecar)
        url = meta.get("url") if isinstance(meta, dict) else None
        if url is not None and url != urls[key]:
            raise ConfigError(f"{sidecar}: the picture of key {key} has the url {url!r}, but row {key} of {source} "
                              f"is {urls[key]!r}; the keys are not the rows of the file: {FETCH_HINT.format(file=source.name)}")


def pair_pictures(rows: Sequence[tuple[str, str]], source: Path, image_dir: Path, name: str,
                  strict: bool) -> tuple[list[tuple[int, int, Path, str]], int]:
    """``(row, row, picture, caption)`` of the rows that have a picture, and the count of those that do not."""
    if not image_dir.is_dir():
        raise ConfigError(f"picture folder not found: {image_dir} (for {source}); "
                          f"{FETCH_HINT.format(file=source.name)} into it, or set image_dir(s)")
    pictures = find_pictures(image_dir)
    if not pictures:
        raise ConfigError(f"{image_dir}: no pictures named <key>.jpg in it or in its shard folders (for {source}); "
                          f"{FETCH_HINT.format(file=source.name)}")
    check_keys(pictures, [url for _, url in rows], source, image_dir)
    missing = [i for i in range(len(rows)) if i not in pictures]
    if missing and strict:
        shown = ", ".join(str(i) for i in missing[:SHOWN]) + (", ..." if len(missing) > SHOWN else "")
        raise ConfigError(f"{image_dir}: {len(missing)} of the {len(rows)} rows of {source} have no picture (rows "
                          f"{shown}); fetch them again, or set strict: false to skip those rows (they are counted)")
    if missing:
        logger.warning("dataset '%s': %d of the %d rows of %s have no picture in %s (dead links?); they are "
                       "skipped (strict: true makes this an error)", name, len(missing), len(rows), source, image_dir)
    return [(i, i, pictures[i], caption) for i, (caption, url) in enumerate(rows) if i in pictures], len(missing)


def read_cc_tsv(path: Path) -> list[tuple[str, str]]:
    """``(caption, url)`` of every line of a Conceptual Captions TSV; a first line ``caption<TAB>url`` is a header."""
    lines = read_text(path).splitlines()
    if lines and lines[0].strip().lower() == "caption\turl":
        lines = lines[1:]  # the header img2dataset needs; its keys count the rows after it
        offset = 2
    else:
        offset = 1
    rows = []
    for number, line in enumerate(lines, start=offset):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ConfigError(f"{path}, line {number}: expected 'caption<TAB>url', got {line[:80]!r}; give the "
                              "official Conceptual Captions TSV")
        rows.append((" ".join(parts[0].split()), parts[1].strip()))
    return rows


def caption_dataset(rows: Sequence[tuple[int, int, Path, str]], missing: int, source: Path, name: str, split: str,
                    tokenizer: Any, max_samples: int | None, train_transform: Any,
                    eval_transform: Any) -> PretrainingCaptions:
    captions = numbered(take(rows, max_samples, name))
    pairs = ImageTextPairs(captions, tokenizer, choose_transform(split, train_transform, eval_transform), name,
                           source, task_type="image_text")
    return PretrainingCaptions(pairs, {}, {"missing_pictures": missing})


@DATASETS.register(parts={"tokenizer": "processors", "train_transform": "processors",
                          "eval_transform": "processors"})
def conceptual_captions(
    *,
    data_dir: str,
    split: str,
    name: str,
    tokenizer: Any,
    split_files: Mapping[str, str] | None = None,
    image_dirs: Mapping[str, str] | None = None,
    strict: bool = False,
    max_samples: int | None = None,
    train_transform: Any = None,
    eval_transform: Any = None,
) -> PretrainingCaptions:
    """Conceptual Captions (CC3M): the official TSV (``caption<TAB>url``) and the pictures fetched from it.

    Reads ``<data_dir>/Train_GCC-training.tsv`` (train) or ``Validation_GCC-1.1.0-Validation.tsv`` (val),
    and the pictures under ``<data_dir>/<split>/``, img2dataset's ``files`` output: ``<key>.jpg`` in shard
    folders (``00000/000000000.jpg`` ...), ``key`` the 0-based row of the TSV. The TSV may start with the
    header line ``caption<TAB>url`` that img2dataset needs. Rows whose picture is missing are skipped,
    counted and logged (``info()["missing_pictures"]``); ``strict: true`` makes them an error.

    Args:
        data_dir: the folder of the TSV files.
        split: ``train`` / ``val`` (runtime).
        name: the dataset's config key (runtime).
        tokenizer: a text processor node.
        split_files: split -> its TSV, relative to ``data_dir`` (only the splits changed).
        image_dirs: split -> its picture folder, relative to ``data_dir`` (default ``train`` / ``val``).
        strict: a row without a picture is an error instead of skipped.
        max_samples: keep only the first captions that have a picture (None: all).
        train_transform: image transform of the train split.
        eval_transform: image transform of the other splits.

    Returns:
        One sample per caption with a picture, the fields of ``coco_captions`` (``caption_id`` and
        ``image_id`` the row); task type ``image_text``.
    """
    root = Path(data_dir)
    source = root / split_file(named_splits(CC_SPLITS, split_files), split, name)
    image_dir = root / split_file(named_splits(CC_IMAGE_DIRS, image_dirs), split, name)
    require_official([source], "cc3m")
    rows, missing = pair_pictures(read_cc_tsv(source), source, image_dir, name, strict)
    return caption_dataset(rows, missing, source, name, split, tokenizer, max_samples, train_transform,
                           eval_transform)


@DATASETS.register(parts={"tokenizer": "processors", "train_transform": "processors",
                          "eval_transform": "processors"})
def sbu_captions(
    *,
    data_dir: str,
    split: str,
    name: str,
    tokenizer: Any,
    image_dir: str = "images",
    strict: bool = False,
    max_samples: int | None = None,
    train_transform: Any = None,
    eval_transform: Any = None,
) -> PretrainingCaptions:
    """SBU Captions: ``SBU_captioned_photo_dataset_urls.txt`` and ``..._captions.txt`` (line ``i`` of one is the
    url of line ``i`` of the other) and the pictures fetched from them.

    The pictures are img2dataset's ``files`` output under ``<data_dir>/images/`` (``<key>.jpg`` in shard
    folders, ``key`` the 0-based line; e.g. from a TSV ``url<TAB>caption`` made of the two files with
    ``paste``, with a header line). SBU has no official splits: its one split is ``train``. Lines whose
    picture is missing are skipped, counted and logged (``info()["missing_pictures"]``); ``strict: true``
    makes them an error.

    Args:
        data_dir: the folder of the two official files.
        split: ``train`` (runtime).
        name: the dataset's config key (runtime).
        tokenizer: a text processor node.
        image_dir: the picture folder, relative to ``data_dir``.
        strict: a line without a picture is an error instead of skipped.
        max_samples: keep only the first captions that have a picture (None: all).
        train_transform: image transform of the train split.
        eval_transform: image transform of the other splits.

    Returns:
        One sample per caption with a picture, the fields of ``coco_captions`` (``caption_id`` and
        ``image_id`` the line); task type ``image_text``.
    """
    if split != TRAIN_SPLIT:
        raise ConfigError(f"sbu_captions has only a 'train' split (SBU has no official splits), not '{split}'; add "
                          "it as an extra of train_extended, which builds extras for train only")
    root = Path(data_dir)
    urls_path, captions_path = root / SBU_URLS, root / SBU_CAPTIONS
    require_official([urls_path, captions_path], "sbu")
    urls = [line.strip() for line in read_text(urls_path).splitlines()]
    texts = [" ".join(line.split()) for line in read_text(captions_path).splitlines()]
    if len(urls) != len(texts):
        raise ConfigError(f"{urls_path} has {len(urls)} lines but {captions_path} has {len(texts)}; the two official "
                          "files are line-aligned: download both again")
    for number, (url, text) in enumerate(zip(urls, texts), start=1):
        if not url or not text:
            raise ConfigError(f"{urls_path if not url else captions_path}, line {number}: empty line; the official "
                              "files have a url and a caption on every line: download them again")
    rows, missing = pair_pictures(list(zip(texts, urls)), captions_path, root / image_dir, name, strict)
    return caption_dataset(rows, missing, captions_path, name, split, tokenizer, max_samples, train_transform,
                           eval_transform)
