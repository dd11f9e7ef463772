"""T5-style span corruption (METER's encoder-decoder pre-training): a fixed choice of tokens gives exact
encoder inputs and decoder targets, checked by hand."""
from __future__ import annotations

import pytest
import torch

from unimm.modules.span_corruption import ExtraTokens, corrupt_spans, shift_right

# a vocabulary of 20 ids: 0 padding, 2 [CLS], 3 [SEP], 10.. words
TOKENS = ExtraTokens(vocab_size=20, num_sentinels=4)  # sentinels 20..23, end 24, start 25, class 26
S0, S1, S2, END, START = 20, 21, 22, 24, 25
PAD = 0


def test_the_added_ids_follow_the_vocabulary():
    assert (TOKENS.first_sentinel, TOKENS.end, TOKENS.start, TOKENS.cls) == (20, 24, 25, 26)
    assert (TOKENS.count, TOKENS.num_targets) == (7, 25)  # 4 sentinels + end + start + class; predicted: 20 + 4 + 1
    with pytest.raises(ValueError, match="num_sentinels must be positive"):
        ExtraTokens(vocab_size=20, num_sentinels=0)


def test_each_span_becomes_one_sentinel_and_the_target_lists_the_spans_in_order():
    #        [CLS] a   b   c   d   e  [SEP] pad      chosen: b c (one span), e (another)
    ids = torch.tensor([[2, 10, 11, 12, 13, 14, 3, PAD],
                        # [CLS] a b [SEP] with a chosen (a span at the start), then padding
                        [2, 15, 16, 3, PAD, PAD, PAD, PAD]])
    mask = (ids != PAD).long()
    chosen = torch.tensor([[0, 0, 1, 1, 0, 1, 0, 0],
                           [0, 1, 0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    out = corrupt_spans(ids, mask, chosen, TOKENS, pad_id=PAD)
    assert out.input_ids.tolist() == [[2, 10, S0, 13, S1, 3],
                                      [2, S0, 16, 3, PAD, PAD]]
    assert out.attention_mask.tolist() == [[1, 1, 1, 1, 1, 1],
                                           [1, 1, 1, 1, 0, 0]]
    assert out.targets.tolist() == [[S0, 11, 12, S1, 14, END],
                                    [S0, 15, END, -100, -100, -100]]
    decoder_ids, padding = shift_right(out.targets, START)
    assert decoder_ids.tolist() == [[START, S0, 11, 12, S1, 14],
                                    [START, S0, 15, START, START, START]]  # padding slots hold the start id
    assert padding.tolist() == [[False] * 6, [False, False, False, True, True, True]]


def test_padding_and_nothing_chosen():
    ids = torch.tensor([[2, 10, 11, 3], [2, 12, 3, PAD]])
    mask = (ids != PAD).long()
    chosen = torch.tensor([[False] * 4, [False, False, False, True]])  # a chosen padding slot is ignored
    out = corrupt_spans(ids, mask, chosen, TOKENS, pad_id=PAD)
    assert out.input_ids.tolist() == ids.tolist() and out.attention_mask.tolist() == mask.tolist()
    assert out.targets.tolist() == [[END], [END]]


def test_adjacent_spans_split_by_one_token_and_spans_past_the_sentinels():
    """Three spans, two sentinels: the third span stays in the encoder's input and is not a target."""
    tokens = ExtraTokens(vocab_size=20, num_sentinels=2)  # sentinels 20, 21; end 22
    ids = torch.tensor([[2, 10, 11, 12, 13, 14, 15, 3]])
    chosen = torch.tensor([[0, 1, 0, 1, 1, 0, 1, 0]], dtype=torch.bool)
    out = corrupt_spans(ids, torch.ones_like(ids), chosen, tokens)
    assert out.input_ids.tolist() == [[2, 20, 11, 21, 14, 15, 3]]
    assert out.targets.tolist() == [[20, 10, 21, 12, 13, 22]]


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="must be the same"):
        corrupt_spans(torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3), torch.zeros(2, 4, dtype=torch.bool),
                      TOKENS)
