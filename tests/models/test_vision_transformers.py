"""Vision encoders built with timm: CLIP's architecture, key maps of every supported layout, resizing.

The CLIP checkpoint is written here in OpenAI's layout, key by key, from a tiny encoder's tensors
(plus a text tower, the projection and a last block that METER drops), then loaded into a fresh
encoder: every tensor must come back, and the encoder must compute what a CLIP forward written out
here computes (QuickGELU, ``ln_pre``, pre-LN residual blocks, ``ln_post`` on every token).
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unimm.config.errors import ConfigError
from unimm.models.encoders.vision_transformers import (beit_encoder, cait_encoder, clip_vit_encoder, swin_encoder,
                                                        vit_encoder, volo_encoder)
from unimm.modules.pos_embed import resize_pos_embed

TINY_CLIP = dict(image_size=32, patch_size=16, hidden_size=32, num_layers=3, num_heads=2)  # 2 blocks kept


def randomise(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return module.eval()


def clip_state(encoder, extra_block: bool = True, seed: int = 1) -> dict[str, torch.Tensor]:
    """The tiny encoder's tensors under OpenAI CLIP's names, written out one by one."""
    m = encoder.model
    g = torch.Generator().manual_seed(seed)
    d = m.embed_dim
    s = {"visual.conv1.weight": m.patch_embed.proj.weight.detach().clone(),
         "visual.class_embedding": m.cls_token.detach().reshape(d).clone(),
         "visual.positional_embedding": m.pos_embed.detach()[0].clone(),
         "visual.ln_pre.weight": m.norm_pre.weight.detach().clone(),
         "visual.ln_pre.bias": m.norm_pre.bias.detach().clone(),
         "visual.ln_post.weight": m.norm.weight.detach().clone(), "visual.ln_post.bias": m.norm.bias.detach().clone(),
         "visual.proj": torch.randn(d, 16, generator=g),  # CLIP's joint-space projection: METER has none
         "token_embedding.weight": torch.randn(10, d, generator=g),  # the text tower: ignored
         "positional_embedding": torch.randn(7, d, generator=g), "ln_final.weight": torch.ones(d),
         "transformer.resblocks.0.attn.in_proj_weight": torch.randn(3 * d, d, generator=g),
         "logit_scale": torch.tensor(4.6), "input_resolution": torch.tensor(32)}
    blocks = len(m.blocks) + (1 if extra_block else 0)
    for i in range(blocks):
        p = f"visual.transformer.resblocks.{i}."
        if i < len(m.blocks):
            b = m.blocks[i]
            pairs = {"attn.in_proj_weight": b.attn.qkv.weight, "attn.in_proj_bias": b.attn.qkv.bias,
                     "attn.out_proj.weight": b.attn.proj.weight, "attn.out_proj.bias": b.attn.proj.bias,
                     "ln_1.weight": b.norm1.weight, "ln_1.bias": b.norm1.bias, "ln_2.weight": b.norm2.weight,
                     "ln_2.bias": b.norm2.bias, "mlp.c_fc.weight": b.mlp.fc1.weight, "mlp.c_fc.bias": b.mlp.fc1.bias,
                     "mlp.c_proj.weight": b.mlp.fc2.weight, "mlp.c_proj.bias": b.mlp.fc2.bias}
            s.update({p + k: v.detach().clone() for k, v in pairs.items()})
        else:  # the last CLIP block, which METER leaves out
            shapes = {"attn.in_proj_weight": (3 * d, d), "attn.in_proj_bias": (3 * d,), "attn.out_proj.weight": (d, d),
                      "attn.out_proj.bias": (d,), "ln_1.weight": (d,), "ln_1.bias": (d,), "ln_2.weight": (d,),
                      "ln_2.bias": (d,), "mlp.c_fc.weight": (4 * d, d), "mlp.c_fc.bias": (4 * d,),
                      "mlp.c_proj.weight": (d, 4 * d), "mlp.c_proj.bias": (d,)}
            s.update({p + k: torch.randn(shape, generator=g) for k, shape in shapes.items()})
    return s


def clip_forward(s: dict[str, torch.Tensor], image: torch.Tensor, blocks: int, heads: int) -> torch.Tensor:
    """OpenAI CLIP's VisualTransformer as METER runs it (no projection, ln_post on every token)."""
    x = F.conv2d(image, s["visual.conv1.weight"], stride=s["visual.conv1.weight"].shape[-1])  # no bias
    x = x.flatten(2).transpose(1, 2)  # [B, N, D]
    b, _, d = x.shape
    x = torch.cat([s["visual.class_embedding"].expand(b, 1, d), x], 1) + s["visual.positional_embedding"]
    x = F.layer_norm(x, (d,), s["visual.ln_pre.weight"], s["visual.ln_pre.bias"], 1e-5)

    def quick_gelu(t):
        return t * torch.sigmoid(1.702 * t)

    for i in range(blocks):
        p = f"visual.transformer.resblocks.{i}."
        h = F.layer_norm(x, (d,), s[p + "ln_1.weight"], s[p + "ln_1.bias"], 1e-5)
        q, k, v = F.linear(h, s[p + "attn.in_proj_weight"], s[p + "attn.in_proj_bias"]).chunk(3, dim=-1)
        split = lambda t: t.view(b, -1, heads, d // heads).transpose(1, 2)  # noqa: E731
        att = (split(q) @ split(k).transpose(-1, -2) / math.sqrt(d // heads)).softmax(-1) @ split(v)
        att = att.transpose(1, 2).reshape(b, -1, d)
        x = x + F.linear(att, s[p + "attn.out_proj.weight"], s[p + "attn.out_proj.bias"])
        h = F.layer_norm(x, (d,), s[p + "ln_2.weight"], s[p + "ln_2.bias"], 1e-5)
        h = F.linear(quick_gelu(F.linear(h, s[p + "mlp.c_fc.weight"], s[p + "mlp.c_fc.bias"])),
                     s[p + "mlp.c_proj.weight"], s[p + "mlp.c_proj.bias"])
        x = x + h
    return F.layer_norm(x, (d,), s["visual.ln_post.weight"], s["visual.ln_post.bias"], 1e-5)


def test_clip_architecture():
    encoder = clip_vit_encoder(**TINY_CLIP)
    m = encoder.model
    assert len(m.blocks) == 2  # num_layers=3 with METER's dropped last block
    assert m.patch_embed.proj.bias is None and type(m.blocks[0].mlp.act).__name__ == "QuickGELU"
    assert m.norm_pre.eps == 1e-5 and encoder.pooling == "first" and encoder.hidden_size == 32
    assert len(clip_vit_encoder(**TINY_CLIP, drop_last_block=False).model.blocks) == 3


def test_openai_clip_layout_round_trip_and_forward(tmp_path):
    source = randomise(clip_vit_encoder(**TINY_CLIP))
    state = clip_state(source)
    path = tmp_path / "clip.pt"
    torch.save(state, path)
    loaded = clip_vit_encoder(**TINY_CLIP, pretrained_path=str(path)).eval()
    ours, theirs = loaded.model.state_dict(), source.model.state_dict()
    assert set(ours) == set(theirs)
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=0, msg=key)
    image = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = loaded(image)
    assert out.hidden.shape == (2, 5, 32) and not out.padding_mask.any()
    torch.testing.assert_close(out.hidden, clip_forward(state, image, blocks=2, heads=2), atol=1e-5, rtol=1e-5)


def test_openai_clip_at_another_resolution_interpolates_positions(tmp_path):
    source = randomise(clip_vit_encoder(**TINY_CLIP))
    state = clip_state(source)
    torch.save(state, tmp_path / "clip.pt")
    bigger = clip_vit_encoder(**{**TINY_CLIP, "image_size": 64}, pretrained_path=str(tmp_path / "clip.pt"))
    table = bigger.model.pos_embed.detach()
    assert table.shape == (1, 1 + 16, 32)
    expected = resize_pos_embed(state["visual.positional_embedding"].unsqueeze(0), (4, 4), num_prefix_tokens=1)
    torch.testing.assert_close(table, expected)
    torch.testing.assert_close(table[0, 0], state["visual.positional_embedding"][0])  # [CLS] row kept


def test_a_clip_file_of_another_depth_is_refused_with_the_keys(tmp_path):
    source = randomise(clip_vit_encoder(**TINY_CLIP))
    torch.save(clip_state(source, extra_block=False), tmp_path / "clip.pt")  # 2 blocks: no last block to drop
    with pytest.raises(ConfigError) as err:  # 3 layers without dropping: block 2 is missing
        clip_vit_encoder(**TINY_CLIP, drop_last_block=False, pretrained_path=str(tmp_path / "clip.pt"))
    assert "blocks.2.attn.qkv.weight: in the encoder, not in the file" in str(err.value)


def test_timm_layout_round_trip_for_clip_vit_and_distilled_deit(tmp_path):
    for build, kwargs in ((clip_vit_encoder, {**TINY_CLIP, "pretrained_format": "timm"}),
                          (vit_encoder, dict(image_size=32, patch_size=16, hidden_size=32, num_layers=2, num_heads=2,
                                             distilled=True))):
        source = randomise(build(**{k: v for k, v in kwargs.items() if k != "pretrained_format"}))
        state = {**source.model.state_dict(), "head.weight": torch.randn(5, 32), "head.bias": torch.zeros(5)}
        torch.save({"model": state}, tmp_path / "timm.pth")
        loaded = build(**kwargs, pretrained_path=str(tmp_path / "timm.pth"))
        for key, value in source.model.state_dict().items():
            torch.testing.assert_close(loaded.model.state_dict()[key], value, rtol=0, atol=0, msg=key)
    assert loaded.num_prefix_tokens == 2 and loaded(torch.zeros(1, 3, 32, 32)).hidden.shape == (1, 2 + 4, 32)


def test_vit_timm_file_at_another_resolution_keeps_both_prefix_rows(tmp_path):
    tiny = dict(patch_size=16, hidden_size=32, num_layers=1, num_heads=2, distilled=True)
    source = randomise(vit_encoder(image_size=32, **tiny))
    torch.save(source.model.state_dict(), tmp_path / "deit.pth")
    bigger = vit_encoder(image_size=48, **tiny, pretrained_path=str(tmp_path / "deit.pth"))
    expected = resize_pos_embed(source.model.pos_embed.detach(), (3, 3), num_prefix_tokens=2)
    torch.testing.assert_close(bigger.model.pos_embed.detach(), expected)


TINY_SWIN = dict(image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[1, 2], drop_path_rate=0.0)


def test_swin_timm_round_trip_mean_pooling_and_window_change(tmp_path):
    source = randomise(swin_encoder(**TINY_SWIN, window_size=2))
    assert source.pooling == "mean" and source.hidden_size == 32 and source.num_prefix_tokens == 0
    torch.save({"state_dict": {**source.model.state_dict(), "head.fc.weight": torch.zeros(3, 32)}},
               tmp_path / "swin.pth")
    loaded = swin_encoder(**TINY_SWIN, window_size=2, pretrained_path=str(tmp_path / "swin.pth")).eval()
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image).hidden, source(image).hidden)
    assert loaded(image).hidden.shape == (2, 4 * 4, 32)
    wider = swin_encoder(**TINY_SWIN, window_size=4, pretrained_path=str(tmp_path / "swin.pth"))
    key = "layers.0.blocks.0.attn.relative_position_bias_table"
    old = source.model.state_dict()[key]  # [(2*2-1)^2, heads] = [9, 1]
    expected = resize_pos_embed(old.unsqueeze(0), (7, 7), num_prefix_tokens=0)[0]
    torch.testing.assert_close(wider.model.state_dict()[key], expected)


