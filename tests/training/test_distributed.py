"""Distributed helpers: single-process fallbacks, and 2 gloo processes against 1 process.

The 2-process test spawns CPU workers that each compare their result with the
single-process computation on the same global batch (within 1e-5).
"""
from __future__ import annotations

import contextlib
import copy
import os

import pytest
import torch
import torch.distributed as tdist
from torch import nn

from tests.helpers import free_port, spawn_ranks
import unimm.training  # noqa: F401 (registers the parts)
from unimm.registry import OPTIMIZER_HOOKS, STEP_STRATEGIES, TASK_SAMPLERS
from unimm.training import distributed as dist
from unimm.training.steps import StepContext

WORLD = 2
TOL = dict(rtol=0, atol=1e-5)


def test_single_process_fallbacks():
    model = nn.Linear(2, 2)
    x = torch.randn(3, 2, requires_grad=True)
    assert (dist.get_rank(), dist.get_world_size(), dist.is_main_process()) == (0, 1, True)
    assert dist.init_distributed() is False
    assert dist.reduce_dict({"a": torch.tensor(2.0), "b": 1}) == {"a": 2.0, "b": 1.0}
    assert dist.all_gather_with_grad(x) is x
    assert dist.wrap_model(model, mode="fsdp") is model
    with dist.no_sync(model):
        pass
    dist.barrier()
    dist.shutdown_distributed()  # no group: nothing to end


def test_a_process_group_made_elsewhere_is_left_running(tmp_path):
    tdist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        assert dist.init_distributed() is False  # joined, one process
        dist.shutdown_distributed()
        assert tdist.is_initialized()  # the caller that made it ends it
    finally:
        tdist.destroy_process_group()


