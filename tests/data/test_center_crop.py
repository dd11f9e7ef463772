"""center_crop: the central square, deterministic (ViT / DeiT evaluation after a shortest-side resize)."""
import pytest
import torch

from unimm.registry import PROCESSORS


def test_the_central_square_of_a_wide_and_a_tall_image():
    crop = PROCESSORS.build({"type": "center_crop", "size": 2})
    wide = torch.arange(8.0).reshape(1, 2, 4)  # columns 1 and 2 are central
    assert crop(wide)[0].tolist() == [[[1.0, 2.0], [5.0, 6.0]]]
    tall = torch.arange(6.0).reshape(1, 3, 2)  # (3 - 2) // 2 = 0: the odd row left over is the bottom one
    assert crop(tall)[0].tolist() == [[[0.0, 1.0], [2.0, 3.0]]]


def test_an_image_smaller_than_the_crop_is_a_clear_error():
    with pytest.raises(ValueError, match="resize its shorter side to at least 3 first"):
        PROCESSORS.build({"type": "center_crop", "size": 3})(torch.zeros(1, 2, 5))
