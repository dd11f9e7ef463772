"""Turning samples (dicts) into a batch (a dict of padded tensors), following the batch
key contract of ``unimm.interfaces``.

* ``"image"``: a float tensor ``[3, H, W]`` per sample becomes ``[B, 3, H, W]``, zero-padded
  at the bottom / right to the largest image of the batch, with ``"pixel_mask"`` bool
  ``[B, H, W]`` (True on real pixels); ``"image2"`` (the second image of a pair) likewise,
  with ``"pixel_mask2"``;
* ``"input_ids"`` ``[T]`` becomes ``[B, T]`` padded with the tokenizer's pad id, with
  ``"attention_mask"`` long ``[B, T]``; ``"token_type_ids"`` pad with 0, ``"mlm_labels"``
  with -100 (ignored by the loss), ``"special_tokens_mask"`` with 1;
* ``"target"`` (a detection target dict) becomes ``"targets"``, a list of B dicts;
* other tensors of one shape are stacked, numbers become a tensor, anything else a list.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

IGNORE_INDEX = -100
IMAGE_KEYS = {"image": "pixel_mask", "image2": "pixel_mask2"}
TEXT_PADDING = {"token_type_ids": 0, "mlm_labels": IGNORE_INDEX, "special_tokens_mask": 1}
RENAMED = {"target": "targets"}


def pad_images(images: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad ``[C, H_i, W_i]`` images to one batch.

    Returns:
        images ``[B, C, H, W]`` (zeros in the padding) and pixel_mask bool ``[B, H, W]``
        (True on real pixels), where ``H, W`` are the largest sizes in the batch.
    """
    channels = images[0].shape[0]
    height = max(int(im.shape[-2]) for im in images)
    width = max(int(im.shape[-1]) for im in images)
    batch = images[0].new_zeros((len(images), channels, height, width))
    mask = torch.zeros((len(images), height, width), dtype=torch.bool)
    for i, im in enumerate(images):
        h, w = im.shape[-2:]
        batch[i, :, :h, :w] = im
        mask[i, :h, :w] = True
    return batch, mask


def pad_sequences(sequences: Sequence[torch.Tensor], value: int) -> torch.Tensor:
    """Right-pad ``[T_i]`` tensors with ``value`` to ``[B, max T_i]``."""
    length = max((int(s.shape[0]) for s in sequences), default=0)
    dtype = sequences[0].dtype if sequences else torch.long
    batch = torch.full((len(sequences), length), value, dtype=dtype)
    for i, s in enumerate(sequences):
        batch[i, : s.shape[0]] = s
    return batch


def pad_tokens(input_ids: Sequence[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids ``[T_i]`` -> ids ``[B, T]`` padded with ``pad_id`` and attention_mask long ``[B, T]``."""
    ids = pad_sequences(input_ids, pad_id)
    mask = pad_sequences([torch.ones(len(s), dtype=torch.long) for s in input_ids], 0)
    return ids, mask


def collate_batch(samples: Sequence[dict[str, Any]], dataset_name: str, task_type: str,
                  pad_id: int = 0) -> dict[str, Any]:
    """Samples -> batch following the module's conventions; adds ``dataset_name`` and ``task_type``."""
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if key in IMAGE_KEYS:
            batch[key], batch[IMAGE_KEYS[key]] = pad_images(values)
        elif key == "input_ids":
            batch["input_ids"], batch["attention_mask"] = pad_tokens(values, pad_id)
        elif key in TEXT_PADDING:
            batch[key] = pad_sequences(values, TEXT_PADDING[key])
        else:
            batch[RENAMED.get(key, key)] = stack_or_list(values)
    batch["dataset_name"] = dataset_name
    batch["task_type"] = task_type
    return batch


def stack_or_list(values: Sequence[Any]) -> Any:
    """Same-shape tensors -> stacked; numbers -> a tensor; anything else -> a list."""
    first = values[0]
    if isinstance(first, torch.Tensor) and all(isinstance(v, torch.Tensor) and v.shape == first.shape for v in values):
        return torch.stack(list(values))
    if isinstance(first, (bool, int, float)) and all(isinstance(v, (bool, int, float)) for v in values):
        return torch.tensor(values)
    return list(values)
