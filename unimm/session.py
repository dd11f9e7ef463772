"""From a config path and overrides to a validated config, then to a finished run.

``prepare`` loads plugins before validation, since a config names parts that plugins
register; ``execute`` sets up logging and distributed state, saves the resolved config in
the run folder and hands over to the trainer.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable

from omegaconf import OmegaConf

from unimm.config import load_config, validate_config
from unimm.config.errors import ConfigError
from unimm.plugins import import_builtins, load_entry_points, load_user_dirs
from unimm.utils.fileio import atomic_write_text


def prepare(config_path: str | os.PathLike | None, overrides: Iterable[str] = (),
            variant: str | None = None) -> tuple[dict[str, Any], str]:
    """Load the config and every plugin, then validate; return (config, resolved YAML)."""
    cfg = load_config(config_path, overrides, variant=variant)
    import_builtins()
    load_entry_points()
    try:
        user_dirs = OmegaConf.select(cfg, "env.user_dir", throw_on_missing=True)
    except Exception as err:
        raise ConfigError(f"env.user_dir: cannot resolve: {err}") from None
    load_user_dirs(OmegaConf.to_container(user_dirs) if OmegaConf.is_config(user_dirs) else user_dirs)
    plain = validate_config(cfg)
    return plain, OmegaConf.to_yaml(OmegaConf.create(plain))


def execute(cfg: dict[str, Any], text: str) -> dict[str, float]:
    """Run a validated config; the resolved config is saved as <save_dir>/config.yaml."""
    from unimm.training import distributed as dist
    from unimm.training.trainer import run

    dist.init_distributed()
    folder = Path(cfg["env"]["save_dir"])
    setup_logging(cfg["env"]["log_level"], folder if dist.is_main_process() else None)
    if dist.is_main_process():
        atomic_write_text(folder / "config.yaml", text)
    log = logging.getLogger("unimm")
    log.info("run folder: %s", folder.resolve())
    if cfg["env"]["benchmark"]["generate"]:
        if dist.is_main_process():
            ensure_benchmark(cfg["env"]["data_dir"], **{k: v for k, v in cfg["env"]["benchmark"].items()
                                                        if k != "generate"})
        dist.barrier()
    return run(cfg)


def ensure_benchmark(data_dir: str, size: str, seed: int) -> None:
    """Generate the shapes benchmark under ``data_dir`` unless the same one is already there."""
    import time

    from unimm.data.shapes import generate_shapes

    log = logging.getLogger("unimm")
    start = time.perf_counter()
    try:
        summary = generate_shapes(data_dir, size=size, seed=seed)
    except FileExistsError as err:
        raise ConfigError(f"env.benchmark: {err}; or set env.data_dir to another folder") from None
    if summary["reused"]:
        log.info("benchmark: using %s (size %s, seed %d)", summary["path"], size, seed)
    else:
        log.info("benchmark: generated %s (size %s, seed %d) in %.1fs", summary["path"], size, seed,
                 time.perf_counter() - start)


def setup_logging(level: str, folder: Path | None) -> None:
    log = logging.getLogger("unimm")
    log.setLevel(level.upper())
    log.handlers.clear()
    log.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(fmt)
    log.addHandler(console)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        file = logging.FileHandler(folder / "train.log", encoding="utf-8")
        file.setFormatter(fmt)
        log.addHandler(file)
