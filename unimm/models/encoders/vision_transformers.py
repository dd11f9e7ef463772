"""Vision transformers built with timm (METER Sec. 3.1 and Table 4): CLIP's ViT, ViT / DeiT, Swin, CaiT,
VOLO and BEiT.

Each builder returns a ``VisionTokens`` (every token's final state) and loads weights from a local
file in an official layout (``vision_weights``). Defaults are the sizes METER uses: CLIP-ViT-B/16 at
224 without its last block, ViT-B/16 and DeiT-B/16 at 384, Swin-B (window 12) at 384, and timm's
closest released models to Table 4's other rows: ``cait_m36_384``, ``volo_d4_448``,
``beit_base_patch16_224`` (the paper names "CaiT M-384/32" and "VOLO 4-448/32", but no CaiT or VOLO
has 32-pixel patches: CaiT-M36 has 16-pixel patches, a 24 x 24 grid at 384, and VOLO-D4 8-pixel
patches whose stage 2 onwards runs on a stride-16 grid, 28 x 28 at 448). timm's module names are
kept, so timm state dicts load by name.
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
                           absolute_positions=False, one_token_per_patch=False)
    if pretrained_path:
        load_vision_weights(model, pretrained_path, "timm", num_prefix_tokens=0)
    return encoder


@ENCODERS.register()
def cait_encoder(
    image_size: Positive = 384,
    patch_size: Positive = 16,
    hidden_size: Positive = 768,
    num_layers: Positive = 36,
    num_heads: Positive = 16,
    mlp_ratio: Annotated[float, Range(gt=0)] = 4.0,
    num_class_layers: Positive = 2,
    init_values: Annotated[float, Range(gt=0)] = 1e-6,
    drop_path_rate: Rate = 0.0,
    pretrained_path: str | None = None,
) -> VisionTokens:
    """CaiT (timm ``Cait``), every token out: METER Table 4's "CaiT M-384/32" as timm's ``cait_m36_384``.

    CaiT runs ``num_layers`` self-attention blocks (talking heads, LayerScale) over the patches alone,
    then ``num_class_layers`` class-attention blocks in which only a class token attends to the
    patches; timm then puts the class token first and normalises every token. Our reading for METER
    (whose code for CaiT is not public): hand over exactly that, the class token first (the fusion's
    pooler takes token 0, as for ViT) and the patch tokens as the self-attention blocks leave them
    (class attention does not update them). The class token joins after the position table is added,
    so its position row is zeros.

    Args:
        image_size: the resolution (Table 4: 384); a checkpoint at another one has its table interpolated.
        patch_size, hidden_size, num_layers, num_heads, mlp_ratio: CaiT-M36: 16 / 768 / 36 / 16 / 4.
        num_class_layers: class-attention blocks (CaiT: 2).
        init_values: LayerScale's initial value (CaiT-M36: 1e-6).
        drop_path_rate: stochastic depth.
        pretrained_path: a local timm CaiT state dict (classifier head ignored); None = random init.
    """
    from timm.models.cait import Cait

    check_grid(image_size, patch_size)
    model = Cait(img_size=image_size, patch_size=patch_size, embed_dim=hidden_size, depth=num_layers,
                 num_heads=num_heads, mlp_ratio=mlp_ratio, depth_token_only=num_class_layers, init_values=init_values,
                 drop_path_rate=drop_path_rate, num_classes=0, global_pool="token")
    encoder = VisionTokens(model, hidden_size, (image_size, image_size), pooling="first", num_prefix_tokens=1,
                           absolute_positions=True, pos_prefix_rows=0)
    if pretrained_path:
        load_vision_weights(model, pretrained_path, "timm", num_prefix_tokens=0)  # the table has no class row
    return encoder


@ENCODERS.register()
def volo_encoder(
    image_size: Positive = 448,
    patch_size: Literal[4, 8, 16] = 8,
    stem_hidden_dim: Positive = 64,
    layers: list[Positive] = (8, 8, 16, 4),
    embed_dims: list[Positive] = (384, 768, 768, 768),
    num_heads: list[Positive] = (12, 16, 16, 16),
    mlp_ratio: Annotated[float, Range(gt=0)] = 3.0,
    num_class_layers: Annotated[int, Range(ge=1)] = 2,
    drop_path_rate: Rate = 0.0,
    pretrained_path: str | None = None,
) -> VisionTokens:
    """VOLO (timm ``VOLO``), every token out: METER Table 4's "VOLO 4-448/32" as timm's ``volo_d4_448``.

    A convolutional stem cuts ``patch_size`` patches; the first stage (outlook attention) runs on that
    grid, a strided convolution halves it, the position table is added there, and the later stages
    (self-attention) run on the ``image_size / (2 * patch_size)`` grid (28 x 28 at 448). Then
    ``num_class_layers`` class-attention blocks update a class token alone, and timm normalises every
    token. Our reading for METER (whose code for VOLO is not public): the class token first (the
    fusion's pooler takes token 0), then the stride-16 tokens row-major; the class token's position
    row is zeros (it joins after the table). timm's token-labelling ``aux_head`` is a classifier and is
    not built.

    Args:
        image_size: the resolution (Table 4: 448); a multiple of ``2 * patch_size``.
        patch_size: the stem's patch (VOLO: 8).
        stem_hidden_dim: width inside the convolutional stem (VOLO: 64).
        layers, embed_dims, num_heads: blocks, width and heads per stage; stage 1 is outlook attention
            and is followed by the only downsampling, the later stages share one width. VOLO-D4:
            (8, 8, 16, 4) / (384, 768, 768, 768) / (12, 16, 16, 16).
        mlp_ratio: MLP width over the stage width (VOLO: 3).
        num_class_layers: class-attention blocks (VOLO: 2).
        drop_path_rate: stochastic depth.
        pretrained_path: a local timm VOLO state dict (``head`` and ``aux_head`` ignored); None = random init.
    """
    from timm.models.volo import VOLO

    stages = len(layers)
    if stages < 2 or len(embed_dims) != stages or len(num_heads) != stages:
        raise ConfigError(f"layers, embed_dims and num_heads need one entry per stage, at least 2 (got {len(layers)}, "
                          f"{len(embed_dims)}, {len(num_heads)})", key="layers")
    if len(set(embed_dims[1:])) != 1:
        raise ConfigError(f"embed_dims={list(embed_dims)}: the stages after the first share one width (VOLO "
                          "downsamples once, after stage 1)", key="embed_dims")
    check_grid(image_size, 2 * patch_size)
    first = (True,) + (False,) * (stages - 1)  # outlook attention and the downsampling after stage 1 only
    model = VOLO(layers=list(layers), img_size=image_size, patch_size=patch_size, stem_hidden_dim=stem_hidden_dim,
                 embed_dims=list(embed_dims), num_heads=list(num_heads), downsamples=first, outlook_attention=first,
                 mlp_ratio=mlp_ratio, post_layers=("ca",) * num_class_layers, drop_path_rate=drop_path_rate,
                 num_classes=0, global_pool="token")
    encoder = VisionTokens(model, embed_dims[-1], (image_size, image_size), pooling="first", num_prefix_tokens=1,
                           absolute_positions=True, pos_prefix_rows=0, one_token_per_patch=False)
    if pretrained_path:
        load_vision_weights(model, pretrained_path, "timm", num_prefix_tokens=0)  # [1, h, w, D]: no class row
    return encoder


@ENCODERS.register()
def beit_encoder(
    image_size: Positive = 224,
    patch_size: Positive = 16,
    hidden_size: Positive = 768,
    num_layers: Positive = 12,
    num_heads: Positive = 12,
    mlp_ratio: Annotated[float, Range(gt=0)] = 4.0,
    init_values: Annotated[float, Range(gt=0)] = 0.1,
    pooling: Literal["first", "mean"] = "first",
    drop_path_rate: Rate = 0.0,
    pretrained_path: str | None = None,
) -> VisionTokens:
    """BEiT (timm ``Beit``), every token out: METER Table 4's "BEiT B-224/16" as timm's ``beit_base_patch16_224``.

    [CLS] first, then the patches. BEiT has no absolute position table: each block has its own relative
    position bias over the patch grid (plus 3 rows for the [CLS]), so the returned ``pos`` is zeros, and
    at a new resolution the model builds tables for its grid and a checkpoint's tables are resized
    (``vision_weights``: the grid of biases bicubic, the [CLS] rows kept). The released ImageNet model
    classifies the *mean* of its patch tokens after ``fc_norm`` (timm builds no final ``norm``); our
    reading (METER's code for BEiT is not public): apply ``fc_norm`` to every token, as CLIP's
    ``ln_post`` is, and pool token 0 like the other ViTs (``pooling="mean"`` pools the average instead).

    Args:
        image_size: the resolution (Table 4: 224).
        patch_size, hidden_size, num_layers, num_heads, mlp_ratio: BEiT-B/16: 16 / 768 / 12 / 12 / 4.
        init_values: LayerScale's initial value (BEiT-B: 0.1).
        pooling: what the fusion's pooler summarises: ``first`` ([CLS]) or ``mean``.
        drop_path_rate: stochastic depth.
        pretrained_path: a local timm BEiT state dict (classifier head ignored); None = random init.
    """
    from timm.models.beit import Beit

    check_grid(image_size, patch_size)
    model = Beit(img_size=image_size, patch_size=patch_size, embed_dim=hidden_size, depth=num_layers,
                 num_heads=num_heads, mlp_ratio=mlp_ratio, init_values=init_values, use_abs_pos_emb=False,
                 use_rel_pos_bias=True, drop_path_rate=drop_path_rate, num_classes=0, global_pool="avg")
    encoder = VisionTokens(model, hidden_size, (image_size, image_size), pooling=pooling, num_prefix_tokens=1,
                           absolute_positions=False, token_norm="fc_norm")
    if pretrained_path:
        load_vision_weights(model, pretrained_path, "timm", num_prefix_tokens=1, relative_extra_rows=3)
    return encoder
