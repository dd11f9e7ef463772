"""MoMo's model: the encoder sees only visible tokens, every objective's loss, the paper's sizes."""
from __future__ import annotations

import logging

import pytest
import torch

from tests.projects.momo.conftest import INFO, PRETRAINING, VOCAB, build, image_batch, pair_batch, text_batch


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("preset", "expected", "vit"), [("momo_base", 109_635_840, 85_799_424),
                                                         ("momo_large", 335_084_544, 303_302_656)])
def test_paper_sizes_on_the_meta_device(preset, expected, vit, caplog):
    from projects.momo.model import encoder_side_parameters
    from unimm.registry import MODELS

    info = {n: dict(i, vocab_size=30_522) if "vocab_size" in i else i for n, i in INFO.items()
            if n in ("images", "corpus", "pairs")}
    with caplog.at_level(logging.INFO, logger="unimm"), torch.device("meta"):
        model = MODELS.build({"type": preset, "pretraining": PRETRAINING}, dataset_info=info)
    # REFERENCE_NOTES 2.1: base 85.80M (ViT-B/16 with MAE's fixed table) + 30,522 x 768 + 512 x 768 = 109.63M
    # ("110M"); large 303.30M + 31.25M + 0.52M = 335.08M ("335M"); plus a 2-row segment table and one
    # modality vector per tokenizer, which the paper does not describe
    width = model.encoder.hidden_size
    assert encoder_side_parameters(model) == expected
    assert count(model.encoder) + count(model.image_tokenizer) == vit  # timm ViT-B/16 (L/16) + a modality vector
    assert expected - vit - (30_522 + 512 + 2 + 1) * width == 0
    assert f"MoMo: {expected:,} parameters on the encoder side" in caplog.text
    assert count(model.decoders["image"]) == (26_109_184 if preset == "momo_base" else 26_240_256)  # MAE's 26.11M


def test_mim_hides_three_quarters_and_the_encoder_never_sees_them():
    model = build(("images",)).eval()
    seen = []
    model.encoder.register_forward_pre_hook(lambda module, args: seen.append((args[0].clone(), args[1].clone())))
    batch = image_batch()
    out = model(batch)
    tokens, padding = seen[0]
    assert tokens.shape == (3, 1 + 1, 32) and not padding.any()  # [CLS] + floor(4 * 0.25) = 1 of 2x2 patches
    assert set(out["losses"]) == {"images/mim"}
    # change the pixels of every hidden patch: the encoder's input and the loss's prediction do not move
    from unimm.modules.token_masking import choose_hidden

    candidates = torch.ones(3, 5, dtype=torch.bool)
    candidates[:, 0] = False
    hidden = choose_hidden(candidates[:, :5], 0.75, generator=torch.Generator().manual_seed(0))[:, 1:]  # eval's
    changed = dict(batch, image=batch["image"].clone())
    grid = changed["image"].unfold(2, 16, 16).unfold(3, 16, 16)  # [B, 3, 2, 2, 16, 16] views of the patches
    for b, n in hidden.nonzero().tolist():
        grid[b, :, n // 2, n % 2] += 50.0
    again = model(changed)
    torch.testing.assert_close(seen[1][0], tokens)
    torch.testing.assert_close(again["pixel_pred"], out["pixel_pred"])


def test_mlm_removes_hidden_words_and_scores_only_them():
    model = build(("corpus",)).eval()
    seen = []
    model.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[1].clone()))
    batch = text_batch()
    out = model(batch)
    # candidates 10, 7, 3 -> hidden 10 - 8, 7 - 5, 3 - 2 = 2, 2, 1; visible 12 - 2, 9 - 2, 5 - 1
    assert (~seen[0]).sum(dim=1).tolist() == [10, 7, 4]
    assert out["mlm_logits"].shape == (5, VOCAB) and out["mlm_targets"].shape == (5,)
    assert not (out["mlm_targets"] <= 2).any()  # never [PAD] 0, [CLS] 1, [SEP] 2
    expected = torch.nn.functional.cross_entropy(out["mlm_logits"], out["mlm_targets"])
    torch.testing.assert_close(out["losses"]["corpus/mlm"], expected)
    changed = dict(batch, input_ids=batch["input_ids"].clone())
    visible_logits = model(changed)["mlm_logits"]
    torch.testing.assert_close(visible_logits, out["mlm_logits"])


