"""A timm vision transformer (ViT, DeiT, CLIP's ViT, Swin, CaiT, VOLO, BEiT) handing over every token's final state.

The timm model is kept whole under ``model`` with timm's own module names, so timm state dicts load
by name (``vision_weights``) and name-based parameter-group rules see timm's names.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from unimm.models.encoded_sequence import EncodedSequence

MERGED = ("masked image modeling needs one output token per input patch (ViT, DeiT, CLIP's ViT, CaiT, BEiT); Swin "
          "merges its patches, and so does VOLO after its first stage")


class VisionTokens(nn.Module):
    """Image -> the final (normalised) states of all tokens of a timm vision transformer.

    ViT / DeiT / CLIP: ``[CLS]`` (and DeiT's distillation token) first, then one token per patch in
    row-major order, after the final LayerNorm (CLIP's ``ln_post``, which METER applies to every
    token, REFERENCE_NOTES 1.1). Swin: the last stage's tokens, row-major, after its final norm; it has
    no [CLS], so poolers average its tokens (``pooling = "mean"``, METER's ``avgpool`` for Swin).
    CaiT and VOLO: the class token their class-attention layers produce first, then the patch tokens
    (VOLO's at its stride-16 grid), all after the final norm. BEiT: [CLS] first, then the patches,
    with ``token_norm`` (its ``fc_norm``) applied to every token.

    Args:
        model: a timm ``VisionTransformer`` (or ``VisionTransformerDistilled``), ``SwinTransformer``,
            ``Cait``, ``VOLO`` or ``Beit`` built with ``num_classes=0``.
        hidden_size: ``D``, the width of the returned tokens.
        image_size: ``(H, W)`` the model is built for (absolute positions fix it).
        pooling: ``"first"`` (pool token 0) or ``"mean"`` (pool the average token).
        num_prefix_tokens: tokens before the patches in the output (1 for [CLS] or a class token, 2 with
            DeiT's distillation token, 0 for Swin).
        absolute_positions: the model adds a learned table ``model.pos_embed`` to its tokens (ViT,
            DeiT, CLIP: ``[1, L, D]``; CaiT: ``[1, N, D]`` over the patches; VOLO: ``[1, h, w, D]``
            over its token grid); Swin's and BEiT's positions are relative biases inside attention.
        pos_prefix_rows: rows of ``model.pos_embed`` before its grid rows; None = ``num_prefix_tokens``.
            CaiT and VOLO add their class token after the positions (0 rows): the class token's
            position row is then zeros.
        token_norm: the name of a norm of ``model`` applied to every token after
            ``forward_features`` (BEiT's ``fc_norm``, which timm applies after averaging); None: none.
        one_token_per_patch: each input patch keeps one output token (ViT, DeiT, CLIP, CaiT, BEiT);
            False where stages merge patches (Swin, VOLO), which masked image modeling needs.
    """

    def __init__(self, model: nn.Module, hidden_size: int, image_size: tuple[int, int], pooling: str,
                 num_prefix_tokens: int, absolute_positions: bool, pos_prefix_rows: int | None = None,
                 token_norm: str | None = None, one_token_per_patch: bool = True) -> None:
        super().__init__()
        if pooling not in ("first", "mean"):
            raise ValueError(f"pooling must be 'first' or 'mean', got {pooling!r}")
        if token_norm is not None and not isinstance(getattr(model, token_norm, None), nn.Module):
            raise ValueError(f"token_norm={token_norm!r}: the model has no such module")
        self.model = model
        self.hidden_size = hidden_size
        self.image_size = tuple(image_size)
        self.pooling = pooling
        self.num_prefix_tokens = num_prefix_tokens
        self.absolute_positions = absolute_positions
        self.pos_prefix_rows = num_prefix_tokens if pos_prefix_rows is None else pos_prefix_rows
        self.token_norm = token_norm
        self.one_token_per_patch = one_token_per_patch

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
        if self.token_norm is not None:
            hidden = getattr(self.model, self.token_norm)(hidden)  # [B, L, D], BEiT's fc_norm on every token
        padding = torch.zeros(hidden.shape[:2], dtype=torch.bool, device=hidden.device)  # [B, L]
        if self.absolute_positions:
            pos = self.position_table().to(hidden.dtype).expand(hidden.shape[0], -1, -1)  # [B, L, D]
        else:
            pos = hidden.new_zeros(()).expand_as(hidden)  # [B, L, D], no absolute positions
        return EncodedSequence(hidden, padding, pos)

    def position_table(self) -> Tensor:
        """``[1, L, D]``: the absolute position row of every output token (zeros for a class token that
        joins after the positions are added: CaiT, VOLO)."""
        table = self.model.pos_embed
        if table.dim() == 4:
            table = table.flatten(1, 2)  # VOLO's [1, h, w, D] -> [1, h*w, D], row-major
        missing = self.num_prefix_tokens - self.pos_prefix_rows
        if missing > 0:
            table = torch.cat([table.new_zeros(1, missing, table.shape[-1]), table], dim=1)  # [1, L, D]
        return table

    @property
    def grid(self) -> tuple[int, int]:
        """Patches per column and per row of the input (ViT, DeiT, CLIP, CaiT, BEiT)."""
        if not self.one_token_per_patch:
            raise ValueError(f"{type(self.model).__name__}'s output tokens form no patch grid: {MERGED}")
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
        if self.num_prefix_tokens == 0 or not self.one_token_per_patch:
            raise ValueError(MERGED)
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
