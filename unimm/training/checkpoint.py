"""Checkpoints: save atomically, resume exactly, initialise weights from other runs.

A run folder holds::

    checkpoints/
      update_1000/
        model.safetensors     model weights (no code can run when they are read)
        training_state.pt     optimizer, scheduler, sampler, hooks, counters, scaler, RNG states
        manifest.json         size and SHA-256 of the two files above
      last                    {"checkpoint": "update_1000", "update": 1000}
      best                    the same, for the best evaluation so far

A checkpoint folder is written under a temporary name, synced to disk and renamed, and
the pointer files are replaced atomically, so a crash never leaves a partial checkpoint
where ``last`` points. Reading uses ``safetensors`` and ``torch.load(weights_only=True)``
only; a damaged file is found (manifest, then parsing) before anything is touched.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from unimm.config.errors import ConfigError
from unimm.training import distributed as dist
from unimm.utils.fileio import atomic_write_text

logger = logging.getLogger("unimm")

MODEL_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"
MANIFEST_FILE = "manifest.json"
FOLDER = re.compile(r"^update_(\d+)$")
NESTED_KEYS = ("model", "state_dict", "model_state_dict", "module")


# ----------------------------------------------------------------------------- saving

def save_checkpoint(folder: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    sampler: Any, hooks: list, counters: dict, scaler: Any = None, extra: dict | None = None,
                    keep_last: int = 2, is_best: bool = False, rng_states: list[dict] | None = None,
                    full: tuple[dict, dict] | None = None) -> Path:
    """Write ``folder/checkpoints/update_<N>/`` with ``N = counters["update"]``.

    Call it on the main process only (it writes, never communicates).

    Args:
        folder: the run folder.
        model: the model, possibly DDP-wrapped (its inner module is saved).
        optimizer, scheduler, sampler: saved through their ``state_dict``.
        hooks: optimizer hooks, saved in order.
        counters: the loop's counters; ``counters["update"]`` names the checkpoint.
        scaler: a ``GradScaler`` or None.
        extra: anything else ``torch.load(weights_only=True)`` can read back.
        keep_last: the newest checkpoints kept (0 or less: all); ``best`` is never deleted.
        is_best: also point ``best`` at this checkpoint.
        rng_states: ``rng_state()`` of every rank, in rank order; None saves this
            process's only (every rank then resumes from rank 0's RNG state).
        full: ``distributed.full_state(model, optimizer)``, gathered on every rank before
            this main-process call; required for a model sharded with FSDP.

    Returns:
        The checkpoint folder.
    """
    if full is None:
        if dist.is_sharded(model):
            raise ValueError("an FSDP model's full state must be gathered on every rank first: "
                             "pass full=distributed.full_state(model, optimizer)")
        full = dist.full_state(model, optimizer)
    model_state, optimizer_state = full
    update = int(counters["update"])
    root = Path(folder) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-*"):  # left by a run that crashed while saving
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".tmp-update_{update}-{os.getpid()}"
    tmp.mkdir()
    weights, aliases = shareable_weights(model_state)
    save_file(weights, str(tmp / MODEL_FILE), metadata={"format": "pt", "aliases": json.dumps(aliases)})
    state = {
        "format": 1,
        "optimizer": optimizer_state,
        "scheduler": scheduler.state_dict(),
        "sampler": sampler.state_dict(),
        "hooks": [hook.state_dict() for hook in hooks],
        "counters": counters,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_states if rng_states is not None else [rng_state()],
        "extra": extra or {},
    }
    torch.save(state, tmp / STATE_FILE)
    manifest = {"update": update, "files": {name: file_digest(tmp / name) for name in (MODEL_FILE, STATE_FILE)}}
    (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
    for name in (MODEL_FILE, STATE_FILE, MANIFEST_FILE):
        fsync_path(tmp / name)
    fsync_path(tmp)
    final = root / f"update_{update}"
    if final.exists():  # saved again at the same update (e.g. a best checkpoint)
        old = root / f".tmp-old-update_{update}-{os.getpid()}"
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)
    fsync_path(root)
    pointer = json.dumps({"checkpoint": final.name, "update": update})
    atomic_write_text(root / "last", pointer)
    if is_best:
        atomic_write_text(root / "best", pointer)
    fsync_path(root)
    prune(root, keep_last)
    return final


def shareable_weights(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """CPU tensors for safetensors, which refuses shared memory: tied weights are stored once.

    Returns:
        (weights, aliases): ``aliases[key] = stored_key`` for each tied copy left out.
    """
    weights: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[int, int, tuple[int, ...], tuple[int, ...]], str] = {}
    for key, tensor in state.items():
        if tensor.device.type != "meta" and tensor.numel() > 0:
            ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
                     tuple(tensor.stride()))
            if ident in seen:
                aliases[key] = seen[ident]
                continue
            seen[ident] = key
        weights[key] = tensor.detach().to("cpu", copy=True).contiguous()
    return weights, aliases


def prune(root: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints, never those ``last`` / ``best`` name."""
    if keep_last <= 0:
        return
    folders = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := FOLDER.match(p.name)) and p.is_dir())
    protected = {read_pointer(root / name) for name in ("last", "best") if (root / name).exists()}
    for _, path in folders[:-keep_last]:
        if path.name not in protected:
            shutil.rmtree(path, ignore_errors=True)


