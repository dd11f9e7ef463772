"""Named registries of factories, one instance per kind of part.

A registry maps a lower_snake name to a builder (a class or a function). It holds no
runtime state: building a part always goes through ``build`` with a config node and the
runtime objects of the call site (parameters, a tokenizer, dataset information).

    @MODELS.register()
    def unit(image_encoder, text_encoder, ...): ...

    model = MODELS.build({"type": "unit", ...}, dataset_info=info)
"""
from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping


class RegistryError(KeyError):
    """An unknown or duplicate name. ``str()`` is the plain message (KeyError quotes it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Entry:
    """One registered builder.

    Attributes:
        name: the registered name.
        builder: the class or function that builds the part.
        parts: builder argument name -> registry (or its kind), for arguments that take
            already-built sub-parts; the config gives a node (or a list / mapping of nodes)
            there, and ``build`` builds it first.
    """

    name: str
    builder: Callable[..., Any]
    parts: Mapping[str, "str | Registry"] = field(default_factory=dict)

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

    def register(
        self, name: str | None = None, *, parts: Mapping[str, "str | Registry"] | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator that registers a builder under ``name`` (default: its own name)."""

        def decorate(builder: Callable[..., Any]) -> Callable[..., Any]:
            key = name or builder.__name__
            if key in self._entries:
                taken = self._entries[key]
                raise RegistryError(
                    f"{self.kind}: the name '{key}' is already registered by "
                    f"{taken.module}.{getattr(taken.builder, '__qualname__', key)}; "
                    "choose another name"
                )
            self._entries[key] = Entry(key, builder, dict(parts or {}))
            return builder

        return decorate

    def get(self, name: str) -> Entry:
        """The entry for ``name``; an unknown name raises with the closest names."""
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(self.unknown_message(name)) from None

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

    def build(self, node: Any, /, **runtime: Any) -> Any:
        """Build the part a config node describes.

        Args:
            node: a registered name, or a mapping with ``type`` and the builder's
                keyword arguments. Arguments declared as ``parts`` are built first.
            **runtime: objects from the call site; each is passed only when the builder
                accepts it (by name or through ``**kwargs``).
        """
        name, kwargs = split_node(node)
        entry = self.get(name)
        for arg, kind in entry.parts.items():
            if arg in kwargs:
                kwargs[arg] = build_parts(registry_of(kind), kwargs[arg], runtime)
        kwargs.update(accepted(entry.builder, runtime))
        return entry.builder(**kwargs)


def registry_of(kind: "str | Registry") -> "Registry":
    """The registry itself, or the one of that kind."""
    return kind if isinstance(kind, Registry) else REGISTRIES[kind]


def split_node(node: Any) -> tuple[str, dict[str, Any]]:
    """``"name"`` or ``{"type": name, **kwargs}`` -> ``(name, kwargs)``."""
    if isinstance(node, str):
        return node, {}
    if isinstance(node, Mapping) and "type" in node:
        kwargs = {str(k): v for k, v in node.items() if k != "type"}
        return str(node["type"]), kwargs
    raise RegistryError(f"a part is given by a name or a mapping with 'type', got {node!r}")


def build_parts(registry: Registry, value: Any, runtime: Mapping[str, Any]) -> Any:
    """Build a sub-part, a list of sub-parts, or a mapping of named sub-parts."""
    if value is None or isinstance(value, str) or (isinstance(value, Mapping) and "type" in value):
        return None if value is None else registry.build(value, **runtime)
    if isinstance(value, Mapping):
        return {key: build_parts(registry, v, runtime) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [build_parts(registry, v, runtime) for v in value]
    return value  # already built (a module passed in code)


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
DECODERS = Registry("decoders")
HEADS = Registry("heads", runtime_args=("dataset_info",))
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

REGISTRIES: dict[str, Registry] = {
    r.kind: r
    for r in (
        MODELS, ENCODERS, DECODERS, HEADS, DATASETS, PROCESSORS, LOSSES, METRICS,
        OPTIMIZERS, SCHEDULERS, OPTIMIZER_HOOKS, TASK_SAMPLERS, STEP_STRATEGIES, CALLBACKS,
    )
}
