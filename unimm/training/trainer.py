"""The training recipe: setup, loop, evaluate, checkpoint — one function to read top to bottom.

Variation comes from registered pieces named in the config, never from subclasses: the
task sampler picks the dataset of each step, the step strategy gathers the gradients of
one update, optimizer hooks touch gradients and optimizer state around the step.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import math
import random
import time
from pathlib import Path
from typing import Any, Callable, ContextManager

import numpy as np
import torch
from torch import nn

from unimm.config.errors import ConfigError
from unimm.interfaces import ReportsScalars
from unimm.registry import split_node
from unimm.registry import (CALLBACKS, DATASETS, METRICS, MODELS, OPTIMIZER_HOOKS, OPTIMIZERS,
                            SCHEDULERS, STEP_STRATEGIES, TASK_SAMPLERS)
from unimm.training import checkpoint as ckpt
from unimm.training.callbacks import notify
from unimm.training import distributed as dist
from unimm.training.evaluation import evaluate, predict
from unimm.training.hooks import SkipZeroGrad
from unimm.training.optimizers import describe_groups, fold_layer_names, format_groups, param_groups
from unimm.training.run_folder import last_checkpoint, resumes
from unimm.training.run_log import RunLog
from unimm.training.steps import NonFiniteLossError, StepContext
from unimm.training.streams import BatchStream
from unimm.training.threads import set_threads

logger = logging.getLogger("unimm")

MAX_SKIPS_IN_A_ROW = 20  # with on_nonfinite=skip: a run that never recovers still stops


def run(cfg: dict[str, Any]) -> dict[str, float]:
    """Carry out ``cfg["run_type"]`` on a validated, resolved config; return the final metrics."""
    run_type = cfg["run_type"]
    set_threads(cfg["env"]["num_threads"], cfg["training"]["num_workers"])
    seed_everything(cfg["env"]["seed"])  # every rank builds the same datasets and model init
    device = pick_device(cfg["env"]["device"])
    folder = Path(cfg["env"]["save_dir"])
    training = run_type in ("train", "train_val")
    eval_split = cfg["evaluation"]["split"] if run_type in ("train_val", "val", "predict") else "test"

    train_sets = build_datasets(cfg, "train") if training else {}
    eval_sets = build_datasets(cfg, eval_split) if run_type != "train" else {}
    if run_type != "predict":
        require_labels(eval_sets, run_type, eval_split)
    model = MODELS.build(cfg["model"], path="model", dataset_info=dataset_info(train_sets or eval_sets))
    c = cfg["checkpoint"]
    if c["init_from"] and not resumes(cfg):  # a resumed run's own checkpoint holds every weight
        ckpt.init_from(model, c["init_from"], c["key_map"], c["init_include"], c["init_resize"],
                       trust_unverified=c["trust_unverified"])
    if not training and resumes(cfg):  # the run's own last weights
        ckpt.init_from(model, last_checkpoint(cfg), trust_unverified=c["trust_unverified"])
    elif not training and not c["init_from"]:
        raise ConfigError(f"run_type={run_type} evaluates trained weights, but none are given: set "
                          "checkpoint.resume=true (the last checkpoint of env.save_dir) or checkpoint.init_from="
                          "<a checkpoint or weights file>")
    model.to(device)
    logger.info("model %s: %s parameters", split_node(cfg["model"])[0], f"{count_parameters(model):,}")
    seed_everything(cfg["env"]["seed"] + dist.get_rank())  # then each rank its own dropout, augmentation

    autocast = autocast_factory(cfg["training"]["amp"], device)
    to_device = batch_mover(device)
    eval_bs = cfg["evaluation"]["batch_size"] or cfg["training"]["batch_size"]
    results: dict[str, float] = {}
    if training:
        results = train(cfg, model, train_sets, eval_sets if run_type == "train_val" else {},
                        folder=folder, device=device, autocast=autocast, to_device=to_device)
    elif run_type == "predict":
        predict(model, eval_sets, folder=folder, split=eval_split, batch_size=eval_bs,
                to_device=to_device, autocast=autocast, max_batches=cfg["evaluation"]["max_batches"])
    if run_type in ("val", "test"):
        results = evaluate(model, eval_sets, build_metrics(cfg, eval_sets), batch_size=eval_bs,
                           to_device=to_device, autocast=autocast,
                           max_batches=cfg["evaluation"]["max_batches"])
        log_results(results, f"{run_type} ({eval_split})")
    return results


def train(cfg: dict[str, Any], model: nn.Module, train_sets: dict[str, Any], eval_sets: dict[str, Any], *,
          folder: Path, device: torch.device, autocast: Callable[[], ContextManager],
          to_device: Callable[[dict], dict]) -> dict[str, float]:
    """The loop: draw, step, update, log, evaluate, checkpoint, until max_updates."""
    t, ev = cfg["training"], cfg["evaluation"]
    seed = cfg["env"]["seed"]
    ddp_model = dist.wrap_model(model, mode=t["parallel"])
    streams = {
        name: BatchStream(ds, batch_size=t["batch_sizes"].get(name, t["batch_size"]), seed=seed, index=i, rank=dist.get_rank(),
                          world_size=dist.get_world_size(), num_workers=t["num_workers"], to_device=to_device)
        for i, (name, ds) in enumerate(train_sets.items())
    }
    max_updates = total_updates(t, streams)
    eval_every = evaluation_period(t, streams)
    optimizer = build_optimizer(cfg["optimizer"], model, t["param_groups"], t["no_decay"])
    scheduler = SCHEDULERS.build(cfg["scheduler"], path="scheduler", optimizer=optimizer, max_updates=max_updates)
    sampler = TASK_SAMPLERS.build(t["sampler"], path="training.sampler",
                                  dataset_sizes={n: len(d) for n, d in train_sets.items()}, seed=seed)
    strategy = STEP_STRATEGIES.build(t["step_strategy"], path="training.step_strategy")
    hooks = [OPTIMIZER_HOOKS.build(node, path=f"training.optimizer_hooks[{i}]", model=model, optimizer=optimizer)
             for i, node in enumerate(t["optimizer_hooks"])]
    callbacks = [CALLBACKS.build(node, path=f"training.callbacks[{i}]") for i, node in enumerate(t["callbacks"])]
    scaler = torch.amp.GradScaler("cuda") if t["amp"] == "fp16" else None
    metrics = build_metrics(cfg, eval_sets)
    params = [p for p in model.parameters() if p.requires_grad]

    update = 0
    last = folder / "checkpoints" / "last"
    if resumes(cfg):
        saved = ckpt.load_checkpoint(last, cfg["checkpoint"]["trust_unverified"])
        planned = saved["counters"].get("max_updates", max_updates)  # absent from checkpoints of older runs
        if planned != max_updates:
            raise ConfigError(f"training.max_updates: the run resumed from {last} planned {planned} updates, this config "
                              f"{max_updates}; its learning-rate schedule runs over {planned} and would be stretched "
                              f"(the rate would climb again): resume with {planned} updates, or start a new run from "
                              "its weights with checkpoint.init_from", rooted=True)
        counters = ckpt.restore(saved, model=model, optimizer=optimizer, scheduler=scheduler, sampler=sampler,
                                hooks=hooks, scaler=scaler)
        update = int(counters["update"])
        for name, state in counters.get("streams", {}).items():
            streams[name].load_state_dict(state)
        logger.info("resumed from %s at update %d", last, update)
    log = RunLog(folder, total_updates=max_updates, enabled=dist.is_main_process(), start_update=update)
    early = EarlyStop(**t["early_stop"])
    results: dict[str, float] = {}
    skipped = skipped_in_a_row = 0
    window: dict[str, list[float]] = {}  # losses since the last log line
    model.train()
    started = time.time()

    def save(is_best: bool = False) -> None:
        counters = {"update": update, "skipped": skipped, "max_updates": max_updates,
                    "streams": {n: s.state_dict() for n, s in streams.items()}}
        rng_states = dist.all_gather_object(ckpt.rng_state())  # every rank resumes its own RNG
        full = dist.full_state(model, optimizer)  # with FSDP a collective: on every rank
        if dist.is_main_process():
            ckpt.save_checkpoint(folder, model=model, optimizer=optimizer, scheduler=scheduler,
                                 sampler=sampler, hooks=hooks, counters=counters, scaler=scaler,
                                 keep_last=cfg["checkpoint"]["keep_last"], is_best=is_best,
                                 rng_states=rng_states, full=full)
        dist.barrier()

    # skip_zero_grad last with clipping on: both in one pass over the gradients, the same numbers
    fused = bool(t["clip_grad_norm"]) and bool(hooks) and isinstance(hooks[-1], SkipZeroGrad)
    while update < max_updates:
        ctx = StepContext(model=ddp_model, sampler=sampler, next_batch=lambda n: next(streams[n]),
                          dataset_names=list(train_sets), grad_accum_steps=t["grad_accum_steps"],
                          hooks=hooks, autocast=autocast, scaler=scaler,
                          no_sync=lambda: dist.no_sync(ddp_model), step=update)
        try:
            losses = strategy(ctx)
        except NonFiniteLossError as err:
            if t["on_nonfinite"] == "stop":
                raise
            logger.warning("update %d skipped: %s", update, err)
            optimizer.zero_grad(set_to_none=True)
            skipped, skipped_in_a_row = skipped + 1, skipped_in_a_row + 1
            if skipped_in_a_row >= MAX_SKIPS_IN_A_ROW:
                raise NonFiniteLossError(f"{MAX_SKIPS_IN_A_ROW} updates in a row were skipped; last: {err}") from None
            continue
        skipped_in_a_row = 0
        if scaler is not None:
            scaler.unscale_(optimizer)
        for hook in hooks[:-1] if fused else hooks:
            hook.before_step(update)
        if fused:
            hooks[-1].skip_and_clip(params, t["clip_grad_norm"])
        elif t["clip_grad_norm"]:
            torch.nn.utils.clip_grad_norm_(params, t["clip_grad_norm"])
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        for hook in hooks:
            hook.after_step(update)
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        update += 1

        for key, value in losses.items():  # each loss averaged over the updates that had it
            window.setdefault(key, []).append(value)
        log.progress(update, losses)
        if update % t["log_every"] == 0 or update == max_updates:
            shown = dist.reduce_dict({k: sum(v) / len(v) for k, v in window.items()})
            window.clear()
            reported = {k: v for hook in hooks if isinstance(hook, ReportsScalars) for k, v in hook.scalars().items()}
            log.scalars(update, {**shown, **reported, "lr": scheduler.get_last_lr()[0]}, phase="train")
            notify(callbacks, "on_log", update, shown)
        is_eval = eval_sets and (update == max_updates or eval_every and update % eval_every == 0)
        is_best = False
        if is_eval:
            results = evaluate(model, eval_sets, metrics, batch_size=ev["batch_size"] or t["batch_size"],
                               to_device=to_device, autocast=autocast, max_batches=ev["max_batches"],
                               num_workers=t["num_workers"])
            log.scalars(update, results, phase="val")
            log_results(results, f"val at update {update}")
            is_best = early.observe(results)
            notify(callbacks, "on_eval", update, results)
        every = cfg["checkpoint"]["every"]
        if update == max_updates or (every and update % every == 0) or early.should_stop or is_best:
            save(is_best=is_best)
        if early.should_stop:
            logger.info("early stop at update %d: %s did not improve for %d evaluations",
                        update, early.metric, early.patience)
            break
    notify(callbacks, "on_train_end", update)
    log.close()
    logger.info("trained %d updates in %.1fs (%d skipped)", update, time.time() - started, skipped)
    return results


def build_datasets(cfg: dict[str, Any], split: str) -> dict[str, Any]:
    """Every configured dataset's ``split``; a split without samples is an error, never a number."""
    built = {name: DATASETS.build(node, path=f"datasets.{name}", split=split, name=name)
             for name, node in cfg["datasets"].items()}
    empty = [name for name, ds in built.items() if len(ds) == 0]
    if empty:
        raise ConfigError([f"datasets.{name}: its '{split}' split has no samples; check the files it reads"
                           + (f" under {cfg['datasets'][name]['data_dir']}" if isinstance(cfg["datasets"][name], dict)
                              and "data_dir" in cfg["datasets"][name] else "")
                           for name in empty])
    return built


