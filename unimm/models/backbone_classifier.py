"""Image classification with a bare convolutional backbone: the pretraining stage of a backbone.

UniT's image encoder starts from DETR's weights, whose ResNet-50 was pretrained on ImageNet
classification (UniT Sec. 3.1, DETR Sec. 4). This model trains the same ``ConvBackbone`` on an
image-folder dataset, so that a later run can load it with ``checkpoint.init_from``; its
parameters carry UniT's key names (``image_encoder.backbone.body.*``), so no ``key_map`` is
needed. The embedded shapes benchmark uses it on its imagefolder, the benchmark's ImageNet.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.models.dataset_info import num_classes_of
from unimm.modules.backbone import BackboneName, ConvBackbone
from unimm.registry import MODELS


class _ImageEncoderKeys(nn.Module):
    """Holds the backbone as ``backbone``, so that its keys read ``image_encoder.backbone.*``."""

    def __init__(self, backbone: ConvBackbone) -> None:
        super().__init__()
        self.backbone = backbone


class BackboneClassifier(nn.Module):
    """``logits = W . mean_{real cells} B(I) + b``, trained with cross-entropy.

    The average runs over the feature cells of real pixels only, so zero padding of a batch
    of differently sized images does not change a picture's prediction.

    Args:
        backbone: the trunk ``B`` to pretrain.
        num_classes: classes of the dataset.
        dataset: the dataset's name (the key of its loss).
    """

    def __init__(self, backbone: ConvBackbone, num_classes: int, dataset: str) -> None:
        super().__init__()
        self.image_encoder = _ImageEncoderKeys(backbone)
        self.classifier = nn.Linear(backbone.num_channels, num_classes)
        self.dataset = dataset

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Classify ``batch["image"]`` ``[B, 3, H, W]`` (with ``pixel_mask`` ``[B, H, W]``, True on
        real pixels, when padded).

        Returns:
            ``{"logits": [B, C], "losses": {"<dataset>/cross_entropy": scalar}}``; no loss
            without ``batch["label"]``.
        """
        image = batch["image"]
        if "pixel_mask" in batch:
            padding = ~batch["pixel_mask"].bool()
        else:
            padding = image.new_zeros(image.shape[0], *image.shape[-2:], dtype=bool)
        features, padding = self.image_encoder.backbone(image, padding)  # [B, C, h, w], [B, h, w]
        real = (~padding)[:, None].to(features.dtype)  # [B, 1, h, w]
        pooled = (features * real).sum((2, 3)) / real.sum((2, 3)).clamp(min=1)  # [B, C]
        logits = self.classifier(pooled)  # [B, num_classes]
        losses: dict[str, Tensor] = {}
        if "label" in batch:
            losses[f"{self.dataset}/cross_entropy"] = F.cross_entropy(logits.float(), batch["label"])
        return {"logits": logits, "losses": losses}


@MODELS.register()
def backbone_classifier(dataset_info: dict[str, dict[str, Any]], backbone: BackboneName = "resnet50",
                        dilation: bool = False, frozen_batch_norm: bool = False,
                        trainable_stages: int = 5) -> BackboneClassifier:
    """A backbone with global average pooling and a linear classifier, to pretrain the backbone.

    Args:
        dataset_info: the one classification dataset's ``info()`` (run time).
        backbone, dilation, frozen_batch_norm, trainable_stages: the ``ConvBackbone`` to train;
            give the values of the model that will load it (UniT's ``unit_bench``: ``tiny``,
            dilated, trainable BatchNorm, 5 stages). From random init every stage and its
            BatchNorm should learn, hence the defaults.
    """
    if len(dataset_info) != 1:
        raise ConfigError(f"backbone_classifier trains on one classification dataset; got "
                          f"{len(dataset_info)} ({', '.join(dataset_info) or 'none'}); keep one in the "
                          "config's datasets section")
    (name, info), = dataset_info.items()
    trunk = ConvBackbone(backbone, dilation=dilation, frozen_batch_norm=frozen_batch_norm,
                         trainable_stages=trainable_stages)
    return BackboneClassifier(trunk, num_classes_of(info, name, "classification", "backbone_classifier"), name)
