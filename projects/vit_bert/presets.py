"""ViT-BERT size presets: the paper's model (Sec. 4.2), a small one for the benchmark, a tiny one for tests.

Each preset writes out the ``vit_bert`` nodes (``part_nodes``), so a config can spell the same model
part by part. At paper size the build logs the parameter count of every part: shared encoder
85,056,000 (final LN included), image tokenizer 742,656 at 224, text tokenizer 23,434,752 for a
30,000-word vocabulary (REFERENCE_NOTES 3.1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from unimm.config.refs import Range
from unimm.models.encoders.key_maps import PretrainedFormat
from unimm.registry import LOSSES, MODELS

from .model import TEACHER, ViTBERT, compose
from .teachers import TeacherSpec


@dataclass(frozen=True, kw_only=True)
class ViTBertSize:
    """Every size of a ViT-BERT model."""

    hidden_size: int
    num_layers: int
    num_heads: int
    mlp_size: int
    patch_size: int
    image_size: int  # the pre-training resolution: the image position table's grid
    max_positions: int  # the text position table
    dropout: float = 0.1  # "on all layers" (Sec. 4.3): tokenizers, encoder, attention, heads
    init_std: float = 0.02  # ViT's and BERT's


# Sec. 4.2: 12 layers, width 768, MLP 3072, 16x16 patches at 224, 512 text positions; heads: 12
# (not stated, ViT-B's and BERT-base's, REFERENCE_NOTES 3.1).
PAPER = ViTBertSize(hidden_size=768, num_layers=12, num_heads=12, mlp_size=3072, patch_size=16, image_size=224,
                    max_positions=512)
# The embedded benchmark on a CPU: its 64-pixel pictures in 8x8 patches (an 8x8 grid), the
# benchmark tokenizer's texts (at most 64 tokens).
SMALL = ViTBertSize(hidden_size=64, num_layers=4, num_heads=4, mlp_size=256, patch_size=8, image_size=64,
                    max_positions=128)
TINY = ViTBertSize(hidden_size=32, num_layers=2, num_heads=2, mlp_size=64, patch_size=16, image_size=32,
                   max_positions=64)


def part_nodes(size: ViTBertSize, *, image_size: int | None = None, modality_embedding: bool = False
               ) -> dict[str, dict[str, Any]]:
    """The encoder and tokenizer nodes a preset builds (what ``type: vit_bert`` takes)."""
    return {
        "encoder": {"type": "shared_transformer", "hidden_size": size.hidden_size, "num_layers": size.num_layers,
                    "num_heads": size.num_heads, "mlp_size": size.mlp_size, "dropout": size.dropout,
                    "attention_dropout": size.dropout, "init_std": size.init_std},
        "image_tokenizer": {"type": "image_tokenizer", "image_size": image_size or size.image_size,
                            "patch_size": size.patch_size, "dropout": size.dropout,
                            "modality_embedding": modality_embedding, "init_std": size.init_std},
        "text_tokenizer": {"type": "text_tokenizer", "max_positions": size.max_positions, "dropout": size.dropout,
                           "modality_embedding": modality_embedding, "init_std": size.init_std},
    }


def build_vit_bert(size: ViTBertSize, dataset_info: dict[str, dict[str, Any]], *, image_size: int | None,
                   modality_embedding: bool, distillation: Any, teachers: dict[str, TeacherSpec] | None,
                   pretrained_path: str | None, pretrained_format: PretrainedFormat) -> ViTBERT:
    """A ViT-BERT model of the given size (see ``vit_bert_paper`` for the options)."""
    nodes = part_nodes(size, image_size=image_size, modality_embedding=modality_embedding)
    return compose(dataset_info, nodes["encoder"], nodes["image_tokenizer"], nodes["text_tokenizer"],
                   head_dropout=size.dropout, head_init_std=size.init_std, distillation=distillation,
                   teachers=teachers, pretrained_path=pretrained_path, pretrained_format=pretrained_format)


PRESET_PARTS = {"distillation": LOSSES, "teachers.*.model": TEACHER}
ImageSize = Annotated[int, Range(ge=1)] | None


@MODELS.register(parts=PRESET_PARTS)
def vit_bert_paper(dataset_info: dict[str, dict[str, Any]], image_size: ImageSize = None,
                   modality_embedding: bool = False, distillation: Any = None,
                   teachers: dict[str, TeacherSpec] | None = None, pretrained_path: str | None = None,
                   pretrained_format: PretrainedFormat = "bert") -> ViTBERT:
    """ViT-BERT at the paper's size (Sec. 4.2): ViT-B/16 / BERT-base shared encoder, about 86M + tokenizers.

    Args:
        dataset_info: per dataset, its ``task_type`` and ``info()`` (run time).
        image_size: resolution of the image position table (None: 224; fine-tuning: 384).
        modality_embedding: a learned modality-type vector on every token (the paper adds none).
        distillation: a ``distillation`` losses node (Eq. 7) for the datasets with a teacher.
        teachers: frozen teachers, ``{name: {model, checkpoint, datasets}}`` (``teachers.py``).
        pretrained_path: a local BERT folder or timm ViT file for the tokenizer and the shared encoder.
        pretrained_format: ``bert`` or ``timm_vit``.
    """
    return build_vit_bert(PAPER, dataset_info, image_size=image_size, modality_embedding=modality_embedding,
                          distillation=distillation, teachers=teachers, pretrained_path=pretrained_path,
                          pretrained_format=pretrained_format)


@MODELS.register(parts=PRESET_PARTS)
def vit_bert_small(dataset_info: dict[str, dict[str, Any]], image_size: ImageSize = None,
                   modality_embedding: bool = False, distillation: Any = None,
                   teachers: dict[str, TeacherSpec] | None = None, pretrained_path: str | None = None,
                   pretrained_format: PretrainedFormat = "bert") -> ViTBERT:
    """ViT-BERT sized for the embedded benchmark on a CPU: width 64, 4 layers, 4 heads, 8x8 patches at 64.

    Args: see ``vit_bert_paper`` (image_size None: 64).
    """
    return build_vit_bert(SMALL, dataset_info, image_size=image_size, modality_embedding=modality_embedding,
                          distillation=distillation, teachers=teachers, pretrained_path=pretrained_path,
                          pretrained_format=pretrained_format)


@MODELS.register(parts=PRESET_PARTS)
def vit_bert_tiny(dataset_info: dict[str, dict[str, Any]], image_size: ImageSize = None,
                  modality_embedding: bool = False, distillation: Any = None,
                  teachers: dict[str, TeacherSpec] | None = None, pretrained_path: str | None = None,
                  pretrained_format: PretrainedFormat = "bert") -> ViTBERT:
    """ViT-BERT for tests: width 32, 2 layers, 2 heads, 16x16 patches (at 32 unless ``image_size``).

    Args: see ``vit_bert_paper``.
    """
    return build_vit_bert(TINY, dataset_info, image_size=image_size, modality_embedding=modality_embedding,
                          distillation=distillation, teachers=teachers, pretrained_path=pretrained_path,
                          pretrained_format=pretrained_format)
