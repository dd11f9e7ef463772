"""Image-text retrieval on the Karpathy splits (``dataset_coco.json``, ``dataset_flickr30k.json``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import torch
from torch.utils.data import Dataset

from unimm.config.errors import ConfigError
from unimm.data.collate import collate_batch, pad_sequences, pad_tokens
from unimm.data.common import TRAIN_SPLIT, choose_transform, read_image, take
from unimm.data.files import field, json_list, read_json, require_files
from unimm.data.image_text import Caption, ImageTextPairs
from unimm.data.images import require_images
from unimm.data.tokenizers import TextTokenizer
from unimm.registry import DATASETS

KARPATHY_SPLITS = {"train": ("train", "restval"), "val": ("val",), "test": ("test",)}


def read_karpathy(path: Path, image_dir: Path, members: Sequence[str]) -> list[Caption]:
    """Captions (``sentences[].raw``) of the images whose ``split`` is in ``members``."""
    captions: list[Caption] = []
    image_index = 0
    for i, record in enumerate(json_list(read_json(path), "images", path)):
        where = f"{path}, images[{i}]"
        if field(record, "split", where, str) not in members:
            continue
        file_path = image_dir / record.get("filepath", "") / field(record, "filename", where, str)
        image_id = int(record["cocoid"]) if "cocoid" in record else field(record, "imgid", where, int)
        for j, sentence in enumerate(field(record, "sentences", where, list)):
            raw = field(sentence, "raw", f"{where}.sentences[{j}]", str).strip()
            captions.append(Caption(int(sentence.get("sentid", len(captions))), image_id, image_index, file_path, raw))
        image_index += 1
    return captions


class RetrievalImages(Dataset):
    """One sample per image with all its captions (evaluation over the whole split).

    Samples hold ``image`` ``[3, H, W]``, ``image_index``, ``image_id`` and ``captions``;
    batches flatten the captions: ``input_ids`` / ``attention_mask`` / ``token_type_ids``
    ``[N, T]`` for the N captions of the batch and ``text_image_index`` ``[N]``, the
    ``image_index`` of each caption's image (a text matches an image when they are equal).
    """

    task_type = "retrieval"

    def __init__(self, captions: Sequence[Caption], tokenizer: TextTokenizer, transform: Any, name: str,
                 source: Path) -> None:
        self.by_image: list[list[Caption]] = []
        for cap in captions:
            if not self.by_image or self.by_image[-1][0].image_index != cap.image_index:
                self.by_image.append([])
            self.by_image[-1].append(cap)
        self.tokenizer = tokenizer
        self.transform = transform
        self.name = name
        self.source = source

    def __len__(self) -> int:
        return len(self.by_image)

    def __getitem__(self, index: int) -> dict[str, Any]:
        caps = self.by_image[index]
        first = caps[0]
        image, _ = read_image(first.image_path, f"image_id {first.image_id} of {self.source}", self.transform)
        return {"image": image, "image_index": first.image_index, "image_id": first.image_id,
                "captions": [c.text for c in caps], "texts": [self.tokenizer.encode(c.text) for c in caps]}

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        texts = [t for s in samples for t in s["texts"]]
        batch = collate_batch([{k: v for k, v in s.items() if k != "texts"} for s in samples], self.name,
                              self.task_type)
        batch["input_ids"], batch["attention_mask"] = pad_tokens([t["input_ids"] for t in texts],
                                                                 self.tokenizer.pad_id)
        batch["token_type_ids"] = pad_sequences([t["token_type_ids"] for t in texts], 0)
        batch["text_image_index"] = torch.tensor([s["image_index"] for s in samples for _ in s["texts"]])
        return batch

    def info(self) -> dict[str, Any]:
        return {"vocab_size": self.tokenizer.vocab_size, "num_images": len(self.by_image),
                "num_captions": sum(len(c) for c in self.by_image)}


class RetrievalPairs(Dataset):
    """Every (image, caption) pair of a split, for a cross-encoder that scores each pair jointly
    (METER's retrieval evaluation: "full cross-encoder scoring of every (image, text) pair").

    Sample ``k`` is image ``k // T`` with caption ``k % T`` (``T`` captions in the split), so an
    evaluation pass, sharded across ranks and batched as any other, covers the whole
    ``[images, captions]`` matrix once. Samples hold ``image`` ``[3, H, W]``, ``input_ids`` ...,
    ``image_index`` (the pair's image), ``text_index`` (the pair's caption) and ``text_image_index``
    (the caption's own image: the pair matches when it equals ``image_index``). The
    ``pair_retrieval_recall`` metric reassembles the matrix from the model's ``pair_score``.
    """

    task_type = "retrieval_pairs"

    def __init__(self, captions: Sequence[Caption], tokenizer: TextTokenizer, transform: Any, name: str,
                 source: Path) -> None:
        self.captions = list(captions)
        first: dict[int, Caption] = {}
        for caption in self.captions:
            first.setdefault(caption.image_index, caption)
        self.images = [first[i] for i in sorted(first)]  # each image once (its first caption), by image_index
        self.encoded = [tokenizer.encode(c.text) for c in self.captions]  # once, not once per pair
        self.tokenizer = tokenizer
        self.transform = transform
        self.name = name
        self.source = source

    def __len__(self) -> int:
        return len(self.images) * len(self.captions)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"pair {index} of {len(self)}")
        image_row, text = divmod(index, len(self.captions))
        first, caption = self.images[image_row], self.captions[text]
        image, _ = read_image(first.image_path, f"image_id {first.image_id} of {self.source}", self.transform)
        return {"image": image, "image_index": first.image_index, "text_index": text,
                "text_image_index": caption.image_index, **self.encoded[text]}

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate_batch(samples, self.name, self.task_type, pad_id=self.tokenizer.pad_id)

    def info(self) -> dict[str, Any]:
        return {"vocab_size": self.tokenizer.vocab_size, "num_images": len(self.images),
                "num_captions": len(self.captions)}


@DATASETS.register(parts={"tokenizer": "processors", "train_transform": "processors",
                          "eval_transform": "processors"})
def karpathy_retrieval(
    *,
    data_dir: str,
    split: str,
    name: str,
    tokenizer: Any,
    annotation_file: str = "dataset_coco.json",
    image_dir: str | None = None,
    split_members: Mapping[str, list[str]] | None = None,
    sample_per: Literal["caption", "image", "pair"] | None = None,
    mlm_probability: float = 0.0,
    max_samples: int | None = None,
    check_images: bool = True,
    train_transform: Any = None,
    eval_transform: Any = None,
) -> Dataset:
    """Karpathy-split retrieval: images at ``<image_dir>/<filepath>/<filename>``.

    Args:
        data_dir: the folder of the Karpathy JSON files.
        split: ``train`` / ``val`` / ``test`` (runtime).
        name: the dataset's config key (runtime).
        tokenizer: a text processor node.
        annotation_file: ``dataset_coco.json`` or ``dataset_flickr30k.json``.
        image_dir: the image root (None: ``data_dir``).
        split_members: split -> the Karpathy ``split`` values it takes (train = train + restval).
        sample_per: ``caption`` (image-text pairs), ``image`` (each image with all its captions:
            dual encoders) or ``pair`` (every image with every caption: cross-encoders, METER;
            ``RetrievalPairs``); None: ``caption`` for train, ``image`` for the other splits.
        mlm_probability: share of caption tokens masked for MLM (per-caption samples only).
        max_samples: keep only the captions of the first images (None: all).
        check_images: check every image file exists when the dataset is built.
        train_transform: image transform of the train split.
        eval_transform: image transform of the other splits.

    Returns:
        Per caption: the pairs of ``coco_captions`` (task type ``retrieval``). Per image: see
        ``RetrievalImages``; per pair: ``RetrievalPairs``. All carry ``image_index`` and
        ``text_image_index``.
    """
    root = Path(data_dir)
    path = root / annotation_file
    images = Path(image_dir) if image_dir else root
    members = (split_members or KARPATHY_SPLITS).get(split)
    if members is None:
        raise ConfigError(f"unknown split '{split}'; set split_members.{split} to the Karpathy split values it "
                          "takes (train, restval, val, test)", key="split_members")
    require_files([path, images], "karpathy")
    captions = read_karpathy(path, images, members)
    kept = len(take(range(len({c.image_index for c in captions})), max_samples, name))
    captions = [c for c in captions if c.image_index < kept]
    if check_images:
        require_images((c.image_path for c in captions), name)
    transform = choose_transform(split, train_transform, eval_transform)
    chosen = sample_per or ("caption" if split == TRAIN_SPLIT else "image")
    if chosen == "image":
        return RetrievalImages(captions, tokenizer, transform, name, path)
    if chosen == "pair":
        return RetrievalPairs(captions, tokenizer, transform, name, path)
    return ImageTextPairs(captions, tokenizer, transform, name, path, task_type="retrieval",
                          mlm_probability=mlm_probability, mask_seed=None if split == TRAIN_SPLIT else 0)
