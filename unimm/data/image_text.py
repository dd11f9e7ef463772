"""Image-caption pairs for pre-training objectives (ITM, MLM, contrastive) and captioning."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.utils.data import Dataset

from unimm.data.collate import collate_batch
from unimm.data.common import read_image
from unimm.data.masking import mask_tokens, sample_generator
from unimm.data.tokenizers import TextTokenizer


@dataclass(frozen=True)
class Caption:
    """One caption of one image; ``image_index`` numbers the distinct images of the split."""

    caption_id: int
    image_id: int
    image_index: int
    image_path: Path
    text: str


class ImageTextPairs(Dataset):
    """One sample per caption.

    Samples hold ``image`` ``[3, H, W]``, ``input_ids`` / ``token_type_ids`` ``[T]``,
    ``caption_id``, ``image_id``, ``image_index`` (and ``text_image_index``, the same: the
    image of the text, as in per-image retrieval batches), ``caption``; with ``mlm_probability`` > 0
    also ``mlm_labels`` ``[T]`` (-100 where not masked), ``input_ids`` then being corrupted.

    Args:
        captions: the captions of the split.
        tokenizer: encodes the captions.
        transform: the image transform.
        name: the dataset's config key.
        source: the annotation file, named in errors.
        task_type: the task type of the batches.
        mlm_probability: share of caption tokens masked for MLM (0: none).
        mask_seed: None to mask afresh at every read (training); a number to mask each
            sample the same way every time (evaluation).
    """

    def __init__(self, captions: Sequence[Caption], tokenizer: TextTokenizer, transform: Any, name: str,
                 source: Path, task_type: str, mlm_probability: float = 0.0,
                 mask_seed: int | None = None) -> None:
        self.captions = list(captions)
        self.tokenizer = tokenizer
        self.transform = transform
        self.name = name
        self.source = source
        self.task_type = task_type
        self.mlm_probability = mlm_probability
        self.mask_seed = mask_seed

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, index: int) -> dict[str, Any]:
        cap = self.captions[index]
        image, _ = read_image(cap.image_path, f"image_id {cap.image_id} of {self.source}", self.transform)
        generator = sample_generator(self.mask_seed, index)
        sample = {"image": image, **encode_caption(self.tokenizer, cap.text, self.mlm_probability, generator)}
        sample.update(caption_id=cap.caption_id, image_id=cap.image_id, image_index=cap.image_index,
                      text_image_index=cap.image_index, caption=cap.text)
        return sample

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate_batch(samples, self.name, self.task_type, pad_id=self.tokenizer.pad_id)

    def info(self) -> dict[str, Any]:
        return {"vocab_size": self.tokenizer.vocab_size, "num_captions": len(self.captions),
                "num_images": len({c.image_index for c in self.captions})}


def encode_caption(tokenizer: TextTokenizer, text: str, mlm_probability: float,
                   generator: torch.Generator | None = None) -> dict[str, Any]:
    """``input_ids`` / ``token_type_ids`` / ``special_tokens_mask`` ``[T]``, plus ``mlm_labels`` when masking.

    ``special_tokens_mask`` (1 on [CLS] / [SEP]) tells a model that masks tokens itself (MoMo) which
    ones it may hide.
    """
    encoded = tokenizer.encode(text)
    out = {"input_ids": encoded["input_ids"], "token_type_ids": encoded["token_type_ids"],
           "special_tokens_mask": encoded["special_tokens_mask"]}
    if mlm_probability > 0:
        out["input_ids"], out["mlm_labels"] = mask_tokens(
            encoded["input_ids"], encoded["special_tokens_mask"], tokenizer.mask_id, tokenizer.vocab_size,
            mlm_probability, generator)
    return out
