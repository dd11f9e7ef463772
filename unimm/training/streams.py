"""Endless, resumable streams of training batches, one per dataset.

Each epoch draws a permutation from a generator seeded by (seed, dataset index, epoch),
so the order depends on nothing but those numbers: a resumed run continues with exactly
the batches an uninterrupted run would have seen. With several ranks, each global batch
of ``batch_size * world_size`` indices is cut into per-rank slices, so N processes see
the same samples per update as one process with an N times larger batch.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import torch
from torch.utils.data import DataLoader

from unimm.config.errors import ConfigError


class BatchStream:
    """The next batch of one dataset, forever; ``state_dict`` records the position.

    Args:
        dataset: a map-style dataset with ``collate``.
        batch_size: samples per process.
        seed: the run's seed; ``index`` tells datasets apart.
        rank, world_size: this process's slice of every global batch.
        num_workers: DataLoader workers.
        to_device: moves a collated batch to the device.
    """

    def __init__(self, dataset: Any, *, batch_size: int, seed: int, index: int = 0,
                 rank: int = 0, world_size: int = 1, num_workers: int = 0,
                 to_device: Callable[[dict], dict] = lambda b: b) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed, self.index = seed, index
        self.rank, self.world_size = rank, world_size
        self.num_workers = num_workers
        self.to_device = to_device
        self.epoch = 0
        self.position = 0  # global samples consumed in this epoch
        self._iterator: Iterator[dict] | None = None
        if self.global_batch > len(dataset):
            name = getattr(dataset, "name", "?")
            raise ConfigError(
                f"dataset '{name}' has {len(dataset)} samples, fewer than one global batch ({self.global_batch} = "
                f"{batch_size} per process x {world_size}); lower training.batch_size or set "
                f"training.batch_sizes.{name}", key="training.batch_sizes", rooted=True)

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    @property
    def batches_per_epoch(self) -> int:
        return len(self.dataset) // self.global_batch  # the last partial batch is dropped

    def __next__(self) -> dict[str, Any]:
        if self._iterator is None:
            self._iterator = self._epoch_iterator()
        try:
            batch = next(self._iterator)
        except StopIteration:
            self.epoch, self.position = self.epoch + 1, 0
            self._iterator = self._epoch_iterator()
            batch = next(self._iterator)
        self.position += self.global_batch
        return self.to_device(batch)

    def _epoch_iterator(self) -> Iterator[dict]:
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + self.index * 10_007 + self.epoch) % 2**63)
        order = torch.randperm(len(self.dataset), generator=gen).tolist()
        starts = range(self.position, self.batches_per_epoch * self.global_batch, self.global_batch)
        own = [order[s + self.rank * self.batch_size: s + (self.rank + 1) * self.batch_size] for s in starts]
        # The loader's own generator: making an iterator must not draw from the global RNG,
        # or a resumed run (which makes its iterator at another time) would drift.
        loader = DataLoader(NamedSamples(self.dataset), batch_sampler=own, collate_fn=self.dataset.collate,
                            num_workers=self.num_workers, generator=gen)
        return iter(loader)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._iterator = None


def eval_batches(dataset: Any, *, batch_size: int, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0, max_batches: int | None = None) -> DataLoader:
    """Every sample once, in order, split across ranks by stride."""
    indices = list(range(rank, len(dataset), world_size))
    batches = [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    if max_batches is not None:
        batches = batches[:max_batches]
    return DataLoader(NamedSamples(dataset), batch_sampler=batches, collate_fn=dataset.collate,
                      num_workers=num_workers)


class NamedSamples:
    """A dataset's samples, with an error in reading one noted with the dataset and the sample index.

    The note survives a DataLoader worker (it travels in the exception's message), so the command
    line says ``datasets.<name>, sample <i>`` beside the original error, also for plugin datasets.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            return self.dataset[index]
        except Exception as err:
            from unimm.cli.errors import add_where

            add_where(err, f"datasets.{self.dataset.name}, sample {index}")
            raise
