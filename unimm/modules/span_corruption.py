"""T5-style span corruption of token sequences (Raffel et al., Sec. 3.1.4; VL-T5; METER Sec. 4.3).

Given the tokens chosen for corruption, each contiguous run of chosen tokens (a *span*) is replaced in
the encoder's input by one sentinel token, the ``k``-th span by the ``k``-th sentinel, and the decoder's
target lists every span behind its sentinel and ends with an end token::

    input   [CLS] a  b  c  d  e  [SEP]      chosen: b, c, e
    encoder [CLS] a  <s0>  d  <s1> [SEP]
    target  <s0> b c <s1> e <end>
    decoder <start> <s0> b c <s1> e        (the target shifted right behind a start token)

Which tokens are chosen is the caller's (METER: 15% of the caption's tokens, drawn by the dataset); the
functions here are deterministic. The added tokens have ids past the tokenizer's vocabulary
(``ExtraTokens``): T5's vocabulary holds its 100 sentinels, a BERT / RoBERTa one holds none, so a model
appends their embedding rows to its word-embedding table.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

IGNORE_INDEX = -100  # the target of padding positions (cross-entropy's ignore_index)


@dataclass(frozen=True)
class ExtraTokens:
    """The ids appended after a tokenizer's ``vocab_size`` ids, in this order: ``num_sentinels``
    sentinels, the end token, the decoder's start token and its class token.

    The first ``num_targets`` ids (the vocabulary, the sentinels and the end) are what a decoder
    predicts; start and class are only ever its inputs.
    """

    vocab_size: int
    num_sentinels: int = 100  # T5's (and VL-T5's) extra_ids

    def __post_init__(self) -> None:
        if self.vocab_size < 1 or self.num_sentinels < 1:
            raise ValueError(f"vocab_size and num_sentinels must be positive, got {self.vocab_size} and "
                             f"{self.num_sentinels}")

    @property
    def first_sentinel(self) -> int:
        return self.vocab_size

    @property
    def end(self) -> int:
        return self.vocab_size + self.num_sentinels

    @property
    def start(self) -> int:
        return self.end + 1

    @property
    def cls(self) -> int:
        return self.end + 2

    @property
    def count(self) -> int:
        """How many ids are added (the rows a word-embedding table gains)."""
        return self.num_sentinels + 3

    @property
    def num_targets(self) -> int:
        """The outputs of a head over everything a decoder predicts: vocabulary, sentinels, end."""
        return self.vocab_size + self.num_sentinels + 1


@dataclass
class SpanCorruption:
    """The two sides of a span-corrupted batch.

    Attributes:
        input_ids: long ``[B, T']``, the encoder's input (spans replaced by sentinels), padded with
            ``pad_id`` after each row's end; ``T' <= T``.
        attention_mask: long ``[B, T']``, 1 on the encoder input's tokens.
        targets: long ``[B, L]``, ``sentinel_0 span_0 sentinel_1 span_1 ... end``, -100 after each row's end.
    """

    input_ids: Tensor
    attention_mask: Tensor
    targets: Tensor


def corrupt_spans(input_ids: Tensor, attention_mask: Tensor, chosen: Tensor, tokens: ExtraTokens,
                  pad_id: int = 0) -> SpanCorruption:
    """Replace each span of ``chosen`` tokens by a sentinel and list the spans as the decoder's target.

    Spans past ``tokens.num_sentinels`` in a row are not corrupted (left in the encoder's input, absent
    from the target): there is no sentinel to name them (T5 has 100, far more than a 50-token caption's
    spans at 15%).

    Args:
        input_ids: long ``[B, T]``, the clean token ids (right-padded).
        attention_mask: ``[B, T]``, 1 on tokens (0 on padding, which is never chosen).
        chosen: bool ``[B, T]``, the tokens to corrupt (special tokens excluded by the caller).
        tokens: where the sentinel and end ids are.
        pad_id: the id written in the encoder input's padding (masked out; any valid id).

    Returns:
        ``SpanCorruption`` (see there).
    """
    if not (input_ids.shape == attention_mask.shape == chosen.shape) or input_ids.dim() != 2:
        raise ValueError(f"input_ids {tuple(input_ids.shape)}, attention_mask {tuple(attention_mask.shape)} and "
                         f"chosen {tuple(chosen.shape)} must be the same [B, T]")
    valid = attention_mask.bool()
    chosen = chosen.bool() & valid
    previous = torch.nn.functional.pad(chosen[:, :-1], (1, 0), value=False)  # [B, T] was the token before chosen
    starts = chosen & ~previous  # [B, T] the first token of each span
    span = starts.long().cumsum(dim=1) - 1  # [B, T] index of the span a chosen token belongs to
    chosen = chosen & (span < tokens.num_sentinels)  # spans without a sentinel stay as they are
    starts = starts & chosen

    # encoder side: keep the unchosen tokens and one sentinel per span start, in order, left-aligned
    keep = valid & (~chosen | starts)  # [B, T]
    ids = torch.where(starts, tokens.first_sentinel + span, input_ids)
    width = max(int(keep.sum(dim=1).max()), 1) if len(ids) else 1
    positions = torch.arange(ids.shape[1], device=ids.device)
    order = (positions + (~keep).long() * ids.shape[1]).argsort(dim=1)[:, :width]  # [B, T'] kept ones first
    kept = torch.gather(keep, 1, order)
    encoder_ids = torch.where(kept, torch.gather(ids, 1, order), torch.full_like(order, pad_id))

    # decoder side: sentinel k at (tokens chosen before span k) + k; a chosen token one past its own
    # sentinel and the chosen tokens before it; the end after everything
    before = chosen.long().cumsum(dim=1) - chosen.long()  # [B, T] chosen tokens strictly before
    slot_of_token = before + span + 1  # [B, T] for chosen tokens
    slot_of_sentinel = before + span  # [B, T] for span starts
    lengths = chosen.sum(dim=1) + starts.sum(dim=1) + 1  # [B] spans + their tokens + the end
    targets = torch.full((len(ids), max(int(lengths.max()), 1) if len(ids) else 1), IGNORE_INDEX,
                         dtype=torch.long, device=ids.device)
    rows = torch.arange(len(ids), device=ids.device)[:, None].expand_as(ids)
    targets[rows[chosen], slot_of_token[chosen]] = input_ids[chosen].long()
    targets[rows[starts], slot_of_sentinel[starts]] = (tokens.first_sentinel + span)[starts]
    targets[torch.arange(len(ids), device=ids.device), lengths - 1] = tokens.end
    return SpanCorruption(encoder_ids, kept.long(), targets)


def shift_right(targets: Tensor, start_id: int) -> tuple[Tensor, Tensor]:
    """The decoder's teacher-forced input: ``start`` then the targets but the last (T5's ``_shift_right``).

    Args:
        targets: long ``[B, L]``, -100 on padding (after each row's end).
        start_id: the start token's id.

    Returns:
        ids long ``[B, L]`` (padding positions hold ``start_id``, masked out) and padding bool ``[B, L]``,
        True where the target is padding: position ``t`` reads target ``t - 1`` and predicts target ``t``.
    """
    padding = targets == IGNORE_INDEX  # [B, L]
    shifted = torch.cat([torch.full_like(targets[:, :1], start_id), targets[:, :-1]], dim=1)  # [B, L]
    return shifted.masked_fill(padding | (shifted == IGNORE_INDEX), start_id), padding