def rng_state() -> dict[str, Any]:
    """This process's Python, NumPy, torch and CUDA random states, readable with weights_only."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def file_digest(path: Path) -> dict[str, Any]:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            sha.update(chunk)
    return {"bytes": path.stat().st_size, "sha256": sha.hexdigest()}


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's entry to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- loading

def read_pointer(path: Path) -> str:
    """The checkpoint folder name a ``last`` / ``best`` pointer file holds."""
    try:
        return str(json.loads(Path(path).read_text())["checkpoint"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: not a readable checkpoint pointer ({err}); the checkpoint is damaged, "
                          "point checkpoint.init_from at an update_<N> folder instead") from None


def find_checkpoint(path: str | os.PathLike) -> Path:
    """The ``update_<N>`` folder meant by a folder, a pointer file, or a run / checkpoints folder."""
    path = Path(path)
    if path.is_file() and path.name in ("last", "best"):
        return path.parent / read_pointer(path)
    if (path / MODEL_FILE).is_file() or (path.is_dir() and FOLDER.match(path.name)):
        return path  # an update_<N> folder, even with a file missing (reported as damaged)
    for pointer in (path / "last", path / "checkpoints" / "last"):
        if pointer.is_file():
            return pointer.parent / read_pointer(pointer)
    raise ConfigError(f"{path}: no checkpoint there; give an update_<N> folder, a run folder, its "
                      "checkpoints folder or a last / best pointer file")


def damaged(path: Path, why: str) -> ConfigError:
    return ConfigError(f"{path}: the checkpoint is damaged ({why}); resume from an earlier update_<N> "
                       "folder (point checkpoints/last at it) or start the run again")


def verify_manifest(folder: Path, names: tuple[str, ...] = (MODEL_FILE, STATE_FILE)) -> None:
    """Sizes and SHA-256 of the files ``names`` against those written with them."""
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        return  # a folder written by other tools: parsing is the only check
    try:
        files = json.loads(manifest_path.read_text())["files"]
    except (ValueError, KeyError, TypeError) as err:
        raise damaged(manifest_path, f"unreadable manifest: {err}") from None
    for name, expected in files.items():
        if name not in names:
            continue
        path = folder / name
        if not path.is_file():
            raise damaged(path, "the file is missing")
        if path.stat().st_size != expected["bytes"]:
            raise damaged(path, f"{path.stat().st_size} bytes where {expected['bytes']} were written; "
                                "it was truncated")
        if file_digest(path)["sha256"] != expected["sha256"]:
            raise damaged(path, "its SHA-256 differs from the one written with it")


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Weights of a safetensors file, tied copies restored."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        weights = load_file(str(path))
    except Exception as err:  # truncated header or data, not a safetensors file
        raise damaged(path, f"{type(err).__name__}: {err}") from None
    for key, source in json.loads(metadata.get("aliases", "{}")).items():
        weights[key] = weights[source]
    return weights


def read_torch(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``: tensors and plain containers, never code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise ConfigError(f"{path}: holds Python objects that cannot be loaded without running code; "
                              "re-save it as a plain state dict of tensors") from None
        raise damaged(path, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Everything a checkpoint holds, read into CPU memory and checked, model untouched.

    Args:
        path: an ``update_<N>`` folder, a ``last`` / ``best`` pointer, or a run /
            ``checkpoints`` folder (its ``last`` is used).

    Returns:
        ``{"path", "model": state dict, "optimizer", "scheduler", "sampler", "hooks",
        "counters", "scaler", "rng", "extra"}``.

    Raises:
        ConfigError: naming the file, when it is missing, truncated or corrupt.
    """
    folder = find_checkpoint(path)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: the checkpoint folder named by the pointer is missing; point "
                          "checkpoints/last at an existing update_<N> folder")
    verify_manifest(folder)
    for name in (MODEL_FILE, STATE_FILE):
        if not (folder / name).is_file():
            raise damaged(folder / name, "the file is missing")
    weights = read_safetensors(folder / MODEL_FILE)
    state = read_torch(folder / STATE_FILE)
    if not isinstance(state, dict) or "optimizer" not in state:
        raise damaged(folder / STATE_FILE, "it holds no training state")
    return {"path": folder, "model": weights, **state}


