"""Loading vision-transformer weights from local files in their official layouts, by explicit key maps.

=============== ============================================================ ===============================
format          checkpoint key                                               encoder key (timm's names)
=============== ============================================================ ===============================
``openai_clip`` ``visual.conv1.weight``                                      ``patch_embed.proj.weight``
``openai_clip`` ``visual.class_embedding`` ``[D]``                           ``cls_token`` ``[1, 1, D]``
``openai_clip`` ``visual.positional_embedding`` ``[1 + N, D]``               ``pos_embed`` ``[1, 1 + N, D]``
``openai_clip`` ``visual.ln_pre.*``                                          ``norm_pre.*``
``openai_clip`` ``visual.transformer.resblocks.<i>.attn.in_proj_{weight,bias}`` ``blocks.<i>.attn.qkv.*``
``openai_clip`` ``visual.transformer.resblocks.<i>.attn.out_proj.*``         ``blocks.<i>.attn.proj.*``
``openai_clip`` ``visual.transformer.resblocks.<i>.ln_1.*`` / ``ln_2.*``     ``blocks.<i>.norm1.*`` / ``norm2.*``
``openai_clip`` ``visual.transformer.resblocks.<i>.mlp.c_fc.*`` / ``c_proj.*`` ``blocks.<i>.mlp.fc1.*`` / ``fc2.*``
``openai_clip`` ``visual.ln_post.*``                                         ``norm.*``
``openai_clip`` ``visual.proj``; the text tower (keys outside ``visual.``);   ignored (METER uses neither)
                the last block when it is dropped
``timm``        timm's own names                                             the same
``timm``        ``head.*``, ``head_dist.*``, VOLO's ``aux_head.*``;          ignored (classifiers; buffers
                ``relative_position_index`` and ``attn_mask`` (Swin, BEiT)   the model computes itself)
=============== ============================================================ ===============================

CLIP's ``in_proj_weight`` stacks the query, key and value projections ``[3D, D]`` in the order timm's
``qkv`` expects, so it is copied as it is. Every encoder weight must come from the file, with its
shape, except position tables, which are resized to the encoder's grid when the resolution differs:
absolute ``pos_embed`` rows with ``resize_pos_embed`` (bicubic, prefix rows kept, no antialiasing, as
METER's ``adapt_position_encoding``), Swin's ``relative_position_bias_table`` ``[(2w-1)^2, heads]`` the
same way as a ``(2w-1) x (2w-1)`` grid. The other timm layouts, each resized the same way:

* CaiT's ``pos_embed`` ``[1, N, D]`` covers the patches only (its class token joins after the
  positions): no prefix row (``num_prefix_tokens=0``).
* VOLO's ``pos_embed`` ``[1, h, w, D]`` is a grid over its stride-16 tokens: resized as the
  ``h x w`` grid it is and kept in that layout.
* BEiT has no absolute table. Each block's ``relative_position_bias_table`` is
  ``[(2g-1)^2 + 3, heads]``: a ``(2g-1) x (2g-1)`` grid of biases over the ``g x g`` patch grid, then 3
  rows for the [CLS] ([CLS] to a token, a token to [CLS], [CLS] to itself). At another resolution the
  grid rows are resized as Swin's and the 3 [CLS] rows kept (``relative_extra_rows=3``); the model
  computes the index into the table for its own grid. (BEiT's own code interpolates these tables
  with scipy over a geometric progression of offsets, so fine-tuning numbers from its recipe at a new
  resolution would differ slightly; we keep METER's one rule for every table.)

Anything else that does not fit is an error naming the keys.
"""
from __future__ import annotations

import logging
import math
import re
from collections import Counter
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.models.encoders.detr_weights import read_state_dict
from unimm.modules.pos_embed import resize_pos_embed

logger = logging.getLogger("unimm")

