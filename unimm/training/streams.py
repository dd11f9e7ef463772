"""Endless, resumable streams of training batches, one per dataset.

Each epoch draws a permutation from a generator seeded by (seed, dataset index, epoch),
so the order depends on nothing but those numbers: a resumed run continues with exactly
the batches an uninterrupted run would have seen. With several ranks, each global batch
of ``batch_size * world_size`` indices is cut into per-rank slices, so N processes see
the same samples per update as one process with an N times larger batch.

Random augmentation is reproducible in the same way: every sample is read with torch's,
Python's and NumPy's global generators seeded by (seed, dataset index, epoch, sample index),
torch's put back afterwards (``SeededSamples``). A sample's crop or flip therefore depends on
neither the process that reads it nor what was read before, so DataLoader workers give the
batches the main process would, and a run resumed mid-epoch (with or without workers) sees the
same pictures as an uninterrupted one. Reading data never draws from torch's generator of the
training process (dropout, masking in the model).

One DataLoader serves a stream across its epochs, so its workers live as long as the stream
and keep what they cached (the decoded pictures of ``unimm.data.images.PIXEL_CACHE``).
"""
from __future__ import annotations

import random
from typing import Any, Callable, Iterator

import numpy as np
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
        num_workers: DataLoader workers (the batches are the same for any count).
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
            self._iterator = self._start()
        batch = next(self._iterator)
        self.position += self.global_batch
        if self.position >= self.batches_per_epoch * self.global_batch:
            self.epoch, self.position = self.epoch + 1, 0
        return self.to_device(batch)

    def _start(self) -> Iterator[dict]:
        batches = EpochBatches(len(self.dataset), batch_size=self.batch_size, world_size=self.world_size,
                               rank=self.rank, seed=self.seed, index=self.index, epoch=self.epoch,
                               position=self.position)
        # The loader's own generator: making an iterator must not draw from the global RNG,
        # or a resumed run (which makes its iterator at another time) would drift.
        loader = DataLoader(SeededSamples(self.dataset, self.seed, self.index), batch_sampler=batches,
                            collate_fn=self.dataset.collate, num_workers=self.num_workers,
                            generator=torch.Generator().manual_seed(stream_seed(self.seed, self.index, 0)))
        return iter(loader)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._iterator = None


def stream_seed(seed: int, index: int, epoch: int) -> int:
    return (seed * 1_000_003 + index * 10_007 + epoch) % 2**63


class EpochBatches:
    """This rank's batches of keys ``(epoch, sample index)``, epoch after epoch, from ``epoch`` and ``position``.

    Each epoch's order is a permutation drawn from (seed, dataset index, epoch); the last partial
    global batch is dropped. Endless: the stream counts the epochs it has consumed.
    """

    def __init__(self, size: int, *, batch_size: int, world_size: int, rank: int, seed: int, index: int,
                 epoch: int, position: int) -> None:
        self.size, self.batch_size, self.world_size, self.rank = size, batch_size, world_size, rank
        self.seed, self.index, self.epoch, self.position = seed, index, epoch, position

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        global_batch = self.batch_size * self.world_size
        end = self.size // global_batch * global_batch
        epoch, position = self.epoch, self.position
        while True:
            gen = torch.Generator().manual_seed(stream_seed(self.seed, self.index, epoch))
            order = torch.randperm(self.size, generator=gen).tolist()
            for start in range(position, end, global_batch):
                first = start + self.rank * self.batch_size
                yield [(epoch, i) for i in order[first: first + self.batch_size]]
            epoch, position = epoch + 1, 0


def sample_seed(seed: int, index: int, epoch: int, sample: int) -> int:
    """The seed one training sample's augmentation is drawn with (a 63-bit mix of the four numbers).

    Distinct for every (epoch, sample) of a dataset under 2,000,003 samples; in a larger one, sample
    ``s + 2,000,003`` of an epoch shares its draws with sample ``s`` of the next (other pictures, so the
    crops and flips stay independent of the content).
    """
    mixed = stream_seed(seed, index, epoch) * 2_000_003 + sample
    return (mixed * 0x9E3779B97F4A7C15) % 2**63


class SeededSamples:
    """Training samples keyed ``(epoch, index)``, each read under global generators seeded for that sample.

    torch's CPU generator is seeded before the read and put back after it; Python's and NumPy's are
    seeded and left so (putting them back costs 0.5 ms a sample, the training loop draws from neither,
    and their state stays a function of the samples read). A transform that draws from any of them
    (ours take a ``generator``; a plugin's may use the global ones) gives the same picture in any
    process and at any point of a run.
    """

    def __init__(self, dataset: Any, seed: int, index: int) -> None:
        self.samples = NamedSamples(dataset)
        self.seed, self.index = seed, index

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        seed = sample_seed(self.seed, self.index, epoch, index)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        with torch.random.fork_rng(devices=[]):
            # the CPU generator alone: torch.manual_seed also seeds every accelerator backend, at 300 times the cost
            torch.default_generator.manual_seed(seed)
            return self.samples[index]


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
