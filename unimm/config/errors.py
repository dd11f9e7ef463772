"""The one error type a user sees for a bad config or bad input."""
from __future__ import annotations


class ConfigError(ValueError):
    """One or more problems, each naming where it is (a dotted path or a file) and the fix.

    Args:
        problems: one line per problem.
        source: what was being read (a config file, a data file), shown in the heading.
    """

    def __init__(self, problems: list[str] | str, source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" in {self.source}" if self.source else ""
        if len(self.problems) == 1:
            return f"config error{where}: {self.problems[0]}"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        return f"{len(self.problems)} config errors{where}:\n{lines}"
