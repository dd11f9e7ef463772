"""Names that key parameters (per-dataset queries, task tokens) must be valid module keys."""
from __future__ import annotations

from unimm.config.errors import ConfigError


def check_module_key(name: str, what: str) -> str:
    """``name``, or an error when it cannot key a parameter (empty, or holding a ".")."""
    if not isinstance(name, str) or not name or "." in name:
        raise ConfigError(f"{what} {name!r} cannot key model parameters (empty or with a '.'); "
                          "rename it (dataset names are the keys of the datasets section)")
    return name
