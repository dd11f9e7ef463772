"""backbone_classifier: pretraining a backbone on image classification, loaded by UniT afterwards."""
import pytest
import torch
import torch.nn.functional as F

import unimm.metrics  # noqa: F401  (registers cell_accuracy)
import unimm.models  # noqa: F401  (registers backbone_classifier and unit_small)
from unimm.config.errors import ConfigError
from unimm.registry import METRICS, MODELS
from unimm.training import checkpoint as ckpt

INFO = {"shapes": {"num_classes": 3, "labels": ["circle", "square", "triangle"]}}


def classifier(**kwargs):
    torch.manual_seed(0)
    return MODELS.build({"type": "backbone_classifier", "backbone": "tiny", "dilation": True, **kwargs},
                        dataset_info=INFO)


def test_logits_average_only_the_feature_cells_of_real_pixels():
    model = classifier().eval()
    features = torch.arange(2 * 64 * 2 * 3, dtype=torch.float32).reshape(2, 64, 2, 3)
    padding = torch.zeros(2, 2, 3, dtype=torch.bool)
    padding[1, :, 2] = True  # the second picture's last column of cells is padding
    model.image_encoder.backbone.forward = lambda image, mask: (features, padding)
    out = model({"image": torch.zeros(2, 3, 32, 48), "pixel_mask": torch.ones(2, 32, 48, dtype=torch.bool)})
    pooled = torch.stack([features[0].mean((1, 2)), features[1, :, :, :2].mean((1, 2))])
    torch.testing.assert_close(out["logits"], model.classifier(pooled))
    assert out["losses"] == {}  # no label: predictions only


def test_the_loss_is_cross_entropy_keyed_by_the_dataset():
    model = classifier()
    image = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    label = torch.tensor([0, 2, 1, 2])
    out = model({"image": image, "label": label})
    assert out["logits"].shape == (4, 3)
    torch.testing.assert_close(out["losses"]["shapes/cross_entropy"], F.cross_entropy(out["logits"], label))


def test_a_few_steps_learn_to_tell_colours_apart():
    model = classifier()
    g = torch.Generator().manual_seed(2)
    label = torch.randint(3, (24,), generator=g)
    image = torch.randn(24, 3, 32, 32, generator=g) * 0.3
    image[torch.arange(24), label] += 2.0  # class k: channel k is bright
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        model({"image": image, "label": label})["losses"]["shapes/cross_entropy"].backward()
        opt.step()
    model.eval()
    assert (model({"image": image})["logits"].argmax(1) == label).float().mean() == 1.0


def test_unit_loads_exactly_the_pretrained_backbone(tmp_path):
    pretrained = classifier(frozen_batch_norm=False, trainable_stages=5)
    for module in pretrained.modules():  # distinct, non-default BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
    path = tmp_path / "backbone.pt"
    torch.save(pretrained.state_dict(), path)
    info = {"coco": {"task_type": "detection", "categories": [{"id": 1, "name": "circle"}]},
            "snli_ve": {"task_type": "classification", "num_classes": 3, "vocab_size": 30}}
    unit = MODELS.build({"type": "unit_small"}, dataset_info=info)
    report = ckpt.init_from(unit, path, include=[r"^image_encoder\.backbone\."])
    source = {k: v for k, v in pretrained.state_dict().items() if k.startswith("image_encoder.backbone.")}
    assert sorted(report["loaded"]) == sorted(source) and report["mismatched"] == []
    own = unit.state_dict()
    for key, value in source.items():
        assert torch.equal(own[key], value), key


def test_one_dataset_only():
    two = {**INFO, "other": {"num_classes": 2}}
    with pytest.raises(ConfigError, match="one classification dataset; got 2"):
        MODELS.build({"type": "backbone_classifier", "backbone": "tiny"}, dataset_info=two)


# cell_classifier: every feature cell learns the object under it (Visual Genome objects and attributes)

