"""Validate a whole config before anything heavy is built, reporting every problem.

Fixed sections (``env``, ``training`` ...) are checked against ``defaults.yaml``: unknown
keys, wrong value types and values outside their choices. Part nodes (``model``,
``datasets.<name>``, ``optimizer`` ...) are bound to their registered builder's signature:
an unknown name, an unknown argument, a missing required argument or a value that does not
fit the argument's annotation is an error. Sub-parts declared by the builder are checked the
same way, wherever they are nested. Names that refer to other parts of the config (a dataset
in sampler ratios, a ``<dataset>/<metric>`` in the early-stop setting, see
``unimm.config.refs``) are checked against the configured datasets and metrics.
"""
from __future__ import annotations

import difflib
import fnmatch
import inspect
import re
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Mapping

from omegaconf import DictConfig, ListConfig, OmegaConf

from unimm import registry as reg
from unimm.config.errors import ConfigError
from unimm.config.loader import DEFAULTS, read_yaml
from unimm.config.refs import Covers, DatasetName, MetricKey, Range, Ref

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
    "env.benchmark": "benchmarks",
}
NULLABLE_NODES = ("env.benchmark",)
CHOICES: dict[str, tuple[Any, ...]] = {
    "run_type": ("train", "val", "test", "train_val", "predict"),
    "env.log_level": ("debug", "info", "warning"),
    "training.amp": ("none", "bf16", "fp16"),
    "training.on_nonfinite": ("stop", "skip"),
    "training.parallel": ("ddp", "fsdp"),
    "training.early_stop.mode": ("max", "min"),
    "checkpoint.resume": (False, True, "if_exists"),
}
# Leaves whose default is a word but that also take numbers (checked by SECTION_REFS).
FREE_TYPE = ("env.num_threads", "env.plugins")


class _NeededRunOptions(typing.TypedDict, total=False):
    variant: str | None
    overrides: list[str]


class NeededRun(_NeededRunOptions):
    """An element of ``checkpoint.needs``: a file the run reads and the run that makes it (``session.make_stage``)."""

    path: str
    config: str


class ResizeRule(typing.TypedDict):
    """An element of ``checkpoint.init_resize`` beside a plain regex (which keeps one prefix row, [CLS]):
    the position tables it matches and the rows before their grid (``checkpoint.resize_table``)."""

    pattern: str
    num_prefix_tokens: Annotated[int, Range(ge=0)]


# Keys of fixed sections that refer to other parts of the config, or whose numbers have a range.
# (The defaults give their types; null stays allowed where the default is null.)
SECTION_REFS: dict[str, Any] = {
    "training.early_stop.metric": typing.Optional[MetricKey],
    "training.max_updates": Annotated[int, Range(ge=1)],
    "training.max_epochs": Annotated[float, Range(gt=0)],
    "env.num_threads": typing.Union[Literal["auto"], Annotated[int, Range(ge=1)]],
    "env.plugins": typing.Union[Literal["all", "none"], list[str]],
    "training.batch_size": Annotated[int, Range(ge=1)],
    "training.batch_sizes": dict[DatasetName, Annotated[int, Range(ge=1)]],
    "training.num_workers": Annotated[int, Range(ge=0)],
    "training.log_every": Annotated[int, Range(ge=1)],
    "training.eval_every": Annotated[int, Range(ge=0)],
    "training.eval_every_epochs": typing.Optional[Annotated[float, Range(gt=0)]],
    "training.clip_grad_norm": Annotated[float, Range(gt=0)],
    "training.grad_accum_steps": Annotated[int, Range(ge=1)],
    "training.no_decay": typing.Optional[list[str]],
    "training.early_stop.patience": Annotated[int, Range(ge=0)],
    "evaluation.max_batches": Annotated[int, Range(ge=1)],
    "evaluation.batch_size": Annotated[int, Range(ge=1)],
    "checkpoint.every": Annotated[int, Range(ge=0)],
    "checkpoint.keep_last": Annotated[int, Range(ge=1)],
    "checkpoint.needs": list[NeededRun],
    "checkpoint.init_resize": list[typing.Union[str, ResizeRule]],
}
# Sections whose values are free (user-chosen keys); their members are checked elsewhere.
OPEN_SECTIONS = ("vars", "datasets", "evaluation.metrics", "checkpoint.key_map", "training.batch_sizes")


@dataclass
class Context:
    """What references in the config are checked against.

    Attributes:
        datasets: the configured dataset names.
        outputs: dataset -> the result keys its metrics return (``*`` patterns), or None when
            a metric of it does not declare them.
        known: False when there is no config to check references against (a part built from
            code): references and coverage are then not checked.
    """

    datasets: list[str] = field(default_factory=list)
    outputs: dict[str, list[str] | None] = field(default_factory=dict)
    known: bool = True


