"""Loading torchvision ResNet or DETR checkpoints into ``detr_image_encoder``, by an explicit key map.

=============  ======================================  ================================
format         checkpoint key                          encoder key
=============  ======================================  ================================
torchvision    ``<k>`` (``conv1.weight``, ``layer1...``) ``backbone.body.<k>``
torchvision    ``fc.*``                                (ignored: classifier)
detr           ``backbone.0.body.<k>``                 ``backbone.body.<k>``
detr           ``input_proj.<k>``                      ``input_proj.<k>``
detr           ``transformer.encoder.layers.<k>``      ``encoder.layers.<k>``
detr           anything else (decoder, heads, queries) (ignored)
=============  ======================================  ================================

A DETR checkpoint is the file its training writes: ``{"model": state_dict, ...}``. Every encoder
key a rule targets must be filled with a tensor of the same shape, or loading fails.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

from unimm.config.errors import ConfigError

# (checkpoint prefix, encoder prefix) per format; keys matching no rule are ignored.
KEY_RULES: dict[str, list[tuple[str, str]]] = {
    "torchvision": [("", "backbone.body.")],
    "detr": [("backbone.0.body.", "backbone.body."), ("input_proj.", "input_proj."),
             ("transformer.encoder.layers.", "encoder.layers.")],
}
_IGNORED = {"torchvision": ("fc.",), "detr": ()}


def map_keys(state: Mapping[str, Tensor], fmt: str) -> dict[str, Tensor]:
    """Rename checkpoint keys to encoder keys; keys no rule covers are dropped."""
    if fmt not in KEY_RULES:
        raise ConfigError(f"pretrained_format {fmt!r}: use one of {', '.join(KEY_RULES)}")
    mapped = {}
    for key, value in state.items():
        if key.startswith(_IGNORED[fmt]):
            continue
        for source, target in KEY_RULES[fmt]:
            if key.startswith(source):
                mapped[target + key[len(source):]] = value
                break
    return mapped


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """A state dict from a local ``.pth`` / ``.pt`` (a DETR ``{"model": ...}`` file too) or ``.safetensors``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"pretrained_path: no file at {path}; give a local checkpoint (nothing is downloaded)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    # DETR's training checkpoints also pickle their argparse options next to the weights
    with torch.serialization.safe_globals([argparse.Namespace]):
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
        state = state["model"]
    if not isinstance(state, Mapping):
        raise ConfigError(f"pretrained_path {path}: expected a state dict, got {type(state).__name__}")
    return dict(state)


def load_image_encoder_weights(encoder: nn.Module, path: str | Path, fmt: str) -> list[str]:
    """Copy a checkpoint's tensors into ``encoder`` through ``KEY_RULES[fmt]``.

    Returns:
        The encoder keys that were loaded.

    Raises:
        ConfigError: a target tensor is missing from the checkpoint, has another shape, or
            a mapped key does not exist in the encoder.
    """
    mapped = map_keys(read_state_dict(path), fmt)
    own = encoder.state_dict()
    targets = [target for _, target in KEY_RULES[fmt]]
    wanted = {k for k in own if k.startswith(tuple(targets))}
    problems = [f"{k}: checkpoint {tuple(v.shape)} vs encoder {tuple(own[k].shape)}"
                for k, v in mapped.items() if k in own and own[k].shape != v.shape]
    unknown = [k for k in mapped if k not in own and not k.endswith("num_batches_tracked")]
    missing = sorted(wanted - set(mapped))
    if problems or unknown or missing:
        lines = problems + [f"{k}: not in the encoder" for k in unknown[:10]]
        lines += [f"{k}: not in the checkpoint" for k in missing[:10]]
        raise ConfigError(f"pretrained_path {path} ({fmt} format) does not fit the encoder "
                          f"(check backbone, hidden_size and num_layers):\n  " + "\n  ".join(lines))
    loadable = {k: v for k, v in mapped.items() if k in own}
    encoder.load_state_dict(loadable, strict=False)
    return sorted(loadable)
