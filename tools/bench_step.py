"""Where a training update's time goes, for any config, beside the machine's matmul peak.

    python tools/bench_step.py config=projects/unit/all8.yaml variant=shapes [key=value ...]
    python tools/bench_step.py config=... --updates 60 --warmup 10 --threads 1

Builds the run's datasets, model, optimizer, sampler, step strategy and hooks as the trainer does,
then times ``--updates`` updates (after ``--warmup``), each made by the run's step strategy (one
drawn dataset for ``sampled``, a batch of every dataset for ``accumulate`` and ``masked_combine``),
split into: data (the next batches), forward (of which the Hungarian matcher and the set criterion,
timed by module hooks), backward (the rest of the strategy's work: backward passes and, for
``masked_combine``, combining the per-group gradients), hooks (optimizer hooks' ``before_step``; with ``skip_zero_grad`` last and clipping on,
the one pass that does both, as the trainer; ``--two-passes`` times them apart), clipping and the optimizer step. The FLOPs of one forward + backward per dataset
are counted with ``torch.utils.flop_counter`` and weighted by the sampler's draws, giving GFLOP/s
and the fraction of an fp32 matmul peak measured in the same process. Nothing is written.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def matmul_peak(size: int = 1024, repeats: int = 20) -> float:
    """GFLOP/s of fp32 square matmuls, the best of ``repeats`` (other processes only slow it down)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


