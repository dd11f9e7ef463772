"""MoMo's sizes: base and large (Sec. 3.3, 4.1), a small one for the benchmark, a tiny one for tests.

Each preset writes out the ``momo`` nodes, so a config can spell the same model part by part. The
encoder side (tokenizers + encoder, what fine-tuning keeps) is logged at build:

* base: ViT-B (12 layers, 768, MLP 3072, 12 heads) 85.80M with the fixed sin-cos table + the
  30,522 x 768 word and 512 x 768 position tables = **109.63M**, the paper's "110M" (Table 1);
* large: ViT-L (24 layers, 1024, MLP 4096, 16 heads) 303.30M + 31.25M + 0.52M = **335.08M**, "335M";

plus two 2-row tables (segments, modality types) that the paper does not describe (REFERENCE_NOTES 2.1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from unimm.config.refs import Range
from unimm.registry import MODELS

from .model import PARTS, DecoderSize, MaskRatios, MoMo, compose


@dataclass(frozen=True, kw_only=True)
class MoMoSize:
    """Every size of a MoMo model."""

    hidden_size: int
    num_layers: int
    num_heads: int
    mlp_size: int
    patch_size: int
    image_size: int
    max_positions: int
    decoder: DecoderSize


BASE = MoMoSize(hidden_size=768, num_layers=12, num_heads=12, mlp_size=3072, patch_size=16, image_size=224,
                max_positions=512, decoder=DecoderSize())
LARGE = MoMoSize(hidden_size=1024, num_layers=24, num_heads=16, mlp_size=4096, patch_size=16, image_size=224,
                 max_positions=512, decoder=DecoderSize())
# The embedded benchmark on a CPU: 64-pixel pictures in 8x8 patches, the benchmark's short texts.
SMALL = MoMoSize(hidden_size=64, num_layers=4, num_heads=4, mlp_size=256, patch_size=8, image_size=64,
                 max_positions=128, decoder=DecoderSize(hidden_size=32, num_layers=2, num_heads=4, mlp_size=128))
TINY = MoMoSize(hidden_size=32, num_layers=2, num_heads=2, mlp_size=64, patch_size=16, image_size=32,
                max_positions=64, decoder=DecoderSize(hidden_size=16, num_layers=1, num_heads=2, mlp_size=32))


def part_nodes(size: MoMoSize, *, image_size: int | None = None) -> dict[str, dict[str, Any]]:
    """The encoder and tokenizer nodes of a preset (what ``type: momo`` takes).

    No dropout anywhere: MAE's encoder and decoder have none, and the paper names none.
    """
    return {
        "encoder": {"type": "shared_transformer", "hidden_size": size.hidden_size, "num_layers": size.num_layers,
                    "num_heads": size.num_heads, "mlp_size": size.mlp_size, "dropout": 0.0,
                    "attention_dropout": 0.0},
        "image_tokenizer": {"type": "image_tokenizer", "image_size": image_size or size.image_size,
                            "patch_size": size.patch_size, "dropout": 0.0, "modality_embedding": True,
                            "positions": "sincos"},
        "text_tokenizer": {"type": "text_tokenizer", "max_positions": size.max_positions, "dropout": 0.0,
                           "modality_embedding": True},
    }


Ratio = Annotated[float, Range(ge=0, lt=1)]
ImageSize = Annotated[int, Range(ge=1)] | None


def build(size: MoMoSize, dataset_info: dict[str, dict[str, Any]], *, image_size: int | None,
          pretraining: dict[str, dict[str, Any]] | None, **options: Any) -> MoMo:
    nodes = part_nodes(size, image_size=image_size)
    return compose(dataset_info, nodes["encoder"], nodes["image_tokenizer"], nodes["text_tokenizer"],
                   pretraining=pretraining, decoder=size.decoder, **options)


def preset(size: MoMoSize, doc: str):
    """Register ``momo_<name>``: the ``momo`` options with the parts of ``size``."""

    def builder(dataset_info: dict[str, dict[str, Any]], pretraining: dict[str, dict[str, Any]] | None = None,
                image_size: ImageSize = None, embed_size: Annotated[int, Range(ge=1)] | None = None,
                contrastive: Any = None, image_mask_ratio: Ratio = 0.75, text_mask_ratio: Ratio = 0.15,
                cross_mask_ratio: Ratio = 0.75, norm_pix: bool = True, tie_word_embeddings: bool = True,
                head_dropout: Ratio = 0.1, linear_probe: bool = False, pretrained_path: str | None = None,
                itm_masked: bool = False) -> MoMo:
        return build(size, dataset_info, image_size=image_size, pretraining=pretraining, embed_size=embed_size,
                     contrastive=contrastive, ratios=MaskRatios(image_mask_ratio, text_mask_ratio, cross_mask_ratio),
                     norm_pix=norm_pix, tie_word_embeddings=tie_word_embeddings, head_dropout=head_dropout,
                     linear_probe=linear_probe, pretrained_path=pretrained_path, itm_masked=itm_masked)

    builder.__doc__ = doc + "\n\n    Args: see ``momo`` (image_size None: the preset's).\n    "
    return builder


momo_base = MODELS.register(name="momo_base", parts={"contrastive": PARTS["contrastive"]})(preset(
    BASE, "MoMo at the paper's size: ViT-B/16 shared encoder, 8 x 512 decoders, 109.63M on the encoder side."))
momo_large = MODELS.register(name="momo_large", parts={"contrastive": PARTS["contrastive"]})(preset(
    LARGE, "MoMo-Large (Sec. 4.1): ViT-L/16 shared encoder, 8 x 512 decoders, 335.08M on the encoder side."))
momo_small = MODELS.register(name="momo_small", parts={"contrastive": PARTS["contrastive"]})(preset(
    SMALL, "MoMo for the embedded benchmark on a CPU: width 64, 4 layers, 8x8 patches at 64, 2 x 32 decoders."))
momo_tiny = MODELS.register(name="momo_tiny", parts={"contrastive": PARTS["contrastive"]})(preset(
    TINY, "MoMo for tests: width 32, 2 layers, 16x16 patches at 32, 1 x 16 decoders."))


@MODELS.register(parts=PARTS)
def momo(
    dataset_info: dict[str, dict[str, Any]],
    encoder: Any,
    image_tokenizer: Any = None,
    text_tokenizer: Any = None,
    pretraining: dict[str, dict[str, Any]] | None = None,
    decoder_size: Annotated[int, Range(ge=1)] = 512,
    decoder_layers: Annotated[int, Range(ge=1)] = 8,
    decoder_heads: Annotated[int, Range(ge=1)] = 16,
    decoder_mlp_size: Annotated[int, Range(ge=1)] = 2048,
    embed_size: Annotated[int, Range(ge=1)] | None = None,
    contrastive: Any = None,
    image_mask_ratio: Ratio = 0.75,
    text_mask_ratio: Ratio = 0.15,
    cross_mask_ratio: Ratio = 0.75,
    norm_pix: bool = True,
    tie_word_embeddings: bool = True,
    head_dropout: Ratio = 0.1,
    linear_probe: bool = False,
    pretrained_path: str | None = None,
    itm_masked: bool = False,
) -> MoMo:
    """MoMo composed from encoder and tokenizer nodes (Sec. 3); objectives per dataset in ``pretraining``.

    Args:
        dataset_info: per dataset, its ``task_type`` and ``info()`` (run time).
        encoder: an encoders node (``shared_transformer``); its width sizes everything else.
        image_tokenizer: an encoders node (``image_tokenizer``, ``positions: sincos`` as MAE).
        text_tokenizer: an encoders node (``text_tokenizer``); ``vocab_size`` comes from the datasets.
        pretraining: ``<dataset>: {objectives: [...], decoder: <name>}`` for the pre-training datasets
            (objectives ``mim``, ``mlm``, ``cmm``, ``contrastive``, ``itm``; ``decoder`` defaults to
            the reconstructed modality, and datasets naming the same decoder share it: Table 6's
            "shared decoder"). Datasets not listed are fine-tuned by their task type.
        decoder_size / decoder_layers / decoder_heads / decoder_mlp_size: the decoders' shape (Sec. 3.3:
            width 512, 8 layers; 16 heads and MLP 2048 as MAE).
        embed_size: the contrastive projections' width (None: the encoder's, as FLAVA's 768).
        contrastive: a losses node (``contrastive``; None: symmetric, temperature 0.07, clamp at 100).
        image_mask_ratio: MIM's hidden share (Sec. 3.2: 75%).
        text_mask_ratio: MLM's hidden share (15%).
        cross_mask_ratio: CMM's hidden share of each modality (Sec. 3.1: 75%).
        norm_pix: per-patch normalised pixel targets (MAE's norm_pix_loss; the paper is silent, the MAE
            weights stage 1 reuses were trained with it).
        tie_word_embeddings: the text decoders' output matrix is the word embedding (Sec. 3.3), behind
            a ``Linear(decoder -> encoder width) + GELU + LN`` (REFERENCE_NOTES 2.1); False: untied.
        head_dropout: dropout inside the downstream MLP heads.
        linear_probe: freeze the tokenizers and the encoder; heads are MAE's ``BatchNorm + Linear``
            (linear evaluation, Table 3's "LE").
        pretrained_path: a local MAE checkpoint (``facebookresearch/mae``'s ``{"model": ...}``) for the
            image tokenizer and the encoder (stage 1 "re-uses weights from the publicly available MAE
            model", Sec. 3.6); its decoder is ignored.
        itm_masked: the ITM pass sees the pairs masked as in CMM (FLAVA) instead of whole (ALBEF, the
            default); the paper is silent (REFERENCE_NOTES 2.2). About four times cheaper.
    """
    size = DecoderSize(decoder_size, decoder_layers, decoder_heads, decoder_mlp_size)
    return compose(dataset_info, encoder, image_tokenizer, text_tokenizer, pretraining=pretraining, decoder=size,
                   embed_size=embed_size, contrastive=contrastive,
                   ratios=MaskRatios(image_mask_ratio, text_mask_ratio, cross_mask_ratio), norm_pix=norm_pix,
                   tie_word_embeddings=tie_word_embeddings, head_dropout=head_dropout, linear_probe=linear_probe,
                   pretrained_path=pretrained_path, itm_masked=itm_masked)
