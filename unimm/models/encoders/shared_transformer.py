"""A pre-LN transformer encoder over token sequences of any modality (ViT-BERT Sec. 3.1.2, Eqs. 3-4).

ViT-BERT runs one such encoder for image patches and for text tokens; MoMo's shared encoder has
the same ViT-B shape. Each block normalises *before* its sub-layer and adds the residual after::

    z^_l = MSA(LN(z_{l-1})) + z_{l-1}          (Eq. 3)
    z_l  = MLP(LN(z^_l)) + z^_l                (Eq. 4)

and a final LayerNorm follows the last block (the paper implies it: a pre-LN stack leaves its
output un-normalised; ViT has it). The MLP is ``fc1 -> GELU -> fc2`` (exact, erf GELU, as ViT and
BERT), dropout 0.1 "on all layers" (Sec. 4.3): on the attention probabilities and after every
sub-layer, as BERT. At paper size (12 layers, width 768, MLP 3072, 12 heads, REFERENCE_NOTES 3.1)
the encoder has 85,056,000 parameters, final LN included.

Module names follow timm's ``VisionTransformer`` (``blocks.<i>.norm1``, ``blocks.<i>.attn.qkv``,
``blocks.<i>.attn.proj``, ``blocks.<i>.norm2``, ``blocks.<i>.mlp.fc1`` / ``fc2``, ``norm``), so a
timm ViT's blocks load by a prefix rename (``key_maps.timm_vit_to_parts``); the attention keeps one
fused ``qkv`` projection whose output rows are ``[q; k; v]``, each split into heads as
``(num_heads, head_dim)``, the layout of timm's ``qkv`` and of BERT's separate ``query`` / ``key`` /
``value`` matrices stacked.
"""
from __future__ import annotations

from typing import Annotated