CLIP_PREFIX = "visual."
# (OpenAI CLIP key after "visual.", as a regex; timm key). Matched in full.
CLIP_RULES: list[tuple[str, str]] = [
    (r"conv1\.weight", "patch_embed.proj.weight"),
    (r"class_embedding", "cls_token"),
    (r"positional_embedding", "pos_embed"),
    (r"ln_pre\.(weight|bias)", r"norm_pre.\1"),
    (r"transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)", r"blocks.\1.attn.qkv.\2"),
    (r"transformer\.resblocks\.(\d+)\.attn\.out_proj\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
    (r"transformer\.resblocks\.(\d+)\.ln_1\.(weight|bias)", r"blocks.\1.norm1.\2"),
    (r"transformer\.resblocks\.(\d+)\.mlp\.c_fc\.(weight|bias)", r"blocks.\1.mlp.fc1.\2"),
    (r"transformer\.resblocks\.(\d+)\.mlp\.c_proj\.(weight|bias)", r"blocks.\1.mlp.fc2.\2"),
    (r"transformer\.resblocks\.(\d+)\.ln_2\.(weight|bias)", r"blocks.\1.norm2.\2"),
    (r"ln_post\.(weight|bias)", r"norm.\1"),
]
CLIP_RESHAPE = {"cls_token": lambda t: t.reshape(1, 1, -1), "pos_embed": lambda t: t.unsqueeze(0)}
CLIP_METADATA = ("input_resolution", "context_length", "vocab_size")  # ints saved in OpenAI's archives
TIMM_IGNORED = (re.compile(r"^(aux_)?head(_dist)?\."), re.compile(r"(^|\.)(relative_position_index|attn_mask)$"))


def read_weights(path: str | Path) -> dict[str, Tensor]:
    """A state dict from a local file (``.pt`` / ``.pth`` / ``.bin`` / ``.safetensors``).

    ``{"model": ...}`` and ``{"state_dict": ...}`` nestings are unwrapped. OpenAI's TorchScript
    archives are not read: save their ``state_dict()`` first (``torch.jit.load(p).state_dict()``).
    """
    try:
        state = read_state_dict(path)
    except RuntimeError as err:  # e.g. a TorchScript archive
        raise ConfigError(f"pretrained_path {path}: cannot read a state dict ({err}); for OpenAI's TorchScript "
                          "archive save torch.jit.load(path).state_dict() with torch.save first",
                          key="pretrained_path") from None
    if isinstance(state.get("state_dict"), Mapping):
        state = dict(state["state_dict"])
    return state


def map_openai_clip(state: Mapping[str, Tensor], kept_blocks: int, dropped_blocks: int = 0,
                    ) -> tuple[dict[str, Tensor], dict[str, str]]:
    """OpenAI CLIP keys -> timm keys (``CLIP_RULES``).

    Args:
        state: a CLIP state dict (``visual.*`` and the text tower).
        kept_blocks: blocks the encoder has (``blocks.0`` .. ``blocks.<kept - 1>``).
        dropped_blocks: blocks after those that the checkpoint holds and the encoder leaves out on
            purpose (METER drops CLIP's last block: 1).

    Returns:
        ``(timm key -> tensor, ignored checkpoint key -> why)``; a visual key that no rule maps
        (another layout) is kept under its own name so that loading reports it.
    """
    mapped: dict[str, Tensor] = {}
    ignored: dict[str, str] = {}
    for key, value in state.items():
        if key in CLIP_METADATA:
            ignored[key] = "metadata"
            continue
        if not key.startswith(CLIP_PREFIX):
            ignored[key] = "CLIP's text tower"
            continue
        name = key[len(CLIP_PREFIX):]
        if name == "proj":
            ignored[key] = "CLIP's projection to the joint space (METER has none)"
            continue
        target = next((re.sub(f"^{pattern}$", repl, name) for pattern, repl in CLIP_RULES
                       if re.fullmatch(pattern, name)), None)
        if target is None:
            mapped[key] = value  # reported as unexpected
            continue
        block = re.match(r"blocks\.(\d+)\.", target)
        if block and kept_blocks <= int(block.group(1)) < kept_blocks + dropped_blocks:
            ignored[key] = "the dropped last block (METER: drop_last_block)"
            continue
        mapped[target] = CLIP_RESHAPE.get(target, lambda t: t)(value)
    return mapped, ignored


def map_timm(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, str]]:
    """timm keys stay; classifier heads and recomputed buffers are ignored."""
    mapped, ignored = {}, {}
    for key, value in state.items():
        if any(p.search(key) for p in TIMM_IGNORED):
            ignored[key] = "classifier head" if "head" in key.split(".")[0] else "buffer the model computes"
        else:
            mapped[key] = value
    return mapped, ignored