def test_images_of_another_size_or_padded_are_refused():
    encoder = clip_vit_encoder(**TINY_CLIP)
    with pytest.raises(ValueError, match="built for 32x32"):
        encoder(torch.zeros(1, 3, 48, 32))
    mask = torch.ones(1, 32, 32, dtype=torch.bool)
    mask[:, :, 20:] = False
    with pytest.raises(ValueError, match="padded"):
        encoder(torch.zeros(1, 3, 32, 32), mask)


@pytest.mark.parametrize(("resolution", "expected"), [(224, 78_711_552), (288, 78_809_856), (384, 79_003_392),
                                                      (576, 79_556_352)])
def test_clip_b16_parameter_counts_of_reference_notes(resolution, expected):
    """CLIP-ViT-B/16 visual with 11 blocks (METER), REFERENCE_NOTES 1.1."""
    with torch.device("meta"):
        encoder = clip_vit_encoder(image_size=resolution)
    assert sum(p.numel() for p in encoder.parameters()) == expected


# Table 4's CaiT, VOLO and BEiT: timm's own registered models at tiny size (hidden 32, 2 blocks, 2 heads) are
# the source layout; their state dicts (classifier heads included) load into our encoders tensor for tensor.
TIMM_TINY = {
    "cait": ("cait_m36_384", dict(img_size=32, patch_size=16, embed_dim=32, depth=2, num_heads=2),
             dict(image_size=32, patch_size=16, hidden_size=32, num_layers=2, num_heads=2, init_values=1e-6)),
    "volo": ("volo_d4_448", dict(img_size=32, patch_size=4, stem_hidden_dim=8, layers=(1, 1), embed_dims=(32, 32),
                                 num_heads=(2, 2)),
             dict(image_size=32, patch_size=4, stem_hidden_dim=8, layers=[1, 1], embed_dims=[32, 32],
                  num_heads=[2, 2])),
    "beit": ("beit_base_patch16_224", dict(img_size=32, patch_size=16, embed_dim=32, depth=2, num_heads=2),
             dict(image_size=32, patch_size=16, hidden_size=32, num_layers=2, num_heads=2)),
}
BUILDERS = {"cait": cait_encoder, "volo": volo_encoder, "beit": beit_encoder}


