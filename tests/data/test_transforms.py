"""Image transforms: boxes stay on their pixels, evaluation is deterministic, seeds reproduce."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from unimm.config.errors import ConfigError
from unimm.data.transforms import functional as TF
from unimm.data.transforms.geometric import RandomHorizontalFlip, RandomResize, RandomResizedCrop, RandomSizeCrop
from unimm.data.transforms.photometric import IMAGENET_MEAN, IMAGENET_STD, RandAugment
from unimm.data.transforms.pipeline import Pipeline, RandomSelect
from unimm.registry import PROCESSORS

COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
BOXES = [[10, 10, 60, 50], [120, 20, 190, 70], [30, 90, 90, 150], [140, 100, 170, 130]]  # x0 y0 x1 y1


def scene() -> tuple[Image.Image, dict]:
    """A 200 x 160 black image with one solid rectangle of each colour at BOXES."""
    image = Image.new("RGB", (200, 160))
    draw = ImageDraw.Draw(image)
    for (x0, y0, x1, y1), color in zip(BOXES, COLORS):
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=color)  # PIL includes the end pixel
    target = {"boxes": torch.tensor(BOXES, dtype=torch.float32), "labels": torch.arange(4),
              "area": torch.tensor([(b[2] - b[0]) * (b[3] - b[1]) for b in BOXES], dtype=torch.float32),
              "iscrowd": torch.zeros(4, dtype=torch.long), "attributes": torch.arange(8).view(4, 2)}
    return image, target


def pixels(image: Image.Image) -> torch.Tensor:
    """uint8 [H, W, 3]."""
    return torch.from_numpy(np.array(image))


def colour_mask(image: Image.Image, color: tuple[int, int, int]) -> torch.Tensor:
    """bool [H, W]: pixels close to ``color`` (resampling blurs only the edges)."""
    return (pixels(image).float() - torch.tensor(color, dtype=torch.float32)).abs().max(dim=-1).values < 60


def assert_boxes_match_pixels(image: Image.Image, target: dict) -> None:
    kept = set(target["labels"].tolist())
    for label, color in enumerate(COLORS):
        mask = colour_mask(image, color)
        if label not in kept:
            assert mask.sum() <= 4, f"box {label} was dropped but its colour is still visible"
            continue
        x0, y0, x1, y1 = target["boxes"][target["labels"].tolist().index(label)].tolist()
        ys, xs = mask.nonzero(as_tuple=True)
        assert len(xs) > 0, f"box {label} kept but its colour vanished"
        # every pixel of the colour lies inside the box (1.5 px tolerance for resampling) ...
        assert xs.min() >= x0 - 1.5 and xs.max() + 1 <= x1 + 1.5, (label, xs.min(), xs.max(), x0, x1)
        assert ys.min() >= y0 - 1.5 and ys.max() + 1 <= y1 + 1.5, (label, ys.min(), ys.max(), y0, y1)
        # ... and the box is filled with it (its interior, 2 px in from the edges)
        inner = mask[int(y0) + 2: int(y1) - 2, int(x0) + 2: int(x1) - 2]
        if inner.numel():
            assert inner.float().mean() > 0.9, (label, inner.float().mean())


def detr_geometry() -> Pipeline:
    """DETR's training augmentation without normalisation, at sizes that fit the test image."""
    return Pipeline([
        RandomHorizontalFlip(0.5),
        RandomSelect(RandomResize((96, 112, 128), 220),
                     Pipeline([RandomResize((100, 120, 140)), RandomSizeCrop(48, 110), RandomResize((96, 112), 220)])),
    ])


@pytest.mark.parametrize("seed", range(24))
def test_detr_augmentation_keeps_boxes_on_their_rectangles(seed):
    image, target = scene()
    out_image, out = detr_geometry()(image, target, torch.Generator().manual_seed(seed))
    assert out["boxes"].shape[0] == out["labels"].shape[0] == out["area"].shape[0] == out["attributes"].shape[0]
    assert_boxes_match_pixels(out_image, out)
    # per-box fields travel together
    for label, attrs in zip(out["labels"].tolist(), out["attributes"].tolist()):
        assert attrs == [2 * label, 2 * label + 1]


def test_the_same_generator_seed_gives_the_same_augmentation():
    image, target = scene()
    first = detr_geometry()(image, target, torch.Generator().manual_seed(7))
    second = detr_geometry()(image, target, torch.Generator().manual_seed(7))
    assert torch.equal(pixels(first[0]), pixels(second[0]))
    assert torch.equal(first[1]["boxes"], second[1]["boxes"])
    sizes = {detr_geometry()(image, target, torch.Generator().manual_seed(s))[0].size for s in range(8)}
    assert len(sizes) > 1  # and different seeds really draw differently


def test_crop_drops_boxes_that_vanish_with_all_their_fields():
    image, target = scene()
    out_image, out = TF.crop(image, target, top=0, left=100, height=80, width=100)  # the top-right quarter
    assert out_image.size == (100, 80)
    assert out["labels"].tolist() == [1]
    assert out["boxes"].tolist() == [[20.0, 20.0, 90.0, 70.0]]
    assert out["area"].tolist() == [70.0 * 50.0]
    assert out["attributes"].tolist() == [[2, 3]] and out["iscrowd"].tolist() == [0]


