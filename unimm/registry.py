"""Named registries of factories, one instance per kind of part.

A registry maps a lower_snake name to a builder (a class or a function). It holds no
runtime state: building a part always goes through ``build`` with a config node and the
runtime objects of the call site (parameters, a tokenizer, dataset information).

    @MODELS.register()
    def unit(image_encoder, text_encoder, ...): ...

    model = MODELS.build({"type": "unit", ...}, dataset_info=info)
"""
from __future__ import annotations

import contextvars
import difflib
import inspect
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from unimm.config.errors import ConfigError, join_path

logger = logging.getLogger("unimm")
# The dotted config path of the part being built (e.g. "model.image_encoder"), so that a
# builder's ConfigError is reported at its place in the config however deeply it is nested.
_BUILD_PATH: contextvars.ContextVar[str] = contextvars.ContextVar("unimm_build_path", default="")


class RegistryError(KeyError):
    """An unknown or duplicate name. ``str()`` is the plain message (KeyError quotes it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Part:
    """How a builder argument holds sub-parts of another kind.

    Attributes:
        kind: the registry (or its kind) of the sub-parts.
        supplied: arguments of the sub-part's builder that the parent passes when it builds
            it (e.g. ``task_names``); validation does not ask the config for them.
        deferred: the parent builds the sub-part itself (to pass ``supplied``): ``build``
            hands it the node as a ``PartNode``, which knows its config path.
        default_type: the parent chooses the type when a node leaves it out (a mapping of
            arguments only); validation then checks such a node when it is built.
    """

    kind: "str | Registry"
    supplied: tuple[str, ...] = ()
    deferred: bool = False
    default_type: bool = False


class PartNode(dict):
    """A sub-part's config node handed unbuilt to its parent, with its dotted ``path`` in the config."""

    def __init__(self, node: Mapping[str, Any], path: str) -> None:
        super().__init__(node)
        self.path = path


@dataclass(frozen=True)
class Entry:
    """One registered builder.

    Attributes:
        name: the registered name.
        builder: the class or function that builds the part.
        parts: builder argument (or a pattern inside one, ``"tasks.*.head"``) -> ``Part``,
            for arguments that take sub-parts; the config gives a node (or a list / mapping
            of nodes) there, and ``build`` builds it first unless the part is deferred.
        outputs: for metrics, ``outputs(**node_arguments)`` -> the keys ``compute()`` returns
            (``*`` matches any text); lets the config's references to results be checked
            before a run.
    """

    name: str
    builder: Callable[..., Any]
    parts: Mapping[str, Part] = field(default_factory=dict)
    outputs: Callable[..., list[str]] | None = None

    @property
    def module(self) -> str:
        return getattr(self.builder, "__module__", "?")

    @property
    def doc(self) -> str:
        """The first line of the builder's docstring."""
        text = inspect.getdoc(self.builder) or ""
        return text.strip().splitlines()[0] if text.strip() else ""


