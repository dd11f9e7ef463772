"""The METER model: paper-size parameter counts, the two pre-training passes, poolers and ``cls_feats``,
and the parameter groups of the shipped configs against the reference code's rule."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from tests.models.part_cases.meter import METER_NODE, TINY_FUSION, meter_batches, meter_info
from unimm.plugins import import_builtins, load_user_dirs

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module", autouse=True)
def plugin():
    import_builtins()
    load_user_dirs([str(REPO / "projects" / "meter")])


def build(node=None, info=None):
    from unimm.registry import MODELS

    torch.manual_seed(0)
    return MODELS.build(node or METER_NODE, path="model", dataset_info=info or meter_info())


def test_paper_size_counts_of_reference_notes(caplog):
    """REFERENCE_NOTES 1.1 (METER-CLIP16-RoBERTa at 224), built on the meta device; the builder logs them."""
    from projects.meter.model import count_parts

    with torch.device("meta"), caplog.at_level("INFO", logger="unimm"):
        model = build({"type": "meter_paper"}, {**meter_info(), "coco": {**meter_info()["coco"], "vocab_size": 50265},
                                                "vqa2": {**meter_info()["vqa2"], "vocab_size": 50265,
                                                         "num_answers": 3129},
                                                "snli_ve": {**meter_info()["snli_ve"], "vocab_size": 50265}})
    counts = count_parts(model)
    assert counts["vision_encoder"] == 78_711_552  # CLIP-ViT-B/16, 11 blocks, 224
    assert counts["text_encoder"] == 124_055_040  # RoBERTa-base without pooler
    assert counts["fusion_with_transforms_token_types_poolers"] == 115_785_216
    assert sum(p.numel() for p in model.cross_modal_fusion.parameters()) == 113_421_312  # 12 x BertCrossLayer
    assert counts["vision_encoder"] + counts["text_encoder"] + counts["fusion_with_transforms_token_types_poolers"] \
        == 318_551_808  # "backbone used, at 224"
    assert (counts["heads.mlm_score"], counts["heads.itm_score"], counts["heads.vqa_classifier"]) == (
        39_245_913, 3_074, 7_173_177)
    assert counts["heads.snli_ve_classifier"] == 2_368_515  # METER's snli_classifier (REFERENCE_NOTES 1.1)
    assert "METER parameters: vision_encoder 78,711,552" in caplog.text


def test_pretraining_runs_mlm_and_itm_as_two_passes(monkeypatch):
    model = build().eval()
    batch = meter_batches()["coco"]
    calls = []
    original = model.infer

    def spy(input_ids, attention_mask, image, pixel_mask=None):
        calls.append((input_ids, image))
        return original(input_ids, attention_mask, image, pixel_mask)

    monkeypatch.setattr(model, "infer", spy)
    out = model(batch)
    assert set(out["losses"]) == {"coco/mlm", "coco/itm"}
    assert len(calls) == 2
    assert calls[0][0] is batch["mlm_input_ids"] and calls[0][1] is batch["image"]  # MLM: masked text, true image
    assert calls[1][0] is batch["input_ids"] and calls[1][1] is batch["itm_image"]  # ITM: clean text, ITM image
    assert out["mlm_logits"].shape == (4, 7, 50) and out["itm_logits"].shape == (4, 2)
    vqa = model(meter_batches()["vqa2"])
    assert set(vqa["losses"]) == {"vqa2/soft_bce"} and vqa["logits"].shape == (4, 11)


def test_cls_feats_are_both_poolers_on_token_zero_or_swin_mean():
    model = build().eval()
    batch = meter_batches()["vqa2"]
    with torch.no_grad():
        feats = model.infer(batch["input_ids"], batch["attention_mask"], batch["image"])
        assert feats.cls_feats.shape == (4, 64)  # 2D: the text and image pooled vectors
        text_pooled = torch.tanh(model.cross_modal_text_pooler.dense(feats.text[:, 0]))
        image_pooled = torch.tanh(model.cross_modal_image_pooler.dense(feats.image[:, 0]))  # CLIP: the [CLS] token
        torch.testing.assert_close(feats.cls_feats, torch.cat([text_pooled, image_pooled], dim=-1))
    swin = {"type": "swin_encoder", "image_size": 32, "patch_size": 4, "window_size": 2, "embed_dim": 16,
            "depths": [1, 1], "num_heads": [1, 2]}
    model = build({**METER_NODE, "vision_encoder": swin}).eval()
    with torch.no_grad():
        feats = model.infer(batch["input_ids"], batch["attention_mask"], batch["image"])
        torch.testing.assert_close(feats.cls_feats[:, 32:],
                                   torch.tanh(model.cross_modal_image_pooler.dense(feats.image.mean(dim=1))))


def test_token_types_mark_the_streams():
    model = build().eval()
    batch = meter_batches()["vqa2"]
    seen = {}

    def grab(module, args, output):
        seen["text"], seen["image"] = args[0], args[2]

    model.cross_modal_fusion.register_forward_hook(grab)
    with torch.no_grad():
        model.infer(batch["input_ids"], batch["attention_mask"], batch["image"])
        text = model.cross_modal_text_transform(model.text_encoder(batch["input_ids"], batch["attention_mask"]).hidden)
        image = model.cross_modal_image_transform(model.vision_encoder(batch["image"]).hidden)
    torch.testing.assert_close(seen["text"], text + model.token_type_embeddings.weight[0])
    torch.testing.assert_close(seen["image"], image + model.token_type_embeddings.weight[1])


def test_merged_attention_variant_runs():
    model = build({**METER_NODE, "fusion": {**TINY_FUSION, "type": "merged_attention"}})
    losses = model(meter_batches()["coco"])["losses"]
    sum(losses.values()).backward()
    assert model.cross_modal_fusion.layers[0].attention.self.query.weight.grad is not None


# ----------------------------------------------------------------------------- parameter groups

METER_NO_DECAY = ["bias", "LayerNorm.bias", "LayerNorm.weight", "norm.bias", "norm.weight", "norm1.bias",
                  "norm1.weight", "norm2.bias", "norm2.weight"]
METER_HEADS = ["vqa_classifier", "nlvr2_classifier", "mlm_score", "itm_score", "snli_classifier"]
CLIP_NAMES = [(r"patch_embed\.proj\.weight", "conv1.weight"), (r"cls_token", "class_embedding"),
              (r"pos_embed", "positional_embedding"), (r"norm_pre\.", "ln_pre."),
              (r"blocks\.(\d+)\.attn\.qkv\.(weight|bias)", r"transformer.resblocks.\1.attn.in_proj_\2"),
              (r"blocks\.(\d+)\.attn\.proj\.", r"transformer.resblocks.\1.attn.out_proj."),
              (r"blocks\.(\d+)\.norm1\.", r"transformer.resblocks.\1.ln_1."),
              (r"blocks\.(\d+)\.norm2\.", r"transformer.resblocks.\1.ln_2."),
              (r"blocks\.(\d+)\.mlp\.fc1\.", r"transformer.resblocks.\1.mlp.c_fc."),
              (r"blocks\.(\d+)\.mlp\.fc2\.", r"transformer.resblocks.\1.mlp.c_proj."), (r"^norm\.", "ln_post.")]
HEAD_NAMES = [(r"^heads\.mlm_score\.dense\.", "mlm_score.transform.dense."),
              (r"^heads\.mlm_score\.norm\.", "mlm_score.transform.LayerNorm."),
              (r"^heads\.mlm_score\.decoder\.bias", "mlm_score.bias"), (r"^heads\.mlm_score\.", "mlm_score."),
              (r"^heads\.itm_score\.", "itm_score."), (r"^heads\.vqa_classifier\.dense\.", "vqa_classifier.0."),
              (r"^heads\.vqa_classifier\.layer_norm\.", "vqa_classifier.1."),
              (r"^heads\.vqa_classifier\.out\.", "vqa_classifier.3."),
              (r"^heads\.snli_ve_classifier\.dense\.", "snli_classifier.0."),  # METER's name for SNLI-VE
              (r"^heads\.snli_ve_classifier\.layer_norm\.", "snli_classifier.1."),
              (r"^heads\.snli_ve_classifier\.out\.", "snli_classifier.3.")]


def meter_name(ours: str) -> str:
    """Our parameter name -> the reference code's (CLIP under vit_model.visual, RoBERTa under text_transformer)."""
    if ours.startswith("vision_encoder.model."):
        name = ours.removeprefix("vision_encoder.model.")
        for pattern, repl in CLIP_NAMES:
            name = re.sub(pattern, repl, name)
        return "vit_model.visual." + name
    if ours.startswith("text_encoder.model."):
        return "text_transformer." + ours.removeprefix("text_encoder.model.")
    if ours.startswith("cross_modal_fusion."):
        return re.sub(r"^cross_modal_fusion\.(text|image)_layers\.", r"cross_modal_\1_layers.", ours)
    for pattern, repl in HEAD_NAMES:
        if re.match(pattern, ours):
            return re.sub(pattern, repl, ours)
    return ours  # cross_modal_*_transform / _pooler, token_type_embeddings: METER's own names


