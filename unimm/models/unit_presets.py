"""UniT size presets: the paper's model (Table A.1) and a tiny one for tests and the benchmark."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from unimm.models.bert_text_encoder import bert_text_encoder
from unimm.models.detr_decoder import detr_decoder
from unimm.models.detr_image_encoder import detr_image_encoder
from unimm.models.unit import UniT, resolve_tasks, unit
from unimm.modules.backbone import BackboneName
from unimm.registry import MODELS

logger = logging.getLogger("unimm")


@dataclass(frozen=True)
class UnitSize:
    """Every size of a UniT model."""

    backbone: BackboneName
    dilation: bool
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
PAPER = UnitSize("resnet50", True, 256, 6, 8, 2048, 768, 12, 12, 3072, 768, 6, 8, 2048)
TINY = UnitSize("tiny", True, 32, 2, 2, 64, 32, 2, 2, 64, 32, 2, 2, 64)
# The embedded benchmark on a CPU: everything trains from random init, so the backbone's
# BatchNorm learns and every stage trains; 16 detection queries suit its 1-5 objects a picture.
# BERT's init std 0.02 leaves a width-64 encoder's attention uniform for thousands of updates:
# single-task QNLI on the benchmark stayed at chance (0.501) after 1500 updates and left its
# plateau only after 4000; with std 0.2 it reached 0.655 in 1500 updates.
BENCH = UnitSize("tiny", True, 64, 2, 4, 128, 64, 2, 4, 128, 64, 2, 4, 128, dropout=0.0, text_init_std=0.2,
                 frozen_batch_norm=False, trainable_stages=5, detection_queries=16, other_queries=4)


def build_unit(size: UnitSize, dataset_info: dict[str, dict[str, Any]], *, shared_decoder: bool = True,
               use_task_embedding: bool = True, keep_only_cls: bool = True,
               tasks: dict[str, dict[str, Any]] | None = None, backbone_path: str | None = None,
               backbone_format: Literal["torchvision", "detr"] = "detr", bert_path: str | None = None) -> UniT:
    """A UniT model of the given size (see ``unit_paper`` for the options).

    An encoder no dataset reads is not built: a detection-only model (e.g. single-task COCO,
    Table 1 line 1) has no BERT, a model of text tasks whose ``model.tasks`` modality says
    ``text`` has no ResNet. Datasets left at ``auto`` may read either, so both are built.
    Weights named for an encoder that is not built are not loaded, and a warning says so.
    """
    modalities = {spec.modality for spec in resolve_tasks(dataset_info, tasks or {}).values()}
    image = text = None
    if modalities != {"text"}:
        image = detr_image_encoder(
            dataset_info, backbone=size.backbone, dilation=size.dilation, frozen_batch_norm=size.frozen_batch_norm,
            trainable_stages=size.trainable_stages, hidden_size=size.image_hidden,
            num_layers=size.image_layers, num_heads=size.image_heads, ffn_size=size.image_ffn,
            dropout=size.dropout, use_task_embedding=use_task_embedding, pretrained_path=backbone_path,
            pretrained_format=backbone_format)
    if modalities != {"image"}:
        text = bert_text_encoder(
            dataset_info, hidden_size=size.text_hidden, num_layers=size.text_layers, num_heads=size.text_heads,
            intermediate_size=size.text_ffn, dropout=size.dropout, initializer_range=size.text_init_std,
            pretrained_path=bert_path, use_task_embedding=use_task_embedding, keep_only_cls=keep_only_cls)
    if bert_path is not None and text is None:
        logger.warning("model.bert_path=%s is not loaded: no dataset of this model reads text, so it has no "
                       "text encoder", bert_path)
    if backbone_path is not None and image is None:
        logger.warning("model.backbone_path=%s is not loaded: no dataset of this model reads pictures, so it has "
                       "no image encoder", backbone_path)
    decoder = detr_decoder(dataset_info, hidden_size=size.decoder_hidden, num_layers=size.decoder_layers,
                           num_heads=size.decoder_heads, ffn_size=size.decoder_ffn, dropout=size.dropout,
                           detection_queries=size.detection_queries, other_queries=size.other_queries)
    return unit(dataset_info, decoder, image, text, shared_decoder=shared_decoder, tasks=tasks)


@MODELS.register()
def unit_paper(dataset_info: dict[str, dict[str, Any]], shared_decoder: bool = True,
               use_task_embedding: bool = True, keep_only_cls: bool = True,
               tasks: dict[str, dict[str, Any]] | None = None, backbone_path: str | None = None,
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
              tasks: dict[str, dict[str, Any]] | None = None) -> UniT:
    """UniT with hidden size 32, 2 layers and 2 heads everywhere and a tiny conv backbone (tests).

    Args: see ``unit_paper``.
    """
    return build_unit(TINY, dataset_info, shared_decoder=shared_decoder, use_task_embedding=use_task_embedding,
                      keep_only_cls=keep_only_cls, tasks=tasks)


@MODELS.register()
def unit_bench(dataset_info: dict[str, dict[str, Any]], shared_decoder: bool = True,
               use_task_embedding: bool = True, keep_only_cls: bool = True,
               tasks: dict[str, dict[str, Any]] | None = None) -> UniT:
    """UniT sized for the embedded shapes benchmark on a CPU: width 64, 2 layers, 4 heads.

    Not in the paper: trainable BatchNorm in a tiny backbone trained from scratch, no
    dropout, 16 detection queries and 4 for the other tasks.

    Args: see ``unit_paper``.
    """
    return build_unit(BENCH, dataset_info, shared_decoder=shared_decoder, use_task_embedding=use_task_embedding,
                      keep_only_cls=keep_only_cls, tasks=tasks)