def validate_config(cfg: DictConfig, source: str | None = None) -> dict[str, Any]:
    """Resolve and check ``cfg``; return it as plain containers.

    Args:
        cfg: the composed config.
        source: the file it was composed from, named in the error's heading.

    Raises:
        ConfigError: every problem found, each with its dotted path and the fix.
    """
    errors: list[str] = []
    plain = resolve_all(cfg, "", errors)
    check_section(plain, read_yaml(DEFAULTS), "", errors)
    ctx = context_of(plain)
    for pattern, kind in NODE_PATHS.items():
        for path, node in select(plain, pattern):
            if node is None and path in NULLABLE_NODES:
                continue
            check_node(node, reg.REGISTRIES[kind], path, errors, runtime=(), ctx=ctx)
    for path, annotation in SECTION_REFS.items():
        for _, value in select(plain, path):
            if value is not None:  # null means "not set" for these keys (see defaults.yaml)
                check_value(value, annotation, path, errors, ctx)
    check_cross_references(plain, errors)
    if errors:
        raise ConfigError(errors, source=f"{source} (with its includes and overrides)" if source else None)
    return plain


def context_of(cfg: Mapping[str, Any]) -> Context:
    """The configured datasets and the result keys of their metrics."""
    datasets = cfg.get("datasets")
    names = [str(n) for n in datasets] if isinstance(datasets, dict) else []
    outputs: dict[str, list[str] | None] = {}
    metrics = (cfg.get("evaluation") or {}).get("metrics") or {}
    for dataset, nodes in (metrics.items() if isinstance(metrics, dict) else []):
        keys: list[str] | None = []
        for node in nodes if isinstance(nodes, list) else []:
            try:
                name, kwargs = reg.split_node(node)
                entry = reg.METRICS.get(name)
                declared = entry.outputs(**kwargs) if entry.outputs is not None else None
            except Exception:  # a bad node is reported by check_node
                declared = None
            keys = None if keys is None or declared is None else keys + list(declared)
        outputs[str(dataset)] = keys
    return Context(names, outputs)


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
        if node_kind(path) is None and path not in OPEN_SECTIONS and path not in CHOICES and path not in FREE_TYPE:
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


def argument_problems(builder: Any, kwargs: Mapping[str, Any], skip: Any, path: str) -> list[str]:
    """Each argument given in ``kwargs`` that does not fit its annotation (type, choices, range).

    What ``Registry.build`` checks before it calls a builder, so that a part built from code meets
    the same declarations as one built from a validated config (references to other parts of a
    config are not checked here: there is no config).
    """
    _, _, hints = signature_of(builder)
    errors: list[str] = []
    for key, value in kwargs.items():
        if key in hints and key not in skip:
            check_value(value, hints[key], f"{path}.{key}" if path else key, errors, Context(known=False))
    return errors


def check_node(node: Any, registry: reg.Registry, path: str, errors: list[str], runtime: tuple[str, ...],
               ctx: Context | None = None) -> None:
    """Bind a part node to its builder's signature and note every mismatch.

    ``ctx`` holds what references are checked against; without it they are not checked.
    """
    ctx = ctx or Context(known=False)
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
    except reg.RegistryError as err:
        errors.append(f"{path}.type: {err}" if isinstance(node, dict) else f"{path}: {err}")
        return
    params, var_kw, hints = signature_of(entry.builder)
    supplied = set(runtime) | set(registry.runtime_args)
    for key, value in kwargs.items():
        if key in params:
            if key not in entry.parts:
                check_value(value, hints.get(key, inspect.Parameter.empty), f"{path}.{key}", errors, ctx,
                            what=f"{registry.kind} '{name}'")
        elif not var_kw:
            settable = [p for p in params if p not in supplied]
            close = difflib.get_close_matches(key, settable, n=2, cutoff=0.6)
            hint = f"did you mean {' or '.join(close)}?" if close else f"it accepts: {', '.join(settable) or 'nothing'}"
            errors.append(f"{path}.{key}: unknown argument of {registry.kind} '{name}'; {hint}")
    for key, param in params.items():
        if param.default is inspect.Parameter.empty and key not in kwargs and key not in supplied:
            errors.append(f"{path}.{key}: required by {registry.kind} '{name}'; set {path}.{key}=...")
    for key, part in entry.parts.items():
        sub_runtime = tuple(supplied | set(part.supplied))
        for arg_path, value in select(kwargs, key):
            if part.default_type and isinstance(value, dict) and "type" not in value:
                continue  # the parent picks the type, and builds it with its own arguments
            for sub_path, sub in each_part(value, f"{path}.{arg_path}"):
                check_node(sub, reg.registry_of(part), sub_path, errors, runtime=sub_runtime, ctx=ctx)