VG_INFO = {"vg": {"categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}], "num_attributes": 3}}


def cell_model(**kwargs):
    torch.manual_seed(0)
    return MODELS.build({"type": "cell_classifier", "backbone": "tiny", "dilation": True, **kwargs},
                        dataset_info=VG_INFO)


def box(x0, y0, x1, y1, w, h):
    """Pixel corners -> normalised (cx, cy, w, h) of a picture of ``w`` x ``h``."""
    return [(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h]


def test_cells_take_the_smallest_box_over_their_centre_and_padding_counts_for_nothing():
    model = cell_model()
    # a 64 x 48 picture padded to 64 x 64; stride 16: 4 x 4 cells with centres at 8, 24, 40, 56
    padding = torch.zeros(1, 4, 4, dtype=torch.bool)
    padding[0, :, 3] = True
    target = {"boxes": torch.tensor([box(0, 0, 48, 36, 48, 64), box(20, 20, 44, 30, 48, 64),
                                     box(40, 52, 44, 56, 48, 64)]),
              "labels": torch.tensor([1, 0, 0]), "size": torch.tensor([64, 48]),
              "attributes": torch.tensor([[2, -1], [0, 1], [-1, -1]])}
    labels, attributes = model.cell_targets([target], padding, (64, 64))
    bg = 2  # background is the class after the last
    assert labels[0].tolist() == [[1, 1, 1, -100],
                                  [1, 0, 0, -100],   # the small box (label 0) wins where both hold
                                  [bg, bg, bg, -100],
                                  [bg, bg, 0, -100]]  # a box smaller than a cell keeps its centre's cell
    assert attributes[0, 0, 0].tolist() == [0, 0, 1] and attributes[0, 1, 1].tolist() == [1, 1, 0]
    assert attributes[0, 3, 2].tolist() == [0, 0, 0] and attributes[0, 2, 0].tolist() == [0, 0, 0]


def test_boxes_without_attribute_columns_give_no_attributes():
    padding = torch.zeros(1, 4, 4, dtype=torch.bool)
    target = {"boxes": torch.tensor([box(0, 0, 32, 32, 64, 64)]), "labels": torch.tensor([1]),
              "size": torch.tensor([64, 64]), "attributes": torch.zeros(1, 0, dtype=torch.long)}
    labels, attributes = cell_model().cell_targets([target], padding, (64, 64))
    assert (labels[0, :2, :2] == 1).all() and (labels[0, 2:] == 2).all()
    assert attributes.shape == (1, 4, 4, 3) and not attributes.any()


def test_an_attribute_index_beyond_the_vocabulary_names_the_dataset():
    padding = torch.zeros(1, 4, 4, dtype=torch.bool)
    target = {"boxes": torch.tensor([box(0, 0, 32, 32, 64, 64)]), "labels": torch.tensor([1]),
              "size": torch.tensor([64, 64]), "attributes": torch.tensor([[1, 3]])}  # 3 attributes: 0..2
    with pytest.raises(ValueError, match=r"dataset 'vg': a box has attribute index 3, but .* num_attributes=3"):
        cell_model().cell_targets([target], padding, (64, 64))


def test_cell_losses_are_cross_entropy_and_attribute_bce_on_object_cells():
    model = cell_model()
    g = torch.Generator().manual_seed(3)
    image = torch.randn(2, 3, 64, 64, generator=g)
    targets = [{"boxes": torch.tensor([box(0, 0, 40, 40, 64, 64)]), "labels": torch.tensor([1]),
                "size": torch.tensor([64, 64]), "attributes": torch.tensor([[0, 2]])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
                "size": torch.tensor([64, 64]), "attributes": torch.zeros(0, 2, dtype=torch.long)}]
    out = model({"image": image, "targets": targets})
    labels = out["cell_labels"]
    assert (labels[0] == 1).sum() == 9 and (labels[1] == 2).all()  # 3 x 3 cells under the box; an empty picture
    torch.testing.assert_close(out["losses"]["vg/cell_class_ce"], F.cross_entropy(out["cell_logits"], labels))
    chosen = out["cell_attribute_logits"].permute(0, 2, 3, 1)[labels == 1]
    wanted = torch.tensor([1.0, 0.0, 1.0]).expand(9, 3)
    torch.testing.assert_close(out["losses"]["vg/cell_attribute_bce"],
                               F.binary_cross_entropy_with_logits(chosen, wanted))


def test_a_few_steps_learn_which_cells_hold_which_object():
    model = cell_model()
    g = torch.Generator().manual_seed(4)
    images, targets = torch.randn(16, 3, 64, 64, generator=g) * 0.2, []
    for i in range(16):
        label, x, y = int(torch.randint(2, (1,), generator=g)), *(int(v) * 16 for v in torch.randint(3, (2,), generator=g))
        images[i, label, y:y + 32, x:x + 32] += 2.0  # class k: a bright square in channel k
        targets.append({"boxes": torch.tensor([box(x, y, x + 32, y + 32, 64, 64)]), "labels": torch.tensor([label]),
                        "size": torch.tensor([64, 64]), "attributes": torch.tensor([[label]])})
    metric = METRICS.build({"type": "cell_accuracy"})

    def measured():
        metric.reset()
        with torch.no_grad():
            metric.update({}, model({"image": images, "targets": targets}))
        return metric.compute()

    first = measured()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        opt.zero_grad()
        sum(model({"image": images, "targets": targets})["losses"].values()).backward()
        opt.step()
    model.eval()
    assert measured() == {"cell_accuracy": 1.0, "background_accuracy": 1.0, "attribute_accuracy": 1.0}
    assert first["cell_accuracy"] < 1.0 and first["attribute_accuracy"] < 1.0


def test_cell_accuracy_pools_cells_over_batches():
    metric = METRICS.build({"type": "cell_accuracy"})
    # 2 classes + background (index 2); one 2 x 2 picture per batch
    labels = torch.tensor([[[0, 1], [2, -100]]])
    logits = F.one_hot(torch.tensor([[[0, 0], [2, 2]]]), 3).permute(0, 3, 1, 2).float()  # right, wrong, right
    attributes = torch.zeros(1, 2, 2, 2)
    attributes[0, 0, 0] = torch.tensor([1.0, 0.0])
    attribute_logits = torch.full((1, 2, 2, 2), -5.0)
    attribute_logits[0, 0, 0, 0] = 5.0  # cell (0, 0): {0}, right; cell (0, 1): {} right
    metric.update({}, {"cell_logits": logits, "cell_labels": labels, "cell_attribute_logits": attribute_logits,
                       "cell_attributes": attributes})
    second = torch.tensor([[[1, 2], [2, 2]]])  # 1 object cell, right; 3 background cells, 2 right
    metric.update({}, {"cell_logits": F.one_hot(torch.tensor([[[1, 0], [2, 2]]]), 3).permute(0, 3, 1, 2).float(),
                       "cell_labels": second})
    assert metric.compute() == {"cell_accuracy": 2 / 3, "background_accuracy": 3 / 4, "attribute_accuracy": 1.0}


def test_unit_loads_exactly_the_cell_pretrained_backbone(tmp_path):
    pretrained = cell_model()
    path = tmp_path / "cells.pt"
    torch.save(pretrained.state_dict(), path)
    info = {"coco": {"task_type": "detection", "categories": [{"id": 1, "name": "circle"}]},
            "snli_ve": {"task_type": "classification", "num_classes": 3, "vocab_size": 30}}
    unit = MODELS.build({"type": "unit_small"}, dataset_info=info)
    report = ckpt.init_from(unit, path, include=[r"^image_encoder\.backbone\."])
    source = {k for k in pretrained.state_dict() if k.startswith("image_encoder.backbone.")}
    assert sorted(report["loaded"]) == sorted(source) and report["mismatched"] == []


def test_cell_classifier_needs_one_detection_dataset():
    with pytest.raises(ConfigError, match="one detection dataset; got 2"):
        MODELS.build({"type": "cell_classifier", "backbone": "tiny"}, dataset_info={**VG_INFO, **INFO})
    with pytest.raises(ConfigError, match="dataset 'shapes' has no categories"):
        MODELS.build({"type": "cell_classifier", "backbone": "tiny"}, dataset_info=INFO)