def meter_rule(name: str, head_mult: float, cross_mult: float) -> tuple[float, bool]:
    """meter_utils.set_schedule, by name substrings: (lr multiplier, decayed)."""
    decayed = not any(nd in name for nd in METER_NO_DECAY)
    head, cross = any(h in name for h in METER_HEADS), "cross_modal" in name
    assert not (head and cross), name  # METER would drop such a parameter from every group
    return (head_mult if head else cross_mult if cross else 1.0), decayed


@pytest.mark.parametrize(("config", "head_mult"), [("pretrain.yaml", 5.0), ("vqa2.yaml", 50.0)])
def test_parameter_groups_of_the_configs_follow_the_reference_rule(config, head_mult, capsys):
    from unimm import session
    from unimm.training.optimizers import describe_groups, format_groups, param_groups

    cfg, _ = session.prepare(REPO / "projects" / "meter" / config, [])
    t, opt = cfg["training"], cfg["optimizer"]
    model = build()  # CLIP + BERT-shaped text encoder + co-attention, MLM + ITM + VQA heads
    groups = param_groups(model, t["param_groups"], base_lr=opt["lr"], base_weight_decay=opt["weight_decay"],
                          no_decay=t["no_decay"])
    rows = describe_groups(model, groups)
    print(format_groups(rows))
    of = {name: row for row in rows for name in row["names"]}
    assert set(of) == {name for name, _ in model.named_parameters()}
    for name in of:
        mult, decayed = meter_rule(meter_name(name), head_mult, 5.0)
        assert of[name]["lr"] == pytest.approx(opt["lr"] * mult), name
        assert of[name]["weight_decay"] == (0.01 if decayed else 0.0), (name, meter_name(name))
    # the consequences users of the reference get wrong (REFERENCE_NOTES 1.5 item 2)
    assert of["token_type_embeddings.weight"]["lr"] == opt["lr"]  # new, yet at the bottom's rate
    assert of["vision_encoder.model.blocks.0.norm1.weight"]["weight_decay"] == 0.01  # CLIP's ln_1 decays
    assert of["vision_encoder.model.norm.weight"]["weight_decay"] == 0.01  # ln_post too
    assert of["heads.vqa_classifier.layer_norm.weight"]["weight_decay"] == 0.01  # vqa_classifier.1.weight
    assert of["text_encoder.model.embeddings.LayerNorm.weight"]["weight_decay"] == 0.0
    assert of["cross_modal_fusion.text_layers.0.output.LayerNorm.weight"]["lr"] == pytest.approx(opt["lr"] * 5)
    assert {row["group"] for row in rows} == {"default", "default/no_decay", "training.param_groups[0]",
                                              "training.param_groups[0]/no_decay", "training.param_groups[1]",
                                              "training.param_groups[1]/no_decay"}  # METER's six groups
    assert "training.param_groups[1]/no_decay" in capsys.readouterr().out