def require_labels(datasets: dict[str, Any], run_type: str, split: str) -> None:
    """Metrics only where labels exist: a split without them (a test split as distributed, e.g. GLUE's
    ``test.tsv`` or VQAv2's test2015, whose datasets say ``has_labels = False``) would score 0 against
    nothing. Such a split is for ``run_type=predict``, which writes the submission files."""
    unlabelled = [name for name, ds in datasets.items() if not getattr(ds, "has_labels", True)]
    if not unlabelled:
        return
    problems = []
    for name in unlabelled:
        source = getattr(datasets[name], "source", None)
        read = f" ({source})" if source else ""
        problems.append(f"datasets.{name}: its '{split}' split{read} has no labels: run_type={run_type} has nothing "
                        "to score")
    problems.append(f"write its predictions and submission files with run_type=predict evaluation.split={split}; "
                    "metrics come from a labelled split (run_type=val)")
    raise ConfigError(problems, rooted=True)


def dataset_info(datasets: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What a model builder reads of each dataset: its ``task_type`` and its ``info()``."""
    return {name: {"task_type": ds.task_type, **ds.info()} for name, ds in datasets.items()}


def build_metrics(cfg: dict[str, Any], datasets: dict[str, Any]) -> dict[str, list[Any]]:
    nodes = cfg["evaluation"]["metrics"]
    return {name: [METRICS.build(node, path=f"evaluation.metrics.{name}[{i}]", dataset=datasets[name], name=name)
                   for i, node in enumerate(nodes.get(name, []))]
            for name in datasets}


def evaluation_period(t: dict[str, Any], streams: dict[str, BatchStream]) -> int:
    """Updates between evaluations: ``eval_every``, or ``eval_every_epochs`` passes over the largest dataset
    (at least one update); 0: only at the end."""
    if t["eval_every_epochs"] is None:
        return int(t["eval_every"])
    largest = max(s.batches_per_epoch for s in streams.values())
    return max(1, round(t["eval_every_epochs"] * largest / t["grad_accum_steps"]))


def total_updates(t: dict[str, Any], streams: dict[str, BatchStream]) -> int:
    """``max_updates``, capped by ``max_epochs`` passes over the largest dataset."""
    limit = t["max_updates"]
    if t["max_epochs"] is not None:
        largest = max(s.batches_per_epoch for s in streams.values())
        epochs = math.ceil(t["max_epochs"] * largest / t["grad_accum_steps"])
        limit = epochs if limit is None else min(limit, epochs)
    if limit is None:
        raise ConfigError("training: set training.max_updates or training.max_epochs")
    return int(limit)


def build_optimizer(node: Any, model: nn.Module, rules: list[dict],
                    no_decay: list[str] | None = None) -> torch.optim.Optimizer:
    """The optimizer over parameter groups; a group without its own lr / decay takes the
    optimizer's (its builder's default when the config leaves it out). The group table is logged."""
    groups = optimizer_groups(node, model, rules, no_decay)
    logger.info("parameter groups (training.param_groups, training.no_decay):\n%s",
                format_groups(describe_groups(model, groups)))
    return OPTIMIZERS.build(node, path="optimizer", params=groups)


def optimizer_groups(node: Any, model: nn.Module, rules: list[dict], no_decay: list[str] | None = None) -> list[dict]:
    """The parameter groups ``build_optimizer`` hands the optimizer, with the optimizer node's lr and decay."""
    name, kwargs = split_node(node)
    defaults = {p.name: p.default for p in inspect.signature(OPTIMIZERS.get(name).builder).parameters.values()}
    lr = kwargs.get("lr", defaults.get("lr"))
    decay = kwargs.get("weight_decay", defaults.get("weight_decay", 0.0))
    return param_groups(model, rules, base_lr=float(lr), base_weight_decay=float(decay or 0.0), no_decay=no_decay)


