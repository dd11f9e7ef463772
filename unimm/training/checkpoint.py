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
import math
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
from unimm.interfaces import AdaptsInitWeights
from unimm.training import distributed as dist
from unimm.utils.fileio import atomic_write_text

logger = logging.getLogger("unimm")

MODEL_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"
MANIFEST_FILE = "manifest.json"
# what save_checkpoint writes into the training state (besides "optimizer"), read by restore
TRAINING_STATE_KEYS = ("scheduler", "sampler", "hooks", "counters", "scaler", "rng")
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


def verify_manifest(folder: Path, names: tuple[str, ...] = (MODEL_FILE, STATE_FILE), trust: bool = False) -> None:
    """Sizes and SHA-256 of the files ``names`` against those written with them.

    A checkpoint folder without its manifest cannot be checked for damage (a flipped byte in the
    weights would load): it is refused unless ``trust`` (``checkpoint.trust_unverified``).
    """
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        if not trust:
            raise ConfigError(f"{folder}: no {MANIFEST_FILE}, so its files cannot be checked for damage; set "
                              "checkpoint.trust_unverified=true to load it anyway")
        logger.warning("%s: no %s; loaded without checking its files (checkpoint.trust_unverified)",
                       folder, MANIFEST_FILE)
        return
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


def load_checkpoint(path: str | os.PathLike, trust_unverified: bool = False) -> dict[str, Any]:
    """Everything a checkpoint holds, read into CPU memory and checked, model untouched.

    Args:
        path: an ``update_<N>`` folder, a ``last`` / ``best`` pointer, or a run /
            ``checkpoints`` folder (its ``last`` is used).
        trust_unverified: load a folder that has no manifest (see ``verify_manifest``).

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
    verify_manifest(folder, trust=trust_unverified)
    for name in (MODEL_FILE, STATE_FILE):
        if not (folder / name).is_file():
            raise damaged(folder / name, "the file is missing")
    weights = read_safetensors(folder / MODEL_FILE)
    state = read_torch(folder / STATE_FILE)
    if not isinstance(state, dict) or "optimizer" not in state:
        raise damaged(folder / STATE_FILE, "it holds no training state")
    lacking = [key for key in TRAINING_STATE_KEYS if key not in state]
    if not isinstance(state["optimizer"], dict) or "param_groups" not in state["optimizer"] \
            or "state" not in state["optimizer"]:
        lacking.append("optimizer.param_groups / optimizer.state")
    if lacking:
        raise damaged(folder / STATE_FILE, f"its training state lacks {', '.join(lacking)}")
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

def read_weights(path: str | os.PathLike, trust_unverified: bool = False) -> tuple[Path, dict[str, torch.Tensor]]:
    """(the file read, its weights) from a checkpoint, a model folder or a weights file.

    An unimm checkpoint folder is checked against its manifest (``verify_manifest``); weights files
    of other tools have none, and parsing is their only check.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"checkpoint.init_from: {path} does not exist; give a checkpoint folder, a "
                          ".safetensors file or a .pt / .pth / .bin state dict")
    if path.is_dir() or path.name in ("last", "best"):
        if path.is_dir() and not (path / MODEL_FILE).is_file() and (path / "pytorch_model.bin").is_file():
            path = path / "pytorch_model.bin"
        else:
            folder = find_checkpoint(path)
            verify_manifest(folder, names=(MODEL_FILE,), trust=trust_unverified)
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
              include: list[str] | None = None, resize: list[str | Mapping[str, Any]] | None = None,
              trust_unverified: bool = False) -> dict:
    """Load weights only (no optimizer, no counters); every model weight must be accounted for.

    A model with ``adapt_init_weights(weights) -> weights`` (``AdaptsInitWeights``) first makes the
    checkpoint's (renamed) weights fit its own layout, e.g. METER's token-type table gaining NLVR2's
    row. Each weight of the model is then either loaded, resized by a declared rule, or excluded on purpose
    (not matched by ``include``); a weight the checkpoint lacks (missing) or has in another shape
    (mismatched) is an error, as is a ``key_map`` prefix that matches no checkpoint key. Checkpoint
    weights the model does not have (unexpected, e.g. a DETR checkpoint's decoder when only its
    encoder is wanted) are reported, not refused. The report is logged as a table.

    Args:
        model: the model to initialise (possibly DDP-wrapped).
        path: an unimm checkpoint (folder or pointer), a model folder with
            ``model.safetensors`` / ``pytorch_model.bin``, a ``.safetensors`` file, or a torch
            state dict ``.pt`` / ``.pth`` (read with weights_only=True; ``{"model": ...}`` or
            ``{"state_dict": ...}`` nesting accepted).
        key_map: prefix renames from checkpoint keys to model keys, e.g. ``{"encoder.": "backbone."}``.
        include: regexes searched in the (renamed) keys; only matching model weights are loaded,
            the others are excluded (None or empty: all). E.g. UniT's COCO init loads
            ``^image_encoder[.]`` and the detection heads only (Sec. 4.1).
        resize: rules for position tables (``[1, P + h*w, D]`` or ``[P + h*w, D]``: ``P`` prefix rows,
            then a square grid) that are resized to the model's grid when their shapes differ
            (``unimm.modules.pos_embed.resize_pos_embed``: bicubic, no antialiasing, the prefix rows
            kept, as METER / MAE / ViT resize them for a higher resolution). A rule is a regex (one
            prefix row, [CLS]) or ``{"pattern": regex, "num_prefix_tokens": P}`` (e.g. 2 for DeiT's
            [CLS] and distillation token, 0 for a table without prefix rows).
        trust_unverified: load an unimm checkpoint folder that has no manifest.

    Returns:
        ``{"source", "loaded", "resized", "excluded", "missing", "unexpected": [keys],
        "mismatched": [(key, checkpoint shape, model shape)]}``.

    Raises:
        ConfigError: missing or mismatched weights, a key_map prefix or include / resize regex that
            matches nothing, or no weight loaded at all.
    """
    source, weights = read_weights(path, trust_unverified)
    problems = [f"checkpoint.key_map.{old}: matches no key of {source} (its keys look like {sorted(weights)[:3]})"
                for old in (key_map or {}) if not any(k.startswith(old) for k in weights)]
    weights = rename_keys(weights, key_map)
    target = dist.unwrap(model)
    if isinstance(target, AdaptsInitWeights):
        weights = target.adapt_init_weights(weights)
    included = compile_patterns(include, "checkpoint.init_include")
    rules = resize_rules(resize)
    resizable = [pattern for pattern, _ in rules]
    own = target.state_dict()
    wanted = {k for k in own if not included or any(p.search(k) for p in included)}
    chosen = {k: v for k, v in weights.items() if not included or any(p.search(k) for p in included)}
    loaded = {k: v for k, v in chosen.items() if k in wanted and v.shape == own[k].shape}
    resized = {k: resize_table(k, v, own[k], prefix_rows(k, rules)) for k, v in chosen.items()
               if k in wanted and v.shape != own[k].shape and prefix_rows(k, rules) is not None}
    report = {
        "source": str(source),
        "loaded": sorted(loaded),
        "resized": sorted(resized),
        "excluded": sorted(k for k in own if k not in wanted),
        "missing": sorted(k for k in wanted if k not in chosen),
        "unexpected": sorted(k for k in chosen if k not in own),
        "mismatched": sorted((k, tuple(v.shape), tuple(own[k].shape)) for k, v in chosen.items()
                             if k in wanted and v.shape != own[k].shape and k not in resized),
    }
    problems += [f"checkpoint.init_include: {p.pattern!r} matches no weight of the model" for p in included
                 if not any(p.search(k) for k in own)]
    problems += [f"checkpoint.init_resize: {p.pattern!r} matches no weight of the model" for p in resizable
                 if not any(p.search(k) for k in own)]
    if not loaded and not resized and not report["mismatched"]:
        problems.append(f"checkpoint.init_from: no weight of {source} fits the model; checkpoint keys look like "
                        f"{sorted(weights)[:3]}, model keys like {sorted(own)[:3]}; map prefixes with "
                        "checkpoint.key_map={old.: new.}")
    elif report["missing"] or report["mismatched"]:
        problems += unaccounted(report)
    if problems:
        logger.error("%s", format_report(report))
        raise ConfigError(problems)
    target.load_state_dict({**loaded, **resized}, strict=False)
    logger.info("%s", format_report(report))
    return report