def test_text_masking_needs_the_special_tokens_mask():
    model = build(("corpus",))
    batch = text_batch()
    del batch["special_tokens_mask"]
    with pytest.raises(ValueError, match="special_tokens_mask"):
        model(batch)


def test_pairs_train_cmm_contrastive_and_itm_with_hard_negatives():
    model = build(("pairs",)).eval()
    out = model(pair_batch(image_index=(0, 0, 1)))  # rows 0 and 1 show the same image
    assert set(out["losses"]) == {"pairs/cmm_image", "pairs/cmm_text", "pairs/contrastive", "pairs/itm"}
    labels = out["itm_targets"]
    assert labels[:3].tolist() == [1, 1, 1] and (labels[3:] == 0).all() and len(labels) == 3 + 3 + 3
    # a negative never shows the image of its pair: with two images, 0/1's negative is image 1 (row 2)
    assert out["image_embeds"].shape == out["text_embeds"].shape == (3, 32)
    all_same = model(pair_batch(image_index=(4, 4, 4)))
    assert all_same["itm_targets"].tolist() == [1, 1, 1]  # no other image: no negative, no crash
    for value in out["losses"].values():
        assert torch.isfinite(value)


def test_every_objective_reaches_its_parameters():
    model = build().train()
    total = sum(sum(model(b)["losses"].values()) for b in (image_batch(), text_batch(), pair_batch()))
    total.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    assert model.image_tokenizer.pos_embed.requires_grad is False  # MAE's fixed sin-cos table


def test_tied_word_embeddings_share_one_tensor_and_untied_do_not():
    tied = build(("corpus",))
    assert tied.decoders["text"].text_head.decoder.weight is tied.text_tokenizer.word_embeddings.weight
    untied = build(("corpus",), tie_word_embeddings=False)
    assert untied.decoders["text"].text_head.decoder.weight is not untied.text_tokenizer.word_embeddings.weight
    assert untied.decoders["text"].text_head.decoder.weight.shape == (VOCAB, 16)  # the decoder's width


def test_tied_weights_stay_tied_through_save_and_load(tmp_path):
    from unimm.training.checkpoint import init_from, save_checkpoint

    model = build(("corpus",))
    with torch.no_grad():
        model.text_tokenizer.word_embeddings.weight.add_(1.0)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    save_checkpoint(tmp_path, model=model, optimizer=optimizer, scheduler=scheduler, sampler=scheduler, hooks=[],
                    counters={"update": 1})
    fresh = build(("corpus",))
    init_from(fresh, tmp_path / "checkpoints" / "update_1")
    head = fresh.decoders["text"].text_head.decoder.weight
    assert head is fresh.text_tokenizer.word_embeddings.weight
    torch.testing.assert_close(head, model.text_tokenizer.word_embeddings.weight)


def test_one_update_from_two_modalities_is_the_sum_of_their_gradients():
    from unimm.registry import STEP_STRATEGIES
    from unimm.training.steps import StepContext

    model = build(("images", "corpus")).eval()  # evaluation masks: the same in every pass
    batches = {"images": image_batch(), "corpus": text_batch()}
    separate = []
    for name in ("images", "corpus"):
        model.zero_grad()
        sum(model(batches[name])["losses"].values()).backward()
        separate.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    model.zero_grad()
    ctx = StepContext(model=model, sampler=None, next_batch=lambda name: batches[name],
                      dataset_names=["images", "corpus"])
    logged = STEP_STRATEGIES.build({"type": "accumulate"})(ctx)
    assert set(logged) == {"images/mim", "corpus/mlm"}
    shared = 0
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        expected = sum(g[name] for g in separate if name in g)
        torch.testing.assert_close(p.grad, expected, rtol=1e-5, atol=1e-7)
        shared += all(name in g for g in separate)
    assert shared > 0  # the encoder's parameters get both modalities' gradients


