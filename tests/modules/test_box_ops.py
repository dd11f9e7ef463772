import math

import torch

from unimm.modules.box_ops import (box_cxcywh_to_xyxy, box_iou, box_xyxy_to_cxcywh, box_xyxy_to_xywh,
                                   generalized_box_iou)


def test_cxcywh_xyxy_round_trip():
    boxes = torch.rand(50, 4)
    assert torch.allclose(box_xyxy_to_cxcywh(box_cxcywh_to_xyxy(boxes)), boxes, atol=1e-6)
    xyxy = box_cxcywh_to_xyxy(boxes)
    assert torch.allclose(box_cxcywh_to_xyxy(box_xyxy_to_cxcywh(xyxy)), xyxy, atol=1e-6)


def test_known_conversions():
    cxcywh = torch.tensor([[0.5, 0.5, 0.2, 0.4]])
    assert torch.allclose(box_cxcywh_to_xyxy(cxcywh), torch.tensor([[0.4, 0.3, 0.6, 0.7]]))
    assert torch.allclose(box_xyxy_to_xywh(torch.tensor([[10.0, 20.0, 40.0, 60.0]])),
                          torch.tensor([[10.0, 20.0, 30.0, 40.0]]))


def test_iou_and_giou_on_known_boxes():
    a = torch.tensor([[0.4, 0.4, 0.6, 0.6]])
    shifted = torch.tensor([[0.5, 0.4, 0.7, 0.6]])  # half overlap: inter 0.02, union 0.06
    disjoint = torch.tensor([[2.0, 0.0, 3.0, 1.0]])
    unit = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    iou, union = box_iou(a, shifted)
    assert math.isclose(iou.item(), 1 / 3, rel_tol=1e-5) and math.isclose(union.item(), 0.06, rel_tol=1e-5)
    # the enclosing box (0.4..0.7 x 0.4..0.6) equals the union: GIoU == IoU
    assert math.isclose(generalized_box_iou(a, shifted).item(), 1 / 3, rel_tol=1e-5)
    assert math.isclose(generalized_box_iou(a, a).item(), 1.0, rel_tol=1e-6)
    # IoU 0; enclosing area 3, union 2 -> GIoU = -(3 - 2) / 3
    assert math.isclose(generalized_box_iou(unit, disjoint).item(), -1 / 3, rel_tol=1e-5)
    assert generalized_box_iou(torch.rand(3, 2).repeat(1, 2) + torch.tensor([0, 0, 0.1, 0.1]),
                               box_cxcywh_to_xyxy(torch.rand(5, 4))).shape == (3, 5)
