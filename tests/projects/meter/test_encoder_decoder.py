"""METER's encoder-decoder variant (Sec. 4.3, Table 7): paper-size counts, the span language-modeling pass
(corrupted caption in, teacher-forced targets out, padding ignored), ITM and the task heads through the
decoder's class token, the appended token rows, its config and its row of the ablation plan, and a tiny
pre-training -> VQA fine-tuning chain through the session."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.models.part_cases.meter import METER_NODE, TINY_TEXT, VOCAB, meter_batches, meter_info
from tests.projects.meter.test_configs import after_tiny_pretraining
from unimm.plugins import import_builtins, load_user_dirs

REPO = Path(__file__).resolve().parents[3]
METER = REPO / "projects" / "meter"
TINY_DECODER = {"type": "dual_cross_attention_decoder", "num_layers": 2, "num_heads": 2, "intermediate_size": 64}
NODE = {**METER_NODE, "decoder": TINY_DECODER}
SENTINEL, END, START, CLS = VOCAB, VOCAB + 100, VOCAB + 101, VOCAB + 102  # ids after the 50-token vocabulary


@pytest.fixture(scope="module", autouse=True)
def plugin():
    import_builtins()
    load_user_dirs([str(METER)])


def build(node=None, info=None):
    from unimm.registry import MODELS

    torch.manual_seed(0)
    return MODELS.build(node or NODE, path="model", dataset_info=info or meter_info())


def test_paper_size_counts():
    """meter_paper with architecture=encoder_decoder on the meta device, counted by hand:

    * text encoder: RoBERTa-base 124,055,040 + 103 appended rows (100 sentinels, end, start, class) x 768
      = 124,134,144;
    * encoder: 3 + 3 BertCrossLayer x 9,451,776 = 56,710,656, + 2 projections 2 x 590,592 + 2 token
      types x 768, no poolers = 57,893,376;
    * decoder: 3 layers x (3 attention blocks x 2,363,904 + FFN 4,723,968 = 11,815,680) = 35,447,040,
      + 128 positions x 768 + LayerNorm 1,536 = 35,546,880;
    * span LM head over 50,265 + 100 + 1 = 50,366 outputs: 768 x 768 + 768 + 1,536 + 769 x 50,366
      = 39,323,582; ITM Linear(768, 2) = 1,538; VQA 768 -> 768 -> 3,129: 590,592 + 1,536 + 2,406,201
      = 2,998,329.
    """
    from projects.meter.model import count_parts
    from unimm.registry import MODELS

    info = {"coco": {"task_type": "image_text_pretraining", "vocab_size": 50265, "mlm": True, "itm": True},
            "vqa2": {**meter_info()["vqa2"], "vocab_size": 50265, "num_answers": 3129}}
    with torch.device("meta"):
        model = MODELS.build({"type": "meter_paper", "architecture": "encoder_decoder"}, path="model",
                             dataset_info=info)
    counts = count_parts(model)
    assert counts["vision_encoder"] == 78_711_552  # CLIP-ViT-B/16, 11 blocks, as encoder-only
    assert counts["text_encoder"] == 124_055_040 + 103 * 768 == 124_134_144
    assert sum(p.numel() for p in model.cross_modal_fusion.parameters()) == 6 * 9_451_776
    assert counts["fusion_with_transforms_token_types_poolers"] == 6 * 9_451_776 + 2 * 590_592 + 2 * 768
    assert counts["decoder"] == 3 * 11_815_680 + 128 * 768 + 1_536 == 35_546_880
    assert (counts["heads.mlm_score"], counts["heads.itm_score"], counts["heads.vqa_classifier"]) == (
        39_323_582, 1_538, 2_998_329)
    assert model.cross_modal_text_pooler is None and model.cross_modal_image_pooler is None


def span_batch() -> dict:
    """meter_batches' pre-training batch with a fixed choice: row 0 tokens 2-3 (one span) and 5 (another),
    the other rows token 2; the last row has two padding tokens."""
    batch = meter_batches()["coco"]
    labels = torch.full_like(batch["input_ids"], -100)
    for row, positions in enumerate([[2, 3, 5], [2], [2], [2]]):
        labels[row, positions] = batch["input_ids"][row, positions]
    return {**batch, "mlm_labels": labels}


def test_span_pass_reads_the_corrupted_caption_and_teacher_forces_the_targets(monkeypatch):
    model = build().eval()
    batch = span_batch()
    ids = batch["input_ids"]
    seen = {}
    infer, decode = model.infer, model.decode
    monkeypatch.setattr(model, "infer", lambda *a, **k: seen.setdefault("infer", []).append(a) or infer(*a, **k))
    monkeypatch.setattr(model, "decode", lambda *a: seen.setdefault("decode", []).append(a) or decode(*a))
    out = model(batch)
    assert set(out["losses"]) == {"coco/span_mlm", "coco/itm"}
    encoder_ids, encoder_mask, image = seen["infer"][0][:3]
    assert image is batch["image"]  # the true picture, as METER's MLM pass
    row0 = ids[0].tolist()
    # 7 wide: rows 1-3 keep their length (one token, one sentinel); row 0 is one shorter, padded with 0
    assert encoder_ids[0].tolist() == [row0[0], row0[1], SENTINEL, row0[4], SENTINEL + 1, row0[6], 0]
    assert encoder_ids[3].tolist() == [ids[3, 0], ids[3, 1], SENTINEL, ids[3, 3], ids[3, 4], 0, 0]
    assert encoder_mask[0].tolist() == [1] * 6 + [0] and encoder_mask[3].tolist() == [1] * 5 + [0, 0]
    targets = out["span_labels"]
    assert targets.tolist()[0] == [SENTINEL, row0[2], row0[3], SENTINEL + 1, row0[5], END]
    assert targets.tolist()[1] == [SENTINEL, int(ids[1, 2]), END, -100, -100, -100]
    decoder_ids, decoder_padding = seen["decode"][1][:2]  # [0] is ITM's class token (infer's pooling)
    assert decoder_ids[0].tolist() == [START, SENTINEL, row0[2], row0[3], SENTINEL + 1, row0[5]]
    assert decoder_padding[1].tolist() == [False] * 3 + [True] * 3
    logits = out["span_logits"]
    assert logits.shape == (4, 6, VOCAB + 101)  # the vocabulary, 100 sentinels and the end
    valid = targets != -100
    expected = F.cross_entropy(logits[valid], targets[valid])  # the mean over the batch's 6 + 3 x 3 targets
    torch.testing.assert_close(out["losses"]["coco/span_mlm"], expected)


def test_span_loss_ignores_padding():
    """Three more padding columns on the caption (never chosen) change neither the loss nor the real logits."""
    model = build().eval()
    batch = span_batch()
    padded = dict(batch)
    padded["input_ids"] = F.pad(batch["input_ids"], (0, 3), value=0)
    padded["attention_mask"] = F.pad(batch["attention_mask"], (0, 3), value=0)
    padded["mlm_labels"] = F.pad(batch["mlm_labels"], (0, 3), value=-100)
    with torch.no_grad():
        plain, longer = model(batch), model(padded)
    torch.testing.assert_close(longer["losses"]["coco/span_mlm"], plain["losses"]["coco/span_mlm"])
    valid = plain["span_labels"] != -100
    torch.testing.assert_close(longer["span_logits"][valid], plain["span_logits"][valid])
    # and the loss is blind to the logits at padded target positions
    logits, targets = plain["span_logits"].clone(), plain["span_labels"]
    logits[~valid] = 1e4
    torch.testing.assert_close(F.cross_entropy(logits[valid], targets[valid]), plain["losses"]["coco/span_mlm"])


def class_state(model, batch, image_key="image"):
    """The decoder's state of the class token fed alone, over the fused streams, written out."""
    from projects.meter.encoder_decoder import word_embeddings

    feats = model.infer(batch["input_ids"], batch["attention_mask"], batch[image_key])
    table = word_embeddings(model.text_encoder)
    cls = table(torch.full((len(batch["input_ids"]), 1), CLS))  # [B, 1, D]
    return model.cross_modal_decoder(cls, None, feats.image, feats.image_padding, feats.text,
                                     feats.text_padding)[:, 0], feats


