"""Stage 1 from a local MAE checkpoint: an explicit key map, the pre-training decoder left out on purpose."""
from __future__ import annotations

import logging

import torch

from tests.projects.momo.conftest import build


def mae_checkpoint(path, source) -> dict:
    """What facebookresearch/mae writes ({"model": ...}), made from ``source``'s encoder plus a decoder."""
    state = {"cls_token": source.image_tokenizer.cls_token.detach().clone(),
             "pos_embed": source.image_tokenizer.pos_embed.detach().clone(),
             **{f"patch_embed.{k}": v.clone() for k, v in source.image_tokenizer.patch_embed.state_dict().items()},
             **{k: v.clone() for k, v in source.encoder.state_dict().items()},
             "mask_token": torch.zeros(1, 1, 16), "decoder_embed.weight": torch.zeros(16, 32),
             "decoder_pos_embed": torch.zeros(1, 5, 16), "decoder_blocks.0.norm1.weight": torch.ones(16),
             "decoder_norm.weight": torch.ones(16), "decoder_pred.weight": torch.zeros(768, 16)}
    torch.save({"model": state}, path)
    return state


def test_mae_weights_load_into_the_image_tokenizer_and_encoder(tmp_path, caplog):
    source = build(("images",))
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p))
    state = mae_checkpoint(tmp_path / "mae_pretrain.pth", source)
    with caplog.at_level(logging.INFO, logger="unimm"):
        model = build(("images",), pretrained_path=str(tmp_path / "mae_pretrain.pth"))
    torch.testing.assert_close(model.encoder.state_dict(), source.encoder.state_dict())
    torch.testing.assert_close(model.image_tokenizer.cls_token, state["cls_token"])
    torch.testing.assert_close(model.image_tokenizer.patch_embed.proj.weight, state["patch_embed.proj.weight"])
    assert model.image_tokenizer.pos_embed.requires_grad is False  # still MAE's fixed table
    fresh = build(("images",))
    torch.testing.assert_close(model.decoders["image"].state_dict(), fresh.decoders["image"].state_dict())
    assert "6 ignored (decoder_blocks, decoder_embed, decoder_norm, decoder_pos_embed, decoder_pred, mask_token)" \
        in caplog.text
    assert "1 of the model kept at init" in caplog.text  # the modality vector: no MAE weight has one
