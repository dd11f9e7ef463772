"""Image-text retrieval recall@K (IR@K, TR@K), as METER, ALBEF, FLAVA and MoMo report it.

``recall_at_k`` scores any ``[num_images, num_texts]`` similarity matrix; the registered
``retrieval_recall`` metric gathers dual-encoder embeddings over an evaluation pass and scores their
dot products, and ``pair_retrieval_recall`` gathers a cross-encoder's score of every (image, text)
pair (METER's full 1K x 5K scoring).

Ties. A positive is counted within the top K when *fewer than K negatives score at least as high as
it*: a negative that ties with the positive is ranked before it. METER's ``scores.topk(K)`` and
ALBEF's ``np.argsort(score)[::-1]`` leave ties to the position of the candidates in the matrix, so
their recall on tied scores depends on the order of the data. Ours never depends on the order; it
equals theirs whenever no negative ties with the best positive (real-valued model scores), and
otherwise it is the lowest recall any tie order could give. This makes a degenerate scorer honest: a
model whose scores are all equal gets recall 0 at K below the number of candidates, not the 100%
(or the data-order artefact) that counting ties in the query's favour would give. Ties *among the
positives* of a query never hurt (only the best positive counts). NaN scores lose: a NaN positive
is ranked after every candidate, a NaN negative before every candidate.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from unimm.registry import METRICS
from unimm.training import distributed as dist

logger = logging.getLogger("unimm")

CHUNK = 1024  # queries per block: bounds the temporary [CHUNK, candidates] masks


def _negatives_at_least(scores: Tensor, best_positive: Tensor, is_positive: Tensor) -> Tensor:
    """Per query row, how many non-positive candidates score at least the best positive (NaN-safe).

    ``scores`` ``[Q, C]``, ``best_positive`` ``[Q]``, ``is_positive`` bool ``[Q, C]`` -> long ``[Q]``.
    """
    beats = (scores >= best_positive[:, None]) | scores.isnan() | best_positive.isnan()[:, None]  # [Q, C]
    return (beats & ~is_positive).sum(dim=1)


def recall_at_k(scores: Tensor, text_to_image: Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Image retrieval and text retrieval recall@K of a similarity matrix, as fractions.

    * ``ir_r{K}``: over texts, the fraction whose image is among the K images scored highest for it
      (column ``t``, one positive: row ``text_to_image[t]``).
    * ``tr_r{K}``: over images that have at least one text, the fraction for which ANY of its texts is
      among the K texts scored highest for it (row ``i``; METER's and ALBEF's rule).
    * ``r_mean``: the mean of every ``ir_r{K}`` and ``tr_r{K}`` (METER's / ALBEF's "RSUM / 6" at the
      default ``ks``).
    * ``ir_tr_r1_r5_mean``: the mean of IR@1, IR@5, TR@1 and TR@5, MoMo's "average recall at top-1/5"
      (Table 2); only when ``ks`` holds 1 and 5.

    Ties count against the query (see the module docstring): a query's best positive is within the top
    K when fewer than K negatives score greater than *or equal to* it.

    Args:
        scores: ``[num_images, num_texts]``, higher is more similar.
        text_to_image: long ``[num_texts]``, the row of each text's image (several texts per image allowed).
        ks: the cut-offs K.

    Returns:
        ``{"ir_r1": ..., "ir_r5": ..., "ir_r10": ..., "tr_r1": ..., "tr_r5": ..., "tr_r10": ..., "r_mean": ...,
        "ir_tr_r1_r5_mean": ...}`` (keys follow ``ks``).
    """
    if scores.dim() != 2 or text_to_image.shape != (scores.shape[1],):
        raise ValueError(f"scores must be [num_images, num_texts] and text_to_image [num_texts], got "
                         f"{tuple(scores.shape)} and {tuple(text_to_image.shape)}")
    num_images, num_texts = scores.shape
    if num_texts == 0:
        raise ValueError("retrieval recall needs at least one text")
    text_to_image = text_to_image.long().to(scores.device)
    if text_to_image.min() < 0 or text_to_image.max() >= num_images:
        raise ValueError(f"text_to_image holds rows outside [0, {num_images}): "
                         f"{int(text_to_image.min())}..{int(text_to_image.max())}")
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive cut-offs, got {list(ks)}")
    cuts = torch.tensor(sorted(set(int(k) for k in ks)), device=scores.device)  # [K]

    # IR: each text (a column) ranks the images; its one positive is its own image.
    ir_ranks = []
    for start in range(0, num_texts, CHUNK):
        block = scores[:, start:start + CHUNK].T  # [Q, I]
        own = text_to_image[start:start + CHUNK]  # [Q]
        is_positive = torch.arange(num_images, device=scores.device)[None, :] == own[:, None]  # [Q, I]
        ir_ranks.append(_negatives_at_least(block, block.gather(1, own[:, None])[:, 0], is_positive))
    ir_rank = torch.cat(ir_ranks)  # [T], 0 = first

    # TR: each image (a row) ranks the texts; its positives are all of its texts, the best one counts.
    tr_ranks = []
    for start in range(0, num_images, CHUNK):
        block = scores[start:start + CHUNK]  # [Q, T]
        rows = torch.arange(start, start + block.shape[0], device=scores.device)  # [Q]
        is_positive = text_to_image[None, :] == rows[:, None]  # [Q, T]
        usable = is_positive & ~block.isnan()  # [Q, T]
        best = block.masked_fill(~usable, float("-inf")).amax(dim=1)  # [Q]
        best = torch.where(usable.any(dim=1), best, torch.full_like(best, float("nan")))  # no usable positive: NaN
        tr_ranks.append(_negatives_at_least(block, best, is_positive))
    has_text = torch.bincount(text_to_image, minlength=num_images) > 0  # [I]
    tr_rank = torch.cat(tr_ranks)[has_text]  # [I with texts]

    result: dict[str, float] = {}
    for prefix, rank in (("ir", ir_rank), ("tr", tr_rank)):
        hits = (rank[:, None] < cuts[None, :]).double().mean(dim=0)  # [K]
        result.update({f"{prefix}_r{k}": float(h) for k, h in zip(cuts.tolist(), hits)})
    result["r_mean"] = sum(result.values()) / len(result)
    if {1, 5} <= set(cuts.tolist()):
        result["ir_tr_r1_r5_mean"] = (result["ir_r1"] + result["ir_r5"] + result["tr_r1"] + result["tr_r5"]) / 4
    return result