def test_itm_and_the_task_heads_read_the_decoders_class_token():
    model = build().eval()
    batches = meter_batches()
    with torch.no_grad():
        out = model(batches["coco"])
        state, feats = class_state(model, {**batches["coco"]}, "itm_image")
        torch.testing.assert_close(feats.cls_feats, state)  # [B, D]: no poolers
        assert state.shape == (4, 32)
        torch.testing.assert_close(out["itm_logits"], model.heads["itm_score"].fc(state))
        vqa = model(batches["vqa2"])
        state, _ = class_state(model, batches["vqa2"])
        head = model.heads["vqa_classifier"]
        torch.testing.assert_close(vqa["logits"], head.out(F.gelu(head.layer_norm(head.dense(state)))))
        assert (head.dense.in_features, head.dense.out_features) == (32, 32)  # hidden = input, as METER's
        snli = model(batches["snli_ve"])
        assert snli["logits"].shape == (4, 3) and set(snli["losses"]) == {"snli_ve/cross_entropy"}
    info = {"flickr30k": {"task_type": "retrieval_pairs", "vocab_size": VOCAB, "num_images": 2, "num_captions": 4}}
    retrieval = build(info=info).eval()
    pairs = {**batches["vqa2"], "dataset_name": "flickr30k", "task_type": "retrieval_pairs"}
    with torch.no_grad():
        state, _ = class_state(retrieval, pairs)
        torch.testing.assert_close(retrieval(pairs)["pair_score"], retrieval.heads["itm_score"].fc(state)[:, 1])