def resize_to(key: str, table: Tensor, like: Tensor, num_prefix_tokens: int,
              relative_extra_rows: int = 0) -> Tensor | None:
    """A position table resized to ``like``'s grid, or None when ``key`` is not a position table.

    ``pos_embed`` ``[1, P + h*w, D]``: the grid rows, square in the checkpoint and in the encoder.
    ``pos_embed`` ``[1, h, w, D]`` (VOLO): the grid itself.
    ``relative_position_bias_table`` ``[(2w-1)^2 + E, heads]``: a square grid of biases per head, then
    ``E = relative_extra_rows`` rows kept as they are (BEiT's 3 [CLS] rows; Swin has none).
    """
    if key == "pos_embed" and table.dim() == 3 and like.dim() == 3 and table.shape[-1] == like.shape[-1]:
        new_side = math.isqrt(like.shape[1] - num_prefix_tokens)
        return resize_pos_embed(table, (new_side, new_side), num_prefix_tokens)
    if key == "pos_embed" and table.dim() == 4 and like.dim() == 4 and table.shape[-1] == like.shape[-1]:
        rows = resize_pos_embed(table.flatten(1, 2), tuple(like.shape[1:3]), 0, old_grid=tuple(table.shape[1:3]))
        return rows.reshape(like.shape)  # [1, h', w', D]
    if key.endswith("relative_position_bias_table") and table.dim() == 2 and table.shape[1] == like.shape[1]:
        extra = relative_extra_rows
        new_side = math.isqrt(like.shape[0] - extra)
        grid = resize_pos_embed(table[: table.shape[0] - extra].unsqueeze(0), (new_side, new_side), 0)[0]
        return torch.cat([grid, table[table.shape[0] - extra:]])  # [(2w'-1)^2 + E, heads]
    return None


def load_vision_weights(model: nn.Module, path: str | Path, fmt: str, *, num_prefix_tokens: int,
                        kept_blocks: int = 0, dropped_blocks: int = 0,
                        relative_extra_rows: int = 0) -> dict[str, list[str]]:
    """Fill every weight of a timm vision transformer from ``path`` (see the module table).

    Args:
        model: the timm model (``VisionTokens.model``).
        path: the local checkpoint file.
        fmt: ``openai_clip`` or ``timm``.
        num_prefix_tokens: rows before the patch rows in ``pos_embed`` (0 for CaiT and VOLO).
        kept_blocks, dropped_blocks: see ``map_openai_clip`` (CLIP only).
        relative_extra_rows: rows after the grid in each ``relative_position_bias_table`` (BEiT: 3).

    Returns:
        ``{"loaded": [...], "resized": [...], "ignored": [...]}`` (encoder keys; ignored checkpoint keys).

    Raises:
        ConfigError: encoder weights the file lacks, file weights the encoder lacks (not ignored by a
            rule), or shapes that differ and are not position tables; all listed at once.
    """
    state = read_weights(path)
    if fmt == "openai_clip":
        mapped, ignored = map_openai_clip(state, kept_blocks, dropped_blocks)
    elif fmt == "timm":
        mapped, ignored = map_timm(state)
    else:
        raise ConfigError(f"{fmt!r}: use openai_clip or timm", key="pretrained_format")
    own = model.state_dict()
    final, resized, problems = {}, [], []
    for key, value in mapped.items():
        if key not in own:
            continue
        if value.shape == own[key].shape:
            final[key] = value
            continue
        table = resize_to(key, value, own[key], num_prefix_tokens, relative_extra_rows)
        if table is not None and table.shape == own[key].shape:
            final[key] = table.to(own[key].dtype)
            resized.append(key)
        else:
            problems.append(f"{key}: the file has {tuple(value.shape)}, the encoder {tuple(own[key].shape)}")
    problems += [f"{key}: in the encoder, not in the file" for key in sorted(set(own) - set(mapped))][:20]
    problems += [f"{key}: in the file, not in the encoder" for key in sorted(set(mapped) - set(own))][:20]
    if problems:
        raise ConfigError(f"pretrained_path {path} ({fmt} layout) does not fit the encoder (check the sizes, "
                          "num_layers and drop_last_block):\n  " + "\n  ".join(problems), key="pretrained_path")
    model.load_state_dict(final, strict=True)
    why = Counter(ignored.values())
    logger.info("vision encoder: %d weights loaded from %s (%s layout), %d position tables resized%s", len(final),
                path, fmt, len(resized), "".join(f"; ignored {n} ({reason})" for reason, n in why.items()))
    return {"loaded": sorted(final), "resized": sorted(resized), "ignored": sorted(ignored)}