def timm_tiny(name: str):
    """timm's registered model at tiny size (``volo_d4_448`` fixes its stage sizes, so VOLO's class directly)."""
    import timm
    from timm.models.volo import VOLO

    model_name, timm_args, _ = TIMM_TINY[name]
    if name == "volo":
        return randomise(VOLO(num_classes=5, **timm_args))  # with timm's token-labelling aux_head
    return randomise(timm.create_model(model_name, pretrained=False, num_classes=5, **timm_args))


@pytest.mark.parametrize("name", ["cait", "volo", "beit"])
def test_timm_layout_round_trip_for_cait_volo_beit(name, tmp_path):
    """Every tensor of timm's model loads (heads, VOLO's aux_head too, ignored); the tokens are timm's
    forward_features, class token first (BEiT: its fc_norm on every token)."""
    reference = timm_tiny(name)
    torch.save(reference.state_dict(), tmp_path / f"{name}.pth")
    ours = BUILDERS[name](**TIMM_TINY[name][2], pretrained_path=str(tmp_path / f"{name}.pth")).eval()
    state = ours.model.state_dict()
    kept = {k: v for k, v in reference.state_dict().items() if not k.startswith(("head.", "aux_head."))}
    assert set(state) == set(kept)
    for key, value in kept.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0, msg=key)
    image = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = ours(image)
        expected = reference.forward_features(image)
        if name == "beit":
            expected = reference.fc_norm(expected)
    torch.testing.assert_close(out.hidden, expected)
    grid = {"cait": 4, "volo": 16, "beit": 4}[name]  # patch tokens: 2 x 2; VOLO's at stride 8 (2 x 4-pixel): 4 x 4
    assert out.hidden.shape == (2, 1 + grid, 32) and ours.num_prefix_tokens == 1 and ours.pooling == "first"
    if name == "beit":
        assert not out.pos.any()  # relative position biases only
    else:  # the class token joins after the positions: a zero row, then the table's rows
        assert not out.pos[:, 0].any()
        torch.testing.assert_close(out.pos[0, 1:], reference.pos_embed.detach().reshape(grid, 32))