class Registry:
    """Builders of one kind of part, by name.

    Args:
        kind: the plural name of the kind, e.g. ``"models"``.
        runtime_args: argument names that the call site passes (never the config);
            config validation does not ask for them, and ``build`` passes each one only
            when the builder accepts it.
    """

    def __init__(self, kind: str, runtime_args: Iterable[str] = ()) -> None:
        self.kind = kind
        self.runtime_args = tuple(runtime_args)
        self._entries: dict[str, Entry] = {}
        self._renamed: dict[str, tuple[str, str]] = {}

    def register(
        self, name: str | None = None, *, parts: Mapping[str, "str | Registry | Part"] | None = None,
        outputs: Callable[..., list[str]] | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator that registers a builder under ``name`` (default: its own name).

        Args:
            name: the registered name; the builder's own name when None.
            parts: arguments holding sub-parts: a kind, a registry, or a ``Part``.
            outputs: see ``Entry.outputs``.
        """

        def decorate(builder: Callable[..., Any]) -> Callable[..., Any]:
            key = name or builder.__name__
            if key in self._entries:
                taken = self._entries[key]
                raise RegistryError(
                    f"{self.kind}: the name '{key}' is already registered by "
                    f"{taken.module}.{getattr(taken.builder, '__qualname__', key)}; "
                    "choose another name"
                )
            declared = {arg: kind if isinstance(kind, Part) else Part(kind) for arg, kind in (parts or {}).items()}
            self._entries[key] = Entry(key, builder, declared, outputs)
            return builder

        return decorate

    def rename(self, old: str, new: str, where: str = "") -> None:
        """Keep an old name working: it builds ``new`` (once registered) with a deprecation warning.

        Args:
            old: the name configs used before.
            new: the name now registered.
            where: what registers ``new`` when it is not in unimm (e.g. ``projects/unit``).
        """
        self._renamed[old] = (new, where)

    def get(self, name: str) -> Entry:
        """The entry for ``name``; an unknown name raises with the closest names."""
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        if name in self._renamed:
            new, where = self._renamed[name]
            if new in self._entries:
                logger.warning("%s: '%s' was renamed '%s'; use the new name (the old one will go)",
                               self.kind, name, new)
                return self._entries[new]
            raise RegistryError(f"{self.kind}: '{name}' was renamed '{new}'" + (
                f", which {where} registers; load it (env.user_dir) and use the new name" if where else ""))
        raise RegistryError(self.unknown_message(name))

    def renamed(self) -> dict[str, str]:
        """Old name -> new name of every rename."""
        return {old: new for old, (new, _) in self._renamed.items()}

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), self._entries, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else (
            f"registered: {', '.join(sorted(self._entries)) or 'none'}"
        )
        return f"unknown {self.kind} name '{name}'; {hint}"

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} names)"

    def build(self, node: Any, /, *, path: str | None = None, **runtime: Any) -> Any:
        """Build the part a config node describes.

        Args:
            node: a registered name, or a mapping with ``type`` and the builder's
                keyword arguments. Arguments declared as ``parts`` are built first
                (deferred ones are handed over as ``PartNode``).
            path: the node's dotted path in the config (``"training.sampler"``); by default
                a ``PartNode``'s own path, else the path of the part being built. A
                ``ConfigError`` of the builder is reported under it.
            **runtime: objects from the call site; each is passed only when the builder
                accepts it (by name or through ``**kwargs``).
        """
        if path is None:
            path = node.path if isinstance(node, PartNode) else _BUILD_PATH.get()
        token = _BUILD_PATH.set(path)
        try:
            name, kwargs = split_node(node)
            entry = self.get(name)
            for arg, part in entry.parts.items():
                if "." in arg or arg not in kwargs:
                    continue  # a pattern inside an argument: the builder builds those itself
                sub_path = join_path(path, arg)
                if part.deferred:
                    kwargs[arg] = defer_parts(kwargs[arg], sub_path)
                else:
                    kwargs[arg] = build_parts(registry_of(part.kind), kwargs[arg], runtime, sub_path)
            given = {**kwargs, **accepted(entry.builder, runtime)}
            problems = _argument_problems(entry.builder, kwargs, entry.parts, path)
            problems += [f"{join_path(path, arg)}: required by {self.kind} '{name}'; set it"
                         for arg in required_arguments(entry.builder) if arg not in given]
            if problems:
                raise ConfigError(problems, rooted=True)  # the paths are already full
            return entry.builder(**given)
        except ConfigError as err:
            raise err.at(path) from None
        except RegistryError as err:
            if getattr(err, "rooted", False) or not path:
                raise
            rooted = RegistryError(f"{path}: {err}")
            rooted.rooted = True  # type: ignore[attr-defined]
            raise rooted from None
        finally:
            _BUILD_PATH.reset(token)


    def build_part(self, node: Any, key: str, /, **supplied: Any) -> Any:
        """Build a sub-part that a parent builds itself (a deferred ``Part``), with ``supplied`` values.

        The node's own arguments win over ``supplied`` (the parent's defaults, e.g. sizes it
        computed); the part is reported at the node's path, or at ``key`` inside the part being
        built when the node was made in code.
        """
        path = node.path if isinstance(node, PartNode) else current_path(key)
        name, kwargs = split_node(node)
        return self.build({**supplied, **kwargs, "type": name}, path=path)


def _argument_problems(builder: Any, kwargs: Mapping[str, Any], parts: Mapping[str, Part], path: str) -> list[str]:
    from unimm.config.validate import argument_problems  # validation imports this module

    return argument_problems(builder, kwargs, parts, path)


def current_path(key: str | None = None) -> str:
    """The config path of the part being built, or of ``key`` inside it (for parents that build sub-parts)."""
    return join_path(_BUILD_PATH.get(), key)


def registry_of(kind: "str | Registry | Part") -> "Registry":
    """The registry itself, or the one of that kind."""
    if isinstance(kind, Part):
        kind = kind.kind
    return kind if isinstance(kind, Registry) else REGISTRIES[kind]


def split_node(node: Any) -> tuple[str, dict[str, Any]]:
    """``"name"`` or ``{"type": name, **kwargs}`` -> ``(name, kwargs)``."""
    if isinstance(node, str):
        return node, {}
    if isinstance(node, Mapping) and "type" in node:
        kwargs = {str(k): v for k, v in node.items() if k != "type"}
        return str(node["type"]), kwargs
    raise RegistryError(f"a part is given by a name or a mapping with 'type', got {node!r}")


def is_node(value: Any) -> bool:
    """A part node: a name or a mapping with ``type``."""
    return isinstance(value, str) or (isinstance(value, Mapping) and "type" in value)


def build_parts(registry: Registry, value: Any, runtime: Mapping[str, Any], path: str = "") -> Any:
    """Build a sub-part, a list of sub-parts, or a mapping of named sub-parts."""
    if value is None or is_node(value):
        return None if value is None else registry.build(value, path=path, **runtime)
    if isinstance(value, Mapping):
        return {key: build_parts(registry, v, runtime, join_path(path, str(key))) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [build_parts(registry, v, runtime, f"{path}[{i}]") for i, v in enumerate(value)]
    return value  # already built (a module passed in code)


def defer_parts(value: Any, path: str) -> Any:
    """Sub-part nodes as ``PartNode`` (with their paths) for a parent that builds them itself."""
    if isinstance(value, str):
        return PartNode({"type": value}, path)
    if isinstance(value, Mapping) and "type" in value:
        return PartNode(value, path)
    if isinstance(value, Mapping):
        return {key: defer_parts(v, join_path(path, str(key))) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [defer_parts(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def required_arguments(builder: Callable[..., Any]) -> list[str]:
    """The keyword arguments of ``builder`` that have no default."""
    try:
        params = inspect.signature(builder).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.default is inspect.Parameter.empty
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]


def accepted(builder: Callable[..., Any], runtime: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``runtime`` that ``builder``'s signature accepts."""
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(runtime)
    return {k: v for k, v in runtime.items() if k in params}


