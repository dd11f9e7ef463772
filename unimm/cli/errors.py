"""Turn an exception into the one readable line (or block) the user sees.

An error raised inside a part (a dataset's ``__getitem__``, a model's ``forward``, a metric) says
where it happened: the dataset (its config key) and the sample index, or the model and its
submodule, or the metric (its config path), and the file and line that raised it, then the
original message. The traceback is read for that (its frames hold the objects involved), so no
part has to wrap its code; ``--debug`` shows the traceback itself.
"""
from __future__ import annotations

import os
import sys
import sysconfig
from types import FrameType, TracebackType
from typing import Any, Iterator, Mapping

from unimm.config.errors import ConfigError
from unimm.registry import RegistryError

WHERE = "where: "  # the prefix of the notes unimm's loops add to an exception (``add_where``)
DEBUG = "(run with --debug for the traceback)"


def add_where(err: BaseException, text: str) -> None:
    """Note on ``err`` where it happened (e.g. ``evaluation.metrics.vqa2[0].update``); ``describe`` shows it."""
    if hasattr(err, "add_note"):
        err.add_note(WHERE + text)
    else:  # Python 3.10: the attribute that add_note fills
        err.__notes__ = [*getattr(err, "__notes__", []), WHERE + text]  # type: ignore[attr-defined]


def describe(err: BaseException, cfg: Mapping[str, Any] | None = None) -> str:
    """The message for ``err``; ``cfg`` (the run's validated config, when known) names the parts' types."""
    if isinstance(err, RegistryError) and "unknown " in str(err) and "did you mean" not in str(err):
        from unimm.plugins import unknown_name_hint

        hint = unknown_name_hint()
        return f"{err}; {hint}" if hint else str(err)
    if isinstance(err, (ConfigError, RegistryError)):
        return str(err)
    if type(err).__name__ == "NonFiniteLossError":
        return f"training stopped: {err}"
    if isinstance(err, FileNotFoundError) and not located(err):
        return f"file not found: {err.filename or err}; check the path {DEBUG}"
    where = located(err, cfg)
    text = message(err)
    if where:
        return f"{type(err).__name__} in {where}: {text} {DEBUG}"
    return f"{type(err).__name__}: {text} {DEBUG}"


def message(err: BaseException) -> str:
    """The exception's own message; for an error re-raised from a DataLoader worker, its last line."""
    text = str(err)
    if "Original Traceback" in text:
        lines = [line for line in text.strip().splitlines() if line.strip() and not line.strip().startswith(WHERE)]
        last = lines[-1].strip()
        prefix = f"{type(err).__name__}: "
        return last[len(prefix):] if last.startswith(prefix) else last
    return text


def located(err: BaseException, cfg: Mapping[str, Any] | None = None) -> str:
    """Where ``err`` happened, as text (empty when it did not happen inside a part)."""
    notes = [typed_note(n[len(WHERE):], cfg) for n in getattr(err, "__notes__", None) or []
             if isinstance(n, str) and n.startswith(WHERE)]
    if "Original Traceback" in str(err):  # notes added in a DataLoader worker arrive in the message's text
        notes += [typed_note(line.strip()[len(WHERE):], cfg) for line in str(err).splitlines()
                  if line.strip().startswith(WHERE)]
    frames = list(walk(err.__traceback__))
    places = [*notes]
    sample = dataset_place(frames, cfg)
    if sample:
        places.append(sample)
    model = model_place(frames, cfg)
    if model and not sample:
        places.append(model)
    worker = worker_place(err, frames, cfg) if not (sample or notes) else ""
    if worker:
        places.append(worker)
    line = raising_line(err, frames)
    if places and line:
        places.append(line)
    return ", ".join(dict.fromkeys(places))


def walk(tb: TracebackType | None) -> Iterator[tuple[FrameType, int]]:
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def dataset_name(obj: Any) -> str | None:
    """The config key of a dataset object (``Dataset.name``), if ``obj`` is one."""
    from unimm.interfaces import Dataset

    try:
        return obj.name if isinstance(obj, Dataset) and isinstance(obj.name, str) else None
    except Exception:  # a half-built object
        return None


def part_type(cfg: Mapping[str, Any] | None, *keys: str) -> str:
    """`` (type <name>)`` of the config node at ``keys``, when the config is known."""
    node: Any = cfg
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    name = node if isinstance(node, str) else node.get("type") if isinstance(node, Mapping) else None
    return f" (type {name})" if name else ""