def _recall_keys(ks: Sequence[int] = (1, 5, 10), **_: Any) -> list[str]:
    cuts = sorted(set(int(k) for k in ks))
    keys = [f"{p}_r{k}" for p in ("ir", "tr") for k in cuts] + ["r_mean"]
    return keys + (["ir_tr_r1_r5_mean"] if {1, 5} <= set(cuts) else [])


def _ids(value: Any) -> list[int]:
    return [int(v) for v in (value.tolist() if torch.is_tensor(value) else value)]


@METRICS.register(outputs=_recall_keys)
class retrieval_recall:  # noqa: N801 (registered name == builder name)
    """Zero-shot / dual-encoder retrieval recall@K from image and text embeddings of a whole split.

    Each batch gives image rows (an id and an embedding each) and text rows (the id of its image and an
    embedding each); ``compute`` gathers every rank's rows, keeps the first row of each image id (a
    dataset of image-text pairs repeats its images), scores every image against every text by dot
    product (cosine with ``normalize``) and returns ``recall_at_k`` of that matrix.

    Args:
        image_embeds_key: output entry ``[B, E]``.
        text_embeds_key: output entry ``[N, E]``.
        image_id_key: batch entry, the ``B`` image ids (long tensor or list).
        text_image_id_key: batch entry, the ``N`` ids of each text's image.
        ks: the cut-offs K.
        normalize: L2-normalise the embeddings first (cosine similarity, as CLIP / FLAVA evaluate).
    """

    def __init__(self, image_embeds_key: str = "image_embeds", text_embeds_key: str = "text_embeds",
                 image_id_key: str = "image_index", text_image_id_key: str = "text_image_index",
                 ks: Sequence[int] = (1, 5, 10), normalize: bool = True) -> None:
        self.image_embeds_key, self.text_embeds_key = image_embeds_key, text_embeds_key
        self.image_id_key, self.text_image_id_key = image_id_key, text_image_id_key
        self.ks = tuple(int(k) for k in ks)
        self.normalize = normalize
        self.reset()

    def reset(self) -> None:
        self.image_ids: list[int] = []
        self.text_image_ids: list[int] = []
        self.image_embeds: list[Tensor] = []
        self.text_embeds: list[Tensor] = []

    def update(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> None:
        images, texts = output[self.image_embeds_key], output[self.text_embeds_key]  # [B, E], [N, E]
        image_ids, text_ids = _ids(batch[self.image_id_key]), _ids(batch[self.text_image_id_key])
        if len(image_ids) != images.shape[0] or len(text_ids) != texts.shape[0]:
            raise ValueError(f"retrieval_recall: {len(image_ids)} image ids for {images.shape[0]} image embeddings, "
                             f"{len(text_ids)} text image ids for {texts.shape[0]} text embeddings")
        self.image_ids += image_ids
        self.text_image_ids += text_ids
        self.image_embeds.append(images.detach().float().cpu())
        self.text_embeds.append(texts.detach().float().cpu())

    def compute(self) -> dict[str, float]:
        local = (self.image_ids, self.text_image_ids, self.image_embeds, self.text_embeds)
        image_ids, text_ids, image_rows, text_rows = ([], [], [], [])
        for ids, tids, images, texts in dist.all_gather_object(local):  # every rank's rows, in rank order
            image_ids += ids
            text_ids += tids
            image_rows += images
            text_rows += texts
        if not text_ids:
            raise ValueError("retrieval_recall: no text was seen; the evaluation produced no text embeddings")
        images = torch.cat(image_rows)  # [I', E] (repeated images included)
        row_of: dict[int, int] = {}
        for i, image_id in enumerate(image_ids):
            row_of.setdefault(image_id, i)
        missing = sorted(set(text_ids) - set(row_of))
        if missing:
            raise ValueError(f"retrieval_recall: texts refer to images that were never seen: ids {missing[:10]}")
        keep = torch.tensor(sorted(row_of.values()))
        images = images[keep]  # [I, E], one row per image id
        index = {image_ids[int(r)]: i for i, r in enumerate(keep)}
        texts = torch.cat(text_rows)  # [T, E]
        if self.normalize:
            images, texts = F.normalize(images, dim=-1), F.normalize(texts, dim=-1)
        text_to_image = torch.tensor([index[t] for t in text_ids])  # [T]
        return recall_at_k(images @ texts.T, text_to_image, self.ks)


@METRICS.register(outputs=_recall_keys)
class pair_retrieval_recall:  # noqa: N801 (registered name == builder name)
    """Cross-encoder retrieval recall@K: the model scores every (image, text) pair jointly (METER).

    Each batch holds pairs (``RetrievalPairs``): the image's row ``image_index``, the text's column
    ``text_index``, the text's own image ``text_image_index``, and the model's ``pair_score`` ``[B]``.
    ``compute`` gathers every rank's pairs, fills the ``[images, texts]`` matrix and returns
    ``recall_at_k`` of it (IR and TR R@K, METER's ``compute_irtr_recall``). A pair scored twice is an
    error. When not every pair was scored (``evaluation.max_batches``), the recall is that of the images
    whose row is complete and the texts of those images, and a warning says how many.

    Args:
        score_key: output entry ``[B]``, higher is more similar (METER: the ITM "match" logit, or
            ``rank_output`` after retrieval fine-tuning).
        ks: the cut-offs K.
    """

    def __init__(self, score_key: str = "pair_score", ks: Sequence[int] = (1, 5, 10)) -> None:
        self.score_key = score_key
        self.ks = tuple(int(k) for k in ks)
        self.reset()

    def reset(self) -> None:
        self.rows: list[tuple[list[int], list[int], list[int], Tensor]] = []

    def update(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> None:
        scores = output[self.score_key].detach().float().reshape(-1).cpu()  # [B]
        images, texts = _ids(batch["image_index"]), _ids(batch["text_index"])
        owners = _ids(batch["text_image_index"])
        if not len(images) == len(texts) == len(owners) == scores.shape[0]:
            raise ValueError(f"pair_retrieval_recall: {scores.shape[0]} scores for {len(images)} pairs; the output "
                             f"'{self.score_key}' must hold one score per pair")
        self.rows.append((images, texts, owners, scores))

    def compute(self) -> dict[str, float]:
        images, texts, owners, scores = [], [], [], []
        for part in dist.all_gather_object(self.rows):  # every rank's pairs
            for i, t, o, s in part:
                images += i
                texts += t
                owners += o
                scores.append(s)
        if not images:
            raise ValueError("pair_retrieval_recall: no pair was scored")
        n_images, n_texts = max(images + owners) + 1, max(texts) + 1
        rows, cols = torch.tensor(images), torch.tensor(texts)
        if torch.unique(rows * n_texts + cols).numel() != len(images):
            raise ValueError("pair_retrieval_recall: a pair was scored more than once; each (image_index, "
                             "text_index) must come once per evaluation (RetrievalPairs)")
        matrix = torch.full((n_images, n_texts), float("nan"))
        matrix[rows, cols] = torch.cat(scores)
        seen = torch.zeros(n_images, n_texts, dtype=torch.bool)
        seen[rows, cols] = True
        owner_of = torch.full((n_texts,), -1, dtype=torch.long)
        owner_of[cols] = torch.tensor(owners)
        complete = seen.all(dim=1)  # image rows with every text scored
        if not bool(complete.all()):
            keep_texts = (owner_of >= 0) & complete[owner_of.clamp(min=0)]
            if not bool(keep_texts.any()):
                raise ValueError("pair_retrieval_recall: no image had all its pairs scored and a text of its own")
            logger.warning("pair_retrieval_recall: %d of %d images have every text scored (evaluation.max_batches?); "
                           "recall over those images and their %d texts", int(complete.sum()), n_images,
                           int(keep_texts.sum()))
            image_rows = complete.nonzero().flatten()
            new_row = torch.full((n_images,), -1, dtype=torch.long)
            new_row[image_rows] = torch.arange(len(image_rows))
            matrix = matrix[image_rows][:, keep_texts]
            owner_of = new_row[owner_of[keep_texts]]
        return recall_at_k(matrix, owner_of, self.ks)