def test_crop_clips_a_box_cut_in_two():
    image, target = scene()
    _, out = TF.crop(image, target, top=0, left=30, height=160, width=170)
    assert out["boxes"][0].tolist() == [0.0, 10.0, 30.0, 50.0]
    assert out["area"][0].item() == 30.0 * 40.0


def test_hflip_mirrors_boxes():
    image, target = scene()
    flipped, out = TF.hflip(image, target)
    assert out["boxes"][0].tolist() == [140.0, 10.0, 190.0, 50.0]
    assert_boxes_match_pixels(flipped, out)


def test_resize_shortest_respects_max_size_and_scales_boxes():
    assert TF.shortest_side_size(160, 200, 80, None) == (80, 100)
    assert TF.shortest_side_size(160, 200, 100, 110) == (88, 110)  # longer side capped
    assert TF.shortest_side_size(300, 100, 50, None) == (150, 50)
    image, target = scene()
    out_image, out = TF.resize_shortest(image, target, 80)
    assert out_image.size == (100, 80)
    assert out["boxes"][0].tolist() == [5.0, 5.0, 30.0, 25.0]
    assert out["area"][0].item() == pytest.approx(50 * 40 / 4)


def test_eval_transforms_are_deterministic_and_normalise():
    image, target = scene()
    for name, kwargs in [("detr_eval_transform", {"size": 80, "max_size": 120}),
                         ("vl_eval_transform", {"size": 64, "max_size": 100})]:
        transform = PROCESSORS.build({"type": name, **kwargs})
        (a, ta), (b, tb) = transform(image, target), transform(image, target)
        assert torch.equal(a, b) and torch.equal(ta["boxes"], tb["boxes"])
        assert a.dtype == torch.float32 and a.shape[0] == 3
    out, _ = PROCESSORS.build({"type": "detr_eval_transform", "size": 80, "max_size": 120})(image, target)
    assert tuple(out.shape) == (3, 80, 100)
    black = torch.tensor([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    assert torch.allclose(out[:, 40, 50], black, atol=1e-5)  # a black pixel between the rectangles


def test_detr_train_transform_outputs_normalised_tensor_with_consistent_boxes():
    transform = PROCESSORS.build({"type": "detr_train_transform", "scales": [96, 128], "max_size": 200,
                                  "crop_scales": [100], "crop_min": 48, "crop_max": 90})
    image, target = scene()
    out, t = transform(image, target, torch.Generator().manual_seed(3))
    assert out.dtype == torch.float32 and out.shape[0] == 3 and min(out.shape[1:]) in (96, 128)
    height, width = out.shape[1:]
    assert (t["boxes"][:, 2] <= width).all() and (t["boxes"][:, 3] <= height).all()


def test_mae_random_resized_crop_is_square_and_seeded():
    crop = RandomResizedCrop(32, scale=(0.2, 1.0))
    image, _ = scene()
    a, _ = crop(image, None, torch.Generator().manual_seed(1))
    b, _ = crop(image, None, torch.Generator().manual_seed(1))
    assert a.size == (32, 32) and torch.equal(pixels(a), pixels(b))
    regions = {crop.region(160, 200, torch.Generator().manual_seed(s)) for s in range(10)}
    assert len(regions) > 5
    for top, left, h, w in regions:
        assert 0 <= top and top + h <= 160 and 0 <= left and left + w <= 200
        assert 0.2 * 160 * 200 * 0.9 <= h * w <= 160 * 200
    transform = PROCESSORS.build({"type": "mae_train_transform", "size": 32})
    assert tuple(transform(image, None, torch.Generator().manual_seed(0))[0].shape) == (3, 32, 32)


def test_rand_augment_is_reproducible_from_a_generator_and_refuses_boxes():
    image, target = scene()
    augment = RandAugment(num_ops=2, magnitude=9)
    outs = [augment(image, None, torch.Generator().manual_seed(s))[0] for s in (5, 5, 6, 7, 8)]
    assert torch.equal(pixels(outs[0]), pixels(outs[1]))
    assert any(not torch.equal(pixels(o), pixels(outs[0])) for o in outs[2:])
    with pytest.raises(ConfigError, match="boxes"):
        augment(image, target)


def test_image_pipeline_builds_steps_from_nodes():
    pipeline = PROCESSORS.build({"type": "image_pipeline", "steps": [
        {"type": "resize_shortest", "size": 40}, {"type": "random_horizontal_flip", "prob": 1.0},
        {"type": "normalize_image", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}]})
    image, target = scene()
    out, t = pipeline(image, target)
    assert tuple(out.shape) == (3, 40, 50)
    assert t["boxes"][0].tolist() == [35.0, 2.5, 47.5, 12.5]  # scaled by 1/4, then mirrored
    assert torch.allclose(out[:, 5, 40], torch.tensor([1.0, 0.0, 0.0]), atol=0.02)  # red stayed under its box