def test_snli_ve_is_a_classifier_on_cls_feats_with_cross_entropy():
    model = build().eval()
    batch = meter_batches()["snli_ve"]
    out = model(batch)
    assert out["logits"].shape == (4, 3) and set(out["losses"]) == {"snli_ve/cross_entropy"}
    torch.testing.assert_close(out["losses"]["snli_ve/cross_entropy"],
                               torch.nn.functional.cross_entropy(out["logits"], batch["label"]))


def nlvr2_batch(batch_size: int = 4) -> dict:
    g = torch.Generator().manual_seed(1)
    batch = {**meter_batches()["snli_ve"], "dataset_name": "nlvr2", "label": torch.tensor([1, 0, 0, 1])}
    return {**batch, "image2": torch.randn(batch_size, 3, 32, 32, generator=g)}


NLVR2_INFO = {"nlvr2": {"task_type": "classification", "vocab_size": 50, "num_classes": 2, "images_per_example": 2}}


def test_nlvr2_is_two_passes_with_image_types_1_and_2_into_a_pair_head():
    """METER's compute_nlvr2: the text with each image (token types 1, 2), cls_feats concatenated."""
    model = build(info=NLVR2_INFO).eval()
    table = model.token_type_embeddings.weight
    assert table.shape == (3, 32)
    torch.testing.assert_close(table[2], table[1])  # the second image's row starts as the image row
    with torch.no_grad():
        table[2] += 0.5  # as after training: the two images are told apart
    head = model.heads["nlvr2_classifier"]
    assert (head.dense.in_features, head.dense.out_features, head.out.out_features) == (128, 64, 2)  # 4D, 2D
    batch = nlvr2_batch()
    with torch.no_grad():
        out = model(batch)
        first = model.infer(batch["input_ids"], batch["attention_mask"], batch["image"], image_type=1)
        second = model.infer(batch["input_ids"], batch["attention_mask"], batch["image2"], image_type=2)
        wrong = model.infer(batch["input_ids"], batch["attention_mask"], batch["image2"], image_type=1)
        expected = head.out(torch.nn.functional.gelu(head.layer_norm(head.dense(
            torch.cat([first.cls_feats, second.cls_feats], dim=-1)))))
    torch.testing.assert_close(out["logits"], expected)
    assert not torch.allclose(second.cls_feats, wrong.cls_feats)  # the type row reaches the features
    torch.testing.assert_close(out["losses"]["nlvr2/cross_entropy"],
                               torch.nn.functional.cross_entropy(expected, batch["label"]))
    with pytest.raises(KeyError, match="no image2"):
        model({k: v for k, v in batch.items() if k != "image2"})


