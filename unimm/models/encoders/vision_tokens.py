"""A timm vision transformer (ViT, DeiT, CLIP's ViT, Swin) handing over every token's final state.

The timm model is kept whole under ``model`` with timm's own module names, so timm state dicts load
by name (``vision_weights``) and name-based parameter-group rules see timm's names.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from unimm.models.encoded_sequence import EncodedSequence


class VisionTokens(nn.Module):
    """Image -> the final (normalised) states of all tokens of a timm vision transformer.

    ViT / DeiT / CLIP: ``[CLS]`` (and DeiT's distillation token) first, then one token per patch in
    row-major order, after the final LayerNorm (CLIP's ``ln_post``, which METER applies to every
    token, REFERENCE_NOTES 1.1). Swin: the last stage's tokens, row-major, after its final norm; it has
    no [CLS], so poolers average its tokens (``pooling = "mean"``, METER's ``avgpool`` for Swin).

    Args:
        model: a timm ``VisionTransformer`` (or ``VisionTransformerDistilled``) or ``SwinTransformer``
            built with ``num_classes=0``.
        hidden_size: ``D``, the width of the returned tokens.
        image_size: ``(H, W)`` the model is built for (absolute positions fix it).
        pooling: ``"first"`` (pool token 0) or ``"mean"`` (pool the average token).
        num_prefix_tokens: tokens before the patches (1 for [CLS], 2 with DeiT's distillation token,
            0 for Swin).
        absolute_positions: the model adds a learned table ``model.pos_embed`` ``[1, L, D]`` to its
            tokens (ViT, DeiT, CLIP); Swin's positions are relative biases inside its attention.
    """

    def __init__(self, model: nn.Module, hidden_size: int, image_size: tuple[int, int], pooling: str,
                 num_prefix_tokens: int, absolute_positions: bool) -> None:
        super().__init__()
        if pooling not in ("first", "mean"):
            raise ValueError(f"pooling must be 'first' or 'mean', got {pooling!r}")
        self.model = model
        self.hidden_size = hidden_size
        self.image_size = tuple(image_size)
        self.pooling = pooling
        self.num_prefix_tokens = num_prefix_tokens
        self.absolute_positions = absolute_positions

    def forward(self, image: Tensor, pixel_mask: Tensor | None = None) -> EncodedSequence:
        """Encode a batch of same-size images.

        Args:
            image: ``[B, 3, H, W]`` normalised pixels, ``(H, W) == image_size``.
            pixel_mask: ``[B, H, W]``, True / 1 on real pixels; padding is refused (a ViT's absolute
                positions need every image at the built size: resize and centre-crop them,
                e.g. with ``clip_transform``).

        Returns:
            ``EncodedSequence``: hidden ``[B, L, D]`` (``L = P + h * w``), padding_mask ``[B, L]``
            (all False), pos ``[B, L, D]``: the absolute position table added to the tokens (zeros
            for Swin, whose positions are relative biases inside attention).
        """
        if tuple(image.shape[-2:]) != self.image_size:
            raise ValueError(f"the vision encoder is built for {self.image_size[0]}x{self.image_size[1]} images, got "
                             f"{image.shape[-2]}x{image.shape[-1]}; resize and centre-crop to that size "
                             "(clip_transform) or build the encoder with that image_size")
        if pixel_mask is not None and not bool(pixel_mask.all()):
            raise ValueError("the batch's images are padded (pixel_mask has False entries); a ViT needs every image at "
                             "one size: resize and centre-crop them (clip_transform)")
        hidden = self.model.forward_features(image)  # ViT: [B, P + h*w, D]; Swin: [B, h, w, D]
        if hidden.dim() == 4:
            hidden = hidden.flatten(1, 2)  # [B, h*w, D], row-major
        padding = torch.zeros(hidden.shape[:2], dtype=torch.bool, device=hidden.device)  # [B, L]
        if self.absolute_positions:
            pos = self.model.pos_embed.to(hidden.dtype).expand(hidden.shape[0], -1, -1)  # [B, L, D]
        else:
            pos = hidden.new_zeros(()).expand_as(hidden)  # [B, L, D], no absolute positions
        return EncodedSequence(hidden, padding, pos)

    @property
    def grid(self) -> tuple[int, int]:
        """Patches per column and per row of the input (ViT, DeiT, CLIP)."""
        size = self.model.patch_embed.patch_size
        return self.image_size[0] // size[0], self.image_size[1] // size[1]

    def masked_forward(self, image: Tensor, hidden: Tensor, mask_token: Tensor) -> tuple[EncodedSequence, Tensor]:
        """Encode with some patches replaced by a mask embedding (masked image modeling, METER Sec. 3.2).

        The masked patches' projections are swapped for ``mask_token`` before the position embedding
        is added (BEiT's placement), so a masked token still knows where it is.

        Args:
            image: ``[B, 3, H, W]`` at the built size.
            hidden: bool ``[B, N]``, True on the patches to mask (row-major, ``N = h * w``).
            mask_token: ``[D]``, the embedding a masked patch gets.

        Returns:
            The ``EncodedSequence`` of the masked input and the unmasked patch projections ``[B, N, D]``
            (each patch's representation before positions).
        """
        if self.num_prefix_tokens == 0 or not self.absolute_positions:
            raise ValueError("masked image modeling needs one output token per input patch (ViT, DeiT, CLIP's ViT); "
                             "Swin merges its patches")
        captured: dict[str, Tensor] = {}

        def swap(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
            if output.shape[:2] != hidden.shape:
                raise ValueError(f"the patch mask is {tuple(hidden.shape)} but the image has {tuple(output.shape[:2])} "
                                 "patches")
            captured["patches"] = output
            return torch.where(hidden[..., None], mask_token.to(output.dtype), output)

        handle = self.model.patch_embed.register_forward_hook(swap)
        try:
            encoded = self(image)
        finally:
            handle.remove()
        return encoded, captured["patches"]
