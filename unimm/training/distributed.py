"""Several processes, one model: rank queries, reductions, gathering and model wrapping.

Every helper works unchanged in a single process (no process group): ranks are 0 of 1,
reductions return their input, gathers return the local tensor and ``wrap_model`` returns
the model as it is. Runs are launched with ``torchrun``, which sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator, Mapping, Sequence

import torch
import torch.distributed as tdist
from torch import nn

from unimm.config.errors import ConfigError

WRAP_MODES = ("ddp", "fsdp")


def is_distributed() -> bool:
    """True when a process group with more than one process is running."""
    return tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1


def get_rank() -> int:
    return tdist.get_rank() if tdist.is_available() and tdist.is_initialized() else 0


def get_world_size() -> int:
    return tdist.get_world_size() if tdist.is_available() and tdist.is_initialized() else 1


def local_rank() -> int:
    """This process's index on its node (the GPU it drives)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if is_distributed():
        tdist.barrier()


_OWNED_GROUP = False  # whether init_distributed made the process group (and so ends it)


def init_distributed(backend: str | None = None) -> bool:
    """Join the process group that ``torchrun`` describes in the environment.

    Args:
        backend: ``"nccl"`` or ``"gloo"``; None picks nccl when CUDA is available, else gloo.

    Returns:
        True when this process is one of several, False for a single-process run.
    """
    if tdist.is_available() and tdist.is_initialized():
        return is_distributed()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ConfigError(f"WORLD_SIZE is set but {', '.join(missing)} is not; launch several "
                          "processes with torchrun --nproc_per_node=N -m unimm.cli.run ...")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    tdist.init_process_group(backend=backend)
    global _OWNED_GROUP
    _OWNED_GROUP = True
    return is_distributed()


def shutdown_distributed(clean: bool = True) -> None:
    """End the process group that ``init_distributed`` made; a no-op otherwise.

    Left to the interpreter's exit, gloo's worker threads can be torn down while still joinable,
    and a rank then dies with "terminate called without an active exception" after a run that
    succeeded. After a clean run every rank first waits at a barrier, so no rank closes its
    connections while another is still in its last collective; after an error there is no
    barrier (the other ranks may never reach it).
    """
    global _OWNED_GROUP
    if not (_OWNED_GROUP and tdist.is_available() and tdist.is_initialized()):
        return
    if clean:
        barrier()
    tdist.destroy_process_group()
    _OWNED_GROUP = False


def _reduce_device() -> torch.device:
    """nccl reduces CUDA tensors only; gloo reduces CPU tensors."""
    if tdist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over ranks, as a new tensor (the input is left as it is)."""
    if not is_distributed():
        return tensor.clone()
    out = tensor.detach().clone()
    tdist.all_reduce(out)
    return out.div_(get_world_size())


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over ranks, as a new tensor (e.g. a metric's counts)."""
    if not is_distributed():
        return tensor.clone()
    out = tensor.detach().to(_reduce_device(), copy=True)
    tdist.all_reduce(out)
    return out.to(tensor.device)


def reduce_dict(values: Mapping[str, float | torch.Tensor]) -> dict[str, float]:
    """Each value averaged over ranks in one collective; every rank must pass the same keys."""
    keys = sorted(values)
    if not is_distributed():
        return {k: float(values[k]) for k in keys}
    stacked = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_reduce_device())
    tdist.all_reduce(stacked)
    stacked /= get_world_size()
    return dict(zip(keys, stacked.tolist()))


def all_reduce_grads(tensors: Sequence[torch.Tensor], bucket_numel: int = 2**24) -> None:
    """Average gradient tensors over ranks in place, flattened into few collectives.

    Args:
        tensors: the same list (count, shapes, dtypes) on every rank.
        bucket_numel: the most elements reduced in one collective.
    """
    if not is_distributed():
        return
    world = get_world_size()
    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    for group in groups.values():
        bucket: list[torch.Tensor] = []
        size = 0
        for t in group + [None]:  # None flushes the last bucket
            if t is None or (bucket and size + t.numel() > bucket_numel):
                flat = torch.cat([b.reshape(-1) for b in bucket])
                tdist.all_reduce(flat)
                flat /= world
                for b, piece in zip(bucket, flat.split([b.numel() for b in bucket])):
                    b.copy_(piece.view_as(b))
                bucket, size = [], 0
            if t is not None:
                bucket.append(t)
                size += t.numel()


