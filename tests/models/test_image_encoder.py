import argparse

import pytest
import torch
import torchvision
from torch import nn

from unimm.config.errors import ConfigError
from unimm.models.encoders.detr_image_encoder import detr_image_encoder

TINY = dict(backbone="tiny", dilation=True, hidden_size=32, num_layers=2, num_heads=2, ffn_size=64)


def test_task_token_is_stripped_and_changes_the_output(dataset_info, batches):
    encoder = detr_image_encoder(list(dataset_info), **TINY).eval()
    image, mask = batches["coco"]["image"], batches["coco"]["pixel_mask"]
    coco, vg = encoder(image, mask, "coco"), encoder(image, mask, "vg")
    # 64 x 80 pixels at stride 16 -> 4 x 5 positions; the prefixed token is gone
    assert coco.hidden.shape == (2, 20, 32) and coco.pos.shape == (2, 20, 32)
    assert coco.padding_mask.shape == (2, 20) and coco.padding_mask[1].sum() == 4
    assert not torch.allclose(coco.hidden, vg.hidden)
    plain = detr_image_encoder(None, **TINY)
    assert not any("task_tokens" in n for n, _ in plain.named_parameters())
    assert len(plain(image, mask)) == 20


def test_unknown_dataset_names_the_known_ones(batches):
    encoder = detr_image_encoder(["coco", "snli_ve"], **TINY)
    with pytest.raises(KeyError, match="built for coco, snli_ve"):
        encoder(batches["coco"]["image"], None, "imagenet")


def _resnet18_state():
    net = torchvision.models.resnet18(weights=None)
    for p in net.parameters():
        nn.init.normal_(p)
    for name, buf in net.named_buffers():
        if buf.dtype.is_floating_point:
            buf.uniform_(0.5, 1.5)
    return net.state_dict()


def test_loads_a_torchvision_resnet_state_dict(tmp_path):
    state = _resnet18_state()
    torch.save(state, tmp_path / "resnet18.pth")
    encoder = detr_image_encoder(backbone="resnet18", hidden_size=32, num_layers=1, num_heads=2, ffn_size=64,
                                 pretrained_path=str(tmp_path / "resnet18.pth"),
                                 pretrained_format="torchvision")
    own = encoder.state_dict()
    for key in ("conv1.weight", "bn1.running_var", "layer3.1.conv2.weight", "layer4.0.downsample.1.bias"):
        assert torch.equal(own[f"backbone.body.{key}"], state[key])


def test_loads_a_detr_checkpoint(tmp_path):
    layers = [nn.TransformerEncoderLayer(32, 2, 64) for _ in range(2)]  # DETR's encoder layer naming
    # DETR's backbone body has no classifier (fc)
    model = {f"backbone.0.body.{k}": v for k, v in _resnet18_state().items() if not k.startswith("fc.")}
    model.update({f"transformer.encoder.layers.{i}.{k}": v for i, layer in enumerate(layers)
                  for k, v in layer.state_dict().items()})
    model.update({"input_proj.weight": torch.randn(32, 512, 1, 1), "input_proj.bias": torch.randn(32),
                  "class_embed.weight": torch.randn(92, 32), "query_embed.weight": torch.randn(100, 32)})
    torch.save({"model": model, "epoch": 3, "args": argparse.Namespace(lr=1e-4)}, tmp_path / "detr.pth")
    encoder = detr_image_encoder(backbone="resnet18", hidden_size=32, num_layers=2, num_heads=2, ffn_size=64,
                                 pretrained_path=str(tmp_path / "detr.pth"))
    own = encoder.state_dict()
    assert torch.equal(own["input_proj.weight"], model["input_proj.weight"])
    assert torch.equal(own["encoder.layers.1.self_attn.in_proj_weight"],
                       model["transformer.encoder.layers.1.self_attn.in_proj_weight"])
    assert torch.equal(own["backbone.body.layer2.0.conv1.weight"], model["backbone.0.body.layer2.0.conv1.weight"])
    # a checkpoint that does not fit names the mismatching keys
    with pytest.raises(ConfigError, match="encoder.layers.2"):
        detr_image_encoder(backbone="resnet18", hidden_size=32, num_layers=3, num_heads=2, ffn_size=64,
                           pretrained_path=str(tmp_path / "detr.pth"))
