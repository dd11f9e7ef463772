"""Loading BERT and timm-ViT weights into modality tokenizers + a shared pre-LN encoder, by explicit key maps.

The parts are named ``image_tokenizer`` (``modality_tokenizers.ImageTokenizer``), ``text_tokenizer``
(``TextTokenizer``) and ``encoder`` (``shared_transformer.SharedTransformer``); a map turns a source
state dict into one state dict per part. ``load_pretrained`` reads a local source, maps it and loads
every part the model has, refusing anything that does not fit. Models reach it through their builder
argument ``pretrained_path`` (with ``pretrained_format``); ``checkpoint.init_from`` stays the route
for unimm's own checkpoints.

**timm ViT** (``timm.create_model('vit_base_patch16_224').state_dict()``, a ``.pth`` / ``.safetensors``
file). The encoder's names are timm's, so this map only moves prefixes:

==========================  ===========================================
timm key                    part key
==========================  ===========================================
``cls_token``               ``image_tokenizer.cls_token``
``pos_embed``               ``image_tokenizer.pos_embed`` (resized to the model's grid: bicubic, [CLS] kept)
``patch_embed.proj.*``      ``image_tokenizer.patch_embed.proj.*``
``blocks.<l>.*``            ``encoder.blocks.<l>.*``
``norm.*``                  ``encoder.norm.*``
``head.*``                  (ignored: the ImageNet classifier)
==========================  ===========================================

Both are pre-LN, so the mapped model computes what timm's ``forward_features`` computes (with the
same number of heads and LayerNorm epsilon, 1e-6).

**BERT** (a Hugging Face folder written by ``BertModel.save_pretrained``, or ``BertForPreTraining``'s
with its ``bert.`` prefix). BERT is **post-LN** (``h = LN1(x + MSA(x))``, ``x' = LN2(h + MLP(h))``, the
embeddings normalised by ``LN_emb``) while ViT-BERT's encoder is pre-LN (Eqs. 3-4), and Algorithm 1
starts the pre-LN encoder from BERT (REFERENCE_NOTES 3.1 flags the contradiction). Our reading: keep
the pre-LN equations and give every BERT LayerNorm the place where the pre-LN stack normalises the
same sub-layer input. In BERT, ``LN_emb`` produces the input of layer 0's attention, layer ``l``'s
``attention.output.LayerNorm`` the input of its MLP, and its ``output.LayerNorm`` the input of layer
``l + 1``'s attention (or the encoder's output after the last layer), so:

================================================  ============================================
BERT key                                          part key
================================================  ============================================
``embeddings.word_embeddings``                    ``text_tokenizer.word_embeddings``
``embeddings.position_embeddings``                ``text_tokenizer.position_embeddings`` (the first rows when ours is shorter)
``embeddings.token_type_embeddings``              ``text_tokenizer.token_type_embeddings``
``embeddings.LayerNorm``                          ``encoder.blocks.0.norm1``
``encoder.layer.<l>.attention.self.{query,key,value}``  ``encoder.blocks.<l>.attn.qkv`` (rows ``[q; k; v]``)
``encoder.layer.<l>.attention.output.dense``      ``encoder.blocks.<l>.attn.proj``
``encoder.layer.<l>.attention.output.LayerNorm``  ``encoder.blocks.<l>.norm2``
``encoder.layer.<l>.intermediate.dense``          ``encoder.blocks.<l>.mlp.fc1``
``encoder.layer.<l>.output.dense``                ``encoder.blocks.<l>.mlp.fc2``
``encoder.layer.<l>.output.LayerNorm``            ``encoder.blocks.<l+1>.norm1``; the last layer's: ``encoder.norm``
``pooler.*``, ``cls.*``                           (ignored: BERT's pooler and pre-training heads)
================================================  ============================================

BERT's 25 LayerNorms (embeddings + 2 per layer) fill the pre-LN encoder's 25 (2 per block + the final
one) one to one, and the text tokenizer needs no LayerNorm of its own (Eq. 2 has none, and the
paper's parameter count has none). Each attention and MLP sub-layer then computes exactly BERT's
on the same input, and ``encoder.blocks.0.norm1(text_tokenizer(ids))`` equals BERT's embedding output;
the stacks differ in what the residual stream carries (normalised in BERT, un-normalised in pre-LN),
so whole outputs differ: BERT's weights are a starting point, not the same function. The text
tokenizer must be built with ``embedding_norm=False`` to load BERT.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Literal, Mapping

import torch
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.modules.pos_embed import resize_pos_embed

logger = logging.getLogger("unimm")

PretrainedFormat = Literal["bert", "timm_vit", "mae"]
PART_NAMES = ("image_tokenizer", "text_tokenizer", "encoder")
PartWeights = dict[str, dict[str, Tensor]]  # part name -> its state-dict key -> tensor

TIMM_PREFIXES = (("cls_token", "image_tokenizer", "cls_token"), ("pos_embed", "image_tokenizer", "pos_embed"),
                 ("patch_embed.", "image_tokenizer", "patch_embed."), ("blocks.", "encoder", "blocks."),
                 ("norm.", "encoder", "norm."))
TIMM_IGNORED = ("head.", "fc_norm.", "head_drop.")
BERT_IGNORED = ("pooler.", "cls.", "embeddings.position_ids", "embeddings.token_type_ids")
_BERT_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")
_BERT_LAYER_TARGETS = {  # BERT sub-module of layer l -> (block offset, our sub-module)
    "attention.output.dense": (0, "attn.proj"),
    "attention.output.LayerNorm": (0, "norm2"),
    "intermediate.dense": (0, "mlp.fc1"),
    "output.dense": (0, "mlp.fc2"),
    "output.LayerNorm": (1, "norm1"),  # the input norm of the next block's attention (see the module docstring)
}
_QKV = ("query", "key", "value")


def timm_vit_to_parts(state: Mapping[str, Tensor]) -> tuple[PartWeights, list[str]]:
    """Map a timm ``VisionTransformer`` state dict (table in the module docstring).

    Returns:
        (weights per part, source keys ignored on purpose).

    Raises:
        ConfigError: keys of something other than a plain class-token ViT (e.g. a distillation or
            register token), which no rule covers.
    """
    parts: PartWeights = {}
    ignored, unknown = [], []
    for key, value in state.items():
        if key.startswith(TIMM_IGNORED):
            ignored.append(key)
            continue
        for source, part, target in TIMM_PREFIXES:
            if key == source or (source.endswith(".") and key.startswith(source)):
                parts.setdefault(part, {})[target + key[len(source):]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ConfigError(f"timm ViT weights with keys no rule maps: {', '.join(sorted(unknown)[:6])}; only a "
                          "plain ViT with one [CLS] token (vit_base_patch16_224's layout) is supported")
    return parts, ignored


def bert_to_parts(state: Mapping[str, Tensor]) -> tuple[PartWeights, list[str]]:
    """Map a Hugging Face BERT state dict (table and LayerNorm reading in the module docstring).

    Returns:
        (weights per part, source keys ignored on purpose).

    Raises:
        ConfigError: a layer lacking one of query / key / value, or keys no rule covers.
    """
    state = {key.removeprefix("bert."): value for key, value in state.items()}
    layers = sorted({int(m.group(1)) for key in state if (m := _BERT_LAYER.match(key))})
    last = layers[-1] if layers else -1
    text: dict[str, Tensor] = {}
    encoder: dict[str, Tensor] = {}
    ignored, unknown = [], []
    qkv: dict[tuple[int, str], dict[str, Tensor]] = {}  # (layer, weight|bias) -> {query, key, value}
    for key, value in state.items():
        if key.startswith(BERT_IGNORED):
            ignored.append(key)
        elif key.startswith("embeddings.LayerNorm."):
            encoder["blocks.0.norm1." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("embeddings.") and key.endswith(".weight"):
            text[key.removeprefix("embeddings.")] = value
        elif m := _BERT_LAYER.match(key):
            layer, module, kind = int(m.group(1)), m.group(2), m.group(3)
            if module.startswith("attention.self.") and module.rsplit(".", 1)[1] in _QKV:
                qkv.setdefault((layer, kind), {})[module.rsplit(".", 1)[1]] = value
            elif module in _BERT_LAYER_TARGETS:
                offset, target = _BERT_LAYER_TARGETS[module]
                if offset and layer == last:
                    encoder[f"norm.{kind}"] = value
                else:
                    encoder[f"blocks.{layer + offset}.{target}.{kind}"] = value
            else:
                unknown.append(key)
        else:
            unknown.append(key)
    for (layer, kind), pieces in sorted(qkv.items()):
        if set(pieces) != set(_QKV):
            raise ConfigError(f"BERT layer {layer} has attention {kind}s for {sorted(pieces)} only; the checkpoint "
                              "is incomplete")
        encoder[f"blocks.{layer}.attn.qkv.{kind}"] = torch.cat([pieces[name] for name in _QKV], dim=0)  # [3D(, D)]
    if unknown:
        raise ConfigError(f"BERT weights with keys no rule maps: {', '.join(sorted(unknown)[:6])}; expected a "
                          "BertModel / BertForPreTraining folder written by save_pretrained")
    return {"text_tokenizer": text, "encoder": encoder}, ignored


MAE_IGNORED = ("mask_token", "decoder_")


def mae_to_parts(state: Mapping[str, Tensor]) -> tuple[PartWeights, list[str]]:
    """Map an MAE checkpoint (``facebookresearch/mae``'s ``{"model": ...}``, its ``models_mae`` keys).

    MAE's encoder keys are timm's (``cls_token``, ``pos_embed`` (the fixed sin-cos table),
    ``patch_embed.proj``, ``blocks.<l>``, ``norm``), so they map as ``timm_vit_to_parts``; the
    pre-training decoder (``mask_token``, ``decoder_*``) is left out on purpose: MoMo gives every stage
    decoders of its own (Sec. 3.3), and fine-tuning keeps no decoder.
    """
    ignored = [key for key in state if key.startswith(MAE_IGNORED)]
    parts, skipped = timm_vit_to_parts({k: v for k, v in state.items() if not k.startswith(MAE_IGNORED)})
    return parts, ignored + skipped


MAPS = {"bert": bert_to_parts, "timm_vit": timm_vit_to_parts, "mae": mae_to_parts}


def read_pretrained(path: str | Path) -> tuple[Path, dict[str, Tensor], dict | None]:
    """(what was read, its tensors, its ``config.json`` or None) from a local folder or file.

    A folder is a Hugging Face model folder: ``model.safetensors``, sharded safetensors
    (``model.safetensors.index.json``) or ``pytorch_model.bin``. A file is a ``.safetensors`` or a
    torch state dict (``.pth`` / ``.pt`` / ``.bin``, read with ``weights_only=True``, a
    ``{"model": ...}`` or ``{"state_dict": ...}`` nesting accepted). Nothing is downloaded.
    """
    from safetensors.torch import load_file

    from unimm.training.checkpoint import read_weights

    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"{path} does not exist; give a local Hugging Face folder or a weights file "
                          "(nothing is downloaded)", key="pretrained_path")
    if path.is_file():
        source, weights = read_weights(path)
        return source, weights, None
    config = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else None
    index = path / "model.safetensors.index.json"
    if (path / "model.safetensors").is_file():
        return path / "model.safetensors", load_file(str(path / "model.safetensors")), config
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        weights = {k: v for shard in shards for k, v in load_file(str(path / shard)).items()}
        return index, weights, config
    if (path / "pytorch_model.bin").is_file():
        source, weights = read_weights(path / "pytorch_model.bin")
        return source, weights, config
    raise ConfigError(f"{path} holds no model.safetensors, model.safetensors.index.json or pytorch_model.bin; "
                      "give a folder written by save_pretrained", key="pretrained_path")


def check_bert_config(config: Mapping | None, encoder: nn.Module) -> list[str]:
    """What in BERT's ``config.json`` makes its weights compute something else in ``encoder``."""
    if not config:
        return []
    problems = []
    heads = config.get("num_attention_heads")
    if heads is not None and heads != getattr(encoder, "num_heads", heads):
        problems.append(f"BERT has {heads} attention heads, the encoder {encoder.num_heads}; set num_heads={heads}")
    if config.get("hidden_act", "gelu") != "gelu":
        problems.append(f"BERT's activation is {config['hidden_act']!r}, the encoder's the exact GELU ('gelu')")
    return problems


# Weights no source format has, which start at init when the rest of their part loads: the learned
# modality-type vector of a tokenizer (ViT-BERT's option, MoMo's default; neither BERT, timm nor MAE has one).
INIT_ONLY = ("modality_embedding",)


def load_parts(parts: Mapping[str, nn.Module | None], weights: PartWeights, source: str) -> dict[str, list[str]]:
    """Load mapped weights into each part that the model has; every weight of such a part must come
    (except ``INIT_ONLY`` ones, which no source has).

    Shape changes allowed: the image position table is resized to the part's grid
    (``resize_pos_embed``: bicubic, [CLS] kept, no antialiasing); a longer text position table is
    cut to the part's first rows. Anything else that does not fit is refused, all problems at once.

    Args:
        parts: part name -> module, or None when the model has no such part.
        weights: from ``timm_vit_to_parts`` / ``bert_to_parts``.
        source: the file read, for messages.

    Returns:
        ``{"loaded", "resized", "kept_at_init", "not_in_model"}``: part-prefixed keys.
    """
    report: dict[str, list[str]] = {"loaded": [], "resized": [], "kept_at_init": [], "not_in_model": []}
    problems: list[str] = []
    fitted: dict[str, dict[str, Tensor]] = {}
    for part, mapped in weights.items():
        module = parts.get(part)
        if module is None:
            report["not_in_model"] += [f"{part}.{k}" for k in mapped]
            continue
        own = module.state_dict()
        fitted[part] = {}
        for key, value in mapped.items():
            if key not in own:
                problems.append(f"{part}.{key}: the model's {part} has no such weight (do the layer counts agree?)")
                continue
            if value.shape != own[key].shape:
                value = fit_shape(part, key, value, own[key], module)
                if value is None:
                    problems.append(f"{part}.{key}: {tuple(mapped[key].shape)} in {source}, "
                                    f"{tuple(own[key].shape)} in the model")
                    continue
                report["resized"].append(f"{part}.{key}")
            fitted[part][key] = value.to(own[key].dtype)
        problems += [f"{part}.{key}: not in {source}" for key in own if key not in mapped and key not in INIT_ONLY]
    if problems:
        raise ConfigError([f"pretrained weights do not fit the model: {p}" for p in problems[:12]],
                          key="pretrained_path")
    for part, state in fitted.items():
        missing, unexpected = parts[part].load_state_dict(state, strict=False)  # type: ignore[union-attr]
        assert not unexpected and set(missing) <= set(INIT_ONLY), (missing, unexpected)
        report["loaded"] += [f"{part}.{k}" for k in state]
        report["kept_at_init"] += [f"{part}.{k}" for k in missing]
    report["kept_at_init"] += [f"{part}.{k}" for part, module in parts.items() if module is not None
                               and part not in fitted for k in module.state_dict()]
    return report


def fit_shape(part: str, key: str, value: Tensor, like: Tensor, module: nn.Module) -> Tensor | None:
    """The allowed reshapes of ``load_parts``; None when the tensor cannot fit."""
    if part == "image_tokenizer" and key == "pos_embed" and value.dim() == 3 and value.shape[-1] == like.shape[-1]:
        side = int(round((value.shape[1] - 1) ** 0.5))
        if side * side == value.shape[1] - 1:
            return resize_pos_embed(value, module.grid, num_prefix_tokens=1, old_grid=(side, side))
    if part == "text_tokenizer" and key == "position_embeddings.weight" and value.shape[1] == like.shape[1] \
            and value.shape[0] > like.shape[0]:
        return value[: like.shape[0]]  # absolute positions: a text of T tokens uses rows 0..T-1
    return None


def load_pretrained(parts: Mapping[str, nn.Module | None], path: str | Path, fmt: PretrainedFormat) -> dict:
    """Read ``path``, map it as ``fmt`` and load it into ``parts`` (``load_parts``); logs a table.

    Args:
        parts: ``image_tokenizer`` / ``text_tokenizer`` / ``encoder`` -> the model's module or None.
        path: a local Hugging Face folder (BERT) or weights file (timm ViT).
        fmt: ``bert``, ``timm_vit`` or ``mae``.

    Returns:
        The report of ``load_parts`` with ``ignored`` (source keys left out on purpose) and ``source``.
    """
    if fmt not in MAPS:
        raise ConfigError(f"{fmt!r} is not one of {', '.join(MAPS)}", key="pretrained_format")
    source, state, config = read_pretrained(path)
    mapped, ignored = MAPS[fmt](state)
    problems = check_bert_config(config, parts["encoder"]) if fmt == "bert" and parts.get("encoder") else []
    text = parts.get("text_tokenizer")
    if fmt == "bert" and text is not None and getattr(text, "norm", None) is not None:
        problems.append("the text tokenizer has embedding_norm=true, but BERT's embedding LayerNorm loads into "
                        "encoder.blocks.0.norm1 (see unimm/models/encoders/key_maps.py); build it with "
                        "embedding_norm=false")
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems], key="pretrained_path")
    report = load_parts(parts, mapped, str(source))
    report.update(ignored=sorted(ignored), source=[str(source)])
    logger.info("pretrained %s weights from %s: %d loaded (%d resized), %d ignored (%s), %d of the model kept at "
                "init, %d for parts the model does not have", fmt, source, len(report["loaded"]),
                len(report["resized"]), len(ignored), ", ".join(sorted({k.split(".")[0] for k in ignored})) or "none",
                len(report["kept_at_init"]), len(report["not_in_model"]))
    return report