def test_nlvr2_from_a_pretraining_checkpoint_copies_the_image_type_row(tmp_path):
    from unimm.training.checkpoint import init_from

    pretrained = build()  # two token types
    torch.save(pretrained.state_dict(), tmp_path / "pretrained.pt")
    model = build(info=NLVR2_INFO)
    report = init_from(model, tmp_path / "pretrained.pt", include=[r"^(?!heads\.)"])
    assert "token_type_embeddings.weight" in report["loaded"]
    old = pretrained.token_type_embeddings.weight
    torch.testing.assert_close(model.token_type_embeddings.weight, torch.cat([old, old[1:2]]))


def test_paper_size_nlvr2_head_and_its_token_type_row_count_as_reference_notes():
    """REFERENCE_NOTES 1.1: NLVR2 4,727,042 = nlvr2_classifier 4,726,274 + the third token-type row 768."""
    from projects.meter.model import count_parts

    with torch.device("meta"):
        model = build({"type": "meter_paper"}, {"nlvr2": {**NLVR2_INFO["nlvr2"], "vocab_size": 50265}})
    added = model.token_type_embeddings.weight.numel() - 2 * 768
    assert (count_parts(model)["heads.nlvr2_classifier"], added) == (4_726_274, 768)


def test_retrieval_pairs_are_scored_by_the_itm_match_logit_in_evaluation_only():
    info = {"flickr30k": {"task_type": "retrieval_pairs", "vocab_size": 50, "num_images": 2, "num_captions": 4}}
    model = build(info=info).eval()
    assert set(model.heads) == {"itm_score"}
    batch = {**meter_batches()["vqa2"], "dataset_name": "flickr30k", "task_type": "retrieval_pairs"}
    with torch.no_grad():
        out = model(batch)
        feats = model.infer(batch["input_ids"], batch["attention_mask"], batch["image"])
        expected = model.heads["itm_score"].fc(feats.cls_feats)[:, 1]
    torch.testing.assert_close(out["pair_score"], expected)
    assert out["losses"] == {}


