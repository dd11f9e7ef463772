"""Validate a whole config before anything heavy is built, reporting every problem.

Fixed sections (``env``, ``training`` ...) are checked against ``defaults.yaml``: unknown
keys, wrong value types and values outside their choices. Part nodes (``model``,
``datasets.<name>``, ``optimizer`` ...) are bound to their registered builder's signature:
an unknown name, an unknown argument, a missing required argument or a value of the wrong
type is an error. Sub-parts declared by the builder are checked the same way.
"""
from __future__ import annotations

import difflib
import inspect
import re
import typing
from typing import Any, Mapping

from omegaconf import DictConfig, ListConfig, OmegaConf

from unimm.config.errors import ConfigError
from unimm.config.loader import DEFAULTS, read_yaml
from unimm.registry import REGISTRIES, Registry, RegistryError, registry_of

# Where the part nodes live: dotted path ("*" = each key, "[]" = each element) -> kind.
NODE_PATHS: dict[str, str] = {
    "model": "models",
    "datasets.*": "datasets",
    "optimizer": "optimizers",
    "scheduler": "schedulers",
    "training.sampler": "task_samplers",
    "training.step_strategy": "step_strategies",
    "training.optimizer_hooks[]": "optimizer_hooks",
    "training.callbacks[]": "callbacks",
    "evaluation.metrics.*[]": "metrics",
}
CHOICES: dict[str, tuple[Any, ...]] = {
    "run_type": ("train", "val", "test", "train_val", "predict"),
    "env.log_level": ("debug", "info", "warning"),
    "env.benchmark.size": ("tiny", "default", "large"),
    "training.amp": ("none", "bf16", "fp16"),
    "training.on_nonfinite": ("stop", "skip"),
    "training.parallel": ("ddp", "fsdp"),
    "training.early_stop.mode": ("max", "min"),
}
# Sections whose values are free (user-chosen keys); their members are checked elsewhere.
OPEN_SECTIONS = ("vars", "datasets", "evaluation.metrics", "checkpoint.key_map")


def validate_config(cfg: DictConfig) -> dict[str, Any]:
    """Resolve and check ``cfg``; return it as plain containers.

    Raises:
        ConfigError: every problem found, each with its dotted path and the fix.
    """
    errors: list[str] = []
    plain = resolve_all(cfg, "", errors)
    check_section(plain, read_yaml(DEFAULTS), "", errors)
    for pattern, kind in NODE_PATHS.items():
        for path, node in select(plain, pattern):
            check_node(node, REGISTRIES[kind], path, errors, runtime=())
    check_cross_references(plain, errors)
    if errors:
        raise ConfigError(errors)
    return plain


def resolve_all(node: Any, path: str, errors: list[str]) -> Any:
    """Plain containers with interpolations resolved; missing / broken values noted."""
    if isinstance(node, DictConfig):
        out = {}
        for key in node.keys():
            sub = f"{path}.{key}" if path else str(key)
            if OmegaConf.is_missing(node, key):
                errors.append(f"{sub}: no value given; set it in the YAML or as {sub}=...")
                continue
            try:
                value = node._get_node(key)._dereference_node()  # resolves ${...}
            except Exception as err:
                errors.append(f"{sub}: cannot resolve {node._get_node(key)._value()!r}: {first_line(err)}")
                continue
            out[str(key)] = resolve_all(value, sub, errors)
        return out
    if isinstance(node, ListConfig):
        items = []
        for i in range(len(node)):
            sub = f"{path}[{i}]"
            try:
                items.append(resolve_all(node._get_node(i)._dereference_node(), sub, errors))
            except Exception as err:
                errors.append(f"{sub}: cannot resolve: {first_line(err)}")
        return items
    return node._value() if hasattr(node, "_value") else node


def first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def check_section(value: Any, default: Any, path: str, errors: list[str]) -> None:
    """Compare a fixed section with its defaults: keys, types, choices."""
    if path in CHOICES and value not in CHOICES[path]:
        errors.append(f"{path}: {value!r} is not one of {', '.join(map(str, CHOICES[path]))}")
    if not isinstance(default, dict) or path in OPEN_SECTIONS or node_kind(path):
        if node_kind(path) is None and path not in OPEN_SECTIONS:
            check_leaf_type(value, default, path, errors)
        return
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a mapping of keys, got {value!r}")
        return
    for key, sub in value.items():
        sub_path = f"{path}.{key}" if path else key
        if key not in default:
            close = difflib.get_close_matches(key, list(default), n=2, cutoff=0.6)
            hint = f"did you mean {' or '.join(close)}?" if close else f"known keys: {', '.join(default)}"
            errors.append(f"{sub_path}: unknown key; {hint}")
            continue
        check_section(sub, default[key], sub_path, errors)


def check_leaf_type(value: Any, default: Any, path: str, errors: list[str]) -> None:
    if default is None or value is None or default == "???":
        return
    expected: tuple[type, ...]
    if isinstance(default, bool):
        expected = (bool,)
    elif isinstance(default, (int, float)):
        expected = (int, float) if isinstance(default, float) else (int,)
        if isinstance(value, bool):
            expected = ()
    else:
        expected = (type(default),)
    if not isinstance(value, expected):
        errors.append(f"{path}: expected {type(default).__name__}, got {value!r}")


def node_kind(path: str) -> str | None:
    """The registry kind of the part node at ``path``, if any."""
    for pattern, kind in NODE_PATHS.items():
        if matches(path, pattern):
            return kind
    return None