def compile_patterns(patterns: list[str] | None, key: str) -> list[re.Pattern[str]]:
    try:
        return [re.compile(p) for p in patterns or []]
    except re.error as err:
        raise ConfigError(f"{key}: {err}; give regexes over parameter names") from None


def resize_rules(resize: list[str | Mapping[str, Any]] | None) -> list[tuple[re.Pattern[str], int]]:
    """``checkpoint.init_resize`` as (regex, prefix rows): a string keeps one prefix row ([CLS])."""
    rules, problems = [], []
    for i, rule in enumerate(resize or []):
        where = f"checkpoint.init_resize[{i}]"
        if isinstance(rule, str):
            pattern, prefix = rule, 1
        elif isinstance(rule, Mapping) and set(rule) == {"pattern", "num_prefix_tokens"}:
            pattern, prefix = rule["pattern"], rule["num_prefix_tokens"]
        else:
            problems.append(f"{where}: {rule!r} is neither a regex nor {{pattern: <regex>, num_prefix_tokens: <int>}}")
            continue
        if not isinstance(prefix, int) or isinstance(prefix, bool) or prefix < 0:
            problems.append(f"{where}.num_prefix_tokens: {prefix!r} is not a count of rows (an int >= 0)")
            continue
        try:
            rules.append((re.compile(pattern), prefix))
        except (re.error, TypeError) as err:
            problems.append(f"{where}: {pattern!r} is not a valid regex ({err}); give regexes over parameter names")
    if problems:
        raise ConfigError(problems)
    return rules


