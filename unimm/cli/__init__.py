"""Command-line entry points (``unimm_run``, ``unimm_registry``, ``unimm_data``); heavy modules load lazily."""
from __future__ import annotations

from typing import Sequence


def split_config_args(pairs: Sequence[str]) -> tuple[str | None, str | None, list[str]]:
    """``config=<file>``, ``variant=<name>`` and the ``key=value`` overrides of a command line (flags removed)."""
    config = next((a.split("=", 1)[1] for a in pairs if a.startswith("config=")), None)
    variant = next((a.split("=", 1)[1] for a in pairs if a.startswith("variant=")), None)
    return config, variant, [a for a in pairs if not a.startswith(("config=", "variant="))]