def test_nlvr2_concatenates_the_class_states_of_both_pictures():
    info = {"nlvr2": {"task_type": "classification", "vocab_size": VOCAB, "num_classes": 2, "images_per_example": 2}}
    model = build(info=info).eval()
    g = torch.Generator().manual_seed(1)
    batch = {**meter_batches()["snli_ve"], "dataset_name": "nlvr2", "label": torch.tensor([1, 0, 0, 1]),
             "image2": torch.randn(4, 3, 32, 32, generator=g)}
    head = model.heads["nlvr2_classifier"]
    assert (head.dense.in_features, head.dense.out_features) == (64, 32)  # [2D] -> D
    with torch.no_grad():
        out = model(batch)
        first = model.infer(batch["input_ids"], batch["attention_mask"], batch["image"], image_type=1)
        second = model.infer(batch["input_ids"], batch["attention_mask"], batch["image2"], image_type=2)
        pair = torch.cat([first.cls_feats, second.cls_feats], dim=-1)
        torch.testing.assert_close(out["logits"], head.out(F.gelu(head.layer_norm(head.dense(pair)))))


def test_every_parameter_trains_and_the_added_rows_are_shared():
    """Pre-training and VQA reach every weight; the sentinel, end, start and class rows of the text encoder's
    word embeddings get gradients (the encoder reads sentinels, the decoder embeds everything with it)."""
    from projects.meter.encoder_decoder import word_embeddings

    model = build()
    batches = meter_batches()
    loss = sum(sum(model(batch)["losses"].values()) for batch in (span_batch(), batches["vqa2"], batches["snli_ve"]))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    table = word_embeddings(model.text_encoder)
    assert table.weight.shape == (VOCAB + 103, 32)
    grads = table.weight.grad.abs().sum(dim=1)
    assert grads[SENTINEL] > 0 and grads[SENTINEL + 1] > 0 and grads[START] > 0 and grads[CLS] > 0
    assert grads[SENTINEL + 2] == 0  # no third span in this batch


