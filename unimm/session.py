"""From a config path and overrides to a validated config, then to a finished run.

``prepare`` loads plugins before validation, since a config names parts that plugins
register; ``execute`` sets up logging and distributed state, saves the resolved config in
the run folder and hands over to the trainer.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable

from omegaconf import OmegaConf

from unimm.config import flatten, load_config, validate_config
from unimm.config.errors import ConfigError
from unimm.config.loader import DEFAULTS, read_yaml
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
    plain = validate_config(cfg, source=None if config_path is None else str(config_path))
    return plain, OmegaConf.to_yaml(OmegaConf.create(plain))


def execute(cfg: dict[str, Any], text: str) -> dict[str, float]:
    """Run a validated config; the resolved config is saved as <save_dir>/config.yaml."""
    from unimm.training import distributed as dist
    from unimm.training.trainer import run

    from unimm.training.run_folder import resumes, set_aside_earlier_run

    dist.init_distributed()
    clean = False
    try:
        folder = Path(cfg["env"]["save_dir"])
        training = cfg["run_type"] in ("train", "train_val")
        continuing = resumes(cfg)
        if training and not continuing and dist.is_main_process():
            set_aside_earlier_run(folder)  # before this run's log and config go there
        dist.barrier()
        records = "train" if training else cfg["run_type"]  # an evaluation keeps the training run's records
        setup_logging(cfg["env"]["log_level"], folder if dist.is_main_process() else None, f"{records}.log")
        if dist.is_main_process():
            atomic_write_text(folder / ("config.yaml" if training else f"config_{records}.yaml"), text)
        log = logging.getLogger("unimm")
        log.info("run folder: %s", folder.resolve())
        if dist.is_main_process():
            prepare_benchmark(cfg)
        dist.barrier()
        ensure_init_run(cfg)
        results = run(cfg)
        clean = True
        return results
    finally:
        dist.shutdown_distributed(clean)


def ensure_init_run(cfg: dict[str, Any], stack: tuple[str, ...] = ()) -> None:
    """Train ``checkpoint.init_run`` first when ``checkpoint.init_from`` does not exist yet.

    A pretraining stage written as a config of its own: the run it describes is trained in
    this process (every rank takes part, as in any run), with this run's ``env.data_dir``,
    ``env.benchmark`` and ``env.device`` and the stage's own ``overrides``, into the ``env.save_dir`` of its
    config; ``init_from`` must name a checkpoint that run writes (usually
    ``<its save_dir>/checkpoints/last``). An existing ``init_from`` is used as it is, so the
    stage runs once and later runs share it; with ``init_from`` null there is nothing to make
    (the run starts from scratch). Stages may have stages of their own.
    """
    from unimm.training import distributed as dist
    from unimm.training.run_folder import resumes, set_aside_earlier_run
    from unimm.training.trainer import run

    checkpoint = cfg["checkpoint"]
    stage = checkpoint["init_run"]
    if not stage["config"]:
        return
    log = logging.getLogger("unimm")
    if not checkpoint["init_from"]:  # e.g. init_from=null on the command line: start from scratch
        log.info("init_run: checkpoint.init_from is null, so %s is not needed", stage["config"])
        return
    if resumes(cfg):  # the run's own checkpoint holds every weight
        log.info("init_run: the run resumes from its own checkpoint, so %s is not needed", stage["config"])
        return
    target = Path(checkpoint["init_from"])
    config = str(stage["config"])
    if config in stack:
        raise ConfigError(f"checkpoint.init_run forms a cycle: {' -> '.join((*stack, config))}")
    if not Path(config).is_file():
        raise ConfigError(f"checkpoint.init_run.config: {config} is not a file (a relative path is looked up beside "
                          "the YAML that sets it, then from the working dir); give the stage's config file")
    env = cfg["env"]
    overrides = [f"env.data_dir={env['data_dir']}", f"env.device={env['device']}",
                 f"env.benchmark={json.dumps(env['benchmark'])}", *stage["overrides"]]
    sub, text = prepare(config, overrides, variant=stage["variant"])
    folder = Path(sub["env"]["save_dir"])
    if target.exists():
        check_stage_config(folder / "config.yaml", sub, target)
        log.info("init_run: %s exists; not training %s again (delete it to retrain)", target, config)
        return
    if sub["run_type"] not in ("train", "train_val"):
        raise ConfigError(f"checkpoint.init_run: {config} has run_type={sub['run_type']}; a stage that makes "
                          "init_from must train (run_type=train or train_val)")
    log.info("init_run: %s is absent; training %s into %s first", target, config, folder)
    if dist.is_main_process():
        set_aside_earlier_run(folder)  # e.g. a stage that was killed before it saved init_from
        atomic_write_text(folder / "config.yaml", text)
        prepare_benchmark(sub)
    dist.barrier()
    ensure_init_run(sub, (*stack, config))
    run(sub)
    dist.barrier()
    if not target.exists():
        raise ConfigError(f"checkpoint.init_run trained {config} into {folder}, but checkpoint.init_from={target} "
                          f"is still absent; point init_from at {folder / 'checkpoints' / 'last'}")
    log.info("init_run: done; the run goes on from %s", target)


# Settings that cannot change the weights a stage made: how it was evaluated, logged, found and loaded.
_NOT_IN_THE_WEIGHTS = ("evaluation.", "training.log_every", "env.user_dir", "env.log_level",
                       "checkpoint.trust_unverified")


def check_stage_config(saved: Path, wanted: dict[str, Any], target: Path) -> None:
    """Refuse an existing stage checkpoint made with other settings (e.g. another benchmark size).

    ``saved`` is the config the stage was trained with; a checkpoint without one (made
    elsewhere) is taken as it is. Settings that cannot change the weights it made (how it was
    evaluated and logged: ``evaluation.*``, ``training.log_every``) may differ.
    """
    if not saved.is_file():
        return
    made = flatten(OmegaConf.to_container(OmegaConf.load(saved), resolve=False))
    now = flatten(wanted)
    defaults = flatten(read_yaml(DEFAULTS))
    # a key the saved config lacks and this one leaves at its default came with a newer unimm
    differing = [key for key in sorted(set(made) | set(now))
                 if made.get(key) != now.get(key) and not key.startswith(_NOT_IN_THE_WEIGHTS)
                 and not (key not in made and key in defaults and now.get(key) == defaults[key])]
    if differing:
        shown = ", ".join(differing[:6]) + (f" (+{len(differing) - 6} more)" if len(differing) > 6 else "")
        raise ConfigError(f"checkpoint.init_from={target} was made by a run whose config ({saved}) differs from "
                          f"what checkpoint.init_run would train now in: {shown}; delete {saved.parent} to "
                          "train it again, or point checkpoint.init_from (and the stage's env.save_dir) elsewhere")


def prepare_benchmark(cfg: dict[str, Any]) -> None:
    """Generate the run's ``env.benchmark`` under ``env.data_dir`` unless the same one is already there."""
    from unimm.registry import BENCHMARKS

    node = cfg["env"]["benchmark"]
    if not node:
        return
    BENCHMARKS.build(node, path="env.benchmark").prepare(cfg["env"]["data_dir"])


def setup_logging(level: str, folder: Path | None, file_name: str = "train.log") -> None:
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
        file = logging.FileHandler(folder / file_name, encoding="utf-8")
        file.setFormatter(fmt)
        log.addHandler(file)
