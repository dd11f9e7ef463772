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
    """Load the config and its plugins (``env.plugins``, ``env.user_dir``), validate it, and build
    the parts that need no data (``check_training_parts``); return (config, resolved YAML).

    Nothing is written: ``--dry-run`` and a real run meet the same errors before the run folder.
    """
    cfg = load_config(config_path, overrides, variant=variant)
    import_builtins()
    load_entry_points(env_value(cfg, "env.plugins"))
    load_user_dirs(env_value(cfg, "env.user_dir"))
    try:
        plain = validate_config(cfg, source=None if config_path is None else str(config_path))
    except ConfigError as err:
        raise with_plugin_hint(err) from None
    check_training_parts(plain)
    return plain, OmegaConf.to_yaml(OmegaConf.create(plain))


def env_value(cfg: Any, key: str) -> Any:
    """``env.user_dir`` or ``env.plugins``, resolved before validation (plugins register what it checks)."""
    try:
        value = OmegaConf.select(cfg, key, throw_on_missing=True)
    except Exception as err:
        raise ConfigError(f"{key}: cannot resolve: {err}") from None
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def with_plugin_hint(err: ConfigError) -> ConfigError:
    """``err`` with a hint on its first unknown part name (one without close matches) when plugins were
    loaded: the plugin may not import the module that registers it."""
    from unimm.plugins import unknown_name_hint

    hint = unknown_name_hint()
    first = next((i for i, (_, text) in enumerate(err.items)
                  if "unknown " in text and " name '" in text and "did you mean" not in text), None)  # not a typo
    if not hint or first is None:
        return err
    items = list(err.items)
    items[first] = (items[first][0], f"{items[first][1]}; {hint}")
    return ConfigError(items, err.source, rooted=True)


