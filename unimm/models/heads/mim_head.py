"""Masked patch classification, METER's two masked-image-modeling objectives (Sec. 3.2, Table 10).

METER masks 15% of the input patches and asks the model to classify each masked patch, in one of two
ways. No reference code exists for either (REFERENCE_NOTES 1.2); the readings taken here are stated
where they are made.

* **In-batch negatives** (Eq. 2): the "vocabulary" is every patch of the batch. The output state of a
  masked patch, ``h(v_i^k)``, scores each candidate ``c(v_j^k')`` by a dot product, and a softmax over all
  ``B x N`` candidates should pick the patch's own original ``c(v_i^k)``.
* **Discrete codes** (BEiT-style): a frozen image tokenizer gives each patch a code, and the masked
  patches' codes are predicted over its vocabulary, as MLM predicts tokens.

Both heads share BERT's prediction transform, ``LN(GELU(W h + b))``, as METER's MLM head does, and
own the embedding a masked patch gets (``mask_token``, BEiT's, trained with the head and left behind with
it when a fine-tuning run loads everything but the heads).
"""
from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unimm.config.refs import Range
from unimm.registry import ENCODERS, HEADS, Part

Positive = Annotated[int, Range(ge=1)]


def mask_embedding(width: int) -> nn.Parameter:
    """BEiT's [MASK] patch embedding, its initialisation (truncated normal, std 0.02)."""
    token = nn.Parameter(torch.zeros(width))
    nn.init.trunc_normal_(token, std=0.02)
    return token


class PatchTransform(nn.Module):
    """``LN(GELU(W h + b))``, BERT's prediction-head transform (METER's MLM head uses it too)."""

    def __init__(self, input_size: int, layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.dense = nn.Linear(input_size, input_size)
        self.norm = nn.LayerNorm(input_size, eps=layer_norm_eps)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.norm(F.gelu(self.dense(hidden)))


class InBatchPatchHead(nn.Module):
    """Eq. 2: ``p(v_i^k) = exp(h_i^k . c_i^k) / sum_{j, k'} exp(h_i^k . c_j^k')`` over every patch of the batch.

    ``h`` is the fused image stream's state of a masked patch after the transform and a projection to
    the width of ``c``. ``c`` is the patch's *original* representation, which the paper does not define
    further; here it is the vision encoder's patch projection of the unmasked picture (before positions),
    the representation the model itself gives a patch, as MLM's vocabulary is the model's own table. It
    is held fixed within the step (no gradient through the candidates), as MLM's targets are: with
    gradients on both sides the candidates could be pushed apart without the states learning anything.

    Args:
        input_size: the width of the fused image states ``D``.
        vision_size: the vision encoder's width ``D_v``: the candidates' and the mask embedding's.
    """

    def __init__(self, input_size: int, vision_size: int) -> None:
        super().__init__()
        self.mask_token = mask_embedding(vision_size)
        self.transform = PatchTransform(input_size)
        self.proj = nn.Linear(input_size, vision_size)

    def forward(self, states: Tensor, patches: Tensor, hidden: Tensor, image: Tensor | None = None
                ) -> tuple[Tensor, dict[str, Tensor]]:
        """Score the masked patches against every patch of the batch.

        Args:
            states: ``[B, N, D]`` the fused image stream at the patch positions (no [CLS]).
            patches: ``[B, N, D_v]`` the original patch representations ``c``.
            hidden: bool ``[B, N]``, True on the masked patches.
            image: unused (the discrete-code head reads it).

        Returns:
            logits ``[M, B * N]`` (M masked patches, candidates in row-major ``(k, j)`` order) and
            ``{"mim": mean CE}`` towards each patch's own candidate ``k * N + i``.
        """
        batch, count = hidden.shape
        queries = self.proj(self.transform(states[hidden]))  # [M, D_v]
        candidates = patches.detach().flatten(0, 1)  # [B * N, D_v]
        logits = queries.float() @ candidates.float().T  # [M, B * N]
        target = torch.arange(batch * count, device=hidden.device).view(batch, count)[hidden]  # [M]
        return logits, {"mim": F.cross_entropy(logits, target)}


class CodePatchHead(nn.Module):
    """BEiT-style: predict the masked patches' discrete codes from a frozen image tokenizer.

    Args:
        input_size: the width of the fused image states ``D``.
        tokenizer: an image tokenizer: ``image [B, 3, H, W] -> long [B, N]`` codes, one per patch of the
            vision encoder's grid, with ``vocab_size`` and ``patch_size``; frozen and outside the
            checkpoint's trained weights (it has none, or keeps them as buffers).
        vision_size: the vision encoder's width ``D_v``, the mask embedding's.
    """

    def __init__(self, input_size: int, tokenizer: nn.Module, vision_size: int) -> None:
        super().__init__()
        self.mask_token = mask_embedding(vision_size)
        self.transform = PatchTransform(input_size)
        self.decoder = nn.Linear(input_size, tokenizer.vocab_size)
        self.tokenizer = tokenizer.requires_grad_(False)

    def forward(self, states: Tensor, patches: Tensor, hidden: Tensor, image: Tensor | None = None
                ) -> tuple[Tensor, dict[str, Tensor]]:
        """Args as ``InBatchPatchHead``; ``image`` ``[B, 3, H, W]`` is what the tokenizer codes.

        Returns:
            logits ``[M, V]`` of the masked patches and ``{"mim": mean CE}`` against their codes.
        """
        if image is None:
            raise ValueError("the discrete-code MIM head needs the unmasked image to code")
        with torch.no_grad():
            codes = self.tokenizer(image)  # [B, N]
        if codes.shape != hidden.shape:
            raise ValueError(f"the image tokenizer gives {tuple(codes.shape)} codes but the vision encoder has "
                             f"{tuple(hidden.shape)} patches; give both the same patch grid (patch_size)")
        logits = self.decoder(self.transform(states[hidden]))  # [M, V]
        return logits, {"mim": F.cross_entropy(logits.float(), codes[hidden])}


@HEADS.register()
def mim_in_batch_head(input_size: Positive = 768, vision_size: Positive = 768) -> InBatchPatchHead:
    """Masked patch classification with in-batch negatives (METER Eq. 2, Table 10).

    Args:
        input_size: the fused image states' width (passed by the model).
        vision_size: the vision encoder's width, the candidates' and the mask embedding's (passed by the model).
    """
    return InBatchPatchHead(input_size, vision_size)


@HEADS.register(parts={"tokenizer": Part(ENCODERS)})
def mim_code_head(tokenizer: Any, input_size: Positive = 768, vision_size: Positive = 768) -> CodePatchHead:
    """Masked patch classification with discrete codes (METER Sec. 3.2, BEiT-style, Table 10).

    Args:
        tokenizer: an image tokenizer node (``random_projection_codes``: METER uses DALL-E's dVAE, whose
            weights are not available offline).
        input_size: the fused image states' width (passed by the model).
        vision_size: the vision encoder's width, the mask embedding's (passed by the model).
    """
    return CodePatchHead(input_size, tokenizer, vision_size)