RANK_INFO = {"f30k": {"task_type": "image_text_pretraining", "vocab_size": 50, "mlm": False, "itm": True,
                      "negative_texts": 2}}


def rank_batch() -> dict:
    batch = {**meter_batches()["coco"], "dataset_name": "f30k"}
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, 50, (4, 3, 6), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 2, 4:] = 0
    ids[1, 2, 4:] = 0
    return {**batch, "rank_input_ids": ids, "rank_attention_mask": mask}


def test_retrieval_fine_tuning_ranks_each_caption_with_a_rank_head_from_the_itm_match_row():
    """METER's irtr: rank_output = itm_score.fc's "match" row, ITM frozen, cross-entropy towards the own
    caption over [own, negatives]; encoding the picture once equals METER's repeated pictures, values and
    gradients."""
    model = build(info=RANK_INFO).eval()
    itm, rank = model.heads["itm_score"].fc, model.rank_output
    torch.testing.assert_close(rank.weight, itm.weight[1:]) and torch.testing.assert_close(rank.bias, itm.bias[1:])
    assert not any(p.requires_grad for p in model.heads["itm_score"].parameters()) and rank.weight.requires_grad
    batch = rank_batch()
    out = model(batch)
    assert set(out["losses"]) == {"f30k/itm", "f30k/irtr"} and out["rank_scores"].shape == (4, 3)

    reference = build(info=RANK_INFO).eval()  # METER's compute_irtr: the picture repeated per candidate
    ids, mask = batch["rank_input_ids"], batch["rank_attention_mask"]
    images = batch["image"].repeat_interleave(3, dim=0)
    feats = reference.infer(ids.flatten(0, 1), mask.flatten(0, 1), images)
    scores = reference.rank_output(feats.cls_feats)[:, 0].view(4, 3)
    loss = torch.nn.functional.cross_entropy(scores, torch.zeros(4, dtype=torch.long))
    torch.testing.assert_close(out["rank_scores"], scores)
    torch.testing.assert_close(out["losses"]["f30k/irtr"], loss)
    out["losses"]["f30k/irtr"].backward()
    loss.backward()
    for (name, mine), theirs in zip(model.named_parameters(), reference.parameters()):
        if mine.grad is not None or theirs.grad is not None:
            torch.testing.assert_close(mine.grad, theirs.grad, msg=name)
    assert model.vision_encoder.model.patch_embed.proj.weight.grad.abs().sum() > 0

    pairs = {**meter_batches()["vqa2"], "dataset_name": "f30k", "task_type": "retrieval_pairs"}
    with torch.no_grad():  # evaluation of the same dataset (by_split): every pair scored by rank_output
        expected = rank(model.infer(pairs["input_ids"], pairs["attention_mask"], pairs["image"]).cls_feats)[:, 0]
        torch.testing.assert_close(model(pairs)["pair_score"], expected)


