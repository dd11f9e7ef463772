"""BERT-style masked-language-model corruption of one token sequence."""
from __future__ import annotations

import torch

from unimm.data.collate import IGNORE_INDEX


def mask_tokens(
    input_ids: torch.Tensor,
    special_tokens_mask: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose ``probability`` of the non-special tokens to predict.

    Of the chosen tokens 80% become ``mask_id``, 10% a random id, 10% stay. At least one
    token is chosen when any can be, so that every sequence carries a loss, unless ``probability``
    is 0: then nothing is chosen (a model that masks by itself, as MoMo, reads clean ids).

    Args:
        input_ids: long ``[T]``.
        special_tokens_mask: ``[T]``, 1 on tokens never chosen ([CLS], [SEP], padding).
        mask_id: id of the mask token.
        vocab_size: random replacements are drawn from ``[0, vocab_size)``.
        probability: share of the candidate tokens chosen.
        generator: source of randomness (None: torch's global generator).

    Returns:
        corrupted ids ``[T]`` and labels ``[T]``: the original id where chosen, -100 elsewhere.
    """
    candidates = special_tokens_mask == 0
    if probability == 0:
        return input_ids.clone(), torch.full_like(input_ids, IGNORE_INDEX)
    chosen = (torch.rand(input_ids.shape, generator=generator) < probability) & candidates
    if not chosen.any() and candidates.any():
        positions = candidates.nonzero().flatten()
        chosen[positions[torch.randint(len(positions), (1,), generator=generator)]] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    draw = torch.rand(input_ids.shape, generator=generator)
    corrupted = input_ids.clone()
    corrupted[chosen & (draw < 0.8)] = mask_id
    replace = chosen & (draw >= 0.8) & (draw < 0.9)
    corrupted[replace] = torch.randint(vocab_size, input_ids.shape, generator=generator)[replace]
    return corrupted, labels


def sample_generator(seed: int | None, index: int) -> torch.Generator | None:
    """None (torch's global generator: fresh masks each epoch) or one seeded by ``seed`` and the index."""
    if seed is None:
        return None
    return torch.Generator().manual_seed(seed * 1_000_003 + index)
