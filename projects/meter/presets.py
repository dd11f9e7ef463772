"""METER size presets: the paper's model (CLIP-ViT-B/16 + RoBERTa-base + co-attention, Sec. 3.3), a
CPU-sized one for the embedded benchmark and a tiny one for tests; each encoder-only or encoder-decoder
(Sec. 4.3: half the fusion layers per stream, and as many decoder layers; ``encoder_decoder.py``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from unimm.registry import MODELS

from .encoder_decoder import encoder_decoder_layers
from .model import METER, MIM, compose

FusionKind = Literal["co_attention", "merged_attention"]
Architecture = Literal["encoder_only", "encoder_decoder"]


@dataclass(frozen=True, kw_only=True)
class MeterSize:
    """Every size of a METER model."""

    image_size: int  # the pre-training resolution (paper: 224)
    patch_size: int
    vision_hidden: int
    vision_layers: int  # CLIP's blocks before METER drops the last one
    vision_heads: int
    text_kind: Literal["bert", "roberta"]
    text_hidden: int
    text_layers: int
    text_heads: int
    text_ffn: int
    hidden: int  # the fusion's width
    fusion_layers: int  # M_co per stream; merged attention gets twice as many (M_merged = 12 against 6)
    fusion_heads: int
    fusion_ffn: int
    dropout: float = 0.1


# Sec. 3.3 and REFERENCE_NOTES 1.1: CLIP-ViT-B/16 at 224 (11 of its 12 blocks), RoBERTa-base, M_co = 6.
PAPER = MeterSize(image_size=224, patch_size=16, vision_hidden=768, vision_layers=12, vision_heads=12,
                  text_kind="roberta", text_hidden=768, text_layers=12, text_heads=12, text_ffn=3072,
                  hidden=768, fusion_layers=6, fusion_heads=12, fusion_ffn=3072)
# The embedded benchmark on 2 CPU cores: its 64-pixel pictures in 8-pixel patches, everything narrow.
SMALL = MeterSize(image_size=64, patch_size=8, vision_hidden=64, vision_layers=3, vision_heads=4,
                  text_kind="bert", text_hidden=64, text_layers=2, text_heads=4, text_ffn=128,
                  hidden=64, fusion_layers=1, fusion_heads=4, fusion_ffn=128, dropout=0.0)
TINY = MeterSize(image_size=32, patch_size=16, vision_hidden=32, vision_layers=3, vision_heads=2,
                 text_kind="bert", text_hidden=32, text_layers=2, text_heads=2, text_ffn=64,
                 hidden=32, fusion_layers=2, fusion_heads=2, fusion_ffn=64)


def part_nodes(size: MeterSize, *, fusion: str = "co_attention", image_size: int | None = None,
               vision_path: str | None = None, vision_format: str = "openai_clip",
               text_path: str | None = None, architecture: str = "encoder_only") -> dict[str, Any]:
    """The vision encoder, text encoder, fusion and decoder (None: encoder-only) nodes of a preset (what
    ``type: meter`` takes). The encoder-decoder halves the fusion's layers per stream, rounded up, and gets
    as many decoder layers (paper: 6 -> 3 and 3, Sec. 4.3)."""
    text: dict[str, Any] = {"type": "hf_text_encoder", "pretrained_path": text_path}
    if text_path is None:  # a folder's config decides its sizes
        text.update(kind=size.text_kind, hidden_size=size.text_hidden, num_layers=size.text_layers,
                    num_heads=size.text_heads, intermediate_size=size.text_ffn, dropout=size.dropout)
    per_stream = size.fusion_layers
    decoder = None
    if architecture == "encoder_decoder":
        per_stream = encoder_decoder_layers(size.fusion_layers)
        decoder = {"type": "dual_cross_attention_decoder", "num_layers": per_stream, "num_heads": size.fusion_heads,
                   "intermediate_size": size.fusion_ffn, "dropout": size.dropout}
    layers = per_stream * (2 if fusion == "merged_attention" else 1)
    return {
        "vision_encoder": {
            "type": "clip_vit_encoder", "image_size": image_size or size.image_size, "patch_size": size.patch_size,
            "hidden_size": size.vision_hidden, "num_layers": size.vision_layers, "num_heads": size.vision_heads,
            "drop_last_block": True, "pretrained_path": vision_path, "pretrained_format": vision_format},
        "text_encoder": text,
        "fusion": {"type": fusion, "num_layers": layers, "num_heads": size.fusion_heads,
                   "intermediate_size": size.fusion_ffn, "dropout": size.dropout},
        "decoder": decoder,
    }


def build_meter(size: MeterSize, dataset_info: dict[str, dict[str, Any]], rank_output: bool | None = None,
                mim: Any = None, **options: Any) -> METER:
    nodes = part_nodes(size, **options)
    return compose(dataset_info, nodes["vision_encoder"], nodes["text_encoder"], nodes["fusion"], size.hidden,
                   rank_output=rank_output, mim=mim, decoder=nodes["decoder"])


@MODELS.register(parts={"mim": MIM})
def meter_paper(dataset_info: dict[str, dict[str, Any]], fusion: FusionKind = "co_attention",
                image_size: int | None = None, clip_path: str | None = None,
                clip_format: Literal["openai_clip", "timm"] = "openai_clip", text_path: str | None = None,
                rank_output: bool | None = None, mim: Any = None, architecture: Architecture = "encoder_only") -> METER:
    """METER-CLIP16-RoBERTa at the paper's size (Sec. 3.3): 318,551,808 backbone parameters at 224.

    CLIP-ViT-B/16 without its last block (78,711,552 at 224), RoBERTa-base without pooler
    (124,055,040), co-attention with M = 6 per stream plus projections, token types and poolers
    (115,785,216), REFERENCE_NOTES 1.1; the heads follow the datasets.

    Args:
        dataset_info: per dataset, its info (run time).
        fusion: ``co_attention`` (M = 6 per stream) or ``merged_attention`` (M = 12), Table 7.
        image_size: the resolution (None: 224; METER fine-tunes VQA at 576, Table 8's model is
            pre-trained at 288); a CLIP file at 224 is interpolated.
        clip_path: a local CLIP ViT-B/16 state dict (None: random init).
        clip_format: ``openai_clip`` (OpenAI's key names) or ``timm``.
        text_path: a local roberta-base folder (None: random init).
        rank_output: the retrieval rank head (see ``meter``); None: when a dataset draws negative texts.
        mim: Table 10's masked image modeling head (see ``meter``); None: none.
        architecture: ``encoder_only`` (METER) or ``encoder_decoder`` (Table 7's decoder row, Sec. 4.3: 3
            co-attention layers per stream, a 3-layer ``dual_cross_attention_decoder``, span language
            modeling; ``encoder_decoder.py``).
    """
    return build_meter(PAPER, dataset_info, fusion=fusion, image_size=image_size, vision_path=clip_path,
                       vision_format=clip_format, text_path=text_path, rank_output=rank_output, mim=mim,
                       architecture=architecture)


@MODELS.register(parts={"mim": MIM})
def meter_small(dataset_info: dict[str, dict[str, Any]], fusion: FusionKind = "co_attention",
                image_size: int | None = None, rank_output: bool | None = None, mim: Any = None,
                architecture: Architecture = "encoder_only") -> METER:
    """METER sized for a CPU (the embedded shapes benchmark): width 64, patch 8 at 64 pixels, 1 fusion layer
    per stream (2 merged), BERT-shaped text encoder over the benchmark's vocabulary, no dropout.

    Args: see ``meter_paper`` (random init only).
    """
    return build_meter(SMALL, dataset_info, fusion=fusion, image_size=image_size, rank_output=rank_output, mim=mim,
                       architecture=architecture)


@MODELS.register(parts={"mim": MIM})
def meter_tiny(dataset_info: dict[str, dict[str, Any]], fusion: FusionKind = "co_attention",
               image_size: int | None = None, rank_output: bool | None = None, mim: Any = None,
               architecture: Architecture = "encoder_only") -> METER:
    """METER with width 32, 2 layers and 2 heads everywhere, 32-pixel images in 16-pixel patches (tests).

    Args: see ``meter_paper`` (random init only).
    """
    return build_meter(TINY, dataset_info, fusion=fusion, image_size=image_size, rank_output=rank_output, mim=mim,
                       architecture=architecture)
