"""Learned per-task tokens prefixed to an encoder's input sequence and stripped from its output
(UniT Eq. 2 and Eq. 3)."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

from unimm.modules.keys import check_module_key


class TaskTokens(nn.Module):
    """One learned ``D``-vector per task (dataset), keyed by the dataset's config name.

    Args:
        names: the dataset names; each must be a valid module attribute name (no ".").
        hidden_size: width ``D`` of the encoder the tokens are fed to.
        init_std: standard deviation of the normal initialisation. 1.0 follows MMF's UniT,
            whose task embeddings are ``nn.Embedding`` rows (unit normal).
    """

    def __init__(self, names: Iterable[str], hidden_size: int, init_std: float = 1.0) -> None:
        super().__init__()
        self.tokens = nn.ParameterDict(
            {check_module_key(name, "task name"): nn.Parameter(torch.randn(hidden_size) * init_std)
             for name in names})

    def names(self) -> list[str]:
        return list(self.tokens.keys())

    def prepend(self, x: Tensor, padding_mask: Tensor, pos: Tensor | None, name: str,
                ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Put the task's token in front of a sequence.

        The token is never padding and gets a zero position embedding (MMF's UniT does the same).

        Args:
            x: ``[B, S, D]``.
            padding_mask: bool ``[B, S]``, True on padding.
            pos: ``[B, S, D]`` position embeddings, or None.
            name: the dataset whose token to use.

        Returns:
            ``x [B, 1 + S, D]``, ``padding_mask [B, 1 + S]``, ``pos [B, 1 + S, D]`` (or None).
        """
        if name not in self.tokens:
            raise KeyError(f"no task token for dataset '{name}'; the encoder was built for "
                           f"{', '.join(self.names()) or 'no datasets'}")
        token = self.tokens[name].to(x.dtype).expand(x.shape[0], 1, -1)  # [B, 1, D]
        x = torch.cat([token, x], dim=1)  # [B, 1+S, D]
        padding_mask = torch.cat([padding_mask.new_zeros(padding_mask.shape[0], 1), padding_mask], dim=1)
        if pos is not None:
            pos = torch.cat([pos.new_zeros(pos.shape[0], 1, pos.shape[2]), pos], dim=1)  # [B, 1+S, D]
        return x, padding_mask, pos

    @staticmethod
    def strip(x: Tensor) -> Tensor:
        """``[B, 1 + S, D]`` -> ``[B, S, D]``: drop the token's output position."""
        return x[:, 1:]