def all_gather_object(obj: Any) -> list[Any]:
    """One picklable object from every rank, in rank order."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * get_world_size()
    tdist.all_gather_object(out, obj)
    return out


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward returns this rank's slice of the summed gradient.

    Each rank's loss uses every rank's rows, so d(sum of rank losses)/d(own rows) is the sum
    over ranks of the gradient at the own rows; DDP then averages parameter gradients,
    giving the gradient of the mean of the rank losses.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        world, rank = get_world_size(), get_rank()
        sizes = torch.tensor([tensor.shape[0]], dtype=torch.long, device=tensor.device)
        all_sizes = [torch.zeros_like(sizes) for _ in range(world)]
        tdist.all_gather(all_sizes, sizes)
        counts = [int(s.item()) for s in all_sizes]
        padded = tensor.new_zeros((max(counts), *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
        pieces = [torch.empty_like(padded) for _ in range(world)]
        tdist.all_gather(pieces, padded.contiguous())
        ctx.counts, ctx.rank = counts, rank
        return torch.cat([p[:n] for p, n in zip(pieces, counts)])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        tdist.all_reduce(grad)
        start = sum(ctx.counts[: ctx.rank])
        return grad[start: start + ctx.counts[ctx.rank]]


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Rows of every rank, concatenated in rank order; gradients flow back to the local rows.

    Used by contrastive losses, whose negatives are the whole global batch.

    Args:
        tensor: ``[B_r, ...]`` on this rank (``B_r`` may differ between ranks).

    Returns:
        ``[sum_r B_r, ...]``; rows ``sum_{q<r} B_q ..`` are this rank's input.
    """
    if not is_distributed():
        return tensor
    return _GatherWithGrad.apply(tensor)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (FSDP2 keeps the module itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def is_sharded(model: nn.Module) -> bool:
    """True for a model whose parameters are sharded by torch FSDP."""
    from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel

    return isinstance(model, (FSDPModule, FullyShardedDataParallel))


def wrap_model(model: nn.Module, *, mode: str = "ddp", find_unused_parameters: bool = True) -> nn.Module:
    """Wrap ``model`` for data-parallel training; the model itself when there is one process.

    Args:
        model: already on this rank's device.
        mode: ``"ddp"`` (replicated parameters, averaged gradients) or ``"fsdp"`` (torch's
            fully sharded data parallel: parameters, gradients and optimizer state sharded
            across ranks; each layer of an ``nn.ModuleList`` is its own shard unit).
        find_unused_parameters: DDP tolerates parameters that got no gradient in a step
            (a multi-task model uses only some heads per step).

    Returns:
        The module to call in training steps. With ``fsdp`` it is ``model`` itself, sharded
        in place; build the optimizer after wrapping.
    """
    if mode not in WRAP_MODES:
        raise ConfigError(f"distributed mode {mode!r}: use one of {', '.join(WRAP_MODES)}")
    if not is_distributed():
        return model
    device = next(model.parameters()).device
    if mode == "ddp":
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=find_unused_parameters)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device.type, (get_world_size(),))
    for layer in outermost_list_items(model):
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)  # the remaining parameters (embeddings, heads)
    return model


def full_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Whole (unsharded) model and optimizer state dicts, for a checkpoint.

    With FSDP this is a collective: every rank must call it; rank 0 receives the full
    tensors on CPU, the other ranks empty dicts. Otherwise it is the plain state dicts.
    """
    if not is_sharded(model):
        return unwrap(model).state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_state_dict(model, optimizer, options=options)


def load_full_state(model: nn.Module, optimizer: torch.optim.Optimizer, model_state: Mapping[str, Any],
                    optimizer_state: Mapping[str, Any]) -> None:
    """Put back what ``full_state`` returned; with FSDP every rank passes the full state
    and keeps its own shard (a collective)."""
    if not is_sharded(model):
        optimizer.load_state_dict(optimizer_state)
        unwrap(model).load_state_dict(model_state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    set_state_dict(model, optimizer, model_state_dict=dict(model_state), optim_state_dict=dict(optimizer_state),
                   options=StateDictOptions(full_state_dict=True))


def outermost_list_items(model: nn.Module) -> list[nn.Module]:
    """The items of every ``nn.ModuleList`` that is not inside another one (transformer layers)."""
    lists = [name for name, m in model.named_modules() if isinstance(m, nn.ModuleList)]
    outer = [n for n in lists if not any(n != o and (o == "" or n.startswith(o + ".")) for o in lists)]
    return [layer for name in outer for layer in model.get_submodule(name)]


@contextlib.contextmanager
def no_sync(model: nn.Module) -> Iterator[None]:
    """Skip the gradient all-reduce for backward passes inside; the forward must be inside too."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        with model.no_sync():
            yield
    elif hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)
    else:
        yield
