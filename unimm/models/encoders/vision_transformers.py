"""Vision transformers built with timm (METER Sec. 3.1 and Table 4): CLIP's ViT, ViT / DeiT and Swin.

Each builder returns a ``VisionTokens`` (every token's final state) and loads weights from a local
file in an official layout (``vision_weights``). Defaults are the sizes METER uses: CLIP-ViT-B/16 at
224 without its last block, ViT-B/16 and DeiT-B/16 at 384, Swin-B (window 12) at 384.
"""
from __future__ import annotations

from typing import Annotated, Literal

from torch import nn

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.models.encoders.vision_tokens import VisionTokens
from unimm.models.encoders.vision_weights import load_vision_weights
from unimm.registry import ENCODERS

Positive = Annotated[int, Range(ge=1)]
Rate = Annotated[float, Range(ge=0, lt=1)]


def check_grid(image_size: int, patch_size: int) -> None:
    if image_size % patch_size:
        raise ConfigError(f"{image_size} is not a multiple of patch_size={patch_size}", key="image_size")


@ENCODERS.register()
def clip_vit_encoder(
    image_size: Positive = 224,
    patch_size: Positive = 16,
    hidden_size: Positive = 768,
    num_layers: Positive = 12,
    num_heads: Positive = 12,
    drop_last_block: bool = True,
    pretrained_path: str | None = None,
    pretrained_format: Literal["openai_clip", "timm"] = "openai_clip",
) -> VisionTokens:
    """CLIP's image tower (ViT-B/16, B/32) in CLIP's architecture, every token out (METER's vision encoder).

    CLIP's ViT differs from the original ViT, and timm builds it so (``pre_norm``): QuickGELU
    ``x * sigmoid(1.702 x)`` in the MLP, a LayerNorm ``ln_pre`` (timm ``norm_pre``) after the position
    embedding, no bias on the patch convolution, LayerNorm eps 1e-5. As METER's ``clip_model.py``,
    ``ln_post`` (timm ``norm``) is applied to **every** token and there is no projection: the output
    is ``[B, 1 + (H/p)^2, D]``, [CLS] first (REFERENCE_NOTES 1.1).

    Args:
        image_size: the resolution (METER: 224 for pre-training, 288 for Table 8's, 576 for VQA
            fine-tuning); a checkpoint at another resolution has its position table interpolated.
        patch_size: 16 (ViT-B/16) or 32 (ViT-B/32).
        hidden_size, num_layers, num_heads: CLIP ViT-B: 768 / 12 / 12.
        drop_last_block: build ``num_layers - 1`` blocks and leave CLIP's last block unloaded, as
            METER's code does (``Transformer`` builds ``layers - 1`` resblocks; METER issues #9 / #20:
            11 layers are ~0.5 VQA better). False keeps all ``num_layers``.
        pretrained_path: a local state dict (nothing is downloaded); None = random init.
        pretrained_format: ``openai_clip`` (OpenAI's ``visual.*`` key names, the text tower ignored)
            or ``timm`` (a timm CLIP-ViT state dict, e.g. ``vit_base_patch16_clip_quickgelu_224``).
    """
    from timm.models.vision_transformer import VisionTransformer  # timm is imported when a part is built

    check_grid(image_size, patch_size)
    depth = num_layers - 1 if drop_last_block else num_layers
    if depth < 1:
        raise ConfigError("drop_last_block leaves no block; use num_layers >= 2", key="num_layers")
    model = VisionTransformer(img_size=image_size, patch_size=patch_size, embed_dim=hidden_size, depth=depth,
                              num_heads=num_heads, pre_norm=True, norm_layer=nn.LayerNorm, act_layer="quick_gelu",
                              num_classes=0, global_pool="token")
    encoder = VisionTokens(model, hidden_size, (image_size, image_size), pooling="first", num_prefix_tokens=1,
                           absolute_positions=True)
    if pretrained_path:
        dropped = num_layers - depth if pretrained_format == "openai_clip" else 0
        load_vision_weights(model, pretrained_path, pretrained_format, num_prefix_tokens=1, kept_blocks=depth,
                            dropped_blocks=dropped)
    return encoder