class Timer:
    """Adds up wall time per phase."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = defaultdict(list)
        self._started: dict[str, float] = {}

    def start(self, name: str) -> None:
        self._started[name] = time.perf_counter()

    def stop(self, name: str) -> None:
        self.totals[name].append(time.perf_counter() - self._started.pop(name))


def time_modules(model: torch.nn.Module, timer: Timer, kinds: dict[str, type]) -> None:
    """Time every module of each kind (e.g. the matcher) with forward pre / post hooks."""
    for label, kind in kinds.items():
        for module in model.modules():
            if isinstance(module, kind):
                module.register_forward_pre_hook(lambda m, args, label=label: timer.start(label))
                module.register_forward_hook(lambda m, args, out, label=label: timer.stop(label))


def flops_per_dataset(model, streams) -> dict[str, int]:
    """FLOPs of one forward + backward of a batch of each dataset."""
    from torch.utils.flop_counter import FlopCounterMode

    out = {}
    for name, stream in streams.items():
        batch = next(stream)
        counter = FlopCounterMode(display=False)
        with counter:
            losses = model(batch)["losses"]
            sum(losses.values()).backward()
        model.zero_grad(set_to_none=True)
        out[name] = counter.get_total_flops()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="config=<file> [variant=<name>] [key=value ...]")
    parser.add_argument("--updates", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--two-passes", action="store_true",
                        help="skip_zero_grad and clipping as two passes over the gradients (the trainer fuses them)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from unimm.cli import split_config_args

    config, variant, overrides = split_config_args(args.overrides)

    from unimm.losses.set_criterion import SetCriterion
    from unimm.modules.matcher import HungarianMatcher
    from unimm.registry import MODELS, OPTIMIZER_HOOKS, STEP_STRATEGIES, TASK_SAMPLERS
    from unimm.session import prepare, prepare_benchmark
    from unimm.training.hooks import SkipZeroGrad
    from unimm.training.steps import StepContext
    from unimm.training.streams import BatchStream
    from unimm.training.trainer import build_datasets, build_optimizer, dataset_info, seed_everything

    with tempfile.TemporaryDirectory() as tmp:
        cfg, _ = prepare(config, [f"env.save_dir={tmp}", "env.log_level=warning", *overrides], variant=variant)
        prepare_benchmark(cfg)
        seed_everything(cfg["env"]["seed"])
        t = cfg["training"]
        sets = build_datasets(cfg, "train")
        model = MODELS.build(cfg["model"], path="model", dataset_info=dataset_info(sets))
        model.train()
        streams = {name: BatchStream(ds, batch_size=t["batch_sizes"].get(name, t["batch_size"]), seed=1, index=i,
                                     num_workers=t["num_workers"]) for i, (name, ds) in enumerate(sets.items())}
        optimizer = build_optimizer(cfg["optimizer"], model, t["param_groups"], t["no_decay"])
        hooks = [OPTIMIZER_HOOKS.build(node, path=f"training.optimizer_hooks[{i}]", model=model, optimizer=optimizer)
                 for i, node in enumerate(t["optimizer_hooks"])]
        sampler = TASK_SAMPLERS.build(t["sampler"], path="training.sampler",
                                      dataset_sizes={n: len(d) for n, d in sets.items()}, seed=1)
        strategy = STEP_STRATEGIES.build(t["step_strategy"], path="training.step_strategy")
        flops = flops_per_dataset(model, streams)
        timer = Timer()
        time_modules(model, timer, {"matcher": HungarianMatcher, "criterion": SetCriterion})
        model.register_forward_pre_hook(lambda m, args: timer.start("forward"))
        model.register_forward_hook(lambda m, args, out: timer.stop("forward"))
        used: dict[str, int] = defaultdict(int)  # batches read in this update, by dataset

        def next_batch(name: str) -> dict:
            timer.start("data")
            batch = next(streams[name])
            timer.stop("data")
            used[name] += 1
            return batch

        params = [p for p in model.parameters() if p.requires_grad]
        drawn: dict[str, int] = defaultdict(int)
        per_update = []
        # as the trainer: skip_zero_grad last with clipping on runs both in one pass (timed as hooks)
        fused = (not args.two_passes and bool(t["clip_grad_norm"]) and bool(hooks)
                 and isinstance(hooks[-1], SkipZeroGrad))
        for step in range(args.warmup + args.updates):
            if step == args.warmup:
                timer.totals.clear()
            used.clear()
            began = time.perf_counter()
            ctx = StepContext(model=model, sampler=sampler, next_batch=next_batch, dataset_names=list(sets),
                              grad_accum_steps=t["grad_accum_steps"], hooks=hooks, step=step)
            strategy(ctx)  # data, forward and backward; backward is what is left of its time
            timer.totals["strategy"].append(time.perf_counter() - began)
            timer.start("hooks")
            for hook in hooks[:-1] if fused else hooks:
                hook.before_step(step)
            if fused:
                hooks[-1].skip_and_clip(params, t["clip_grad_norm"])
            timer.stop("hooks")
            timer.start("clipping")
            if t["clip_grad_norm"] and not fused:
                torch.nn.utils.clip_grad_norm_(params, t["clip_grad_norm"])
            timer.stop("clipping")
            timer.start("optimizer")
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            timer.stop("optimizer")
            if step >= args.warmup:
                for name, count in used.items():
                    drawn[name] += count
                per_update.append(time.perf_counter() - began)
    total = sum(per_update)
    peak = matmul_peak()
    done = len(per_update)
    timer.totals["backward"] = [sum(timer.totals["strategy"]) - sum(timer.totals["data"]) - sum(timer.totals["forward"])]
    gflop = sum(flops[n] * k for n, k in drawn.items()) / 1e9
    print(f"{done} updates, {1000 * total / done:.1f} ms an update (median {1000 * statistics.median(per_update):.1f}); "
          f"torch threads {torch.get_num_threads()}")
    kind = t["step_strategy"]["type"] if isinstance(t["step_strategy"], dict) else t["step_strategy"]
    print(f"  step strategy {kind}: {sum(drawn.values()) / done:.2f} batches an update")
    for phase in ("data", "forward", "matcher", "criterion", "backward", "hooks", "clipping", "optimizer"):
        spent = sum(timer.totals.get(phase, []))
        note = " (within forward)" if phase in ("matcher", "criterion") else ""
        print(f"  {phase:<10} {1000 * spent / done:7.2f} ms  {100 * spent / total:5.1f}%{note}")
    print(f"  {gflop / total:.1f} GFLOP/s over forward + backward FLOPs, {100 * gflop / total / peak:.1f}% of the "
          f"{peak:.0f} GFLOP/s fp32 matmul peak measured here")
    print("  per dataset: " + ", ".join(f"{n} {k} batches, {flops[n] / 1e9:.2f} GFLOP a batch"
                                        for n, k in sorted(drawn.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
