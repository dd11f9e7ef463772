"""Compose a config: package defaults <- includes (in order) <- the file <- overrides.

Files are read with OmegaConf (so ``5e-5`` is a float and ``${...}`` interpolations
work) and merged as plain containers. Two merge rules differ from a plain deep merge:

* lists are replaced, not merged (set one element with an ``a.b[0]=x`` override);
* a part node whose ``type`` changes is replaced whole, so the keyword arguments of the
  old builder do not leak into the new one.

Relative ``env.user_dir`` entries are resolved against the folder of the file that sets
them, so a project's configs find the project's code from any working directory; so is
``checkpoint.init_run.config`` (looked up beside that file first, then from the working dir,
as includes are). On the command line ``env.user_dir`` is relative to the working directory,
as every other path is (``env.save_dir``, dataset paths). ``env.user_dir`` and ``env.plugins``
may be one name or a list; a single name becomes a one-element list.

An override ``~key.path`` deletes a key (or a list element) from the composed config; a key
that ``defaults.yaml`` declares outside a part node goes back to its default instead.
Overrides apply left to right, so ``~scheduler scheduler.type=constant`` replaces a section.

A file may declare named ``variants``: blocks of keys (with their own ``includes:``) that
``variant=<name>`` on the command line layers over the composed file, before the
overrides. A project uses them for settings that change many keys at once, e.g. the
paper's full-size run against a CPU-sized run on the embedded benchmark.
"""
from __future__ import annotations

import copy
import difflib
import os
import re
from pathlib import Path
from typing import Any, Iterable

import yaml
from omegaconf import DictConfig, OmegaConf

from unimm.config.errors import ConfigError

DEFAULTS = Path(__file__).resolve().parent.parent / "configs" / "defaults.yaml"
DELETE = object()  # the value of a ``~key`` override: delete the key
# resolved env.user_dir entry -> how a config file gave it, for the message when it is missing
USER_DIR_GIVEN: dict[str, str] = {}
_TOKEN = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")
_KEY = re.compile(r"[^.\[\]]+(\[-?\d+\])*(\.[^.\[\]]+(\[-?\d+\])*)*")


def load_config(path: str | os.PathLike | None, overrides: Iterable[str] = (),
                variant: str | None = None) -> DictConfig:
    """Load, compose and override a config (unresolved; see ``validate_config``).

    Args:
        path: the user's YAML file, or None for the defaults alone.
        overrides: ``key.sub=value`` strings; ``a.b[0]=x`` sets a list element, ``~a.b`` deletes a key.
        variant: the name of one of the file's ``variants`` to layer on top.

    Raises:
        ConfigError: a missing or unreadable file, an include cycle, a bad override,
            an unknown variant.
    """
    defaults = read_yaml(DEFAULTS)
    merged = copy.deepcopy(defaults)
    if path is not None:
        merged = merge(merged, compose(Path(path), stack=()))
    variants = merged.pop("variants", None) or {}
    if variant is not None:
        if variant not in variants:
            known = ", ".join(sorted(variants)) or "none (the file declares no variants:)"
            raise ConfigError(f"variant '{variant}' is not declared by {path}; its variants: {known}",
                              source="command line")
        merged = merge(merged, compose_content(dict(variants[variant]), Path.cwd(), ()))
    for key, value in parse_overrides(overrides):
        if value is DELETE:
            delete_path(merged, key, defaults)
        else:
            set_path(merged, key, value)
    merged.pop("includes", None)
    as_lists(merged)
    return OmegaConf.create(merged)


def as_lists(cfg: dict[str, Any]) -> None:
    """``env.user_dir`` (and ``env.plugins`` other than all / none) given as one name -> a list of one."""
    env = cfg.get("env")
    if not isinstance(env, dict):
        return
    if env.get("user_dir", []) is None:
        env["user_dir"] = []
    if isinstance(env.get("user_dir"), str):
        env["user_dir"] = [env["user_dir"]]
    if isinstance(env.get("plugins"), str) and env["plugins"] not in ("all", "none") and "${" not in env["plugins"]:
        env["plugins"] = [env["plugins"]]


def compose(path: Path, stack: tuple[Path, ...]) -> dict[str, Any]:
    """The file's content on top of its includes, merged in order."""
    path = find_config(path, stack[-1].parent if stack else None)
    if path in stack:
        cycle = " -> ".join(str(p) for p in (*stack, path))
        raise ConfigError(f"includes form a cycle: {cycle}; remove one of them")
    own = read_yaml(path)
    variants = own.get("variants")
    if variants is not None and not (isinstance(variants, dict) and all(isinstance(v, dict) for v in variants.values())):
        raise ConfigError("'variants' must map each name to a block of keys", source=str(path))
    for block in (variants or {}).values():  # their includes and paths are relative to this file
        absolutize_paths(block, path.parent)
        if "includes" in block:  # a block without includes keeps those of the same variant it extends
            block["includes"] = [str(find_config(Path(str(i)), path.parent)) for i in as_list(block["includes"], path)]
    return compose_content(own, path.parent, (*stack, path))


