"""backbone_classifier: pretraining a backbone on image classification, loaded by UniT afterwards."""
import pytest
import torch
import torch.nn.functional as F

import unimm.models  # noqa: F401  (registers backbone_classifier and unit_bench)
from unimm.config.errors import ConfigError
from unimm.registry import MODELS
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
    info = {"coco": {"categories": [{"id": 1, "name": "circle"}]}, "snli_ve": {"num_classes": 3, "vocab_size": 30}}
    unit = MODELS.build({"type": "unit_bench"}, dataset_info=info)
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
