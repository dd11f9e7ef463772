"""Global image-text contrastive loss (InfoNCE) over the batch of every rank, as CLIP and FLAVA train it.

MoMo's global contrastive loss (its Eq. 4, "as in FLAVA", REFERENCE_NOTES 2.2) and a dual-encoder
retrieval objective for any project.
"""
from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unimm.config.refs import Range
from unimm.registry import LOSSES
from unimm.training import distributed as dist


class ContrastiveLoss(nn.Module):
    """Symmetric InfoNCE between L2-normalised image and text embeddings, negatives from every rank.

    On a rank with local pairs ``(u_i, v_i)``, ``i < B``, and the pairs of all ranks gathered in rank
    order (``N`` rows; the local ones start at ``o``, the number of rows of the lower ranks, ``rank * B``
    when every rank has ``B``):

        ``s = exp(logit_scale)``,  ``l_ij^{i2t} = s <u_i, v_j> / (|u_i| |v_j|)`` for ``j < N``,
        ``L_i2t = mean_i CE(l_i^{i2t}, o + i)``,  ``L_t2i`` the same with the roles swapped,
        ``L = (L_i2t + L_t2i) / 2``  (``symmetric``), or ``L_i2t`` alone (MoMo Eq. 4 as written).

    The logit scale is a parameter of this module (put the loss inside the model so that the
    optimizer and DDP see it), initialised to ``log(1 / temperature)`` (CLIP: ``log(1/0.07)``). Before
    each use its stored value is clamped in place to ``[0, log(max_logit_scale)]`` (FLAVA's
    ``logit_scale.data.clamp_(0, ln 100)``): the clamp moves the value, not the gradient, so a scale at
    its bound still receives a gradient. Similarities are computed in float32 with autocast off (at
    ``s = 100`` bf16 logits would be off by about 0.4).

    **Across ranks.** The embeddings are gathered with ``distributed.all_gather_with_grad``, whose
    backward sums, over ranks, the gradient at each rank's rows. Each rank's loss is the mean over its
    own ``B`` rows, so with ``R`` ranks of equal batches the mean of the rank losses is the loss of the
    whole ``R * B`` batch on one process, and:

    * the gradient that reaches a rank's local embeddings is ``R`` times the whole-batch gradient at
      those rows (it is the gradient of the *sum* of the rank losses);
    * after DDP averages parameter gradients over ranks, every parameter (encoders and the logit scale)
      has exactly the whole-batch gradient.

    With unequal batches the labels are still right (offsets come from the gathered row counts), but
    DDP's average is the gradient of ``mean_r L_r``, whereas the whole-batch loss is
    ``sum_r B_r L_r / N``: rows on smaller ranks weigh more.

    Args:
        temperature: initial ``1 / s``.
        max_logit_scale: the largest ``s`` (its log is the clamp's upper bound; the lower bound is
            ``s = 1``).
        learnable_scale: train the logit scale; False keeps ``s = 1 / temperature``.
        symmetric: average the image->text and text->image losses; False: image->text only.
        gather: use the embeddings of every rank as negatives; False: this rank's only.
    """

    name = "contrastive"

    def __init__(self, temperature: float = 0.07, max_logit_scale: float = 100.0, learnable_scale: bool = True,
                 symmetric: bool = True, gather: bool = True) -> None:
        super().__init__()
        if not 0 < temperature <= 1 or max_logit_scale < 1:
            raise ValueError(f"temperature must be in (0, 1] and max_logit_scale >= 1, got {temperature}, "
                             f"{max_logit_scale}")
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)), requires_grad=learnable_scale)
        self.max_log_scale = math.log(max_logit_scale)
        self.symmetric = symmetric
        self.gather = gather

    def logits(self, image_embeds: Tensor, text_embeds: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Scaled cosine similarities of the local rows against the rows of every rank.

        Args:
            image_embeds: ``[B, E]`` this rank's image embeddings (any norm).
            text_embeds: ``[B, E]`` the embeddings of their texts (row ``i`` pairs with image ``i``).

        Returns:
            ``logits_per_image`` ``[B, N]`` (local images against all texts), ``logits_per_text``
            ``[B, N]`` (local texts against all images), both float32, and ``labels`` long ``[B]``, the
            global index ``o + i`` of each local row's partner.
        """
        if image_embeds.dim() != 2 or image_embeds.shape != text_embeds.shape:
            raise ValueError(f"image and text embeddings must both be [B, E], got {tuple(image_embeds.shape)} "
                             f"and {tuple(text_embeds.shape)}")
        with torch.no_grad():
            self.logit_scale.clamp_(0.0, self.max_log_scale)
        with torch.autocast(device_type=image_embeds.device.type, enabled=False):
            image = F.normalize(image_embeds.float(), dim=-1)  # [B, E]
            text = F.normalize(text_embeds.float(), dim=-1)  # [B, E]
            all_image, all_text, offset = image, text, 0
            if self.gather and dist.is_distributed():
                all_image = dist.all_gather_with_grad(image)  # [N, E]
                all_text = dist.all_gather_with_grad(text)  # [N, E]
                offset = sum(dist.all_gather_object(image.shape[0])[: dist.get_rank()])
            scale = self.logit_scale.float().exp()
            logits_per_image = scale * image @ all_text.T  # [B, N]
            logits_per_text = scale * text @ all_image.T  # [B, N]
        labels = torch.arange(image.shape[0], device=image.device) + offset  # [B]
        return logits_per_image, logits_per_text, labels

    def forward(self, image_embeds: Tensor, text_embeds: Tensor) -> Tensor:
        """``image_embeds``, ``text_embeds`` ``[B, E]`` (pairs by row) -> the scalar loss of this rank."""
        logits_per_image, logits_per_text, labels = self.logits(image_embeds, text_embeds)
        image_to_text = F.cross_entropy(logits_per_image, labels)
        if not self.symmetric:
            return image_to_text
        return (image_to_text + F.cross_entropy(logits_per_text, labels)) / 2


@LOSSES.register()
def contrastive(temperature: Annotated[float, Range(gt=0, le=1)] = 0.07,
                max_logit_scale: Annotated[float, Range(ge=1)] = 100.0, learnable_scale: bool = True,
                symmetric: bool = True, gather: bool = True) -> ContrastiveLoss:
    """Symmetric image-text InfoNCE with a learnable clamped logit scale, gathered across ranks (CLIP, FLAVA).

    Args:
        temperature: initial temperature (CLIP / FLAVA: 0.07).
        max_logit_scale: upper clamp of ``exp(logit_scale)`` (FLAVA: 100).
        learnable_scale: train the logit scale.
        symmetric: mean of image->text and text->image; False: image->text only (MoMo Eq. 4 as written).
        gather: negatives from every rank's batch (MoMo, FLAVA); False: the local batch only.
    """
    return ContrastiveLoss(temperature, max_logit_scale, learnable_scale, symmetric, gather)
