"""The pixel cache: the same numbers as without it, a changed file read again, memory bounded."""
from __future__ import annotations

import os

import torch
from PIL import Image

from unimm.data import common
from unimm.data.images import PixelCache, load_image
from unimm.data.transforms.presets import detr_eval_transform, detr_train_transform, vl_eval_transform


def picture(path, color, size=(40, 30)):
    Image.new("RGB", size, color).save(path)
    return path


def test_a_cached_picture_gives_the_same_tensor_and_target(tmp_path, monkeypatch):
    path = picture(tmp_path / "a.png", (10, 200, 30))
    transform = detr_eval_transform(size=64, max_size=128)
    target = {"boxes": torch.tensor([[2.0, 3.0, 20.0, 25.0]]), "labels": torch.tensor([1])}
    plain, plain_target = transform(load_image(path, "test"), {k: v.clone() for k, v in target.items()})
    cache = PixelCache(10 * 2**20)
    monkeypatch.setattr(common, "PIXEL_CACHE", cache)
    for _ in range(3):
        tensor, out = common.read_image(path, "test", transform, {k: v.clone() for k, v in target.items()})
        assert torch.equal(tensor, plain) and torch.equal(out["boxes"], plain_target["boxes"])
        out["boxes"] += 1  # a later change of the handed-out target does not reach the kept one
    assert (cache.misses, cache.hits) == (1, 2)


def test_random_steps_are_never_cached(tmp_path, monkeypatch):
    path = picture(tmp_path / "a.png", (10, 200, 30))
    cache = PixelCache(10 * 2**20)
    monkeypatch.setattr(common, "PIXEL_CACHE", cache)
    common.read_image(path, "test", detr_train_transform(scales=(32,), crop_scales=(32,), crop_min=16, crop_max=24))
    assert cache.misses == cache.hits == 0  # DETR's augmentation starts with a random flip: nothing fixed to keep


def test_a_changed_file_is_read_again(tmp_path, monkeypatch):
    path = picture(tmp_path / "a.png", (10, 200, 30))
    cache = PixelCache(10 * 2**20)
    monkeypatch.setattr(common, "PIXEL_CACHE", cache)
    transform = vl_eval_transform(size=32, max_size=64)
    first, _ = common.read_image(path, "test", transform)
    picture(path, (250, 0, 0))
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 10**9))
    second, _ = common.read_image(path, "test", transform)
    assert not torch.equal(first, second) and cache.misses == 2


def test_the_least_recently_used_pictures_go_when_the_bound_is_reached(tmp_path):
    cache = PixelCache(max_bytes=2 * 32 * 24 * 3)  # room for two resized pictures
    transform = vl_eval_transform(size=24, max_size=64).split_fixed_prefix()[0]
    paths = [picture(tmp_path / f"{i}.png", (i, i, i)) for i in range(3)]
    for path in paths:
        cache.get(path, "test", transform)
    assert cache.used <= cache.max_bytes and len(cache._entries) == 2
    cache.get(paths[0], "test", transform)  # evicted first: read again
    assert cache.misses == 4