def prefix_rows(key: str, rules: list[tuple[re.Pattern[str], int]]) -> int | None:
    """The prefix rows of the first rule whose regex is found in ``key``; None when no rule matches."""
    return next((prefix for pattern, prefix in rules if pattern.search(key)), None)


def resize_table(key: str, table: torch.Tensor, like: torch.Tensor, num_prefix_tokens: int = 1) -> torch.Tensor:
    """A checkpoint's position table resized to the model's grid (its ``num_prefix_tokens`` rows kept), or an
    error."""
    from unimm.modules.pos_embed import resize_pos_embed

    def grid(rows: int) -> tuple[int, int]:
        side = math.isqrt(max(rows - num_prefix_tokens, 0))
        if side * side != rows - num_prefix_tokens:
            raise ConfigError(f"checkpoint.init_resize: {key} has {rows} rows, not {num_prefix_tokens} prefix "
                              f"row(s) + a square grid; give its prefix rows with {{pattern: ..., "
                              "num_prefix_tokens: P} (2 for a distilled DeiT's [CLS] and distillation token), "
                              "exclude it with checkpoint.init_include, or resize it in code")
        return side, side

    if table.dim() != like.dim() or table.shape[-1] != like.shape[-1] or table.dim() not in (2, 3):
        raise ConfigError(f"checkpoint.init_resize: {key} is {tuple(table.shape)} in the checkpoint and "
                          f"{tuple(like.shape)} in the model; only the number of grid rows can change")
    rows, want = table.shape[-2], like.shape[-2]
    return resize_pos_embed(table, grid(want), num_prefix_tokens=num_prefix_tokens,
                            old_grid=grid(rows)).to(like.dtype)


def unaccounted(report: Mapping[str, Any]) -> list[str]:
    """What the model lacks from the checkpoint, with the ways to account for it."""
    problems = []
    if report["missing"]:
        shown = ", ".join(report["missing"][:6]) + (f" (+{len(report['missing']) - 6} more)"
                                                     if len(report["missing"]) > 6 else "")
        problems.append(f"checkpoint.init_from: {len(report['missing'])} model weights are not in {report['source']}: "
                        f"{shown}; exclude them on purpose with checkpoint.init_include (regexes of what to load) "
                        "or rename checkpoint keys with checkpoint.key_map")
    if report["mismatched"]:
        shown = ", ".join(f"{k} {a}->{b}" for k, a, b in report["mismatched"][:6])
        problems.append(f"checkpoint.init_from: {len(report['mismatched'])} weights have another shape in "
                        f"{report['source']}: {shown}; exclude them with checkpoint.init_include, or resize "
                        "position tables with checkpoint.init_resize")
    return problems


def format_report(report: Mapping[str, Any], limit: int = 4) -> str:
    """A table: how many weights were loaded, resized, excluded, missing, mismatched or unexpected."""
    notes = {"loaded": "", "resized": "position tables resized to the model's grid",
             "excluded": "not selected by checkpoint.init_include", "missing": "model weights the checkpoint lacks",
             "mismatched": "another shape in the checkpoint", "unexpected": "checkpoint weights the model lacks"}
    lines = [f"init_from {report['source']}:"]
    for kind, note in notes.items():
        items = report.get(kind, [])
        shown = ", ".join(str(i) if kind != "mismatched" else f"{i[0]} {i[1]}->{i[2]}" for i in items[:limit])
        more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
        detail = f"{note}: {shown}{more}" if note and items else (shown + more if items else "")
        lines.append(f"  {kind:<10} {len(items):>6}  {detail}".rstrip())
    return "\n".join(lines)
