"""Batch streams: a dataset smaller than one global batch is a config error naming the key to change."""
from __future__ import annotations

import pytest

from unimm.config.errors import ConfigError
from unimm.training.streams import BatchStream


class Tiny:
    name = "images"

    def __len__(self) -> int:
        return 24

    def __getitem__(self, index: int) -> dict:
        return {"x": index}


def test_a_dataset_smaller_than_a_global_batch_names_the_key():
    with pytest.raises(ConfigError, match=r"24 samples, fewer than one global batch \(32 = 16 per process x 2\)") as err:
        BatchStream(Tiny(), batch_size=16, seed=0, world_size=2)
    assert "training.batch_sizes.images" in str(err.value)
    assert BatchStream(Tiny(), batch_size=12, seed=0, world_size=2).global_batch == 24


class Augmented:
    """Samples whose 'augmentation' draws from torch's, Python's and NumPy's global generators."""
    name = "augmented"

    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int) -> dict:
        import random

        import numpy as np
        import torch
        return {"x": index, "torch": float(torch.rand(())), "python": random.random(), "numpy": float(np.random.rand())}

    def collate(self, samples: list[dict]) -> dict:
        return {key: [s[key] for s in samples] for key in samples[0]}


def draw(stream: BatchStream, count: int) -> list[dict]:
    return [next(stream) for _ in range(count)]


def test_workers_give_the_batches_of_the_main_process():
    """Augmentation is seeded per sample and epoch: any worker count gives the same batches, epoch after epoch."""
    alone = draw(BatchStream(Augmented(), batch_size=3, seed=5, index=1), 7)  # 3 batches an epoch: 2 epochs and more
    workers = draw(BatchStream(Augmented(), batch_size=3, seed=5, index=1, num_workers=2), 7)
    assert alone == workers
    # a sample drawn again in a later epoch gets another augmentation; its order is a new permutation
    first_epoch = {x: t for b in alone[:3] for x, t in zip(b["x"], b["torch"])}
    second_epoch = {x: t for b in alone[3:6] for x, t in zip(b["x"], b["torch"])}
    assert [b["x"] for b in alone[:3]] != [b["x"] for b in alone[3:6]]
    assert all(first_epoch[x] != second_epoch[x] for x in first_epoch.keys() & second_epoch.keys())


def test_reading_leaves_torch_generator_alone():
    import torch
    torch.manual_seed(0)
    expected = float(torch.rand(()))
    torch.manual_seed(0)
    draw(BatchStream(Augmented(), batch_size=3, seed=5), 4)
    assert float(torch.rand(())) == expected


@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_resumed_stream_continues_mid_epoch_with_the_same_augmentation(num_workers):
    whole = draw(BatchStream(Augmented(), batch_size=3, seed=2, num_workers=num_workers), 8)
    first = BatchStream(Augmented(), batch_size=3, seed=2, num_workers=num_workers)
    head = draw(first, 4)  # one epoch and one batch
    assert first.state_dict() == {"epoch": 1, "position": 3}
    resumed = BatchStream(Augmented(), batch_size=3, seed=2, num_workers=num_workers)
    resumed.load_state_dict(first.state_dict())
    assert head + draw(resumed, 4) == whole
