import math

import pytest
import torch

from unimm.losses.attribute import attribute_loss
from unimm.models.heads.attribute_head import attribute_head
from unimm.models.heads.detection_head import detection_head
from unimm.models.heads.mlp_classifier_head import mlp_classifier_head
from unimm.registry import HEADS


def test_attribute_head_shapes():
    head = attribute_head(num_classes=6, num_attributes=7, hidden_size=32)
    assert head.class_embed.num_embeddings == 7  # 6 classes + no object
    assert head(torch.randn(2, 100, 32), torch.randint(7, (2, 100))).shape == (2, 100, 7)
    assert head(torch.randn(5, 32), torch.tensor([0, 1, 2, 3, 6])).shape == (5, 7)


def test_attribute_loss_by_hand():
    logits = torch.zeros(3, 4)  # uniform: every cross-entropy is log 4
    logits[1, 2] = 1.0
    attributes = torch.tensor([[0, 1], [2, -1], [-1, -1]])
    # box 0: mean(log 4, log 4); box 1: CE of the boosted class; box 2 has none and is skipped
    ce_boosted = -math.log(math.e / (math.e + 3))
    expected = 0.5 * (math.log(4) + ce_boosted) / 2
    assert attribute_loss(logits, attributes).item() == pytest.approx(expected, rel=1e-5)
    assert attribute_loss(logits, torch.full((3, 2), -1)).item() == 0


def test_detection_head_outputs_and_attribute_losses(batches):
    head = detection_head(num_classes=6, num_attributes=7, hidden_size=32)
    outputs, losses = head(torch.randn(2, 2, 10, 32), batches["vg"])
    assert outputs["pred_logits"].shape == (2, 10, 7) and outputs["pred_boxes"].shape == (2, 10, 4)
    assert outputs["pred_attributes"].shape == (2, 10, 7) and len(outputs["aux_outputs"]) == 1
    assert set(losses) == {"class_ce", "box_l1", "box_giou", "attribute_ce",
                           "aux_class_ce", "aux_box_l1", "aux_box_giou", "aux_attribute_ce"}
    assert detection_head(num_classes=5, hidden_size=32).attributes is None
    assert detection_head(num_classes=6, num_attributes=7, predict_attributes=False, hidden_size=32).attributes is None
    _, no_targets = head(torch.randn(2, 2, 10, 32), {"dataset_name": "vg"})
    assert no_targets == {}


def test_classifier_losses(batches):
    vqa = HEADS.build({"type": "mlp_classifier_head", "num_classes": 11, "hidden_size": 32, "loss": "soft_bce"}).eval()
    assert vqa.loss.name == "soft_bce" and vqa.loss.target_key == "answer_scores"
    hidden = torch.randn(2, 2, 25, 32)
    outputs, losses = vqa(hidden, batches["vqa2"])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        outputs["logits"], batches["vqa2"]["answer_scores"], reduction="sum") / 2  # summed over answers
    assert outputs["logits"].shape == (2, 11)
    assert losses["soft_bce"].item() == pytest.approx(expected.item(), rel=1e-5)
    snli = mlp_classifier_head(num_classes=3, hidden_size=32).eval()  # cross_entropy by default
    outputs, losses = snli(hidden, {"label": torch.tensor([0, -1])})  # negative labels are ignored
    expected = torch.nn.functional.cross_entropy(outputs["logits"][:1], torch.tensor([0]))
    assert losses["cross_entropy"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_classifier_losses_on_all_layers():
    torch.manual_seed(0)
    head = mlp_classifier_head(num_classes=3, hidden_size=32, all_layers=True).eval()
    hidden = torch.randn(3, 2, 25, 32)  # 3 decoder layers
    labels = torch.tensor([2, 0])
    outputs, losses = head(hidden, {"label": labels})
    per_layer = [torch.nn.functional.cross_entropy(head.classifier(hidden[k, :, 0]), labels).item() for k in range(3)]
    torch.testing.assert_close(outputs["logits"], head.classifier(hidden[-1, :, 0]))  # the top layer predicts
    assert losses["cross_entropy"].item() == pytest.approx(per_layer[2], rel=1e-5)
    assert losses["aux_cross_entropy"].item() == pytest.approx(per_layer[0] + per_layer[1], rel=1e-5)
    top_only = mlp_classifier_head(num_classes=3, hidden_size=32)
    assert set(top_only(hidden, {"label": labels})[1]) == {"cross_entropy"}


def test_a_head_reports_its_bad_loss_at_its_path():
    with pytest.raises(Exception, match=r"model\.tasks\.vqa2\.head\.loss: unknown losses name 'soft_bc'; "
                                        r"did you mean 'soft_bce'"):
        HEADS.build({"type": "mlp_classifier_head", "num_classes": 3, "loss": "soft_bc"}, path="model.tasks.vqa2.head")