def test_cait_and_volo_tables_at_another_resolution(tmp_path):
    """CaiT's table has no class row; VOLO's is a [1, h, w, D] grid: both resized bicubically as grids."""
    for name, bigger, (old, new) in (("cait", 48, (2, 3)), ("volo", 48, (4, 6))):
        reference = timm_tiny(name)
        torch.save(reference.state_dict(), tmp_path / f"{name}.pth")
        ours = BUILDERS[name](**{**TIMM_TINY[name][2], "image_size": bigger},
                              pretrained_path=str(tmp_path / f"{name}.pth"))
        table = reference.pos_embed.detach()
        expected = resize_pos_embed(table.reshape(1, old * old, 32), (new, new), num_prefix_tokens=0)
        torch.testing.assert_close(ours.model.pos_embed.detach().reshape(1, new * new, 32), expected)
        assert ours(torch.zeros(1, 3, bigger, bigger)).hidden.shape == (1, 1 + new * new, 32)


def test_beit_relative_tables_at_another_resolution_keep_the_cls_rows(tmp_path):
    """BEiT-B at 224 has a 14 x 14 grid, tables of 27^2 + 3 rows; here 2 x 2 (3^2 + 3) -> 3 x 3 (5^2 + 3)."""
    reference = timm_tiny("beit")
    torch.save(reference.state_dict(), tmp_path / "beit.pth")
    ours = beit_encoder(**{**TIMM_TINY["beit"][2], "image_size": 48}, pretrained_path=str(tmp_path / "beit.pth"))
    key = "blocks.1.attn.relative_position_bias_table"
    old, new = reference.state_dict()[key], ours.model.state_dict()[key]
    assert old.shape == (9 + 3, 2) and new.shape == (25 + 3, 2)
    torch.testing.assert_close(new[:25], resize_pos_embed(old[:9].unsqueeze(0), (5, 5), num_prefix_tokens=0)[0])
    torch.testing.assert_close(new[25:], old[9:])  # [CLS] -> token, token -> [CLS], [CLS] -> [CLS]
    assert ours(torch.zeros(1, 3, 48, 48)).hidden.shape == (1, 1 + 9, 32)