def restore(ckpt: Mapping[str, Any], *, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
            sampler: Any, hooks: list, scaler: Any = None) -> dict:
    """Put a loaded checkpoint back for an exact resume; everything is checked before changing anything.

    Args:
        ckpt: from ``load_checkpoint``.
        model, optimizer, scheduler, sampler, hooks, scaler: built as for a fresh run.

    Returns:
        The saved counters.
    """
    where = ckpt.get("path", "checkpoint")
    target = dist.unwrap(model)
    problems = state_problems(target.state_dict(), ckpt["model"])
    saved_groups = ckpt["optimizer"]["param_groups"]
    sizes = [len(g["params"]) for g in optimizer.param_groups]
    saved_sizes = [len(g["params"]) for g in saved_groups]
    if sizes != saved_sizes:
        problems.append(f"optimizer parameter groups hold {saved_sizes} parameters, this run's hold {sizes} "
                        "(training.param_groups or frozen parameters changed)")
    if len(ckpt["hooks"]) != len(hooks):
        problems.append(f"{len(ckpt['hooks'])} optimizer hooks were saved, {len(hooks)} are configured "
                        "(training.optimizer_hooks changed)")
    if (ckpt["scaler"] is None) != (scaler is None):
        problems.append("training.amp changed between fp16 and another setting")
    if problems:
        raise ConfigError([f"{where}: cannot resume: {p}" for p in problems[:20]]
                          + ["start a new run, or load the weights only with checkpoint.init_from"])
    # the parts that can still refuse (a sampler over other datasets, a mask over other
    # parameters) go first, the model last
    sampler.load_state_dict(ckpt["sampler"])
    for hook, state in zip(hooks, ckpt["hooks"]):
        hook.load_state_dict(state)
    if scaler is not None:
        scaler.load_state_dict(ckpt["scaler"])
    scheduler.load_state_dict(ckpt["scheduler"])
    dist.load_full_state(model, optimizer, ckpt["model"], ckpt["optimizer"])
    rank = dist.get_rank()
    states = ckpt["rng"]
    set_rng_state(states[rank] if rank < len(states) else states[0])
    if rank >= len(states):
        logger.warning("checkpoint holds the RNG state of %d rank(s); rank %d resumes from rank 0's",
                       len(states), rank)
    return dict(ckpt["counters"])


def state_problems(expected: Mapping[str, torch.Tensor], saved: Mapping[str, torch.Tensor]) -> list[str]:
    """Missing, unexpected and wrongly shaped keys of ``saved`` against ``expected``."""
    problems = [f"model key {k} is missing" for k in expected if k not in saved]
    problems += [f"model key {k} is not in this model" for k in saved if k not in expected]
    problems += [f"model key {k} has shape {tuple(saved[k].shape)}, this model's is {tuple(expected[k].shape)}"
                 for k in expected if k in saved and saved[k].shape != expected[k].shape]
    return problems


# ----------------------------------------------------------------------------- init_from

