"""UniT size presets: the paper's model (Table A.1) and a tiny one for tests and the benchmark."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from unimm.modules.backbone import BackboneName
from unimm.registry import MODELS

from .model import UniT, compose
from .tasks import TaskTable, resolve_tasks

logger = logging.getLogger("unimm")


@dataclass(frozen=True, kw_only=True)
class UnitSize:
    """Every size of a UniT model (names as in the paper's Table A.1 where it has them)."""

    backbone: BackboneName
    dilation: bool  # a dilated C5 (DETR-DC5), as UniT (Sec. 3.1)
    image_hidden: int  # d_v^e
    image_layers: int  # N_v
    image_heads: int
    image_ffn: int
    text_hidden: int  # d_t^e
    text_layers: int  # N_t
    text_heads: int
    text_ffn: int
    decoder_hidden: int  # d_t^d
    decoder_layers: int  # N_d
    decoder_heads: int
    decoder_ffn: int
    dropout: float = 0.1
    text_init_std: float = 0.02  # BERT's initializer_range
    frozen_batch_norm: bool = True  # DETR: a pretrained backbone keeps its statistics
    trainable_stages: int = 3  # DETR trains layer2..4
    detection_queries: int = 100  # Sec. 3.3 / supplementary C
    other_queries: int = 25


# Table A.1 (image encoder 256 / 8 heads / 2048 / 6 layers; decoder 768 / 8 / 2048 / 6; dropout
# 0.1), BERT-base uncased (768 / 12 layers / 12 heads / 3072) and a dilated ResNet-50 (Sec. 3.1).
PAPER = UnitSize(backbone="resnet50", dilation=True,
                 image_hidden=256, image_layers=6, image_heads=8, image_ffn=2048,
                 text_hidden=768, text_layers=12, text_heads=12, text_ffn=3072,
                 decoder_hidden=768, decoder_layers=6, decoder_heads=8, decoder_ffn=2048)
TINY = UnitSize(backbone="tiny", dilation=True,
                image_hidden=32, image_layers=2, image_heads=2, image_ffn=64,
                text_hidden=32, text_layers=2, text_heads=2, text_ffn=64,
                decoder_hidden=32, decoder_layers=2, decoder_heads=2, decoder_ffn=64)
# The embedded benchmark on a CPU: everything trains from random init, so the backbone's
# BatchNorm learns and every stage trains; 16 detection queries suit its 1-5 objects a picture.
# BERT's init std 0.02 leaves a width-64 encoder's attention uniform for thousands of updates:
# single-task QNLI on the benchmark stayed at chance (0.501) after 1500 updates and left its
# plateau only after 4000; with std 0.2 it reached 0.655 in 1500 updates.
SMALL = UnitSize(backbone="tiny", dilation=True,
                 image_hidden=64, image_layers=2, image_heads=4, image_ffn=128,
                 text_hidden=64, text_layers=2, text_heads=4, text_ffn=128,
                 decoder_hidden=64, decoder_layers=2, decoder_heads=4, decoder_ffn=128,
                 dropout=0.0, text_init_std=0.2, frozen_batch_norm=False, trainable_stages=5,
                 detection_queries=16, other_queries=4)


def part_nodes(size: UnitSize, *, keep_only_cls: bool = True, backbone_path: str | None = None,
               backbone_format: str = "detr", bert_path: str | None = None) -> dict[str, dict[str, Any]]:
    """The image encoder, text encoder and decoder nodes a preset builds (what ``type: unit`` takes)."""
    return {
        "image_encoder": {
            "type": "detr_image_encoder", "backbone": size.backbone, "dilation": size.dilation,
            "frozen_batch_norm": size.frozen_batch_norm, "trainable_stages": size.trainable_stages,
            "hidden_size": size.image_hidden, "num_layers": size.image_layers, "num_heads": size.image_heads,
            "ffn_size": size.image_ffn, "dropout": size.dropout, "pretrained_path": backbone_path,
            "pretrained_format": backbone_format},
        "text_encoder": {
            "type": "unit_text_encoder", "hidden_size": size.text_hidden, "num_layers": size.text_layers,
            "num_heads": size.text_heads, "intermediate_size": size.text_ffn, "dropout": size.dropout,
            "initializer_range": size.text_init_std, "pretrained_path": bert_path, "keep_only_cls": keep_only_cls},
        "decoder": {
            "type": "detr_decoder", "hidden_size": size.decoder_hidden, "num_layers": size.decoder_layers,
            "num_heads": size.decoder_heads, "ffn_size": size.decoder_ffn, "dropout": size.dropout},
    }


def build_unit(size: UnitSize, dataset_info: dict[str, dict[str, Any]], *, shared_decoder: bool = True,
               use_task_embedding: bool = True, keep_only_cls: bool = True,
               tasks: TaskTable | None = None, backbone_path: str | None = None,
               backbone_format: Literal["torchvision", "detr"] = "detr", bert_path: str | None = None) -> UniT:
    """A UniT model of the given size (see ``unit_paper`` for the options).

    An encoder no dataset reads is not built: a detection-only model (e.g. single-task COCO,
    Table 1 line 1) has no BERT, a model of text tasks whose ``model.tasks`` modality says
    ``text`` has no ResNet. Datasets left at ``auto`` may read either, so both are built.
    Weights named for an encoder that is not built are not loaded, and a warning says so.
    """
    specs = resolve_tasks(dataset_info, tasks, size.detection_queries, size.other_queries)
    modalities = {spec.modality for spec in specs.values()}
    nodes = part_nodes(size, keep_only_cls=keep_only_cls, backbone_path=backbone_path,
                       backbone_format=backbone_format, bert_path=bert_path)
    image_node = nodes["image_encoder"] if modalities != {"text"} else None
    text_node = nodes["text_encoder"] if modalities != {"image"} else None
    if bert_path is not None and text_node is None:
        logger.warning("model.bert_path=%s is not loaded: no dataset of this model reads text, so it has no "
                       "text encoder", bert_path)
    if backbone_path is not None and image_node is None:
        logger.warning("model.backbone_path=%s is not loaded: no dataset of this model reads pictures, so it has "
                       "no image encoder", backbone_path)
    return compose(specs, dataset_info, nodes["decoder"], image_node, text_node, shared_decoder=shared_decoder,
                   use_task_embedding=use_task_embedding)


@MODELS.register()
def unit_paper(dataset_info: dict[str, dict[str, Any]], shared_decoder: bool = True,
               use_task_embedding: bool = True, keep_only_cls: bool = True,
               tasks: TaskTable | None = None, backbone_path: str | None = None,
               backbone_format: Literal["torchvision", "detr"] = "detr", bert_path: str | None = None) -> UniT:
    """UniT at the paper's size (Table A.1; about 201M parameters with all 8 datasets).

    Args:
        dataset_info: per dataset, its ``info()`` (run time).
        shared_decoder: one decoder for all tasks (True) or one per task.
        use_task_embedding: task tokens in both encoders (Table 4 line 7 turns them off).
        keep_only_cls: the decoder sees only BERT's [CLS] (Table 4's default; line 5 uses all).
        tasks: per-dataset overrides, see ``unit``.
        backbone_path: local ResNet-50 / DETR checkpoint (the paper starts from DETR's).
        backbone_format: ``detr`` or ``torchvision``.
        bert_path: local Hugging Face folder of bert-base-uncased; None = random init.
    """
    return build_unit(PAPER, dataset_info, shared_decoder=shared_decoder, use_task_embedding=use_task_embedding,
                      keep_only_cls=keep_only_cls, tasks=tasks, backbone_path=backbone_path,
                      backbone_format=backbone_format, bert_path=bert_path)


@MODELS.register()
def unit_tiny(dataset_info: dict[str, dict[str, Any]], shared_decoder: bool = True,
              use_task_embedding: bool = True, keep_only_cls: bool = True,
              tasks: TaskTable | None = None, bert_path: str | None = None) -> UniT:
    """UniT with hidden size 32, 2 layers and 2 heads everywhere and a tiny conv backbone (tests).

    Args: see ``unit_paper``; ``bert_path`` gives a local BERT folder, whose own size is built.
    """
    return build_unit(TINY, dataset_info, shared_decoder=shared_decoder, use_task_embedding=use_task_embedding,
                      keep_only_cls=keep_only_cls, tasks=tasks, bert_path=bert_path)


@MODELS.register()
def unit_small(dataset_info: dict[str, dict[str, Any]], shared_decoder: bool = True,
               use_task_embedding: bool = True, keep_only_cls: bool = True, tasks: TaskTable | None = None,
               bert_path: str | None = None) -> UniT:
    """UniT sized for a CPU (the embedded shapes benchmark's runs): width 64, 2 layers, 4 heads.

    Not in the paper: trainable BatchNorm in a tiny backbone trained from scratch, no
    dropout, 16 detection queries and 4 for the other tasks. Formerly ``unit_small``.

    Args: see ``unit_paper``; ``bert_path`` gives a local BERT folder, whose own size is built.
    """
    return build_unit(SMALL, dataset_info, shared_decoder=shared_decoder, use_task_embedding=use_task_embedding,
                      keep_only_cls=keep_only_cls, tasks=tasks, bert_path=bert_path)