def parameter_group_report(cfg: dict[str, Any]) -> str:
    """What ``--dry-run`` prints of the optimizer: each group's rate and decay, and every parameter in
    it, layers folded (``blocks.N.attn.qkv.weight x12``). The model is built on the meta device (no
    memory, no weights read) from the train datasets' info, so the datasets must be readable; if they
    are not, or the run does not train, the report says why instead."""
    if cfg["run_type"] not in ("train", "train_val"):
        return f"parameter groups: not shown (run_type={cfg['run_type']} does not train)\n"
    try:
        info = dataset_info(build_datasets(cfg, "train"))
        with torch.device("meta"):
            model = MODELS.build(cfg["model"], path="model", dataset_info=info)
    except (ConfigError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"parameter groups: not shown (building the model from the train datasets failed: {first})\n"
    t = cfg["training"]
    rows = describe_groups(model, optimizer_groups(cfg["optimizer"], model, t["param_groups"], t["no_decay"]))
    lines = ["parameter groups (training.param_groups, training.no_decay):", format_groups(rows)]
    for row in rows:
        lines.append(f"{row['group']}: lr {row['lr']:.3g}, weight decay {row['weight_decay']:.3g}, "
                     f"{row['parameters']:,} parameters")
        lines += [f"  {name}" for name in fold_layer_names(row["names"])]
    return "\n".join(lines) + "\n"



class EarlyStop:
    """Tracks the best value of one metric; ``should_stop`` after ``patience`` bad evaluations."""

    def __init__(self, metric: str | None, mode: str = "max", patience: int = 0) -> None:
        self.metric, self.mode, self.patience = metric, mode, patience
        self.best: float | None = None
        self.bad = 0
        self.should_stop = False

    def observe(self, results: dict[str, float]) -> bool:
        """Note one evaluation; True when it is the best so far."""
        if self.metric is None:
            return False
        if self.metric not in results:
            raise ConfigError(f"training.early_stop.metric: '{self.metric}' is not among the evaluation "
                              f"results ({', '.join(sorted(results))}); pick one of those")
        value = results[self.metric]
        better = self.best is None or (value > self.best if self.mode == "max" else value < self.best)
        if better:
            self.best, self.bad = value, 0
        else:
            self.bad += 1
            self.should_stop = self.patience > 0 and self.bad >= self.patience
        return better


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist.local_rank())
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"env.device: '{name}' was asked for but no CUDA device is available; use env.device=cpu")
    return torch.device(name)


def autocast_factory(amp: str, device: torch.device) -> Callable[[], ContextManager]:
    if amp == "none":
        return contextlib.nullcontext
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError("training.amp: fp16 needs a CUDA device; use training.amp=bf16 on CPU")
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def batch_mover(device: torch.device) -> Callable[[dict], dict]:
    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(device, non_blocking=True)
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    return move if device.type != "cpu" else (lambda batch: batch)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def log_results(results: dict[str, float], title: str) -> None:
    if results and dist.is_main_process():
        width = max(len(k) for k in results)
        lines = "\n".join(f"  {k:<{width}}  {v:.4f}" for k, v in sorted(results.items()))
        logger.info("%s:\n%s", title, lines)
