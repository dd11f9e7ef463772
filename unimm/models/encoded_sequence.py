"""What a modality encoder hands to the decoder: hidden states, padding mask and positions."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class EncodedSequence:
    """An encoded input modality.

    Attributes:
        hidden: ``[B, S, D]`` hidden states.
        padding_mask: bool ``[B, S]``, True on padding (ignored as attention keys).
        pos: ``[B, S, D]`` position embeddings added to the decoder's cross-attention keys.
    """

    hidden: Tensor
    padding_mask: Tensor
    pos: Tensor

    def __len__(self) -> int:
        return int(self.hidden.shape[1])

    def project(self, hidden_proj: nn.Module, pos_proj: nn.Module) -> EncodedSequence:
        """Map hidden states and positions to another width (e.g. the decoder's)."""
        return EncodedSequence(hidden_proj(self.hidden), self.padding_mask, pos_proj(self.pos))

    @staticmethod
    def concat(parts: list[EncodedSequence]) -> EncodedSequence:
        """Join sequences along their length: ``concat(h_v, h_t)`` of UniT Sec. 3.3."""
        if len(parts) == 1:
            return parts[0]
        return EncodedSequence(torch.cat([p.hidden for p in parts], dim=1),  # [B, S1+S2, D]
                               torch.cat([p.padding_mask for p in parts], dim=1),
                               torch.cat([p.pos for p in parts], dim=1))

    def repeat_rows(self, times: int) -> EncodedSequence:
        """Each row ``times`` times in a row: ``[B, S, D]`` -> ``[B * times, S, D]`` (one picture scored with
        several texts)."""
        return EncodedSequence(self.hidden.repeat_interleave(times, dim=0),
                               self.padding_mask.repeat_interleave(times, dim=0),
                               self.pos.repeat_interleave(times, dim=0))