import torch.nn.functional as F
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.registry import ENCODERS


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection (the "MSA" of Eq. 3).

    Args:
        hidden_size: ``D``.
        num_heads: ``H``; ``D`` must be divisible by it.
        attention_dropout: dropout on the attention probabilities (training only).
        dropout: dropout on the output projection.
    """

    def __init__(self, hidden_size: int, num_heads: int, attention_dropout: float = 0.1, dropout: float = 0.1) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.attention_dropout = attention_dropout
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """``x`` ``[B, T, D]``, ``padding_mask`` bool ``[B, T]`` (True: a padding key) -> ``[B, T, D]``."""
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # [3, B, H, T, hd]
        q, k, v = qkv.unbind(0)  # [B, H, T, hd] each
        attend = None if padding_mask is None else ~padding_mask[:, None, None, :]  # [B, 1, 1, T], True: attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attend,
                                             dropout_p=self.attention_dropout if self.training else 0.0)
        out = out.transpose(1, 2).reshape(b, t, d)  # [B, T, H*hd]
        return self.proj_drop(self.proj(out))


class Mlp(nn.Module):
    """``fc2(drop(GELU(fc1(x))))`` then dropout: the "MLP" of Eq. 4.

    Args:
        hidden_size: ``D``.
        mlp_size: the inner width (3072 at paper size).
        dropout: after the GELU and after ``fc2``.
    """

    def __init__(self, hidden_size: int, mlp_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, mlp_size)
        self.fc2 = nn.Linear(mlp_size, hidden_size)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T, D]`` -> ``[B, T, D]``."""
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class PreLNBlock(nn.Module):
    """One block of Eqs. 3-4: LN before attention and before the MLP, residuals around both.

    Args:
        hidden_size, num_heads, mlp_size, dropout, attention_dropout: see ``SharedTransformer``.
        layer_norm_eps: the LayerNorms' epsilon.
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_size: int, dropout: float, attention_dropout: float,
                 layer_norm_eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.attn = SelfAttention(hidden_size, num_heads, attention_dropout, dropout)
        self.norm2 = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.mlp = Mlp(hidden_size, mlp_size, dropout)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """``[B, T, D]`` -> ``[B, T, D]``."""
        x = x + self.attn(self.norm1(x), padding_mask)  # Eq. 3
        return x + self.mlp(self.norm2(x))  # Eq. 4


class SharedTransformer(nn.Module):
    """The shared encoder of ViT-BERT: ``num_layers`` pre-LN blocks and a final LayerNorm.

    Args:
        hidden_size: ``D`` (768 at paper size).
        num_layers: ``L`` (12).
        num_heads: attention heads (12; the paper does not say, REFERENCE_NOTES 3.1 reads ViT-B's).
        mlp_size: the MLP's inner width (3072).
        dropout: after each sub-layer and inside the MLP (0.1, Sec. 4.3).
        attention_dropout: on the attention probabilities (0.1, as BERT; ViT uses 0).
        layer_norm_eps: epsilon of every LayerNorm (1e-6, ViT's; BERT's is 1e-12).
        init_std: std of the truncated-normal init of the linear weights (biases 0, norms 1 / 0).
    """

    def __init__(self, hidden_size: int = 768, num_layers: int = 12, num_heads: int = 12, mlp_size: int = 3072,
                 dropout: float = 0.1, attention_dropout: float = 0.1, layer_norm_eps: float = 1e-6,
                 init_std: float = 0.02) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.blocks = nn.ModuleList(PreLNBlock(hidden_size, num_heads, mlp_size, dropout, attention_dropout,
                                               layer_norm_eps) for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.apply(lambda module: init_linear(module, init_std))

    def forward(self, tokens: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """Encode a token sequence.

        Args:
            tokens: ``[B, T, D]``, the output of a modality tokenizer (``z^0`` of Eq. 3).
            padding_mask: bool ``[B, T]``, True on padding tokens (never attended to); None: none.

        Returns:
            ``z^L`` after the final LayerNorm, ``[B, T, D]``.
        """
        x = tokens
        for block in self.blocks:
            x = block(x, padding_mask)
        return self.norm(x)


def init_linear(module: nn.Module, std: float) -> None:
    """Truncated-normal linear weights (ViT's and BERT's 0.02), zero biases; LayerNorms keep ones / zeros."""
    if isinstance(module, nn.Linear):
        if module.weight.device.type != "meta":
            nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


@ENCODERS.register()
def shared_transformer(
    hidden_size: Annotated[int, Range(ge=1)] = 768,
    num_layers: Annotated[int, Range(ge=1)] = 12,
    num_heads: Annotated[int, Range(ge=1)] = 12,
    mlp_size: Annotated[int, Range(ge=1)] = 3072,
    dropout: Annotated[float, Range(ge=0, lt=1)] = 0.1,
    attention_dropout: Annotated[float, Range(ge=0, lt=1)] = 0.1,
    layer_norm_eps: Annotated[float, Range(gt=0)] = 1e-6,
    init_std: Annotated[float, Range(gt=0)] = 0.02,
) -> SharedTransformer:
    """Pre-LN transformer encoder shared by every modality (ViT-BERT Eqs. 3-4), final LN included.

    Defaults are the paper's ViT-B / BERT-base shape (Sec. 4.2): 12 layers, width 768, MLP 3072,
    12 heads, dropout 0.1; 85,056,000 parameters.

    Args:
        hidden_size: model width ``D``.
        num_layers: blocks ``L``.
        num_heads: attention heads; must divide ``hidden_size``.
        mlp_size: MLP inner width.
        dropout: after each sub-layer and inside the MLP.
        attention_dropout: on the attention probabilities.
        layer_norm_eps: LayerNorm epsilon.
        init_std: std of the (truncated) normal init of the linear weights.
    """
    if hidden_size % num_heads:
        raise ConfigError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}", key="num_heads")
    return SharedTransformer(hidden_size, num_layers, num_heads, mlp_size, dropout, attention_dropout,
                             layer_norm_eps, init_std)