def matches(path: str, pattern: str) -> bool:
    """Whether a dotted path is an instance of a NODE_PATHS pattern."""
    parts = []
    for part in pattern.split("."):
        name, each_elem = (part[:-2], True) if part.endswith("[]") else (part, False)
        regex = r"[^.\[]+" if name == "*" else re.escape(name)
        parts.append(regex + (r"\[\d+\]" if each_elem else ""))
    return re.fullmatch(r"\.".join(parts), path) is not None


def select(root: Any, pattern: str) -> list[tuple[str, Any]]:
    """Every (path, value) in ``root`` matching a NODE_PATHS pattern."""
    found: list[tuple[str, Any]] = [("", root)]
    for part in pattern.split("."):
        name, each_elem = (part[:-2], True) if part.endswith("[]") else (part, False)
        nxt: list[tuple[str, Any]] = []
        for path, node in found:
            if not isinstance(node, dict):
                continue
            keys = list(node) if name == "*" else [name] if name in node else []
            for key in keys:
                sub = f"{path}.{key}" if path else key
                if each_elem:
                    if isinstance(node[key], list):
                        nxt.extend((f"{sub}[{i}]", v) for i, v in enumerate(node[key]))
                else:
                    nxt.append((sub, node[key]))
        found = nxt
    return found


def check_node(node: Any, registry: Registry, path: str, errors: list[str], runtime: tuple[str, ...]) -> None:
    """Bind a part node to its builder's signature and note every mismatch."""
    if node is None:
        errors.append(f"{path}: a {registry.kind} node is required; set {path}.type=<name>")
        return
    if isinstance(node, str):
        name, kwargs = node, {}
    elif isinstance(node, dict):
        if "type" not in node:
            errors.append(f"{path}: no 'type'; set {path}.type to one of: {', '.join(registry.names())}")
            return
        name, kwargs = str(node["type"]), {k: v for k, v in node.items() if k != "type"}
    else:
        errors.append(f"{path}: expected a {registry.kind} name or a mapping with 'type', got {node!r}")
        return
    try:
        entry = registry.get(name)
    except RegistryError as err:
        errors.append(f"{path}.type: {err}" if isinstance(node, dict) else f"{path}: {err}")
        return
    params, var_kw, hints = signature_of(entry.builder)
    supplied = set(runtime) | set(registry.runtime_args)
    for key, value in kwargs.items():
        if key in params:
            problem = type_problem(value, hints.get(key, inspect.Parameter.empty))
            if problem and key not in entry.parts:
                errors.append(f"{path}.{key}: {problem} for {registry.kind} '{name}'")
        elif not var_kw:
            settable = [p for p in params if p not in supplied]
            close = difflib.get_close_matches(key, settable, n=2, cutoff=0.6)
            hint = f"did you mean {' or '.join(close)}?" if close else f"it accepts: {', '.join(settable) or 'nothing'}"
            errors.append(f"{path}.{key}: unknown argument of {registry.kind} '{name}'; {hint}")
    for key, param in params.items():
        if param.default is inspect.Parameter.empty and key not in kwargs and key not in supplied:
            errors.append(f"{path}.{key}: required by {registry.kind} '{name}'; set {path}.{key}=...")
    for key, kind in entry.parts.items():
        if key in kwargs:
            for sub_path, sub in each_part(kwargs[key], f"{path}.{key}"):
                check_node(sub, registry_of(kind), sub_path, errors, runtime=tuple(supplied))


def each_part(value: Any, path: str) -> list[tuple[str, Any]]:
    """Sub-part nodes inside a parts argument (a node, a list or a mapping of nodes)."""
    if value is None:
        return []
    if isinstance(value, str) or (isinstance(value, dict) and "type" in value):
        return [(path, value)]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in each_part(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in each_part(v, f"{path}[{i}]")]
    return [(path, value)]


def signature_of(builder: Any) -> tuple[dict[str, inspect.Parameter], bool, dict[str, Any]]:
    """(named parameters, accepts **kwargs, resolved annotations) of a builder."""
    sig = inspect.signature(builder)
    params = {
        k: p for k, p in sig.parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    target = builder.__init__ if inspect.isclass(builder) else builder
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable forward references: skip type checks
        hints = {}
    return params, var_kw, hints


_PLAIN = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}


def type_problem(value: Any, annotation: Any) -> str | None:
    """A short description of why ``value`` does not fit ``annotation``, or None."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return None
        problems = [type_problem(value, a) for a in args if a is not type(None)]
        return None if any(p is None for p in problems) else f"{value!r} does not fit {fmt(annotation)}"
    if origin is typing.Literal:
        return None if value in args else f"{value!r} is not one of {', '.join(map(repr, args))}"
    if annotation in _PLAIN:
        ok = isinstance(value, _PLAIN[annotation]) and not (annotation is not bool and isinstance(value, bool))
        return None if ok else f"expected {annotation.__name__}, got {value!r}"
    container = origin or annotation
    if container in (list, tuple, typing.Sequence) or getattr(container, "__name__", "") in ("Sequence",):
        return None if isinstance(value, (list, tuple)) else f"expected a list, got {value!r}"
    if container in (dict, Mapping) or getattr(container, "__name__", "") in ("Mapping",):
        return None if isinstance(value, dict) else f"expected a mapping, got {value!r}"
    return None


def fmt(annotation: Any) -> str:
    return str(annotation).replace("typing.", "")


def check_cross_references(cfg: Mapping[str, Any], errors: list[str]) -> None:
    """Names that must refer to configured datasets."""
    datasets = cfg.get("datasets") or {}
    for name in (cfg.get("evaluation", {}).get("metrics") or {}):
        if name not in datasets:
            errors.append(f"evaluation.metrics.{name}: no dataset '{name}' is configured under datasets")
    if cfg.get("run_type") != "predict" and not datasets:
        errors.append("datasets: no dataset is configured; add datasets.<name>.type=<dataset builder>")
