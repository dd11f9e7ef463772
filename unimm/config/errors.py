"""The one error type a user sees for a bad config or bad input."""
from __future__ import annotations

from typing import Iterable, Union

# A problem is its text, or (key, text) where key is a dotted path relative to the part that
# raised it (``"ratios.coco"``, ``"[2]"``); ``at()`` roots it at the part's place in the config.
Problem = Union[str, "tuple[str | None, str]"]


class ConfigError(ValueError):
    """One or more problems, each naming where it is (a dotted path or a file) and the fix.

    A part's builder raises with paths relative to its own node, e.g.
    ``ConfigError("missing; give every dataset a ratio", key="ratios.coco")``; the registry
    roots the error at the node's path in the config when it builds the part, so the user reads
    ``training.sampler.ratios.coco: missing; ...`` wherever the part is nested.

    Args:
        problems: one problem, or a list; a problem is a line of text or ``(key, text)``.
        source: what was being read (a config file, a data file), shown in the heading.
        key: the relative key of every problem given as plain text.
        rooted: the problems already name their full paths (e.g. a section of the config
            outside the part that raises them); ``at()`` leaves them as they are.
    """

    def __init__(self, problems: Problem | Iterable[Problem], source: str | None = None, *,
                 key: str | None = None, rooted: bool = False) -> None:
        items = [problems] if isinstance(problems, (str, tuple)) else list(problems)
        self.items: list[tuple[str | None, str]] = [
            (p[0], str(p[1])) if isinstance(p, tuple) else (key, str(p)) for p in items]
        self.source = source
        self.rooted = rooted
        super().__init__(str(self))

    @property
    def problems(self) -> list[str]:
        """Each problem as one line, ``key: text`` where it has a key."""
        return [f"{key}: {text}" if key else text for key, text in self.items]

    def at(self, path: str) -> ConfigError:
        """The same problems under ``path`` (the node that raised them); rooted errors stay as they are."""
        if self.rooted:
            return self
        return ConfigError([(join_path(path, key), text) for key, text in self.items], self.source, rooted=True)

    def __str__(self) -> str:
        where = f" in {self.source}" if self.source else ""
        problems = self.problems
        if len(problems) == 1:
            return f"config error{where}: {problems[0]}"
        lines = "\n".join(f"  - {p}" for p in problems)
        return f"{len(problems)} config errors{where}:\n{lines}"


def join_path(path: str, key: str | None) -> str:
    """``join_path("model", "tasks.x")`` is ``model.tasks.x``; a key ``"[0]"`` indexes ``path``."""
    if not key:
        return path
    if not path:
        return key
    return f"{path}{key}" if key.startswith("[") else f"{path}.{key}"
