"""Bounding-box conversions and overlaps (IoU, generalized IoU), and DETR's detections in pixels.

Boxes are ``[..., 4]`` tensors in one of three layouts:

* ``cxcywh``: centre x, centre y, width, height (what DETR heads predict, in [0, 1]);
* ``xyxy``: left, top, right, bottom;
* ``xywh``: left, top, width, height (what COCO json files store, in pixels).
"""
from __future__ import annotations

import torch
from torch import Tensor


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``[..., 4]`` (cx, cy, w, h) -> ``[..., 4]`` (x0, y0, x1, y1)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def box_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """``[..., 4]`` (x0, y0, x1, y1) -> ``[..., 4]`` (cx, cy, w, h)."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack(((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0), dim=-1)


def box_xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """``[..., 4]`` (x0, y0, x1, y1) -> ``[..., 4]`` (x0, y0, w, h), the COCO layout."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack((x0, y0, x1 - x0, y1 - y0), dim=-1)


def detr_detections(logits: Tensor, boxes: Tensor, sizes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Every query as one detection of the original image, as DETR's evaluation does.

    The score is the best real-class probability (softmax over ``C + 1``, "no object" dropped),
    the label its class index, the box the predicted (cx, cy, w, h) scaled to the original
    image and written (x, y, w, h) in pixels. Shared by the ``coco_map`` metric and the COCO
    results files of ``DetectionDataset.format_predictions``.

    Args:
        logits: ``[B, Q, C + 1]`` class logits, the last one "no object".
        boxes: ``[B, Q, 4]`` (cx, cy, w, h) relative to the image, in [0, 1].
        sizes: ``[B, 2]`` (h, w) of each original image in pixels.

    Returns:
        ``(scores, labels, boxes)``: float ``[B, Q]``, long ``[B, Q]`` (in ``0 .. C-1``) and
        float ``[B, Q, 4]`` (x, y, w, h) in pixels, on the device of ``logits``.
    """
    prob = logits.detach().float().softmax(-1)[..., :-1]  # [B, Q, C]
    scores, labels = prob.max(-1)  # [B, Q]
    xyxy = box_cxcywh_to_xyxy(boxes.detach().float())  # [B, Q, 4], relative
    sizes = torch.as_tensor(sizes).to(xyxy)  # [B, 2] (h, w)
    scale = torch.stack([sizes[:, 1], sizes[:, 0], sizes[:, 1], sizes[:, 0]], dim=1)  # [B, 4]
    return scores, labels, box_xyxy_to_xywh(xyxy * scale[:, None, :])  # [B, Q], [B, Q], [B, Q, 4]


def box_area(boxes: Tensor) -> Tensor:
    """Areas ``[...]`` of ``[..., 4]`` xyxy boxes."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def box_iou(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Pairwise IoU and union of xyxy boxes, over any leading batch dimensions.

    Args:
        boxes1: ``[..., N, 4]`` xyxy.
        boxes2: ``[..., M, 4]`` xyxy (the same leading dimensions).

    Returns:
        ``(iou, union)``, each ``[..., N, M]``.
    """
    return _iou_union(boxes1[..., :, None, :].unbind(-1), boxes2[..., None, :, :].unbind(-1))


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise generalized IoU (Rezatofighi et al., 2019) of xyxy boxes, over any leading batch dimensions.

    ``GIoU = IoU - (|C| - |A u B|) / |C|`` with ``C`` the smallest box enclosing both; it lies in
    [-1, 1] and equals the IoU when one box encloses the other.

    Args:
        boxes1: ``[..., N, 4]`` xyxy, with x1 >= x0 and y1 >= y0.
        boxes2: ``[..., M, 4]`` xyxy.

    Returns:
        ``[..., N, M]`` generalized IoU.
    """
    _check_boxes(boxes1, boxes2)
    return _giou(boxes1[..., :, None, :].unbind(-1), boxes2[..., None, :, :].unbind(-1))


def paired_generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Generalized IoU of each box with its partner: ``[..., 4]`` and ``[..., 4]`` xyxy -> ``[...]``.

    The diagonal of ``generalized_box_iou`` (DETR's criterion takes ``diag`` of the full ``K x K``
    matrix of its ``K`` matched pairs), computed for the pairs only: the same numbers, bit for bit.
    """
    _check_boxes(boxes1, boxes2)
    return _giou(boxes1.unbind(-1), boxes2.unbind(-1))


def _check_boxes(boxes1: Tensor, boxes2: Tensor) -> None:
    # Degenerate boxes give inf / nan; callers pass sigmoid outputs converted from cxcywh, which
    # always satisfy this.
    assert (boxes1[..., 2:] >= boxes1[..., :2]).all() and (boxes2[..., 2:] >= boxes2[..., :2]).all()


def _iou_union(a: tuple[Tensor, ...], b: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
    """IoU and union of boxes given as broadcastable coordinates ``(x0, y0, x1, y1)``.

    One coordinate at a time: each step is an elementwise op on ``[..., N, M]`` (or ``[...]``)
    tensors, rather than on ``[..., N, M, 2]`` pairs of strided coordinates, with the same
    arithmetic as DETR's ``box_iou`` in the same order (the results are bit-identical).
    """
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    w = (torch.minimum(ax1, bx1) - torch.maximum(ax0, bx0)).clamp(min=0)
    h = (torch.minimum(ay1, by1) - torch.maximum(ay0, by0)).clamp(min=0)
    inter = w * h
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union, union


def _giou(a: tuple[Tensor, ...], b: tuple[Tensor, ...]) -> Tensor:
    iou, union = _iou_union(a, b)
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    w = (torch.maximum(ax1, bx1) - torch.minimum(ax0, bx0)).clamp(min=0)
    h = (torch.maximum(ay1, by1) - torch.minimum(ay0, by0)).clamp(min=0)
    enclosing = w * h
    return iou - (enclosing - union) / enclosing