def read_weights(path: str | os.PathLike) -> tuple[Path, dict[str, torch.Tensor]]:
    """(the file read, its weights) from a checkpoint, a model folder or a weights file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"checkpoint.init_from: {path} does not exist; give a checkpoint folder, a "
                          ".safetensors file or a .pt / .pth / .bin state dict")
    if path.is_dir() or path.name in ("last", "best"):
        if path.is_dir() and not (path / MODEL_FILE).is_file() and (path / "pytorch_model.bin").is_file():
            path = path / "pytorch_model.bin"
        else:
            folder = find_checkpoint(path)
            verify_manifest(folder, names=(MODEL_FILE,))
            return folder / MODEL_FILE, read_safetensors(folder / MODEL_FILE)
    if path.suffix == ".safetensors":
        return path, read_safetensors(path)
    state = read_torch(path)
    for _ in range(2):  # {"model": {...}} or {"state_dict": {...}}, at most twice nested
        if isinstance(state, Mapping):
            inner = next((state[k] for k in NESTED_KEYS if isinstance(state.get(k), Mapping)), None)
            if inner is not None and not any(isinstance(v, torch.Tensor) for v in state.values()):
                state = inner
    if not isinstance(state, Mapping) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: holds no state dict of tensors (looked at the top level and under "
                          f"{', '.join(NESTED_KEYS)})")
    return path, {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def rename_keys(weights: Mapping[str, torch.Tensor], key_map: Mapping[str, str] | None) -> dict[str, torch.Tensor]:
    """Apply prefix renames ``old -> new``; the longest matching old prefix wins."""
    prefixes = sorted((key_map or {}).items(), key=lambda item: len(item[0]), reverse=True)
    renamed = {}
    for key, value in weights.items():
        for old, new in prefixes:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        renamed[key] = value
    return renamed


def init_from(model: nn.Module, path: str | os.PathLike, key_map: dict[str, str] | None = None,
              include: list[str] | None = None) -> dict:
    """Load weights only (no optimizer, no counters), keeping what fits and reporting the rest.

    Args:
        model: the model to initialise (possibly DDP-wrapped).
        path: an unimm checkpoint (folder or pointer), a model folder with
            ``model.safetensors`` / ``pytorch_model.bin``, a ``.safetensors`` file, or a torch
            state dict ``.pt`` / ``.pth`` (read with weights_only=True; ``{"model": ...}`` or
            ``{"state_dict": ...}`` nesting accepted).
        key_map: prefix renames from checkpoint keys to model keys, e.g. ``{"encoder.": "backbone."}``.
        include: regexes searched in the (renamed) keys; only matching weights are loaded
            (None or empty: all). E.g. UniT's COCO init loads ``^image_encoder[.]`` and the
            detection heads only (Sec. 4.1).

    Returns:
        ``{"source", "loaded": [keys], "missing": [keys], "unexpected": [keys],
        "mismatched": [(key, checkpoint shape, model shape)]}``.
    """
    source, weights = read_weights(path)
    weights = rename_keys(weights, key_map)
    if include:
        try:
            patterns = [re.compile(p) for p in include]
        except re.error as err:
            raise ConfigError(f"checkpoint.init_include: {err}; give regexes over parameter names") from None
        weights = {k: v for k, v in weights.items() if any(p.search(k) for p in patterns)}
    target = dist.unwrap(model)
    own = target.state_dict()
    fits = {k: v for k, v in weights.items() if k in own and v.shape == own[k].shape}
    report = {
        "source": str(source),
        "loaded": sorted(fits),
        "missing": sorted(k for k in own if k not in weights),  # incl. those left out by include
        "unexpected": sorted(k for k in weights if k not in own),
        "mismatched": sorted((k, tuple(v.shape), tuple(own[k].shape)) for k, v in weights.items()
                             if k in own and v.shape != own[k].shape),
    }
    if not fits:
        raise ConfigError(f"checkpoint.init_from: no weight of {source} fits the model; checkpoint keys look like "
                          f"{sorted(weights)[:3]}, model keys like {sorted(own)[:3]}; map prefixes with "
                          "checkpoint.key_map={old.: new.}")
    target.load_state_dict(fits, strict=False)
    logger.info("%s", format_report(report))
    return report


def format_report(report: Mapping[str, Any], limit: int = 10) -> str:
    """A few readable lines: how many keys loaded, and the first missing / unexpected / mismatched ones."""
    lines = [f"init_from {report['source']}: loaded {len(report['loaded'])} tensors"]
    for kind in ("missing", "unexpected", "mismatched"):
        items = report[kind]
        if items:
            shown = ", ".join(str(i) if kind != "mismatched" else f"{i[0]} {i[1]}->{i[2]}" for i in items[:limit])
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            lines.append(f"  {kind} ({len(items)}): {shown}{more}")
    return "\n".join(lines)
