"""Pretraining stages of a bare convolutional backbone, for UniT to load afterwards.

UniT's image encoder starts from DETR's weights, whose ResNet-50 was pretrained on ImageNet
classification and then trained on COCO detection (UniT Sec. 3.1, DETR Sec. 4). Both models here
train the same ``ConvBackbone`` so that a later run can load it with ``checkpoint.init_from``;
their parameters carry UniT's key names (``image_encoder.backbone.body.*``), so no ``key_map``
is needed.

- ``backbone_classifier``: image classification with global average pooling (ImageNet style).
- ``cell_classifier``: every feature cell names the object under it and that object's
  attributes, from a detection dataset's boxes (Visual Genome objects and attributes, the
  supervision of BUTD's region features that UniT's attribute head follows, Sec. 3.4; UniT's
  Table 2 credits VG's attributes for better VQA). The embedded shapes benchmark pretrains its
  trunk this way, as its pictures hold nothing but such objects on a background.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from .tasks import num_classes_of
from unimm.modules.backbone import BackboneName, ConvBackbone
from unimm.registry import MODELS


class _ImageEncoderKeys(nn.Module):
    """Holds the backbone as ``backbone``, so that its keys read ``image_encoder.backbone.*``."""

    def __init__(self, backbone: ConvBackbone) -> None:
        super().__init__()
        self.backbone = backbone


def _padding_of(batch: Mapping[str, Any]) -> Tensor:
    """Bool ``[B, H, W]``, True on padding: the inverse of ``pixel_mask``, or none without one."""
    if "pixel_mask" in batch:
        return ~batch["pixel_mask"].bool()
    image = batch["image"]
    return image.new_zeros(image.shape[0], *image.shape[-2:], dtype=torch.bool)


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
        padding = _padding_of(batch)
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
            give the values of the model that will load it (UniT's ``unit_small``: ``tiny``,
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


class CellClassifier(nn.Module):
    """A 1x1 convolution on the backbone's feature map that labels every cell.

    A cell whose centre lies inside a ground-truth box takes that box's class and attributes;
    where boxes overlap, the smallest box wins (it is the one in front in a picture of flat
    shapes, and the one a coarse cell would otherwise never show). The cell holding a box's
    centre always takes the box (unless a smaller box claims it), so objects smaller than a cell
    are not lost. Other cells are background ("no object", the class after the last, as DETR's);
    padding cells count for nothing.

    Losses: cross-entropy over the classes + background on every real cell, and binary
    cross-entropy over the attributes on the cells of objects (BUTD's attribute loss, per cell).

    Args:
        backbone: the trunk to pretrain.
        num_classes: object classes of the dataset (background is added).
        num_attributes: attributes of the dataset; 0 means no attribute head.
        dataset: the dataset's name (the key of its losses).
    """

    def __init__(self, backbone: ConvBackbone, num_classes: int, num_attributes: int, dataset: str) -> None:
        super().__init__()
        self.image_encoder = _ImageEncoderKeys(backbone)
        self.class_head = nn.Conv2d(backbone.num_channels, num_classes + 1, 1)
        self.attribute_head = nn.Conv2d(backbone.num_channels, num_attributes, 1) if num_attributes else None
        self.num_classes, self.num_attributes, self.dataset = num_classes, num_attributes, dataset

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Label the cells of ``batch["image"]`` ``[B, 3, H, W]`` (``pixel_mask`` ``[B, H, W]``
        True on real pixels; ``targets``: per picture ``boxes`` ``[N, 4]`` normalised
        ``(cx, cy, w, h)`` of its ``size`` ``(h, w)``, ``labels`` ``[N]`` and optionally
        ``attributes`` ``[N, K]`` indices padded with -1, as the detection datasets give them).

        Returns:
            ``{"cell_logits": [B, C + 1, h, w], "cell_attribute_logits": [B, A, h, w] (with an
            attribute head), "cell_labels": [B, h, w] (-100 on padding), "cell_attributes":
            [B, h, w, A] the true multi-hot attributes (with an attribute head), "losses": {...}}``;
            no losses or labels without ``targets``. The ``cell_accuracy`` metric reads them.
        """
        image = batch["image"]
        padding = _padding_of(batch)
        features, cell_padding = self.image_encoder.backbone(image, padding)  # [B, C, h, w], [B, h, w]
        out: dict[str, Any] = {"cell_logits": self.class_head(features), "losses": {}}
        if self.attribute_head is not None:
            out["cell_attribute_logits"] = self.attribute_head(features)
        if "targets" not in batch:
            return out
        labels, attributes = self.cell_targets(batch["targets"], cell_padding, image.shape[-2:])
        out["cell_labels"] = labels
        logits = out["cell_logits"].float()
        out["losses"][f"{self.dataset}/cell_class_ce"] = F.cross_entropy(logits, labels, ignore_index=-100)
        objects = (labels >= 0) & (labels < self.num_classes)  # [B, h, w]
        if self.attribute_head is not None:
            out["cell_attributes"] = attributes
            chosen = out["cell_attribute_logits"].float().permute(0, 2, 3, 1)[objects]  # [M, A]
            wanted = attributes[objects]
            loss = F.binary_cross_entropy_with_logits(chosen, wanted) if len(chosen) else chosen.sum()
            out["losses"][f"{self.dataset}/cell_attribute_bce"] = loss
        return out

    def _check_attributes(self, targets: Sequence[Mapping[str, Tensor]]) -> None:
        """One look at the largest attribute index of the batch (one device sync, not one a picture)."""
        given = [t["attributes"].flatten() for t in targets if "attributes" in t and t["attributes"].numel()]
        if not self.num_attributes or not given:
            return
        largest = int(torch.cat([g.to(given[0].device) for g in given]).max())
        if largest >= self.num_attributes:
            raise ValueError(
                f"dataset '{self.dataset}': a box has attribute index {largest}, but the dataset's info() "
                f"gives num_attributes={self.num_attributes}; the attribute vocabulary the model was built "
                "from must cover every index its targets use")

    def cell_targets(self, targets: Sequence[Mapping[str, Tensor]], cell_padding: Tensor,
                     padded_size: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Per cell, the class index (``num_classes`` = background, -100 = padding) ``[B, h, w]``
        and the multi-hot attributes ``[B, h, w, A]``."""
        batch, h, w = cell_padding.shape
        device = cell_padding.device
        labels = torch.full((batch, h, w), self.num_classes, dtype=torch.long, device=device)
        attributes = torch.zeros(batch, h, w, max(self.num_attributes, 1), device=device)
        # cell centres in padded pixels
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * padded_size[0] / h
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * padded_size[1] / w
        self._check_attributes(targets)
        for b, target in enumerate(targets):
            boxes = target["boxes"].to(device=device, dtype=torch.float32)
            if not len(boxes):
                continue
            size_h, size_w = (float(v) for v in target["size"])
            cx, cy, bw, bh = (boxes * boxes.new_tensor([size_w, size_h, size_w, size_h])).unbind(1)  # pixels
            inside = (((ys[None, :, None] - cy[:, None, None]).abs() <= bh[:, None, None] / 2)
                      & ((xs[None, None, :] - cx[:, None, None]).abs() <= bw[:, None, None] / 2))  # [N, h, w]
            centre_y = (cy * h / padded_size[0]).long().clamp(0, h - 1)
            centre_x = (cx * w / padded_size[1]).long().clamp(0, w - 1)
            inside[torch.arange(len(boxes), device=device), centre_y, centre_x] = True
            # each cell takes its smallest covering box (ties: the first listed)
            area = torch.where(inside, (bw * bh)[:, None, None], torch.inf)  # [N, h, w]
            smallest, owner = area.min(0)  # [h, w]
            covered = smallest.isfinite()
            box_labels = target["labels"].to(device=device, dtype=torch.long)
            labels[b] = torch.where(covered, box_labels[owner], self.num_classes)
            if self.num_attributes and "attributes" in target:
                indices = target["attributes"].to(device=device, dtype=torch.long)  # [N, K], -1 = none
                hot = F.one_hot(indices.clamp(min=0), self.num_attributes) * (indices >= 0)[..., None]
                hot = hot.amax(1) if indices.shape[1] else hot.new_zeros(len(indices), self.num_attributes)
                attributes[b] = hot[owner].float() * covered[..., None]  # [h, w, A]
        labels[cell_padding] = -100
        return labels, attributes


@MODELS.register()
def cell_classifier(dataset_info: dict[str, dict[str, Any]], backbone: BackboneName = "resnet50",
                    dilation: bool = False, frozen_batch_norm: bool = False,
                    trainable_stages: int = 5, attributes: bool = True) -> CellClassifier:
    """A backbone whose feature cells learn the class and attributes of the object under them.

    Args:
        dataset_info: the one detection dataset's ``info()`` (run time): ``categories``, and
            ``num_attributes`` for the attribute head.
        backbone, dilation, frozen_batch_norm, trainable_stages: as ``backbone_classifier``.
        attributes: train the attribute head when the dataset has attributes.
    """
    if len(dataset_info) != 1:
        raise ConfigError(f"cell_classifier trains on one detection dataset; got {len(dataset_info)} "
                          f"({', '.join(dataset_info) or 'none'}); keep one in the config's datasets section")
    (name, info), = dataset_info.items()
    if "categories" not in info:
        raise ConfigError(f"cell_classifier: dataset '{name}' has no categories in its info(); it trains on "
                          "a detection dataset (e.g. type coco_detection or visual_genome)")
    trunk = ConvBackbone(backbone, dilation=dilation, frozen_batch_norm=frozen_batch_norm,
                         trainable_stages=trainable_stages)
    num_attributes = int(info.get("num_attributes", 0)) if attributes else 0
    return CellClassifier(trunk, len(info["categories"]), num_attributes, name)