def test_masked_image_modeling_needs_one_token_per_patch():
    volo = volo_encoder(**TIMM_TINY["volo"][2])
    with pytest.raises(ValueError, match="so does VOLO after its first stage"):
        volo.masked_forward(torch.zeros(1, 3, 32, 32), torch.zeros(1, 64, dtype=torch.bool), torch.zeros(32))
    cait = cait_encoder(**TIMM_TINY["cait"][2])
    encoded, patches = cait.masked_forward(torch.zeros(1, 3, 32, 32), torch.tensor([[True, False, False, True]]),
                                           torch.zeros(32))
    assert cait.grid == (2, 2) and patches.shape == (1, 4, 32) and encoded.hidden.shape == (1, 5, 32)


@pytest.mark.parametrize(("name", "timm_name", "expected"), [
    ("cait", "cait_m36_384", 270_452_352),  # timm's 271.2M includes its 769,000-weight head
    ("volo", "volo_d4_448", 191_875_104),  # timm's 193.4M includes head and aux_head (769,000 each)
    ("beit", "beit_base_patch16_224", 85_761_984),  # timm's 86.5M includes its 769,000-weight head
])
def test_table4_paper_sizes_are_timms_models(name, timm_name, expected):
    """Our defaults build timm's released architecture: the same weights, shapes and count, on the meta device."""
    import timm

    with torch.device("meta"):
        reference = timm.create_model(timm_name, pretrained=False, num_classes=0)
        ours = BUILDERS[name]()
    assert {k: v.shape for k, v in ours.model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()}
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters()) == expected
    assert ours.image_size == {"cait": (384, 384), "volo": (448, 448), "beit": (224, 224)}[name]
