"""Loading parts: unimm's own, user folders (``env.user_dir``) and installed plugins.

A plugin is Python code that registers parts when imported. Three routes, all explicit:

* unimm's built-in parts, imported by ``import_builtins``;
* a folder named by ``env.user_dir`` (a path or a list), imported as a package named after
  the folder: its ``__init__.py`` imports the modules that register parts;
* every installed package exposing an entry point in the ``unimm.plugins`` group
  (``entry_points={"unimm.plugins": ["myplug = myplug"]}`` in its setup).

Each ``projects/<name>`` folder is loaded the same way as a user folder.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterable

from unimm.config.errors import ConfigError

ENTRY_POINT_GROUP = "unimm.plugins"
BUILTIN_PACKAGES = ("unimm.models", "unimm.losses", "unimm.data", "unimm.metrics", "unimm.training", "unimm.benchmark")
_loaded_dirs: dict[Path, ModuleType] = {}


def import_builtins() -> None:
    """Import every unimm package that registers parts."""
    for name in BUILTIN_PACKAGES:
        importlib.import_module(name)


def load_entry_points() -> list[str]:
    """Import every installed ``unimm.plugins`` entry point; return their names."""
    loaded = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except SystemExit as err:
            raise ConfigError(f"plugin entry point '{ep.name}' ({ep.value}) called sys.exit({err.code}) while it was "
                              "imported; importing a plugin must only register its parts") from None
        except Exception as err:
            raise ConfigError(
                f"plugin entry point '{ep.name}' ({ep.value}) failed to import: {err}; "
                f"fix or uninstall the package that provides it"
            ) from err
        loaded.append(ep.name)
    return loaded


def load_user_dirs(dirs: str | Iterable[str] | None) -> list[ModuleType]:
    """Import each folder of user code once (a second call with the same folder is a no-op)."""
    if not dirs:
        return []
    folders = [dirs] if isinstance(dirs, str) else list(dirs)
    return [load_user_dir(Path(d)) for d in folders]


def exit_message(folder: Path, err: SystemExit) -> str:
    return (f"env.user_dir: importing {folder} called sys.exit({err.code}); importing a plugin must only "
            "register its parts (move the script part under `if __name__ == \"__main__\":`)")


def importable_name(folder: Path) -> str | None:
    """The dotted name under which ``import`` would find ``folder`` from ``sys.path``, if any.

    A project folder of the repository (``projects/unit``) is then one module however it is
    reached, by ``env.user_dir`` or by ``import projects.unit``, and registers its parts once.
    """
    for entry in sys.path:
        try:
            parts = folder.relative_to(Path(entry or ".").resolve()).parts
        except (ValueError, OSError):
            continue
        if parts and all(part.isidentifier() for part in parts):
            return ".".join(parts)
    return None


def load_user_dir(folder: Path) -> ModuleType:
    folder = folder.expanduser().resolve()
    if folder in _loaded_dirs:
        return _loaded_dirs[folder]
    init = folder / "__init__.py"
    if not init.is_file():
        what = "folder not found" if not folder.is_dir() else "the folder has no __init__.py"
        raise ConfigError(
            f"env.user_dir: {what}: {folder}; give a folder whose __init__.py imports "
            "the modules that register your parts")
    already = next((m for m in list(sys.modules.values())
                    if getattr(m, "__file__", None) and Path(m.__file__).resolve() == init), None)
    if already is not None:  # imported as a regular package before: importing again would re-register
        _loaded_dirs[folder] = already
        return already
    dotted = importable_name(folder)
    if dotted is not None:  # the name a plain import would give it: a later `import` finds it loaded
        try:
            module = importlib.import_module(dotted)
        except SystemExit as err:
            raise ConfigError(exit_message(folder, err)) from None
        except ConfigError:
            raise
        except Exception as err:
            raise ConfigError(f"env.user_dir: importing {folder} (as {dotted}) failed: "
                              f"{type(err).__name__}: {err}") from err
        if getattr(module, "__file__", None) and Path(module.__file__).resolve() == init:
            _loaded_dirs[folder] = module
            return module
    name = folder.name if folder.name.isidentifier() else "unimm_user_plugin"
    if name in sys.modules:  # do not shadow an importable module of the same name
        name = f"unimm_user_{name}_{len(_loaded_dirs)}"
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as err:
        del sys.modules[name]
        raise ConfigError(exit_message(folder, err)) from None
    except ConfigError:
        raise
    except Exception as err:
        del sys.modules[name]
        raise ConfigError(f"env.user_dir: importing {folder} failed: {type(err).__name__}: {err}") from err
    _loaded_dirs[folder] = module
    return module