def test_retrieval_fine_tuning_starts_rank_output_from_a_pretraining_checkpoints_itm_row(tmp_path):
    from projects.meter.model import count_parts
    from unimm.training.checkpoint import init_from

    pretrained = build()
    with torch.no_grad():
        pretrained.heads["itm_score"].fc.weight.add_(1.0)
    torch.save(pretrained.state_dict(), tmp_path / "pretrained.pt")
    model = build(info=RANK_INFO)
    report = init_from(model, tmp_path / "pretrained.pt", include=[r"^(?!heads\.mlm_score\.)"])
    assert {"rank_output.weight", "rank_output.bias"} <= set(report["loaded"])
    fc = pretrained.heads["itm_score"].fc
    torch.testing.assert_close(model.rank_output.weight, fc.weight[1:])
    torch.testing.assert_close(model.rank_output.bias, fc.bias[1:])
    # a fine-tuned checkpoint evaluated by itself (run_type=test) builds the head when asked
    evaluated = build({**METER_NODE, "rank_output": True},
                      {"f30k": {"task_type": "retrieval_pairs", "vocab_size": 50, "num_images": 2, "num_captions": 4}})
    assert evaluated.rank_output is not None and "rank_output" not in count_parts(build())
    with torch.device("meta"):
        paper = build({"type": "meter_paper"}, {"f30k": {**RANK_INFO["f30k"], "vocab_size": 50265}})
    assert count_parts(paper)["rank_output"] == 1_537  # REFERENCE_NOTES 1.1


def test_a_dataset_of_three_images_is_refused():
    from unimm.config.errors import ConfigError

    info = {"x": {**NLVR2_INFO["nlvr2"], "images_per_example": 3}}
    with pytest.raises(ConfigError, match="3 images per example"):
        build(info=info)


@pytest.mark.parametrize("mim", [{"type": "mim_in_batch_head"},
                                 {"type": "mim_code_head", "tokenizer": {"type": "random_projection_codes",
                                                                         "patch_size": 16, "bits": 5}}])
def test_masked_image_modeling_is_a_third_pass_on_the_masked_picture(mim):
    """Table 10's MIM: 15% of the patches masked (here 1 of 4: floor(4 * 0.85) = 3 kept), the clean caption,
    the masked patches classified from their fused states; a fresh mask in training, a fixed one in
    evaluation; only pre-training builds it."""
    model = build({**METER_NODE, "mim": mim})
    assert "mim_score" in model.heads and model.heads["mim_score"].mask_token.shape == (32,)  # the vision width
    batch = meter_batches()["coco"]
    out = model.train()(batch)
    assert set(out["losses"]) == {"coco/mlm", "coco/itm", "coco/mim"}
    assert out["mim_logits"].shape[0] == 4  # one masked patch per picture
    sum(out["losses"].values()).backward()
    assert model.heads["mim_score"].mask_token.grad.abs().sum() > 0  # the mask embedding is learned
    with torch.no_grad():
        first, second = (model.eval()(batch)["losses"]["coco/mim"] for _ in range(2))
    torch.testing.assert_close(first, second)
    finetuned = build({**METER_NODE, "mim": mim}, {"vqa2": meter_info()["vqa2"]})
    assert "mim_score" not in finetuned.heads


def test_masked_image_modeling_refuses_swin():
    model = build({**METER_NODE, "mim": {"type": "mim_in_batch_head"},
                   "vision_encoder": {"type": "swin_encoder", "image_size": 32, "patch_size": 4, "window_size": 2,
                                      "embed_dim": 8, "depths": [1, 1], "num_heads": [1, 1]}})
    with pytest.raises(ValueError, match="SwinTransformer.s output tokens form no patch grid.*Swin merges its patches"):
        model(meter_batches()["coco"])