@ENCODERS.register()
def vit_encoder(
    image_size: Positive = 384,
    patch_size: Positive = 16,
    hidden_size: Positive = 768,
    num_layers: Positive = 12,
    num_heads: Positive = 12,
    mlp_ratio: Annotated[float, Range(gt=0)] = 4.0,
    distilled: bool = False,
    drop_path_rate: Rate = 0.0,
    pretrained_path: str | None = None,
) -> VisionTokens:
    """ViT or DeiT (timm), every token out: METER Table 4's ViT-B-384/16, DeiT-B-384/16 and distilled DeiT.

    The original ViT block (GELU, LayerNorm eps 1e-6, final norm on every token); [CLS] first, then
    DeiT's distillation token when ``distilled``, then the patches.

    Args:
        image_size: the resolution (Table 4: 384); a checkpoint at another one is interpolated.
        patch_size, hidden_size, num_layers, num_heads, mlp_ratio: ViT-B/16: 16 / 768 / 12 / 12 / 4.
        distilled: DeiT's distillation token (timm ``VisionTransformerDistilled``).
        drop_path_rate: stochastic depth.
        pretrained_path: a local timm state dict (classifier heads ignored); None = random init.
    """
    from timm.models.deit import VisionTransformerDistilled
    from timm.models.vision_transformer import VisionTransformer

    check_grid(image_size, patch_size)
    kind = VisionTransformerDistilled if distilled else VisionTransformer
    model = kind(img_size=image_size, patch_size=patch_size, embed_dim=hidden_size, depth=num_layers,
                 num_heads=num_heads, mlp_ratio=mlp_ratio, drop_path_rate=drop_path_rate, num_classes=0,
                 global_pool="token")
    prefix = 2 if distilled else 1
    encoder = VisionTokens(model, hidden_size, (image_size, image_size), pooling="first", num_prefix_tokens=prefix,
                           absolute_positions=True)
    if pretrained_path:
        load_vision_weights(model, pretrained_path, "timm", num_prefix_tokens=prefix)
    return encoder


@ENCODERS.register()
def swin_encoder(
    image_size: Positive = 384,
    patch_size: Positive = 4,
    window_size: Positive = 12,
    embed_dim: Positive = 128,
    depths: list[Positive] = (2, 2, 18, 2),
    num_heads: list[Positive] = (4, 8, 16, 32),
    drop_path_rate: Rate = 0.1,
    pretrained_path: str | None = None,
) -> VisionTokens:
    """Swin Transformer (timm), the last stage's tokens out: METER's Swin-B-384/32 (window 12).

    Swin has no [CLS]: its tokens are the last stage's ``(H / 32)^2`` patches (12 x 12 at 384) of
    width ``embed_dim * 2^(stages - 1)`` (1024 for Swin-B), and a pooler averages them
    (``pooling = "mean"``, METER's ``avgpool`` before its image pooler).

    Args:
        image_size: the resolution (METER: 384).
        patch_size, window_size, embed_dim, depths, num_heads: Swin-B-384: 4 / 12 / 128 /
            (2, 2, 18, 2) / (4, 8, 16, 32).
        drop_path_rate: stochastic depth (timm's default for Swin, 0.1).
        pretrained_path: a local timm Swin state dict (timm's layout; classifier head and attention
            buffers ignored; relative-position tables interpolated when the window differs).
    """
    from timm.models.swin_transformer import SwinTransformer

    if len(depths) != len(num_heads):
        raise ConfigError(f"{len(depths)} stages in depths but {len(num_heads)} in num_heads", key="num_heads")
    stride = patch_size * 2 ** (len(depths) - 1)  # each stage after the first halves the grid
    if image_size % stride:
        raise ConfigError(f"{image_size} is not a multiple of {stride} (patch_size x 2^(stages - 1))",
                          key="image_size")
    model = SwinTransformer(img_size=image_size, patch_size=patch_size, window_size=window_size, embed_dim=embed_dim,
                            depths=tuple(depths), num_heads=tuple(num_heads), drop_path_rate=drop_path_rate,
                            num_classes=0)
    hidden = embed_dim * 2 ** (len(depths) - 1)
    encoder = VisionTokens(model, hidden, (image_size, image_size), pooling="mean", num_prefix_tokens=0,
                           absolute_positions=False)
    if pretrained_path:
        load_vision_weights(model, pretrained_path, "timm", num_prefix_tokens=0)
    return encoder