def each_part(value: Any, path: str) -> list[tuple[str, Any]]:
    """Sub-part nodes inside a parts argument (a node, a list or a mapping of nodes)."""
    if value is None:
        return []
    if reg.is_node(value):
        return [(path, value)]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in each_part(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in each_part(v, f"{path}[{i}]")]
    return [(path, value)]


def signature_of(builder: Any) -> tuple[dict[str, inspect.Parameter], bool, dict[str, Any]]:
    """(named parameters, accepts **kwargs, resolved annotations with their markers) of a builder."""
    sig = inspect.signature(builder)
    params = {
        k: p for k, p in sig.parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    target = builder.__init__ if inspect.isclass(builder) else builder
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable forward references: skip type checks
        hints = {}
    return params, var_kw, hints


_PLAIN = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}


def check_value(value: Any, annotation: Any, path: str, errors: list[str], ctx: Context,
                what: str = "") -> None:
    """Note every way ``value`` does not fit ``annotation`` (types, choices, ranges, references)."""
    suffix = f" for {what}" if what else ""
    for sub_path, problem in value_problems(value, annotation, path, ctx):
        errors.append(f"{sub_path}: {problem}{suffix}")


def value_problems(value: Any, annotation: Any, path: str, ctx: Context) -> list[tuple[str, str]]:
    """(path, problem) for each way ``value`` does not fit ``annotation``."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return []
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        problems = value_problems(value, args[0], path, ctx)
        if problems and type_only_problem(value, args[0]):
            return problems  # the markers need a value of the right kind
        for marker in annotation.__metadata__:
            problems += marker_problems(value, marker, path, ctx)
        return problems
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return []
        options = [a for a in args if a is not type(None)]
        found = [value_problems(value, a, path, ctx) for a in options]
        if any(not p for p in found):
            return []
        if len(options) == 1:
            return found[0]
        fitting_type = [p for p, a in zip(found, options) if not type_only_problem(value, a)]
        if len(fitting_type) == 1:  # the value has the right shape for one option: say what is wrong inside
            return fitting_type[0]
        return [(path, f"{value!r} does not fit {fmt(annotation)}")]
    if origin is typing.Literal:
        return [] if value in args else [(path, f"{value!r} is not one of {', '.join(map(repr, args))}")]
    if annotation in _PLAIN:
        ok = isinstance(value, _PLAIN[annotation]) and not (annotation is not bool and isinstance(value, bool))
        return [] if ok else [(path, f"expected {annotation.__name__}, got {value!r}")]
    if typing.is_typeddict(annotation):
        return typeddict_problems(value, annotation, path, ctx)
    container = origin or annotation
    if container in (list, tuple, typing.Sequence) or getattr(container, "__name__", "") in ("Sequence",):
        if not isinstance(value, (list, tuple)):
            return [(path, f"expected a list, got {value!r}")]
        item = args[0] if args and (container is not tuple or len(args) == 2 and args[1] is Ellipsis) else Any
        return [p for i, v in enumerate(value) for p in value_problems(v, item, f"{path}[{i}]", ctx)]
    if container in (dict, Mapping) or getattr(container, "__name__", "") in ("Mapping",):
        if not isinstance(value, dict):
            return [(path, f"expected a mapping, got {value!r}")]
        key_type, item = (args[0], args[1]) if len(args) == 2 else (Any, Any)
        problems = []
        for key, v in value.items():
            problems += [(p, f"(a key) {text}") for p, text in value_problems(key, key_type, f"{path}.{key}", ctx)]
            problems += value_problems(v, item, f"{path}.{key}", ctx)
        return problems
    return []


def type_only_problem(value: Any, annotation: Any) -> bool:
    """Whether ``value`` is of another kind than ``annotation`` (not a list for a list, ...)."""
    origin = typing.get_origin(annotation) or annotation
    if origin is typing.Annotated:
        return type_only_problem(value, typing.get_args(annotation)[0])
    if typing.is_typeddict(annotation) or origin in (dict, Mapping):
        return not isinstance(value, dict)
    if origin in (list, tuple, typing.Sequence):
        return not isinstance(value, (list, tuple))
    if origin is typing.Literal:
        return not any(type(value) is type(choice) for choice in typing.get_args(annotation))
    if annotation in _PLAIN:
        return not isinstance(value, _PLAIN[annotation]) or (annotation is not bool and isinstance(value, bool))
    return True


def typeddict_problems(value: Any, annotation: Any, path: str, ctx: Context) -> list[tuple[str, str]]:
    if not isinstance(value, dict):
        return [(path, f"expected a mapping with keys {', '.join(typing.get_type_hints(annotation))}, "
                       f"got {value!r}")]
    hints = typing.get_type_hints(annotation, include_extras=True)
    problems = []
    for key, v in value.items():
        if key not in hints:
            close = difflib.get_close_matches(str(key), list(hints), n=2, cutoff=0.6)
            hint = f"did you mean {' or '.join(close)}?" if close else f"use {', '.join(hints)}"
            problems.append((f"{path}.{key}", f"unknown key; {hint}"))
        else:
            problems += value_problems(v, hints[key], f"{path}.{key}", ctx)
    for key in getattr(annotation, "__required_keys__", ()):
        if key not in value:
            problems.append((f"{path}.{key}", "required; set it"))
    return problems


def marker_problems(value: Any, marker: Any, path: str, ctx: Context) -> list[tuple[str, str]]:
    if isinstance(marker, Range):
        problem = marker.problem(value)
        return [(path, problem)] if problem else []
    if not ctx.known:
        return []
    if isinstance(marker, Covers):
        named = set(value) if isinstance(value, (dict, list, tuple)) else set()
        missing = [n for n in ctx.datasets if n not in named]
        return [(f"{path}.{n}", f"missing; name every dataset here (configured: {', '.join(ctx.datasets)})")
                for n in missing]
    if isinstance(marker, Ref) and isinstance(value, str):
        if marker.kind == "dataset":
            return [] if value in ctx.datasets else [(path, unknown_dataset(value, ctx))]
        if marker.kind == "metric":
            return metric_key_problems(value, path, ctx)
    return []


def unknown_dataset(name: str, ctx: Context) -> str:
    close = difflib.get_close_matches(name, ctx.datasets, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return (f"'{name}' is not a configured dataset; {hint}"
            f"the datasets are: {', '.join(ctx.datasets) or 'none'} (the keys of the datasets section)")


def metric_key_problems(key: str, path: str, ctx: Context) -> list[tuple[str, str]]:
    dataset, slash, output = key.partition("/")
    if not slash or not output:
        return [(path, f"'{key}' is not <dataset>/<metric>, e.g. "
                       f"'{(ctx.datasets or ['vqa2'])[0]}/accuracy'")]
    if dataset not in ctx.datasets:
        return [(path, unknown_dataset(dataset, ctx))]
    outputs = ctx.outputs.get(dataset, [])
    if outputs is None:  # a metric that does not say what it returns
        return []
    if not any(fnmatch.fnmatchcase(output, pattern) for pattern in outputs):
        known = ", ".join(f"{dataset}/{o}" for o in outputs)
        return [(path, f"'{key}' is not a result of the metrics of dataset '{dataset}' "
                       f"(evaluation.metrics.{dataset}: {known or 'none configured'})")]
    return []


def fmt(annotation: Any) -> str:
    return str(annotation).replace("typing.", "")


def check_cross_references(cfg: Mapping[str, Any], errors: list[str]) -> None:
    """Names that must refer to configured datasets, and settings that only make sense together."""
    datasets = cfg.get("datasets")
    if datasets is not None and not isinstance(datasets, dict):
        errors.append(f"datasets: expected a mapping of dataset names to dataset nodes, e.g. "
                      f"'datasets: {{sst2: {{type: glue, ...}}}}', got a {type(datasets).__name__}")
        return
    training = cfg.get("training") if isinstance(cfg.get("training"), dict) else {}
    if cfg.get("run_type") in ("train", "train_val") and training.get("max_updates") is None \
            and training.get("max_epochs") is None:
        errors.append("training.max_updates: null, and so is training.max_epochs; set at least one of them")
    if training.get("eval_every") and training.get("eval_every_epochs") is not None:
        errors.append("training.eval_every_epochs: set, and so is training.eval_every; evaluate by updates or by "
                      "epochs, not both (set the other to 0 / null)")
    metrics = (cfg.get("evaluation") or {}).get("metrics") or {}
    for name in (metrics if isinstance(metrics, dict) else {}):
        if name not in datasets:
            errors.append(f"evaluation.metrics.{name}: no dataset '{name}' is configured under datasets")
    datasets = datasets or {}
    if cfg.get("run_type") != "predict" and not datasets:
        errors.append("datasets: no dataset is configured; add datasets.<name>.type=<dataset builder>")