class Tasks(nn.Module):
    """A shared layer and one head per dataset; head "a" is unused in dataset b's forward."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Linear(4, 4)
        self.heads = nn.ModuleDict({"a": nn.Linear(4, 2), "b": nn.Linear(4, 2)})

    def forward(self, batch: dict) -> dict:
        name = batch["dataset_name"]
        out = self.heads[name](torch.tanh(self.shared(batch["x"])))
        losses = {f"{name}/ce": nn.functional.cross_entropy(out, batch["y"])}
        if name == "a":
            losses["a/l2"] = out.pow(2).mean()
        return {"losses": losses}


def global_batches(accum: int, rows: int) -> dict[str, list[dict]]:
    g = torch.Generator().manual_seed(7)
    return {name: [{"dataset_name": name, "x": torch.randn(rows, 4, generator=g),
                    "y": torch.randint(0, 2, (rows,), generator=g)} for _ in range(accum)] for name in "ab"}


def rank_slice(batch: dict, rank: int, world: int) -> dict:
    per = batch["x"].shape[0] // world
    return {k: v[rank * per:(rank + 1) * per] if torch.is_tensor(v) else v for k, v in batch.items()}


def run_strategy(node, model, data, *, hooks=(), ddp=None, rank=0, world=1):
    streams = {n: iter([rank_slice(b, rank, world) for b in items]) for n, items in data.items()}
    ctx = StepContext(model=ddp or model, sampler=None, next_batch=lambda n: next(streams[n]),
                      dataset_names=list(data), grad_accum_steps=len(data["a"]), hooks=list(hooks),
                      no_sync=(lambda: dist.no_sync(ddp)) if ddp is not None else contextlib.nullcontext)
    STEP_STRATEGIES.build(node)(ctx)
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def check_reductions(rank: int, world: int) -> None:
    assert dist.reduce_dict({"loss": float(rank), "t": torch.tensor(2.0 * rank)}) == {"loss": 0.5, "t": 1.0}
    value = torch.tensor([float(rank)])
    assert dist.all_reduce_mean(value).item() == 0.5 and value.item() == rank
    sampler = TASK_SAMPLERS.build({"type": "ratios", "ratios": {"a": 0.3, "b": 0.7}},
                                  dataset_sizes={"a": 1, "b": 1}, seed=3)
    draws = [sampler.next() for _ in range(50)]
    assert all(d == draws for d in dist.all_gather_object(draws))  # every rank draws the same


def check_gather_with_grad(rank: int, world: int) -> None:
    torch.manual_seed(0)
    model, x = nn.Linear(4, 3), torch.randn(8, 4)
    reference = copy.deepcopy(model)
    emb = reference(x)  # one process, the whole batch: contrastive loss over 8 x 8 similarities
    nn.functional.cross_entropy(emb @ emb.T, torch.arange(8)).backward()

    ddp = dist.wrap_model(model)
    local = ddp(x[rank * 4:(rank + 1) * 4])
    everyone = dist.all_gather_with_grad(local)
    torch.testing.assert_close(everyone, emb.detach(), **TOL)
    nn.functional.cross_entropy(local @ everyone.T, torch.arange(4) + 4 * rank).backward()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, **TOL)

    rows = torch.randn(3 + 2 * rank, 2, requires_grad=True)  # uneven: 3 and 5 rows
    weights = torch.arange(16.0).reshape(8, 2)
    gathered = dist.all_gather_with_grad(rows)
    assert gathered.shape == (8, 2)
    (gathered * weights).sum().backward()
    start = 0 if rank == 0 else 3
    torch.testing.assert_close(rows.grad, world * weights[start:start + rows.shape[0]])


def check_strategies(rank: int, world: int) -> None:
    data = global_batches(accum=2, rows=8)
    for node, hooked in [("accumulate", False),
                         ({"type": "masked_combine", "group_a": ["^a/"], "group_b": ["^b/"]}, True)]:
        torch.manual_seed(0)
        model = Tasks()
        reference = copy.deepcopy(model)
        hook_node = {"type": "iterative_gradient_mask", "params": "^shared", "delta": 0.3, "every": 1}
        ref_hooks = [OPTIMIZER_HOOKS.build(hook_node, model=reference, optimizer=None)] if hooked else []
        hooks = [OPTIMIZER_HOOKS.build(hook_node, model=model, optimizer=None)] if hooked else []
        expected = run_strategy(node, reference, data, hooks=ref_hooks)
        ddp = dist.wrap_model(model, find_unused_parameters=True)
        got = run_strategy(node, model, data, hooks=hooks, ddp=ddp, rank=rank, world=world)
        assert got.keys() == expected.keys(), node
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], **TOL, msg=f"{node} {name}")
        if hooked:
            assert torch.equal(hooks[0].mask_for(model.shared.weight), ref_hooks[0].mask_for(reference.shared.weight))


class Layered(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.layers = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8)])
        self.out = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.embed(x))
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.out(x)


def check_fsdp(rank: int, world: int) -> None:
    torch.manual_seed(0)
    model, x = Layered(), torch.randn(8, 4)
    reference = copy.deepcopy(model)
    reference(x).pow(2).mean().backward()
    torch.optim.SGD(reference.parameters(), lr=0.1).step()
    sharded = dist.wrap_model(model, mode="fsdp")
    assert dist.is_sharded(sharded)
    opt = torch.optim.SGD(sharded.parameters(), lr=0.1)
    sharded(x[rank * 4:(rank + 1) * 4]).pow(2).mean().backward()
    opt.step()
    for p, q in zip(sharded.parameters(), reference.parameters()):
        torch.testing.assert_close(p.full_tensor(), q.detach(), **TOL)


def worker(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    assert dist.init_distributed("gloo")
    try:
        for check in (check_reductions, check_gather_with_grad, check_strategies, check_fsdp):
            check(rank, world)
            dist.barrier()
        dist.shutdown_distributed()  # the group init_distributed made ends with the run
        assert not tdist.is_initialized()
        dist.shutdown_distributed()  # a second call has nothing left to end
    finally:
        if tdist.is_initialized():
            tdist.destroy_process_group()


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process():
    spawn_ranks(worker, (WORLD, free_port()), WORLD)
