"""Hard negatives for image-text matching (ITM), drawn from the contrastive similarities as ALBEF does.

For each image of a batch, one caption of *another* image; for each caption, one *other* image. A
candidate is drawn with probability softmax(similarity) over the candidates that show a different image,
so captions the contrastive head already confuses with the true one come up most often (MoMo Sec. 3.1: ITM
"guided by similarity scores from the contrastive learning", REFERENCE_NOTES 2.2).

The reference code and why this file does not copy it (REFERENCE_NOTES 5, item 4):

* ALBEF ``models/model_pretrain.py`` takes ``F.softmax(sim_i2t[:, :bs])``, zeroes the diagonal with
  ``fill_diagonal_(0)`` and calls ``torch.multinomial`` row by row. Only the positive is masked: a second
  caption of the same image in the batch can be drawn as a "negative", and a row whose
  off-diagonal weights all underflow (a very confident positive, a batch of one) sums to 0.
* ALBEF ``models/model_retrieval.py`` (after ALBEF #18, "invalid multinomial distribution (sum of
  probabilities <= 0)"), BLIP retrieval and LAVIS mask by image id instead: ``mask = torch.eq(idx,
  idx.t())``, then ``masked_fill_(mask, 0)``. That stops duplicates from being drawn, but a batch made of
  one image's captions still leaves rows of zeros, and the softmax runs in the model's dtype: under fp16
  ``sim / temp`` overflows to inf and softmax returns NaN (BLIP #76, LAVIS #107). The ``+ 1e-4`` some
  versions add is *inside* the softmax in ALBEF retrieval, where it changes nothing.

Here: the id mask, a softmax in float32 with each row's maximum over its usable entries subtracted, a
defined answer for inf / NaN entries, and ``-1`` for a row that has no negative at all, which the
caller drops from its negative pairs instead of crashing.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["NO_NEGATIVE", "itm_negatives", "sample_hard_negatives"]

NO_NEGATIVE = -1  # the column returned for a row whose every candidate shows its own image


def _check_ids(name: str, ids: Tensor, length: int, axis: str) -> None:
    if ids.dim() != 1:
        raise ValueError(f"{name} must be 1-D ({axis} image ids), got shape {tuple(ids.shape)}")
    if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex():
        raise ValueError(f"{name} must hold integer image ids (torch.long), got dtype {ids.dtype}")
    if ids.shape[0] != length:
        raise ValueError(f"{name} has {ids.shape[0]} ids but similarity has {length} {axis}")


def _check_generator(generator: torch.Generator | None, device: torch.device) -> None:
    if generator is None:
        return
    gen = generator.device
    if gen.type != device.type or (gen.index is not None and device.index is not None and gen.index != device.index):
        raise ValueError(f"generator is on {gen} but similarity is on {device}; torch.multinomial needs a "
                         f"generator on the tensor's device, e.g. torch.Generator(device={str(device)!r})")


def _negative_weights(similarity: Tensor, valid: Tensor) -> Tensor:
    """Unnormalised softmax weights ``[B, N]`` (float32, finite, >= 0) over each row's valid columns.

    NaN entries get weight 0. Where a row holds +inf, its +inf entries share the mass equally (the limit
    of softmax) and the rest get 0. Where every valid weight is 0 (all valid entries -inf or NaN), the
    valid columns get equal weight. Invalid columns always get 0; a row with no valid column is all 0.
    """
    logits = similarity.float().masked_fill(~valid | similarity.isnan(), float("-inf"))  # [B, N]
    row_max = logits.amax(dim=1, keepdim=True)  # [B, 1]; +inf or -inf in the special rows
    shift = torch.where(row_max.isfinite(), row_max, torch.zeros_like(row_max))  # never inf - inf
    weights = (logits - shift).exp()  # [B, N], in [0, 1] wherever the row maximum is finite
    is_pos_inf = logits == float("inf")  # [B, N]
    weights = torch.where(is_pos_inf.any(dim=1, keepdim=True), is_pos_inf.float(), weights)
    all_zero = weights.sum(dim=1, keepdim=True) == 0  # [B, 1]
    return torch.where(all_zero, valid.float(), weights)


@torch.no_grad()
def sample_hard_negatives(similarity: Tensor, query_ids: Tensor, candidate_ids: Tensor,
                          generator: torch.Generator | None = None) -> Tensor:
    """For each query row pick one candidate column ~ softmax(similarity[row]) among the candidates whose id differs.

    ``similarity [B, N]`` float (any dtype; computed in float32 under no_grad), ``query_ids [B]`` long,
    ``candidate_ids [N]`` long (the image id of every query and every candidate: the same id = the same
    image = never a negative). Returns long ``[B]``: the chosen column per row, or -1 where a row has no
    valid candidate (every candidate shares its id).

    Pass the contrastive *logits* (similarity already divided by the temperature), as ALBEF does: the
    temperature sets how peaked the draw is.

    Guarantees:

    * The returned column's id never equals the row's id: neither the positive nor another caption or
      copy of the same image (the ``torch.eq(idx, idx.t())`` mask of ALBEF ``model_retrieval.py``, which
      its ``model_pretrain.py`` lacks; see the module docstring and ALBEF #18, BLIP #76, LAVIS #107).
    * ``-1`` (``NO_NEGATIVE``) where every candidate shares the row's id, e.g. a batch of one image's
      captions. The caller drops those rows from its negative ITM pairs (``keep = negatives >= 0``);
      nothing raises.
    * No NaN and no "invalid multinomial distribution": the softmax runs in float32 with each row's
      maximum subtracted, so fp16 / bf16 logits that overflowed to +-inf are safe. A NaN entry gets
      weight 0 and the row is sampled among its other valid entries; +inf entries share the row's mass
      (the limit of softmax); a row whose valid weights are all 0 (every valid entry -inf or NaN) is
      sampled uniformly among its valid columns.
    * No autograd graph: the result does not depend on whether ``similarity`` requires grad.

    Args:
        similarity: ``[B, N]`` query-vs-candidate logits, any float dtype.
        query_ids: ``[B]`` integer image id of each query; moved to ``similarity``'s device.
        candidate_ids: ``[N]`` integer image id of each candidate; moved to ``similarity``'s device.
        generator: passed to ``torch.multinomial(weights, 1, generator=generator)``, which runs once on
            the rows that have a candidate, so a seeded generator makes the draw reproducible. It must live
            on ``similarity``'s device (``torch.Generator(device="cuda")`` for CUDA inputs).

    Returns:
        long ``[B]`` on ``similarity``'s device: a column in ``0 .. N-1``, or -1.

    Raises:
        ValueError: ``similarity`` not 2-D or not floating point; ids not 1-D, not integer, or of the
            wrong length; ``generator`` on another device.
    """
    if similarity.dim() != 2:
        raise ValueError(f"similarity must be 2-D [B, N] (queries x candidates), got shape {tuple(similarity.shape)}")
    if not similarity.is_floating_point():
        raise ValueError(f"similarity must be a floating-point tensor, got dtype {similarity.dtype}")
    num_queries, num_candidates = similarity.shape
    _check_ids("query_ids", query_ids, num_queries, "rows (queries)")
    _check_ids("candidate_ids", candidate_ids, num_candidates, "columns (candidates)")
    _check_generator(generator, similarity.device)

    device = similarity.device
    negatives = torch.full((num_queries,), NO_NEGATIVE, dtype=torch.long, device=device)  # [B]
    if num_candidates == 0:
        return negatives
    valid = query_ids.to(device)[:, None] != candidate_ids.to(device)[None, :]  # [B, N]
    weights = _negative_weights(similarity.detach(), valid)  # [B, N]
    rows = valid.any(dim=1).nonzero().squeeze(1)  # [R], the rows that have a negative
    if rows.numel() > 0:
        negatives[rows] = torch.multinomial(weights[rows], 1, generator=generator).squeeze(1)
    return negatives


def itm_negatives(sim_i2t: Tensor, sim_t2i: Tensor, image_ids: Tensor, all_image_ids: Tensor | None = None,
                  generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """One hard-negative caption per local image and one hard-negative image per local caption.

    Candidate ``j`` is the pair ``j`` of the candidate set (the local batch, or the batch gathered from
    every rank, as ALBEF #53 asks): its caption describes image ``all_image_ids[j]``, so the same ids
    mask both directions. See ``sample_hard_negatives`` for the guarantees.

    Args:
        sim_i2t: ``[B, N]`` logits of the local images against the candidate captions.
        sim_t2i: ``[B, N]`` logits of the local captions against the candidate images.
        image_ids: ``[B]`` integer image id of each local pair.
        all_image_ids: ``[N]`` integer image id of each candidate pair; None means the candidates are the
            local pairs (``N == B``).
        generator: as in ``sample_hard_negatives``; it is drawn from for the captions, then the images.

    Returns:
        ``(text_for_image, image_for_text)``, long ``[B]`` each: the candidate column of the negative
        caption for each local image and of the negative image for each local caption; -1 where none
        exists (every candidate shows the same image), which the caller drops.

    Raises:
        ValueError: the two similarity shapes differ, ``all_image_ids`` is None while ``N != B``, or any
            check of ``sample_hard_negatives`` fails.
    """
    if sim_i2t.shape != sim_t2i.shape:
        raise ValueError(f"sim_i2t {tuple(sim_i2t.shape)} and sim_t2i {tuple(sim_t2i.shape)} must have the same "
                         f"shape [B, N]: B local pairs against the same N candidate pairs")
    if all_image_ids is None:
        if sim_i2t.dim() == 2 and sim_i2t.shape[1] != sim_i2t.shape[0]:
            raise ValueError(f"similarities are {tuple(sim_i2t.shape)}, so the candidates are not the local pairs; "
                             f"pass all_image_ids [{sim_i2t.shape[1]}] (e.g. the ids gathered from every rank)")
        all_image_ids = image_ids
    text_for_image = sample_hard_negatives(sim_i2t, image_ids, all_image_ids, generator)
    image_for_text = sample_hard_negatives(sim_t2i, image_ids, all_image_ids, generator)
    return text_for_image, image_for_text
