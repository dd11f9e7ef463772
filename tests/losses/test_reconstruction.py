"""MAE's patchify layout and its masked pixel loss (MoMo Eq. 1)."""
from __future__ import annotations

import pytest
import torch

from unimm.losses.reconstruction import masked_pixel_loss, patchify, pixel_targets, unpatchify


def test_patchify_is_maes_layout_and_unpatchify_inverts_it():
    image = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    patches = patchify(image, 2)  # a 2 x 3 grid of 2 x 2 patches
    assert patches.shape == (2, 6, 12)
    # patch (0, 1): rows 0-1, columns 2-3; flattened as (row, column, channel)
    expected = torch.stack([image[0, c, r, q] for r in range(2) for q in (2, 3) for c in range(3)])
    torch.testing.assert_close(patches[0, 1], expected)
    torch.testing.assert_close(unpatchify(patches, 2, (2, 3)), image)


def test_the_normalised_target_of_a_hand_checkable_patch():
    image = torch.zeros(1, 1, 2, 2)
    image[0, 0] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = pixel_targets(image, 2, norm_pix=True)
    var = torch.tensor([1.0, 2.0, 3.0, 4.0]).var()  # unbiased: 5/3
    torch.testing.assert_close(target[0, 0], (torch.tensor([1.0, 2.0, 3.0, 4.0]) - 2.5) / (var + 1e-6).sqrt())
    torch.testing.assert_close(pixel_targets(image, 2, norm_pix=False)[0, 0], torch.tensor([1.0, 2.0, 3.0, 4.0]))


def test_only_hidden_patches_count():
    torch.manual_seed(0)
    image = torch.randn(2, 3, 4, 4)
    hidden = torch.tensor([[True, False, False, True], [False, False, True, False]])
    pred = torch.randn(2, 4, 12)
    loss = masked_pixel_loss(pred, image, hidden, 2, norm_pix=False)
    target = patchify(image, 2)
    per_patch = ((pred - target) ** 2).mean(dim=-1)
    torch.testing.assert_close(loss, per_patch[hidden].mean())
    changed = pred.clone()
    changed[~hidden] += 100.0  # visible patches: no effect
    torch.testing.assert_close(masked_pixel_loss(changed, image, hidden, 2, norm_pix=False), loss)
    perfect = torch.where(hidden[..., None], target, pred)
    assert float(masked_pixel_loss(perfect, image, hidden, 2, norm_pix=False)) == 0.0


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="do not match"):
        masked_pixel_loss(torch.zeros(1, 4, 5), torch.zeros(1, 3, 4, 4), torch.ones(1, 4, dtype=torch.bool), 2)
