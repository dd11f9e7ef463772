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
