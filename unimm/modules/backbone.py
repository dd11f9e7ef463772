"""Convolutional backbones that turn an image into a feature map: torchvision ResNets with
frozen BatchNorm and an optional dilated last stage (DETR), and a tiny stem for tests."""
from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
import torchvision
from torch import Tensor, nn
from torchvision.ops.misc import FrozenBatchNorm2d

from unimm.config.errors import ConfigError

BackboneName = Literal["resnet50", "resnet18", "tiny"]
STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")  # stem first; ``bn1`` goes with conv1
_RESNET_CHANNELS = {"resnet18": 512, "resnet50": 2048}
_TINY_WIDTHS = (8, 16, 32, 64, 64)  # output channels of conv1, layer1 .. layer4


class ConvBackbone(nn.Module):
    """ResNet-shaped trunk ``conv1 -> bn1 -> relu -> maxpool -> layer1..4`` without pooling or fc.

    Module names equal torchvision's ResNet names, so torchvision and DETR checkpoints map onto
    ``body.<torchvision key>``.

    Args:
        name: ``"resnet50"`` (UniT and DETR), ``"resnet18"``, or ``"tiny"``: one 3x3 conv
            per stage with widths 8 / 16 / 32 / 64 / 64, for fast tests.
        dilation: replace the stride of the last stage (C5) by dilation, doubling the
            resolution of the feature map (UniT Sec. 3.1; DETR-DC5). Not available for
            resnet18, whose basic blocks torchvision cannot dilate.
        frozen_batch_norm: BatchNorm layers keep their statistics and affine parameters fixed
            (DETR). Set False to train them, e.g. from random init on small data.
        trainable_stages: how many stages, counted from the top (layer4), receive gradients;
            DETR trains layer2..4 (3) and freezes the stem and layer1.

    Attributes:
        num_channels: channels of the output feature map.
        stride: total downsampling factor.
    """

    def __init__(self, name: BackboneName = "resnet50", dilation: bool = False, frozen_batch_norm: bool = True,
                 trainable_stages: int = 3) -> None:
        super().__init__()
        if not 0 <= trainable_stages <= len(STAGES):
            raise ConfigError(f"backbone trainable_stages={trainable_stages}: use 0 to {len(STAGES)} "
                              f"(counted from layer4 down to the stem)")
        norm = FrozenBatchNorm2d if frozen_batch_norm else nn.BatchNorm2d
        if name == "tiny":
            self.body = _tiny_trunk(norm, dilation)
            self.num_channels = _TINY_WIDTHS[-1]
            self.stride = 16 if dilation else 32
        elif name in _RESNET_CHANNELS:
            if dilation and name == "resnet18":
                raise ConfigError("backbone resnet18 cannot dilate its last stage (basic blocks); "
                                  "set dilation=false or use backbone=resnet50")
            self.body = _resnet_trunk(name, norm, dilation)
            self.num_channels = _RESNET_CHANNELS[name]
            self.stride = 16 if dilation else 32
        else:
            raise ConfigError(f"unknown backbone {name!r}; use one of resnet50, resnet18, tiny")
        self.name = name
        frozen = set(STAGES[: len(STAGES) - trainable_stages])
        for param_name, param in self.body.named_parameters():
            if _stage_of(param_name) in frozen:
                param.requires_grad_(False)

    def forward(self, image: Tensor, padding_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Extract the last feature map.

        Args:
            image: ``[B, 3, H, W]``.
            padding_mask: bool ``[B, H, W]``, True on padding.

        Returns:
            ``(features [B, C, h, w], padding_mask bool [B, h, w])``; the mask is resized by
            nearest-neighbour sampling, as DETR does.
        """
        b = self.body
        x = b.maxpool(b.relu(b.bn1(b.conv1(image))))
        x = b.layer4(b.layer3(b.layer2(b.layer1(x))))
        mask = F.interpolate(padding_mask[:, None].float(), size=x.shape[-2:])[:, 0].bool()  # [B, h, w]
        return x, mask


class _Trunk(nn.Module):
    """Holds the stages under torchvision's names (no forward: ``ConvBackbone`` runs them)."""

    def __init__(self, conv1: nn.Module, bn1: nn.Module, maxpool: nn.Module, layers: list[nn.Module]) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = conv1, bn1, nn.ReLU(inplace=True), maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = layers


def _resnet_trunk(name: str, norm: type[nn.Module], dilation: bool) -> _Trunk:
    # weights=None: random init; pretrained weights come from local files only (detr_weights.py)
    net = getattr(torchvision.models, name)(weights=None, norm_layer=norm,
                                            replace_stride_with_dilation=[False, False, dilation])
    return _Trunk(net.conv1, net.bn1, net.maxpool, [net.layer1, net.layer2, net.layer3, net.layer4])


def _tiny_trunk(norm: type[nn.Module], dilation: bool) -> _Trunk:
    widths = _TINY_WIDTHS

    def stage(c_in: int, c_out: int, stride: int, dil: int = 1) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, padding=dil, dilation=dil, bias=False),
                             norm(c_out), nn.ReLU(inplace=True))

    conv1 = nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False)
    layers = [stage(widths[0], widths[1], 2), stage(widths[1], widths[2], 2), stage(widths[2], widths[3], 2),
              stage(widths[3], widths[4], 1, 2) if dilation else stage(widths[3], widths[4], 2)]
    return _Trunk(conv1, norm(widths[0]), nn.Identity(), layers)


def _stage_of(param_name: str) -> str:
    """``"layer2.0.conv1.weight"`` -> ``"layer2"``; the stem's conv1 and bn1 -> ``"conv1"``."""
    top = param_name.split(".")[0]
    return "conv1" if top in ("conv1", "bn1") else top