MODELS = Registry("models", runtime_args=("dataset_info",))
ENCODERS = Registry("encoders")
FUSIONS = Registry("fusions")
DECODERS = Registry("decoders")
HEADS = Registry("heads")
DATASETS = Registry("datasets", runtime_args=("split", "name"))
PROCESSORS = Registry("processors")
LOSSES = Registry("losses")
METRICS = Registry("metrics", runtime_args=("dataset", "name"))
OPTIMIZERS = Registry("optimizers", runtime_args=("params",))
SCHEDULERS = Registry("schedulers", runtime_args=("optimizer", "max_updates"))
OPTIMIZER_HOOKS = Registry("optimizer_hooks", runtime_args=("model", "optimizer"))
TASK_SAMPLERS = Registry("task_samplers", runtime_args=("dataset_sizes", "seed"))
STEP_STRATEGIES = Registry("step_strategies")
CALLBACKS = Registry("callbacks")
BENCHMARKS = Registry("benchmarks")

REGISTRIES: dict[str, Registry] = {
    r.kind: r
    for r in (
        MODELS, ENCODERS, FUSIONS, DECODERS, HEADS, DATASETS, PROCESSORS, LOSSES, METRICS,
        OPTIMIZERS, SCHEDULERS, OPTIMIZER_HOOKS, TASK_SAMPLERS, STEP_STRATEGIES, CALLBACKS, BENCHMARKS,
    )
}


def _register_renames() -> None:
    from unimm._moved import register_renames

    register_renames()


_register_renames()