def compose_content(own: dict[str, Any], folder: Path, stack: tuple[Path, ...]) -> dict[str, Any]:
    """``own`` (a file's or a variant's keys) on top of its includes, merged in order."""
    absolutize_paths(own, folder)
    result: dict[str, Any] = {}
    for inc in as_list(own.pop("includes", None), stack[-1] if stack else None):
        result = merge(result, compose(Path(str(inc)), stack))
    return merge(result, own)


def as_list(includes: Any, source: Path | None) -> list[str]:
    if includes is None:
        return []
    if isinstance(includes, str):
        return [includes]
    if not isinstance(includes, list):
        raise ConfigError("'includes' must be a list of YAML paths", source=str(source) if source else None)
    return includes


def find_config(path: Path, including_dir: Path | None) -> Path:
    """An include is looked up beside the including file, then from the working dir."""
    candidates = [path] if path.is_absolute() else (
        ([including_dir / path] if including_dir else []) + [Path.cwd() / path]
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise ConfigError(f"config file not found: {path} (looked at: {tried}); check the path")


def read_yaml(path: Path) -> dict[str, Any]:
    """A config file's keys (unresolved); a top level that is not a mapping, bytes that are not
    UTF-8 or bad YAML are errors that name the file. An empty file has no keys."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text (byte {err.start}: {err.object[err.start:err.start + 1]!r}); save "
                          "the file as UTF-8", source=str(path)) from None
    except OSError as err:
        raise ConfigError(f"cannot read the file: {err.strerror or err}", source=str(path)) from None
    if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        return {}  # keys may all come from the command line; validation then names this file
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)  # yaml's errors carry their position when they know it
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(f"cannot read YAML: {where}{getattr(err, 'problem', None) or err}",
                          source=str(path)) from None
    if not isinstance(raw, dict):
        what = "a list" if isinstance(raw, list) else "a single value"
        raise ConfigError(f"the top level must be a mapping of keys, not {what} ({text.strip()[:40]!r})",
                          source=str(path))
    try:
        loaded = OmegaConf.create(text)
    except Exception as err:  # what OmegaConf refuses beyond YAML (e.g. keys that are not strings)
        raise ConfigError(f"cannot read the config: {str(err).strip().splitlines()[0]}", source=str(path)) from None
    return OmegaConf.to_container(loaded, resolve=False)  # type: ignore[return-value]


def absolutize_paths(content: dict[str, Any], base: Path) -> None:
    """Make the file-relative paths of ``content`` absolute: ``env.user_dir`` entries,
    ``checkpoint.init_run.config`` and ``checkpoint.needs[i].config`` (interpolated or absolute values are kept)."""
    env = content.get("env")
    if isinstance(env, dict) and env.get("user_dir"):
        dirs = env["user_dir"]
        as_list = [dirs] if isinstance(dirs, str) else list(dirs)
        env["user_dir"] = [d if "${" in d or os.path.isabs(d) else str((base / d).resolve()) for d in as_list]
        for given, resolved in zip(as_list, env["user_dir"]):
            if given != resolved:
                USER_DIR_GIVEN[resolved] = f"given as '{given}' in a config file in {base}, relative to that file"
    checkpoint = content.get("checkpoint")
    init_run = checkpoint.get("init_run") if isinstance(checkpoint, dict) else None
    needs = checkpoint.get("needs") if isinstance(checkpoint, dict) else None
    for stage in [init_run, *(needs if isinstance(needs, list) else [])]:
        config = stage.get("config") if isinstance(stage, dict) else None
        if isinstance(config, str) and "${" not in config and not os.path.isabs(config):
            beside = base / config
            if beside.is_file():  # else it stays relative to the working dir, where it is looked up at run time
                stage["config"] = str(beside.resolve())


def merge(base: Any, update: Any) -> Any:
    """Deep-merge ``update`` onto ``base`` (new containers; inputs untouched)."""
    if not (isinstance(base, dict) and isinstance(update, dict)):
        return copy.deepcopy(update)
    if "type" in base and "type" in update and base["type"] != update["type"]:
        return copy.deepcopy(update)
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if key in out else copy.deepcopy(value)
    return out


def parse_overrides(items: Iterable[str]) -> list[tuple[str, Any]]:
    """``["a.b=1", "c[0]=x", "~d"]`` -> ``[("a.b", 1), ("c[0]", "x"), ("d", DELETE)]``, values parsed as YAML."""
    pairs, problems = [], []
    for item in items:
        if item.startswith("~"):
            key = item[1:].strip()
            if "=" in key or not key:
                problems.append(f"override '{item}': a deletion is ~key.path alone, without a value "
                                "(e.g. ~scheduler.warmup_steps)")
            else:
                pairs.append((key, DELETE))
            continue
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"override '{item}' is not key=value; write e.g. training.max_updates=10")
            continue
        pairs.append((key.strip(), parse_value(raw)))
    if problems:
        raise ConfigError(problems, source="command line")
    return pairs


def parse_value(raw: str) -> Any:
    """A command-line value as YAML would read it (OmegaConf's loader: ``1e-4`` is a float)."""
    try:
        parsed = OmegaConf.create(f"v: {raw}")
    except Exception:  # not valid YAML as a value (e.g. "a: b"): keep the text
        return raw
    value = OmegaConf.to_container(parsed, resolve=False)["v"]
    return "" if value is None and raw.strip() == "" else value


def set_path(root: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b[0].c`` in nested containers, creating mappings on the way."""
    tokens = [(m.group(1), m.group(2)) for m in _TOKEN.finditer(key)]
    if not _KEY.fullmatch(key):
        raise ConfigError(f"override key '{key}' is not a dotted path; write e.g. a.b=1 or a.b[0]=x",
                          source="command line")
    node: Any = root
    walked = ""
    for i, (name, index) in enumerate(tokens):
        last = i == len(tokens) - 1
        if index is not None:
            if not isinstance(node, list):
                raise ConfigError(f"override '{key}': '{walked}' is not a list, it cannot take [{index}]",
                                  source="command line")
            idx = int(index)
            if not -len(node) <= idx < len(node):
                raise ConfigError(
                    f"override '{key}': index {idx} is out of range for '{walked}' "
                    f"(it has {len(node)} elements); set the whole list instead, e.g. {walked}=[...]",
                    source="command line")
            if last:
                node[idx] = value
            else:
                node = node[idx]
            walked += f"[{index}]"
            continue
        parent, walked = walked, f"{walked}.{name}" if walked else name
        if isinstance(node, list) and name.isdigit():
            raise ConfigError(f"override '{key}': '{parent}' is a list; an element is written {parent}[{name}]",
                              source="command line")
        if not isinstance(node, dict):
            raise ConfigError(f"override '{key}': '{walked}' lies under a value that is not a mapping",
                              source="command line")
        if last:
            node[name] = value
        else:
            nxt = node.get(name)
            if nxt is None or nxt == "???":  # unset: the override creates the container
                nxt = node[name] = {} if tokens[i + 1][1] is None else []
            elif isinstance(nxt, str) and tokens[i + 1][1] is None:
                nxt = node[name] = {"type": nxt}  # a part given by name: sampler=x -> {type: x}
            node = nxt


def delete_path(root: dict[str, Any], key: str, defaults: dict[str, Any]) -> None:
    """Delete ``a.b[0].c`` (``~a.b[0].c``); a key of ``defaults.yaml`` outside a part node gets its default back.

    Raises:
        ConfigError: the key is not in the composed config.
    """
    if not _KEY.fullmatch(key):
        raise ConfigError(f"override '~{key}': '{key}' is not a dotted path; write e.g. ~scheduler.warmup_steps",
                          source="command line")
    tokens = [(m.group(1), m.group(2)) for m in _TOKEN.finditer(key)]
    parent: Any = None
    node: Any = root
    walked = ""
    for name, index in tokens:
        parent = node
        if index is not None:
            idx = int(index)
            if not isinstance(node, list) or not -len(node) <= idx < len(node):
                size = f"it has {len(node)} elements" if isinstance(node, list) else "it is not a list"
                raise ConfigError(f"override '~{key}': there is no '{walked}[{index}]' to delete ({size})",
                                  source="command line")
            node, walked = node[idx], f"{walked}[{index}]"
            continue
        here = f"{walked}.{name}" if walked else name
        if not isinstance(node, dict) or name not in node:
            known = sorted(map(str, node)) if isinstance(node, dict) else []
            close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
            hint = (f"did you mean {' or '.join(f'~{walked}.{c}' if walked else f'~{c}' for c in close)}?" if close
                    else f"{walked or 'the top level'} has: {', '.join(known) or 'nothing'}")
            raise ConfigError(f"override '~{key}': the composed config has no '{here}', nothing to delete; {hint}",
                              source="command line")
        node, walked = node[name], here
    name, index = tokens[-1]
    if index is not None:
        del parent[int(index)]
        return
    del parent[name]
    default = default_at(defaults, key)
    if default is not _ABSENT:
        parent[name] = copy.deepcopy(default)  # a fixed key cannot be absent: back to its default


_ABSENT = object()


def default_at(defaults: dict[str, Any], key: str) -> Any:
    """The value ``defaults.yaml`` gives ``key`` when no part node encloses it, else ``_ABSENT``."""
    from unimm.config.validate import node_kind  # validation imports this module

    parts = key.split(".")
    if "[" in key or any(node_kind(".".join(parts[:i])) for i in range(1, len(parts))):
        return _ABSENT  # inside a part node (e.g. optimizer.lr): the builder's default applies
    node: Any = defaults
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: dotted keys of a plain config; lists are leaves."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out