def test_downstream_heads_by_task_type():
    model = build(("sst2", "stsb", "vqa2", "images"), pretrain=False).eval()
    assert set(model.decoders) == set()  # no pre-training dataset: no decoder
    sst2 = model(text_batch("sst2"))
    assert sst2["logits"].shape == (3, 2) and set(sst2["losses"]) == {"sst2/cross_entropy"}
    stsb = model(dict(text_batch("stsb"), label=torch.tensor([0.5, 4.0, 2.5])))
    assert stsb["logits"].shape == (3,)
    torch.testing.assert_close(stsb["losses"]["stsb/mse"], torch.nn.functional.mse_loss(
        stsb["logits"], torch.tensor([0.5, 4.0, 2.5])))
    vqa = model(dict(pair_batch("vqa2"), answer_scores=torch.rand(3, 4)))
    assert vqa["logits"].shape == (3, 4) and set(vqa["losses"]) == {"vqa2/soft_bce"}
    images = model(image_batch())
    assert images["logits"].shape == (3, 3)


def test_linear_probe_freezes_the_encoder_side():
    model = build(("images",), pretrain=False, linear_probe=True)
    out = model(image_batch())
    out["losses"]["images/cross_entropy"].backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"heads.images.1.weight", "heads.images.1.bias"}


def test_zero_shot_retrieval_gives_embeddings_of_images_and_captions():
    model = build(("retrieval",)).eval()
    batch = pair_batch("retrieval")
    batch["input_ids"] = batch["input_ids"][[0, 0, 1, 2]]  # four captions of three images
    batch["attention_mask"] = batch["attention_mask"][[0, 0, 1, 2]]
    batch["token_type_ids"] = batch["token_type_ids"][[0, 0, 1, 2]]
    out = model(batch)
    assert out["image_embeds"].shape == (3, 32) and out["text_embeds"].shape == (4, 32) and out["losses"] == {}


@pytest.mark.parametrize(("pretraining", "match"), [
    ({"corpus": {"objectives": ["mlm", "mim"]}}, "one reconstruction"),
    ({"pairs": {"objectives": ["itm"]}}, "add contrastive"),
    ({"pairs": {"objectives": ["jigsaw"]}}, "choose among"),
    ({"nowhere": {"objectives": ["mim"]}}, "names no dataset"),
])
def test_bad_pretraining_entries_name_the_key(pretraining, match):
    from unimm.config.errors import ConfigError
    from unimm.registry import MODELS

    with pytest.raises(ConfigError, match=match):
        MODELS.build({"type": "momo_tiny", "pretraining": pretraining}, path="model",
                     dataset_info={n: INFO[n] for n in ("corpus", "pairs")})


def test_itm_on_masked_pairs_sees_a_quarter_of_the_tokens():
    whole, masked = build(("pairs",)).eval(), build(("pairs",), itm_masked=True).eval()
    widths = {}
    for name, model in (("whole", whole), ("masked", masked)):
        seen = []
        model.itm_head.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape))
        model.encoder.register_forward_pre_hook(lambda module, args, seen=seen: seen.append(args[0].shape))
        out = model(pair_batch())
        widths[name] = seen[-2]  # the encoder call just before the ITM head
        assert out["itm_targets"].tolist() == [1, 1, 1] + [0] * 6 and torch.isfinite(out["losses"]["pairs/itm"])
    assert widths["whole"] == (9, 5 + 12, 32)  # [CLS] + 2x2 patches + 12 text slots
    # hidden at 75%: patches 4 -> 1 visible; words 10, 7, 3 -> 2, 1, 0 visible (+ [CLS] / [SEP] of the text)
    assert widths["masked"][0] == 9 and widths["masked"][1] < widths["whole"][1] // 2
