"""Image(s) + text -> one label: the dataset shared by SNLI-VE and NLVR2."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from torch.utils.data import Dataset

from unimm.data.collate import collate_batch
from unimm.data.common import read_image
from unimm.data.tokenizers import TextTokenizer

IMAGE_KEYS = ("image", "image2")


@dataclass(frozen=True)
class LabelledPair:
    """One example: its images (one or two), the text, the label index (-1: unknown), an id."""

    example_id: str
    image_paths: tuple[Path, ...]
    text: str
    label: int


class ImageTextClassification(Dataset):
    """Samples hold ``image`` ``[3, H, W]`` (and ``image2`` for pairs), ``input_ids`` /
    ``token_type_ids`` ``[T]``, ``label`` and ``example_id``.

    Args:
        examples: the examples of the split.
        labels: label names, in index order.
        tokenizer: encodes the text.
        transform: the image transform.
        name: the dataset's config key.
        source: the annotation file, named in errors.
        task_type: the task type of the batches.
    """

    def __init__(self, examples: Sequence[LabelledPair], labels: Sequence[str], tokenizer: TextTokenizer,
                 transform: Any, name: str, source: Path, task_type: str) -> None:
        self.examples = list(examples)
        self.labels = list(labels)
        self.tokenizer = tokenizer
        self.transform = transform
        self.name = name
        self.source = source
        self.task_type = task_type

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ex = self.examples[index]
        sample: dict[str, Any] = {}
        for key, path in zip(IMAGE_KEYS, ex.image_paths):
            sample[key], _ = read_image(path, f"example {ex.example_id} of {self.source}", self.transform)
        text = self.tokenizer.encode(ex.text)
        sample.update(input_ids=text["input_ids"], token_type_ids=text["token_type_ids"], label=ex.label,
                      example_id=ex.example_id)
        return sample

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate_batch(samples, self.name, self.task_type, pad_id=self.tokenizer.pad_id)

    def info(self) -> dict[str, Any]:
        return {"num_classes": len(self.labels), "labels": list(self.labels), "vocab_size": self.tokenizer.vocab_size,
                "images_per_example": len(self.examples[0].image_paths) if self.examples else 1}
