"""Records a reader drops or repairs, counted and reported once per dataset, never in silence.

A reader notes each record it cannot use as given (``note(kind, record_id)``) and calls ``report()``
once it has read everything: one warning per dataset that says how many records of each kind were
dropped or repaired, with their ids, and how to make them errors; with ``strict`` the same report is
a ``ConfigError`` instead.
"""
from __future__ import annotations

import logging
from typing import Any

from unimm.config.errors import ConfigError

logger = logging.getLogger("unimm")
SHOWN_IDS = 8  # ids listed per kind of problem


class RecordProblems:
    """What one dataset's reader dropped or repaired.

    Args:
        dataset: the dataset's config key.
        source: the file that was read.
        strict: turn the report into an error.
    """

    def __init__(self, dataset: str, source: Any, strict: bool = False) -> None:
        self.dataset, self.source, self.strict = dataset, str(source), strict
        self.kinds: dict[str, list[Any]] = {}

    def note(self, kind: str, record_id: Any) -> None:
        """One record of ``kind`` (e.g. "box with a non-positive width, dropped") with its id."""
        self.kinds.setdefault(kind, []).append(record_id)

    def lines(self) -> list[str]:
        out = []
        for kind, ids in self.kinds.items():
            shown = ", ".join(str(i) for i in ids[:SHOWN_IDS]) + (f", ... (+{len(ids) - SHOWN_IDS})"
                                                                   if len(ids) > SHOWN_IDS else "")
            out.append(f"{len(ids)} {kind} (ids {shown})")
        return out

    def report(self) -> None:
        """Warn once, or raise with ``strict``; nothing when every record was used as given."""
        if not self.kinds:
            return
        if self.strict:
            raise ConfigError([f"datasets.{self.dataset}: {self.source}: {line}" for line in self.lines()]
                              + [f"datasets.{self.dataset}.strict=false drops or repairs these records "
                                 "with a warning instead"], rooted=True)
        logger.warning("dataset '%s', %s:\n  %s\n  (datasets.%s.strict=true makes these errors)", self.dataset,
                       self.source, "\n  ".join(self.lines()), self.dataset)