def typed_note(note: str, cfg: Mapping[str, Any] | None) -> str:
    """``evaluation.metrics.x[1], its update`` -> ``evaluation.metrics.x[1] (type macro_f1), its update``."""
    path, sep, rest = note.partition(",")
    keys = [k for k in path.replace("]", "").replace("[", ".").split(".") if k]
    node: Any = cfg
    for key in keys:
        if isinstance(node, Mapping):
            node = node.get(key)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            node = None
    name = node if isinstance(node, str) else node.get("type") if isinstance(node, Mapping) else None
    return f"{path} (type {name}){sep}{rest}" if name and cfg is not None else note


def dataset_place(frames: list[tuple[FrameType, int]], cfg: Mapping[str, Any] | None) -> str:
    """``datasets.<name>, sample <i>`` for an error in a dataset's ``__getitem__`` or ``collate``."""
    for frame, _ in reversed(frames):
        code = frame.f_code
        if code.co_name not in ("__getitem__", "__getitems__", "collate"):
            continue
        name = dataset_name(frame.f_locals.get("self"))
        if name is None:
            continue
        where = f"datasets.{name}{part_type(cfg, 'datasets', name)}"
        if code.co_name == "collate":
            return f"{where}, while collating a batch (its collate)"
        index = frame.f_locals.get(code.co_varnames[1]) if code.co_argcount >= 2 else None
        return f"{where}, sample {index!r}" if isinstance(index, int) else where
    return ""


def model_place(frames: list[tuple[FrameType, int]], cfg: Mapping[str, Any] | None) -> str:
    """``the model (model: <type>), submodule '<path>' (<Class>)`` for an error in a forward pass."""
    if "torch" not in sys.modules:
        return ""
    from torch import nn

    modules = [frame.f_locals.get("self") for frame, _ in frames if frame.f_code.co_name == "forward"]
    ours = [m for m in modules if isinstance(m, nn.Module) and not type(m).__module__.startswith("torch.")]
    if not ours:
        return ""
    top, inner = ours[0], ours[-1]
    where = f"model{part_type(cfg, 'model')}"
    if inner is top:
        return f"{where}, in {type(top).__name__}.forward"
    sub = next((n for n, m in top.named_modules() if m is inner), None)
    return f"{where}, submodule '{sub}' ({type(inner).__name__}.forward)" if sub else \
        f"{where}, in {type(inner).__name__}.forward"


def worker_place(err: BaseException, frames: list[tuple[FrameType, int]], cfg: Mapping[str, Any] | None) -> str:
    """``datasets.<name>`` for an error re-raised from a DataLoader worker (the index stays in the worker)."""
    if "Original Traceback" not in str(err):
        return ""
    for frame, _ in reversed(frames):
        name = dataset_name(getattr(frame.f_locals.get("self"), "_dataset", None))
        if name is not None:
            return (f"datasets.{name}{part_type(cfg, 'datasets', name)}, in a DataLoader worker "
                    "(training.num_workers=0 names the sample)")
    return "a DataLoader worker"


_LIBRARY_DIRS = tuple(os.path.realpath(p) for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]})


def raising_line(err: BaseException, frames: list[tuple[FrameType, int]]) -> str:
    """``at <file>:<line> in <function>``: the innermost frame outside Python's and torch's own code."""
    if "Original Traceback" in str(err):  # the worker's traceback, as text
        lines = [line.strip() for line in str(err).splitlines() if line.strip().startswith("File ")]
        if not lines:
            return ""
        file, _, rest = lines[-1].removeprefix('File "').partition('", line ')
        return f"at {shown_path(file)}:{rest.replace(', in ', ' in ')}"

    torch_dir = os.sep + "torch" + os.sep
    for frame, lineno in reversed(frames):
        path = os.path.realpath(frame.f_code.co_filename)
        if path.startswith(_LIBRARY_DIRS) and "site-packages" not in path or torch_dir in path:
            continue
        if os.sep + "unimm" + os.sep + "cli" + os.sep in path:
            continue
        return f"at {shown_path(path)}:{lineno} in {frame.f_code.co_name}"
    return ""


def shown_path(path: str) -> str:
    """``path`` relative to the working directory when it lies under it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if relative.startswith("..") else relative
