"""Turn an exception into the one readable line (or block) the user sees."""
from __future__ import annotations

from unimm.config.errors import ConfigError
from unimm.registry import RegistryError


def describe(err: BaseException) -> str:
    if isinstance(err, (ConfigError, RegistryError)):
        return str(err)
    if type(err).__name__ == "NonFiniteLossError":
        return f"training stopped: {err}"
    if isinstance(err, FileNotFoundError):
        return f"file not found: {err.filename or err}; check the path (run with --debug for the traceback)"
    return f"{type(err).__name__}: {err} (run with --debug for the traceback)"
