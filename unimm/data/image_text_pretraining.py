"""Image-caption samples for masked language modeling and image-text matching (METER Sec. 3.2).

Wraps an image-caption dataset (``coco_captions``, ...). Each sample gains a masked copy of its
caption for MLM and a randomly drawn other image for ITM; the collate function decides which
captions are paired with the other image, exactly ``B // 2`` of a batch matched, as METER's
``compute_itm`` (REFERENCE_NOTES 1.2). The clean caption stays in ``input_ids``: METER runs MLM (masked
text, true image) and ITM (clean text, matched or other image) as two separate forward passes.
For retrieval fine-tuning each sample can also draw negative texts, captions of other pictures, to
rank against its own (METER's ``draw_false_text=15``, REFERENCE_NOTES 1.3).
"""
from __future__ import annotations

from typing import Annotated, Any, Sequence

import torch
from torch.utils.data import Dataset

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.data.collate import pad_images, pad_tokens
from unimm.data.common import TRAIN_SPLIT
from unimm.data.masking import mask_tokens, sample_generator
from unimm.interfaces import TokenizedDataset
from unimm.registry import DATASETS

TASK_TYPE = "image_text_pretraining"
OTHER_IMAGE_TRIES = 10  # draws of another picture before one of the same picture is accepted


def itm_labels(batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``B // 2`` ones (matched) and ``B - B // 2`` zeros (mismatched), in random order (METER ``compute_itm``)."""
    matched = batch_size // 2
    labels = torch.cat([torch.ones(matched, dtype=torch.long), torch.zeros(batch_size - matched, dtype=torch.long)])
    return labels[torch.randperm(batch_size, generator=generator)]


class ImageTextPretraining(Dataset):
    """The base dataset's samples plus ``mlm_input_ids`` / ``mlm_labels`` and an other image for ITM.

    Batches add to the base's: ``mlm_input_ids`` ``[B, T]`` (the caption with 15% of its tokens
    corrupted: 80% the mask token, 10% a random token, 10% unchanged; ``unimm.data.masking``) and
    ``mlm_labels`` ``[B, T]`` (-100 where not chosen); ``itm_image`` ``[B, 3, H, W]`` with
    ``itm_pixel_mask`` ``[B, H, W]`` (the caption's own image where ``itm_label`` is 1, the other
    image where it is 0) and ``itm_label`` long ``[B]``; ``sample_index`` ``[B]``. ``input_ids`` stay the
    clean caption and ``image`` its own picture. With ``negative_texts`` K > 0: ``rank_input_ids`` /
    ``rank_attention_mask`` ``[B, 1 + K, T']``, the candidate texts of each image, its own caption
    first and then K captions drawn uniformly from the other pictures' (METER's ``draw_false_text``,
    which draws from the whole dataset; here a caption of the sample's own picture is redrawn, up to
    10 times, as for the other image).

    The other image is drawn uniformly from the whole dataset, as METER's ``draw_false_image``;
    unlike METER it is redrawn (up to 10 times) when it is the caption's own picture, which a small
    dataset (the shapes benchmark) would otherwise hit often. Training draws fresh masks, other images
    and labels each time; other splits draw them from ``eval_seed`` and the samples' indices, the
    same at every evaluation.

    Args:
        base: the image-caption dataset; its samples hold ``image``, ``input_ids`` and, when it
            numbers pictures, ``image_index``.
        name: the config key.
        mlm_probability: share of caption tokens chosen for MLM (0: no MLM fields).
        itm: add the ITM fields.
        seed: None for fresh draws (training), else the seed of fixed draws.
        negative_texts: captions of other pictures drawn per sample to rank against its own (0: none).
    """

    def __init__(self, base: Any, name: str, mlm_probability: float = 0.15, itm: bool = True,
                 seed: int | None = None, negative_texts: int = 0) -> None:
        self.base = base
        self.name = name
        self.task_type = TASK_TYPE
        self.mlm_probability = mlm_probability
        self.itm = itm
        self.seed = seed
        self.negative_texts = negative_texts
        if negative_texts and not hasattr(base, "captions"):
            raise ConfigError(f"{type(base).__name__} does not list its captions, so no negative texts can be drawn "
                              "from it; give a per-caption dataset (karpathy_retrieval, coco_captions) or set "
                              "negative_texts: 0", key="negative_texts")
        tokenizer = base.tokenizer
        self.pad_id = tokenizer.pad_id
        self.mask_id = tokenizer.mask_id
        self.vocab_size = tokenizer.vocab_size
        self.special_ids = torch.tensor(sorted(set(tokenizer.hf.all_special_ids)), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.base[index])
        if "mlm_labels" in sample:
            raise ConfigError(f"datasets.{self.name}.base masks its captions itself; set its mlm_probability to 0 "
                              "(this dataset masks a copy and keeps the clean caption for ITM)")
        generator = sample_generator(self.seed, index)
        if self.mlm_probability > 0:
            ids = sample["input_ids"]
            special = torch.isin(ids, self.special_ids).long()  # [T], never chosen
            sample["mlm_input_ids"], sample["mlm_labels"] = mask_tokens(
                ids, special, self.mask_id, self.vocab_size, self.mlm_probability, generator)
        if self.itm:
            sample["other_image"] = self.other_sample(index, sample, generator)["image"]
        if self.negative_texts:
            sample["negative_ids"] = [self.other_caption(index, sample, generator) for _ in range(self.negative_texts)]
        sample["sample_index"] = index
        return sample

    def other_caption(self, index: int, sample: dict[str, Any], generator: torch.Generator | None) -> torch.Tensor:
        """The token ids of a uniformly drawn caption of another picture (of another index at least);
        only the caption is read, never its picture."""
        captions = self.base.captions
        if len(captions) < 2:
            raise ConfigError(f"datasets.{self.name}: negative texts need at least two captions to draw from")
        own = sample.get("image_index")
        for _ in range(OTHER_IMAGE_TRIES):
            other = int(torch.randint(len(captions) - 1, (1,), generator=generator))
            other += other >= index
            if own is None or captions[other].image_index != own:
                break
        return self.base.tokenizer.encode(captions[other].text)["input_ids"]

    def other_sample(self, index: int, sample: dict[str, Any], generator: torch.Generator | None) -> dict[str, Any]:
        """A uniformly drawn sample of another picture (of another index at least)."""
        if len(self.base) < 2:
            raise ConfigError(f"datasets.{self.name}: ITM needs at least two samples to draw a mismatched image")
        own = sample.get("image_index")
        for _ in range(OTHER_IMAGE_TRIES):
            other = int(torch.randint(len(self.base) - 1, (1,), generator=generator))
            other += other >= index  # any index but the sample's own
            drawn = self.base[other]
            if own is None or drawn.get("image_index") != own:
                return drawn
        return drawn  # the dataset is (nearly) one picture: accept its own

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        samples = [dict(s) for s in samples]
        others = [s.pop("other_image") for s in samples] if self.itm else []
        masked = [s.pop("mlm_input_ids") for s in samples] if self.mlm_probability > 0 else []
        negatives = [s.pop("negative_ids") for s in samples] if self.negative_texts else []
        own = [s["image"] for s in samples]
        batch = self.base.collate(samples)
        if masked:
            batch["mlm_input_ids"], _ = pad_tokens(masked, self.pad_id)  # [B, T], as input_ids
        if others:
            generator = None
            if self.seed is not None:  # fixed labels for evaluation, whatever the batch order
                first = min(s["sample_index"] for s in samples)
                generator = torch.Generator().manual_seed(self.seed * 1_000_003 + first)
            labels = itm_labels(len(samples), generator)
            batch["itm_image"], batch["itm_pixel_mask"] = pad_images(
                [mine if label else other for mine, other, label in zip(own, others, labels.tolist())])
            batch["itm_label"] = labels
        if negatives:  # [B, 1 + K, T']: each image's own caption first, then its negatives
            candidates = [ids for s, drawn in zip(samples, negatives) for ids in (s["input_ids"], *drawn)]
            ids, mask = pad_tokens(candidates, self.pad_id)
            batch["rank_input_ids"] = ids.view(len(samples), 1 + self.negative_texts, -1)
            batch["rank_attention_mask"] = mask.view(len(samples), 1 + self.negative_texts, -1)
        batch["task_type"] = self.task_type
        return batch

    def info(self) -> dict[str, Any]:
        return {**self.base.info(), "mlm": self.mlm_probability > 0, "itm": self.itm,
                "negative_texts": self.negative_texts}


@DATASETS.register(parts={"base": "datasets"})
def image_text_pretraining(*, base: Any, split: str, name: str,
                           mlm_probability: Annotated[float, Range(ge=0, lt=1)] = 0.15, itm: bool = True,
                           negative_texts: Annotated[int, Range(ge=0)] = 0,
                           eval_seed: int = 0) -> ImageTextPretraining:
    """MLM and ITM samples from an image-caption dataset (METER's pre-training, Sec. 3.2 and 3.3).

    Args:
        base: an image-caption dataset node (``coco_captions``) built with ``mlm_probability: 0``.
        split: the split (runtime); the base is built for the same one.
        name: the config key (runtime).
        mlm_probability: caption tokens chosen for MLM (METER: 0.15; 0 turns MLM off).
        itm: matched / mismatched pairs for ITM (METER: on; exactly half of a batch matched).
        negative_texts: captions of other pictures each sample ranks its own against (METER's retrieval
            fine-tuning: 15, ``draw_false_text``; 0: none).
        eval_seed: the seed of the fixed masks, other images and labels of non-train splits.

    Returns:
        Batches of task type ``image_text_pretraining`` (see ``ImageTextPretraining``).
    """
    if not isinstance(base, TokenizedDataset):
        raise ConfigError(f"{type(base).__name__} has no tokenizer; give an image-caption dataset (coco_captions)",
                          key="base")
    if mlm_probability == 0 and not itm and not negative_texts:
        raise ConfigError("neither MLM (mlm_probability 0), ITM (itm false) nor ranking (negative_texts 0) is on; "
                          "turn one on", key="mlm_probability")
    return ImageTextPretraining(base, name, mlm_probability, itm, None if split == TRAIN_SPLIT else eval_seed,
                                negative_texts)
