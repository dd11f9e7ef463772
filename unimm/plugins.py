"""Loading parts: unimm's own, user folders (``env.user_dir``) and installed plugins.

A plugin is Python code that registers parts when imported. Three routes, all explicit:

* unimm's built-in parts, imported by ``import_builtins``;
* a folder named by ``env.user_dir`` (a path or a list), imported as a package named after
  the folder: its ``__init__.py`` imports the modules that register parts;
* every installed package exposing an entry point in the ``unimm.plugins`` group
  (``entry_points={"unimm.plugins": ["myplug = myplug"]}`` in its setup), unless
  ``env.plugins`` leaves it out: ``all`` (the default), ``none``, or a list of entry-point names.

Each ``projects/<name>`` folder is loaded the same way as a user folder. A folder whose package
is already imported from an installed distribution (the plugin was installed and its config
still names its source folder) is not imported again: the installed package is used.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterable

from unimm.config.errors import ConfigError

ENTRY_POINT_GROUP = "unimm.plugins"
BUILTIN_PACKAGES = ("unimm.models", "unimm.losses", "unimm.data", "unimm.metrics", "unimm.training", "unimm.benchmark")
_loaded_dirs: dict[Path, ModuleType] = {}
# top-level package of each imported entry point -> "entry point 'name' (distribution)"
_entry_point_packages: dict[str, str] = {}
logger = logging.getLogger("unimm")


def import_builtins() -> None:
    """Import every unimm package that registers parts."""
    for name in BUILTIN_PACKAGES:
        importlib.import_module(name)


def load_entry_points(plugins: str | Iterable[str] = "all") -> list[str]:
    """Import the installed ``unimm.plugins`` entry points that ``plugins`` selects; return their names.

    Args:
        plugins: ``"all"``, ``"none"``, or the entry-point names to import (``env.plugins``).

    Raises:
        ConfigError: a selected entry point fails to import (named, with how to leave it out),
            or ``plugins`` names one that is not installed.
    """
    if not (isinstance(plugins, str) or isinstance(plugins, (list, tuple)) and all(isinstance(p, str) for p in plugins)):
        raise ConfigError(f"env.plugins: expected all, none or a list of entry-point names, got {plugins!r}")
    installed = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    if plugins == "none":
        return []
    if plugins == "all":
        chosen = installed
    else:
        wanted = [plugins] if isinstance(plugins, str) else list(plugins)
        names = [ep.name for ep in installed]
        absent = [n for n in wanted if n not in names]
        if absent:
            raise ConfigError(f"env.plugins: {', '.join(absent)} is not an installed plugin (entry point of group "
                              f"{ENTRY_POINT_GROUP}); installed: {', '.join(names) or 'none'}")
        chosen = [ep for ep in installed if ep.name in wanted]
    loaded = []
    others = [ep.name for ep in installed]
    for ep in chosen:
        rest = [n for n in others if n != ep.name]
        leave_out = f"env.plugins=[{', '.join(rest)}]" if rest else "env.plugins=none"
        where = f"'{ep.name}' ({ep.value}{provided_by(ep)})"
        try:
            ep.load()
        except SystemExit as err:
            raise ConfigError(f"plugin entry point {where} called sys.exit({err.code}) while it was imported; "
                              f"importing a plugin must only register its parts; leave it out with {leave_out}") from None
        except Exception as err:
            raise ConfigError(
                f"plugin entry point {where} failed to import: {type(err).__name__}: {err}; leave it out with "
                f"{leave_out} (on the command line or under env: in the config), or fix or uninstall its package"
            ) from err
        _entry_point_packages[ep.value.split(":")[0].split(".")[0]] = f"entry point '{ep.name}'{provided_by(ep)}"
        loaded.append(ep.name)
    return loaded


def provided_by(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    name = dist.metadata["Name"] if dist is not None and dist.metadata is not None else None
    return f", installed by {name}" if name else ""


def loaded_plugins() -> list[str]:
    """What plugins this process imported: user folders and entry-point packages (for error hints)."""
    return [str(folder) for folder in _loaded_dirs] + sorted(_entry_point_packages)


def unknown_name_hint() -> str:
    """A hint for an unknown part name when plugins were loaded: a plugin registers only what it imports."""
    loaded = loaded_plugins()
    if not loaded:
        return ""
    return (f"if the part comes from a plugin ({', '.join(loaded)}), its __init__.py must import the module that "
            "registers it (e.g. `from . import metrics`)")


def load_user_dirs(dirs: str | Iterable[str] | None) -> list[ModuleType]:
    """Import each folder of user code once (a second call with the same folder is a no-op)."""
    if not dirs:
        return []
    folders = [dirs] if isinstance(dirs, str) else list(dirs)
    return [load_user_dir(Path(d)) for d in folders]


def installed_package(name: str) -> str | None:
    """The entry point that imported package ``name`` (a plugin installed from the folder), if any."""
    return _entry_point_packages.get(name) if name in sys.modules else None


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
    given_as = None if folder.is_absolute() else str(folder)
    folder = folder.expanduser().resolve()
    if folder in _loaded_dirs:
        return _loaded_dirs[folder]
    init = folder / "__init__.py"
    if not init.is_file():
        what = "folder not found" if not folder.is_dir() else "the folder has no __init__.py"
        from unimm.config.loader import USER_DIR_GIVEN

        given = USER_DIR_GIVEN.get(str(folder), f"given as '{given_as}', relative to the working directory "
                                                f"{Path.cwd()}" if given_as is not None else "")
        raise ConfigError(
            f"env.user_dir: {what}: {folder}" + (f" ({given})" if given else "") + "; give a folder whose "
            "__init__.py imports the modules that register your parts (a relative env.user_dir is resolved "
            "against the folder of the YAML file that sets it, or the working directory on the command line)")
    already = next((m for m in list(sys.modules.values())
                    if getattr(m, "__file__", None) and Path(m.__file__).resolve() == init), None)
    if already is not None:  # imported as a regular package before: importing again would re-register
        _loaded_dirs[folder] = already
        return already
    installed = installed_package(folder.name)
    if installed is not None:  # the folder's code, installed: its parts are registered already
        module = sys.modules[folder.name]
        logger.warning("env.user_dir: %s is not imported: its package '%s' is already imported from %s (%s), "
                       "which registered its parts; remove the folder from env.user_dir, or leave the installed "
                       "plugin out with env.plugins", folder, folder.name, getattr(module, "__file__", "?"), installed)
        _loaded_dirs[folder] = module
        return module
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
