import pytest
import torch

from unimm.config.errors import ConfigError
from unimm.modules.backbone import ConvBackbone


def test_tiny_backbone_strides_and_mask():
    plain, dilated = ConvBackbone("tiny", dilation=False), ConvBackbone("tiny", dilation=True)
    image = torch.randn(2, 3, 64, 96)
    mask = torch.zeros(2, 64, 96, dtype=torch.bool)
    mask[1, :, 48:] = True
    feats, small_mask = plain(image, mask)
    assert feats.shape == (2, plain.num_channels, 2, 3) and small_mask.shape == (2, 2, 3)
    assert dilated(image, mask)[0].shape[-2:] == (4, 6)
    # nearest sampling of columns 0, 32, 64 of a mask padded from column 48 on
    assert small_mask[1].tolist() == [[False, False, True]] * 2 and not small_mask[0].any()


def test_frozen_stages_and_frozen_batch_norm():
    backbone = ConvBackbone("resnet18", trainable_stages=3)
    trainable = {n.split(".")[0] for n, p in backbone.body.named_parameters() if p.requires_grad}
    assert trainable == {"layer2", "layer3", "layer4"}
    # frozen BatchNorm keeps affine terms as buffers: no BN parameters at all
    assert not any("bn" in n for n, _ in backbone.body.named_parameters())
    assert all(p.requires_grad for p in ConvBackbone("tiny", trainable_stages=5).parameters())


def test_bad_options_name_the_fix():
    with pytest.raises(ConfigError, match="dilation=false"):
        ConvBackbone("resnet18", dilation=True)
    with pytest.raises(ConfigError, match="resnet50, resnet18, tiny"):
        ConvBackbone("vgg16")
