"""Reading annotation files with errors that say which file, which record and where to get it.

Every dataset builder first lists the files it needs and calls ``require_files``: a user
whose data root is incomplete sees every missing path in one message, with the place the
official data comes from. Malformed content raises ``ConfigError`` naming the file, the
record (or line) and the field.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from unimm.config.errors import ConfigError

logger = logging.getLogger("unimm")

# Where each dataset's official files come from (shown in every missing-file error).
OFFICIAL_SOURCES: dict[str, str] = {
    "coco": "COCO 2017 images and annotations, https://cocodataset.org/#download",
    "vg": "Visual Genome v1.2 (image_data, objects, attributes, question_answers), "
          "https://homes.cs.washington.edu/~ranjay/visualgenome/api.html",
    "vqa2": "VQAv2 questions + annotations, https://visualqa.org/download.html "
            "(images are COCO 2014 / 2015)",
    "snli_ve": "SNLI-VE jsonl files, https://github.com/necla-ml/SNLI-VE "
               "(images are Flickr30k, http://shannon.cs.illinois.edu/DenotationGraph/)",
    "nlvr2": "NLVR2 json-lines files and images, https://github.com/lil-lab/nlvr/tree/master/nlvr2",
    "glue": "GLUE task folders, https://gluebenchmark.com/tasks",
    "coco_captions": "COCO 2017 caption annotations, https://cocodataset.org/#download",
    "karpathy": "Karpathy splits (caption_datasets.zip), "
                "https://cs.stanford.edu/people/karpathy/deepimagesent/",
    "imagefolder": "any folder of images with one sub-folder per class",
    "corpus": "a plain-text corpus, one sentence a line, documents separated by a blank line",
    "vocab": "a Hugging Face tokenizer folder, e.g. one written by tokenizer.save_pretrained()",
}
SHAPES_HINT = "or generate the embedded synthetic 'shapes' benchmark, which writes the same layout"


def require_files(paths: Iterable[str | Path], dataset: str, what: str = "file") -> None:
    """Raise one ``ConfigError`` listing every path in ``paths`` that does not exist.

    Args:
        paths: every file (or folder) the builder will read.
        dataset: a key of ``OFFICIAL_SOURCES``, used to say where the data comes from.
        what: the noun used in the message (``"file"``, ``"folder"``).
    """
    missing = [str(p) for p in paths if not Path(p).exists()]
    if not missing:
        return
    where = (f"the {dataset} data (get it from: {OFFICIAL_SOURCES.get(dataset, dataset)}; {SHAPES_HINT}; "
             "nothing is downloaded at run time)")
    raise ConfigError([f"missing {what}: {p}" for p in missing], source=where)


def read_text(path: str | Path) -> str:
    """A text file's content; bytes that are not UTF-8 are an error naming the file, line and byte."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise ConfigError(f"{path}, line {line}: byte {data[err.start:err.start + 1]!r} is not UTF-8 text; the "
                          "official files are UTF-8: download the file again, or convert it to UTF-8") from None


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a syntax error names the file, line and column."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"{path}: not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from err


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for every non-empty line of a JSON-lines file."""
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}, line {number}: not valid JSON: {err.msg}") from err
        if not isinstance(record, dict):
            raise ConfigError(f"{path}, line {number}: expected a JSON object, got {type(record).__name__}")
        yield number, record


def field(record: Any, key: str, where: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """``record[key]``, or a ``ConfigError`` naming ``where`` and the missing / mistyped field.

    Args:
        record: a parsed JSON object.
        key: the official field name.
        where: the file and record, e.g. ``"instances_val2017.json, annotations[3]"``.
        kind: the accepted Python type(s) of the value, or None for any.
    """
    if not isinstance(record, Mapping):
        raise ConfigError(f"{where}: expected an object with field '{key}', got {type(record).__name__}")
    if key not in record:
        raise ConfigError(f"{where}: field '{key}' is missing")
    value = record[key]
    if kind is not None and (not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind))):
        names = "/".join(t.__name__ for t in _as_tuple(kind))
        raise ConfigError(f"{where}: field '{key}' should be {names}, got {value!r}")
    return value


def json_list(data: Any, key: str | None, path: str | Path) -> list[Any]:
    """The list at ``data[key]`` (or ``data`` itself when ``key`` is None), checked."""
    value = data if key is None else field(data, key, str(path))
    if not isinstance(value, list):
        where = f"{path}" if key is None else f"{path}, field '{key}'"
        raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def named_splits(defaults: Mapping[str, str], given: Mapping[str, str] | None) -> dict[str, str]:
    """A dataset's split -> file (or official name) mapping: ``given`` (its ``split_names`` /
    ``split_files`` argument) names only the splits it changes; the others keep ``defaults``."""
    return {**defaults, **(given or {})}


def split_file(split_files: Mapping[str, str], split: str, dataset: str) -> str:
    """The file (or folder) name of ``split``; an unknown split lists the known ones."""
    if split not in split_files:
        raise ConfigError(
            f"{dataset}: unknown split '{split}'; known splits: {', '.join(split_files)} "
            f"(set the dataset's split_files to add one)")
    return split_files[split]


def accept_alias(path: str | Path, aliases: Iterable[str]) -> Path:
    """``path`` when it exists, else the first existing sibling named in ``aliases``.

    Official downloads unpack under other names than the layout unimm documents (GLUE's download
    script writes ``glue_data/``, Flickr30k unpacks to ``flickr30k-images/``); both are accepted, and
    the name used is logged. When none exists, ``path`` itself is returned, so that
    ``require_files`` names the documented place.
    """
    path = Path(path)
    if path.exists():
        return path
    for alias in aliases:
        other = path.with_name(alias)
        if other.exists():
            logger.info("%s does not exist; reading %s, the name the official download uses", path, other)
            return other
    return path


def coco_image_ids(path: str | Path) -> set[int]:
    """The COCO image ids a file lists.

    Reads a COCO instances or image-info file (``{"images": [{"id", ...}]}``, e.g.
    ``instances_val2017.json``, ``image_info_test2017.json``) or a VQAv2 questions file
    (``{"questions": [{"image_id", "question", "question_id"}]}``, e.g.
    ``v2_OpenEnded_mscoco_val2014_questions.json``).

    Raises:
        ConfigError: the file is neither, or a record lacks its id.
    """
    path = Path(path)
    require_files([path], "coco")
    data = read_json(path)
    if isinstance(data, dict) and "images" in data:
        return {field(r, "id", f"{path}, images[{i}]", int) for i, r in enumerate(json_list(data, "images", path))}
    if isinstance(data, dict) and "questions" in data:
        return {field(q, "image_id", f"{path}, questions[{i}]", int)
                for i, q in enumerate(json_list(data, "questions", path))}
    raise ConfigError(f"{path}: expected a COCO annotations file (with 'images') or a VQAv2 questions file "
                      "(with 'questions'); give e.g. annotations/instances_val2017.json or "
                      "v2_OpenEnded_mscoco_val2014_questions.json")