def test_appended_rows_keep_the_loaded_table():
    from projects.meter.encoder_decoder import append_word_embeddings, word_embeddings
    from unimm.registry import ENCODERS

    for layers in ("all", "word_embeddings"):
        torch.manual_seed(0)
        text = ENCODERS.build({**TINY_TEXT, "vocab_size": VOCAB, "layers": layers}, path="text_encoder")
        old = word_embeddings(text).weight.detach().clone()
        table = append_word_embeddings(text, 3)
        assert word_embeddings(text) is table and table.weight.shape == (VOCAB + 3, 32)
        torch.testing.assert_close(table.weight[:VOCAB].detach(), old)
        assert text.config.vocab_size == VOCAB + 3
        hidden = text(torch.tensor([[2, VOCAB + 2, 3]])).hidden  # an added id reaches the encoder
        assert hidden.shape == (1, 3, 32) and torch.isfinite(hidden).all()


def test_bad_settings_are_refused():
    from unimm.config.errors import ConfigError

    with pytest.raises(ConfigError, match="widths must agree"):
        build({**NODE, "hidden_size": 64, "fusion": {"type": "co_attention", "num_layers": 1, "num_heads": 2}})
    with pytest.raises(ConfigError, match="no vocab_size"):
        build(info={"flickr30k": {"task_type": "retrieval_pairs", "num_images": 2, "num_captions": 4}})


def test_the_config_changes_only_the_architecture_and_its_metric():
    from unimm import session

    for variant in (None, "shapes"):
        ours, _ = session.prepare(METER / "ablations" / "encoder_decoder.yaml", [], variant=variant)
        default, _ = session.prepare(METER / "pretrain.yaml", [], variant=variant)
        assert ours["model"] == {**default["model"], "architecture": "encoder_decoder"}, variant
        assert ours["datasets"] == default["datasets"] and ours["optimizer"] == default["optimizer"]
        assert ours["training"] == default["training"]
        keys = [m["logits_key"] for m in ours["evaluation"]["metrics"]["coco"]]
        assert keys == ["itm_logits", "span_logits"]
    decoder = session.prepare(METER / "vqa2.yaml", ["model.architecture=encoder_decoder"], variant="shapes")[0]
    assert decoder["model"]["type"] == "meter_small" and decoder["model"]["architecture"] == "encoder_decoder"


def test_pretrain_then_vqa_fine_tuning_at_tiny_size(tiny_benchmark: Path, tmp_path: Path):
    """The shapes variant of ablations/encoder_decoder.yaml (as checkpoint.init_run of vqa2.yaml), then VQAv2
    with model.architecture=encoder_decoder from it: everything but the VQA head is loaded."""
    results = after_tiny_pretraining("vqa2.yaml", tiny_benchmark, tmp_path, "vqa", "model.architecture=encoder_decoder",
                                     f"checkpoint.init_run.config={METER / 'ablations' / 'encoder_decoder.yaml'}")
    pre_rows = [json.loads(line) for line in (tmp_path / "pre" / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in pre_rows if r["phase"] == "train"]
    assert max(r["update"] for r in trained) == 2 and {"coco/span_mlm", "coco/itm"} <= set(trained[-1])
    evaluated = [r for r in pre_rows if r["phase"] == "val"][-1]
    assert 0 <= evaluated["coco/itm_accuracy"] <= 1 and 0 <= evaluated["coco/span_accuracy"] <= 1
    assert 0 <= results["vqa2/vqa_accuracy"] <= 100
    log = (tmp_path / "vqa" / "train.log").read_text()
    assert re.search(r"METER parameters: .*decoder [\d,]+", log)
    report = log[log.index("INFO init_from"):]
    assert re.search(r"excluded\s+6\s+not selected by checkpoint.init_include: heads\.vqa_classifier\.", report)
    assert re.search(r"missing\s+0\n", report)  # the decoder and the appended token rows came from pre-training
