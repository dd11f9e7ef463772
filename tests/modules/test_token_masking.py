"""MAE-style masking: the exact share hidden, order restored, fillers kept out of attention."""
from __future__ import annotations

import pytest
import torch

from unimm.modules.token_masking import choose_hidden, drop_hidden, restore


def test_exactly_the_requested_share_is_hidden_per_sample():
    candidates = torch.ones(5, 197, dtype=torch.bool)
    candidates[:, 0] = False  # [CLS]
    hidden = choose_hidden(candidates, 0.75, generator=torch.Generator().manual_seed(0))
    assert hidden.sum(dim=1).tolist() == [147] * 5  # MAE: 196 - int(196 * 0.25) = 147
    assert not hidden[:, 0].any()
    text = torch.zeros(3, 16, dtype=torch.bool)
    text[0, 1:13], text[1, 1:21 - 8], text[2, 1:3] = True, True, True  # 12, 12 and 2 candidates
    text[1, 1:14] = True  # 13 candidates
    hidden = choose_hidden(text, 0.15, generator=torch.Generator().manual_seed(1))
    # floor(12 * 0.85) = 10 kept -> 2 hidden; floor(13 * 0.85) = 11 -> 2; floor(2 * 0.85) = 1 -> 1
    assert hidden.sum(dim=1).tolist() == [2, 2, 1]
    assert not (hidden & ~text).any()


def test_the_largest_noise_is_hidden_as_mae():
    candidates = torch.tensor([[False, True, True, True, True]])
    noise = torch.tensor([[0.0, 0.9, 0.1, 0.8, 0.2]])
    assert choose_hidden(candidates, 0.5, noise).tolist() == [[False, True, False, True, False]]


def test_float_products_just_under_an_integer_keep_their_floor():
    candidates = torch.ones(1, 20, dtype=torch.bool)
    assert int(choose_hidden(candidates, 0.15).sum()) == 3  # 20 * 0.85 = 17 kept, not 16


def test_drop_and_restore_put_every_token_back_in_order():
    torch.manual_seed(0)
    tokens = torch.randn(3, 7, 4)
    visible = torch.tensor([[1, 0, 1, 1, 0, 0, 1], [1, 1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    kept = drop_hidden(tokens, visible)
    assert kept.tokens.shape == (3, 7, 4) and kept.padding.sum(dim=1).tolist() == [3, 0, 6]
    torch.testing.assert_close(kept.tokens[0, :4], tokens[0, [0, 2, 3, 6]])  # visible ones, original order
    assert (kept.tokens[kept.padding] == 0).all()  # fillers carry nothing
    mask = torch.full((4,), -1.0)
    full = restore(kept.tokens, kept, mask)
    torch.testing.assert_close(full[visible], tokens[visible])
    assert (full[~visible] == -1).all()


def test_a_batch_of_equal_counts_has_no_fillers():
    candidates = torch.ones(4, 9, dtype=torch.bool)
    hidden = choose_hidden(candidates, 0.5, generator=torch.Generator().manual_seed(3))
    kept = drop_hidden(torch.randn(4, 9, 2), ~hidden)
    assert kept.tokens.shape[1] == 4 and not kept.padding.any()  # floor(9 * 0.5) = 4 kept by every sample
    assert hidden.sum(dim=1).tolist() == [5] * 4


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="ratio"):
        choose_hidden(torch.ones(1, 3, dtype=torch.bool), 1.0)
    with pytest.raises(ValueError, match="bool"):
        choose_hidden(torch.ones(1, 3), 0.5)
    with pytest.raises(ValueError, match="noise"):
        choose_hidden(torch.ones(1, 3, dtype=torch.bool), 0.5, noise=torch.rand(1, 4))
