"""A ViT's patch embedding: non-overlapping ``p x p`` patches, each projected linearly to the model width.

ViT (Dosovitskiy et al., Eq. 1), MAE, ViT-BERT's image tokenizer (its Eq. 1, REFERENCE_NOTES 3.1),
MoMo's image input and CLIP's ``conv1`` (METER's vision encoder, with ``bias=False``) all use it.
"""
from __future__ import annotations

from torch import Tensor, nn


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


class PatchEmbed(nn.Module):
    """``x_p E``: a ``Conv2d`` with kernel = stride = patch size, flattened to a token sequence.

    The convolution applies one ``(C * p * p) -> D`` matrix to each patch, i.e. exactly a linear layer
    on the flattened patches (the layout of timm's / MAE's / CLIP's ``proj`` / ``conv1`` weights, so
    their checkpoints load unchanged). Tokens come out in row-major patch order: patch ``(i, j)`` at
    ``i * w + j``, the order ``unimm.modules.pos_embed`` assumes.

    Args:
        image_size: the pre-training resolution ``H`` (or ``(H, W)``); it sets ``grid`` and
            ``num_patches``, the size of the position table. Other resolutions still run (fine-tuning
            at 384 with a resized position table).
        patch_size: ``p`` (or ``(p_h, p_w)``).
        in_channels: ``C``.
        hidden_size: ``D``.
        bias: the projection's bias; CLIP has none (``bias=False``), ViT / MAE do.
    """

    def __init__(self, image_size: int | tuple[int, int], patch_size: int | tuple[int, int] = 16,
                 in_channels: int = 3, hidden_size: int = 768, bias: bool = True) -> None:
        super().__init__()
        self.patch_size = _pair(patch_size)
        self.image_size = _pair(image_size)
        self.grid = self.grid_size(*self.image_size)
        self.num_patches = self.grid[0] * self.grid[1]
        self.proj = nn.Conv2d(in_channels, hidden_size, kernel_size=self.patch_size, stride=self.patch_size, bias=bias)

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """``(h, w) = (H / p_h, W / p_w)``, patches per column and per row of an ``H x W`` image.

        Raises:
            ValueError: when ``H`` or ``W`` is not a multiple of the patch size (the convolution would
                silently drop the last pixels).
        """
        (ph, pw) = self.patch_size
        if height % ph or width % pw:
            raise ValueError(f"image size {height}x{width} is not divisible by the patch size {ph}x{pw}; "
                             f"resize or crop the image to multiples of the patch size")
        return height // ph, width // pw

    def forward(self, image: Tensor) -> Tensor:
        """``image`` ``[B, C, H, W]`` -> patch tokens ``[B, h * w, D]``."""
        self.grid_size(image.shape[-2], image.shape[-1])  # validates the size
        x = self.proj(image)  # [B, D, h, w]
        return x.flatten(2).transpose(1, 2)  # [B, h*w, D]