def check_training_parts(cfg: dict[str, Any]) -> None:
    """Build what a training run builds from the config alone, so that their builders' errors come
    before anything is written, all at once: the scheduler (over a stand-in optimizer of one parameter,
    with ``training.max_updates``), the task sampler (the configured dataset names, each of size 1),
    the step strategy and the callbacks. Optimizer hooks need the model and are built by the run."""
    if cfg["run_type"] not in ("train", "train_val"):
        return
    import torch

    from unimm.registry import CALLBACKS, SCHEDULERS, STEP_STRATEGIES, TASK_SAMPLERS, RegistryError

    t = cfg["training"]
    stand_in = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    max_updates = t["max_updates"] if t["max_updates"] is not None else 10**9  # max_epochs alone: known with the data
    builds = [
        ("scheduler", lambda: SCHEDULERS.build(cfg["scheduler"], path="scheduler", optimizer=stand_in,
                                               max_updates=max_updates)),
        ("training.sampler", lambda: TASK_SAMPLERS.build(t["sampler"], path="training.sampler", seed=cfg["env"]["seed"],
                                                         dataset_sizes={name: 1 for name in cfg["datasets"]})),
        ("training.step_strategy", lambda: STEP_STRATEGIES.build(t["step_strategy"], path="training.step_strategy")),
        *[(f"training.callbacks[{i}]", lambda node=node, i=i: CALLBACKS.build(node, path=f"training.callbacks[{i}]"))
          for i, node in enumerate(t["callbacks"])],
    ]
    problems: list[str] = []
    for path, build in builds:
        try:
            build()
        except ConfigError as err:
            problems += err.problems
        except RegistryError as err:
            problems.append(str(err))
        except Exception as err:  # a plugin's builder failing some other way
            problems.append(f"{path}: building it failed: {type(err).__name__}: {err}")
    if problems:
        raise ConfigError(problems, rooted=True)


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
        moved = None
        if training and not continuing and dist.is_main_process():
            moved = set_aside_earlier_run(folder)  # before this run's log and config go there
        dist.barrier()
        records = "train" if training else cfg["run_type"]  # an evaluation keeps the training run's records
        setup_logging(cfg["env"]["log_level"], folder if dist.is_main_process() else None, f"{records}.log")
        if dist.is_main_process():
            atomic_write_text(folder / ("config.yaml" if training else f"config_{records}.yaml"), text)
        log = logging.getLogger("unimm")
        log.info("run folder: %s", folder.resolve())
        if moved is not None:  # set aside before logging was set up: say it now, in this run's log
            log.info("the folder held an earlier run: its records were moved to %s", moved)
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
    ``env.benchmark``, ``env.device`` and ``env.plugins`` and the stage's own ``overrides``, into the ``env.save_dir`` of its
    config; ``init_from`` must name a checkpoint that run writes (usually
    ``<its save_dir>/checkpoints/last``). An existing ``init_from`` is used as it is, so the
    stage runs once and later runs share it; with ``init_from`` null there is nothing to make
    (the run starts from scratch). Stages may have stages of their own.

    Each ``checkpoint.needs`` entry ``{path, config, variant, overrides}`` names another file the
    run reads and the run that makes it (e.g. a distillation teacher's checkpoint, which the model
    loads): it is trained first, the same way, while ``path`` is absent, also when the run resumes.
    Two independent stages (ViT-BERT's image and text teachers) cannot be one chain of init_runs.
    """
    from unimm.training.run_folder import resumes

    checkpoint = cfg["checkpoint"]
    for i, need in enumerate(checkpoint.get("needs") or []):
        stage = {"config": need["config"], "variant": need.get("variant"), "overrides": need.get("overrides") or []}
        make_stage(cfg, stage, Path(need["path"]), f"checkpoint.needs[{i}]", f"checkpoint.needs[{i}].path", stack)
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
    make_stage(cfg, stage, Path(checkpoint["init_from"]), "checkpoint.init_run", "checkpoint.init_from", stack)


def make_stage(cfg: dict[str, Any], stage: dict[str, Any], target: Path, key: str, what: str,
               stack: tuple[str, ...]) -> None:
    """Train ``stage`` (``{config, variant, overrides}`` at config key ``key``) unless ``target`` exists.

    ``what`` is the config key naming ``target`` (``checkpoint.init_from``, ``checkpoint.needs[i].path``).
    """
    from unimm.training import distributed as dist
    from unimm.training.run_folder import set_aside_earlier_run
    from unimm.training.trainer import run

    log = logging.getLogger("unimm")
    config = str(stage["config"])
    if config in stack:
        raise ConfigError(f"{key} forms a cycle: {' -> '.join((*stack, config))}")
    if not Path(config).is_file():
        raise ConfigError(f"{key}.config: {config} is not a file (a relative path is looked up beside "
                          "the YAML that sets it, then from the working dir); give the stage's config file")
    env = cfg["env"]
    overrides = [f"env.data_dir={env['data_dir']}", f"env.device={env['device']}",
                 f"env.benchmark={json.dumps(env['benchmark'])}", f"env.plugins={json.dumps(env['plugins'])}",
                 *stage["overrides"]]
    sub, text = prepare(config, overrides, variant=stage["variant"])
    folder = Path(sub["env"]["save_dir"])
    if target.exists():
        check_stage_config(folder / "config.yaml", sub, target, key, what)
        log.info("%s: %s exists; not training %s again (delete it to retrain)", key, target, config)
        return
    if sub["run_type"] not in ("train", "train_val"):
        raise ConfigError(f"{key}: {config} has run_type={sub['run_type']}; a stage that makes "
                          f"{what.removeprefix('checkpoint.')} must train (run_type=train or train_val)")
    log.info("%s: %s is absent; training %s into %s first", key, target, config, folder)
    if dist.is_main_process():
        set_aside_earlier_run(folder)  # e.g. a stage that was killed before it saved init_from
        atomic_write_text(folder / "config.yaml", text)
        prepare_benchmark(sub)
    dist.barrier()
    ensure_init_run(sub, (*stack, config))
    run(sub)
    dist.barrier()
    if not target.exists():
        raise ConfigError(f"{key} trained {config} into {folder}, but {what}={target} "
                          f"is still absent; point {what.removeprefix('checkpoint.')} at {folder / 'checkpoints' / 'last'}")
    log.info("%s: done; the run goes on with %s", key, target)


# Settings that cannot change the weights a stage made: how it was evaluated, logged, found and loaded.
_NOT_IN_THE_WEIGHTS = ("evaluation.", "training.log_every", "env.user_dir", "env.plugins", "env.log_level",
                       "checkpoint.trust_unverified")


def check_stage_config(saved: Path, wanted: dict[str, Any], target: Path, stage_key: str = "checkpoint.init_run",
                       what: str = "checkpoint.init_from") -> None:
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
        raise ConfigError(f"{what}={target} was made by a run whose config ({saved}) differs from "
                          f"what {stage_key} would train now in: {shown}; delete {saved.parent} to "
                          f"train it again, or point {what} (and the stage's env.save_dir) elsewhere")


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
