"""METER's encoder comparisons (Tables 3-5, ``projects/meter/encoders``): every choice validates at paper size
and shapes, the learning rates are Sec. 4.1.1's, each choice builds the encoder kind its table names, the
no-decay rule follows each encoder's names, a paper-size Table 4 row has the parameters its architecture
gives, and a shapes run goes end to end at tiny size."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from tests.models.part_cases.meter import meter_info
from unimm import session
from unimm.plugins import import_builtins, load_user_dirs

REPO = Path(__file__).resolve().parents[3]
ENCODERS = REPO / "projects" / "meter" / "encoders"
WITHOUT_VLP = ("vqa2.yaml", "snli_ve.yaml", "retrieval_flickr30k.yaml")  # Tables 3 and 4
WITH_VLP = ("pretrain.yaml", "vqa2_after_pretraining.yaml", "retrieval_zero_shot.yaml")  # Table 5
VISION = ("clip_b32", "clip_b16", "vit_b384_16", "deit_b384_16", "deit_distilled_b384_16", "swin_b384_32",
          "cait_m384_32", "volo_d4_448_32", "beit_b224_16")
TEXT = ("bert", "roberta", "emb_only", "electra", "deberta", "albert", "clip_text")
# Table 3: the text encoder under CLIP-B/32; Table 4: the vision encoder under RoBERTa
TABLE_ROWS = [("clip_b32", text) for text in TEXT] + [(vision, "roberta") for vision in VISION if vision != "clip_b32"]
# Table 5's pairs (Sec. 4.1.2)
VLP_ROWS = [("clip_b32", "emb_only"), ("clip_b32", "bert"), ("clip_b16", "bert"), ("clip_b32", "roberta"),
            ("clip_b16", "roberta"), ("swin_b384_32", "roberta")]


@pytest.fixture(scope="module", autouse=True)
def plugin():
    import_builtins()
    load_user_dirs([str(REPO / "projects" / "meter")])


def prepared(name: str, vision: str, text: str, variant: str | None = None, *extra: str) -> dict:
    cfg, _ = session.prepare(ENCODERS / name, [f"vars.vision={vision}", f"vars.text={text}", *extra], variant=variant)
    return cfg


@pytest.mark.parametrize("variant", [None, "shapes"])
@pytest.mark.parametrize("name", WITHOUT_VLP + WITH_VLP)
def test_every_row_validates(name: str, variant: str | None):
    rows = VLP_ROWS if name in WITH_VLP else TABLE_ROWS
    folders = set()
    for vision, text in rows:
        cfg = prepared(name, vision, text, variant)
        assert cfg["model"]["type"] == "meter" and cfg["datasets"]
        folders.add(cfg["env"]["save_dir"])
    assert len(folders) == len(rows)  # each row runs into a folder of its own


@pytest.mark.parametrize("variant", [None, "shapes"])
@pytest.mark.parametrize("name", WITHOUT_VLP)
def test_without_vlp_bottom_1e_5_and_top_1e_4_for_10_epochs(name: str, variant: str | None):
    """Sec. 4.1.1: bottom lr 1e-5, top (cross-modal layers and heads) 1e-4, 10 epochs, nothing pre-trained."""
    cfg = prepared(name, "clip_b32", "roberta", variant)
    rules = {rule["pattern"]: rule["lr_mult"] for rule in cfg["training"]["param_groups"]}
    assert rules == {"^heads\\.": 10.0, "cross_modal": 10.0}
    assert cfg["checkpoint"]["init_from"] is None and cfg["checkpoint"]["init_run"]["config"] is None
    if variant is None:
        assert cfg["optimizer"]["lr"] == 1e-5 and cfg["training"]["max_epochs"] == 10
        assert cfg["model"]["vision_encoder"]["pretrained_path"].endswith("pretrained/clip/ViT-B-32.pt")
        assert cfg["model"]["text_encoder"]["pretrained_path"].endswith("pretrained/roberta-base")
    else:  # random-init encoders, the same 1:10 between bottom and top
        assert cfg["optimizer"]["lr"] == 1e-4 and cfg["training"]["max_updates"] == (300 if "retrieval" in name else 600)
        assert cfg["model"]["vision_encoder"]["pretrained_path"] is None
    for key in ("betas", "weight_decay"):
        assert cfg["optimizer"][key] == {"betas": [0.9, 0.98], "weight_decay": 0.01}[key]


def test_task_settings_and_table5_stages():
    vqa = prepared("vqa2.yaml", "swin_b384_32", "roberta")
    assert vqa["training"]["batch_size"] * vqa["training"]["grad_accum_steps"] * 8 == 512
    assert vqa["model"]["vision_encoder"]["image_size"] == 384 and vqa["vars"]["image_size"] == 384
    snli = prepared("snli_ve.yaml", "clip_b16", "bert")
    assert (snli["training"]["batch_size"], snli["model"]["vision_encoder"]["image_size"]) == (64, 224)
    assert snli["datasets"]["snli_ve"]["tokenizer"]["type"] == "bert_tokenizer"
    irtr = prepared("retrieval_flickr30k.yaml", "clip_b32", "roberta")
    assert irtr["datasets"]["retrieval"]["train"]["negative_texts"] == 15
    assert irtr["datasets"]["retrieval"]["train"]["base"]["tokenizer"]["type"] == "roberta_tokenizer"
    pre = prepared("pretrain.yaml", "swin_b384_32", "roberta")  # Table 5: Sec. 3.3's pre-training
    assert [g["lr_mult"] for g in pre["training"]["param_groups"]] == [5.0, 5.0]
    assert (pre["optimizer"]["lr"], pre["training"]["max_updates"], pre["model"]["vision_encoder"]["image_size"]) == (
        1e-5, 100_000, 384)
    for variant in (None, "shapes"):
        after = prepared("vqa2_after_pretraining.yaml", "clip_b16", "bert", variant)
        stage = after["checkpoint"]["init_run"]
        assert stage["config"] == str(ENCODERS / "pretrain.yaml") and stage["variant"] == variant
        assert stage["overrides"] == ["vars.vision=clip_b16", "vars.text=bert"]
        assert after["checkpoint"]["init_from"].endswith("pretrain_clip_b16_bert/checkpoints/last")
    assert prepared("vqa2_after_pretraining.yaml", "clip_b16", "bert")["model"]["vision_encoder"]["image_size"] == 576
    swin = prepared("vqa2_after_pretraining.yaml", "swin_b384_32", "roberta")
    assert swin["vars"]["image_size"] == 384 and swin["checkpoint"]["init_resize"] == []


def build(cfg: dict, vocab: int | None = None):
    """The config's model for a VQA and an SNLI-VE dataset (the encoders' files must exist, or be null)."""
    from unimm.registry import MODELS

    info = {name: meter_info()[name] for name in ("vqa2", "snli_ve")}
    if vocab:
        info = {name: {**value, "vocab_size": vocab} for name, value in info.items()}
    torch.manual_seed(0)
    return MODELS.build(cfg["model"], path="model", dataset_info=info)


def test_each_choice_builds_the_kind_its_table_names():
    """At shapes size (random init): CLIP's pre-norm QuickGELU ViT with one block dropped and B/32's coarser
    grid, ViT / DeiT / distilled DeiT, Swin's four stages pooled by their mean; BERT, RoBERTa, a word lookup."""
    from timm.models.deit import VisionTransformerDistilled
    from timm.models.swin_transformer import SwinTransformer
    from timm.models.vision_transformer import VisionTransformer

    seen = {}
    for vision, text in TABLE_ROWS:
        model = build(prepared("vqa2.yaml", vision, text, "shapes"))
        encoder = model.vision_encoder
        seen[vision] = (type(encoder.model), encoder.pooling, encoder.num_prefix_tokens, encoder.hidden_size)
        if vision == "clip_b32":
            seen[text] = (model.text_encoder.kind, model.text_encoder.model is None)
        if vision.startswith("clip"):
            assert len(encoder.model.blocks) == 2 and type(encoder.model.norm_pre).__name__ == "LayerNorm"
            assert type(encoder.model.blocks[0].mlp.act).__name__ == "QuickGELU"
    assert seen["clip_b32"][0] is VisionTransformer and seen["vit_b384_16"][:3] == (VisionTransformer, "first", 1)
    assert seen["deit_distilled_b384_16"][:3] == (VisionTransformerDistilled, "first", 2)
    assert seen["swin_b384_32"] == (SwinTransformer, "mean", 0, 64)
    from timm.models.beit import Beit
    from timm.models.cait import Cait
    from timm.models.volo import VOLO

    assert seen["cait_m384_32"] == (Cait, "first", 1, 64) and seen["volo_d4_448_32"] == (VOLO, "first", 1, 64)
    assert seen["beit_b224_16"] == (Beit, "first", 1, 64)
    tokens = {v: build(prepared("vqa2.yaml", v, "bert", "shapes")).vision_encoder(torch.zeros(1, 3, 64, 64)).hidden
              for v in ("cait_m384_32", "volo_d4_448_32", "beit_b224_16")}
    assert {v: t.shape[1] for v, t in tokens.items()} == {v: 1 + 8 * 8 for v in tokens}  # class token + 8 x 8
    grids = {v: build(prepared("vqa2.yaml", v, "bert", "shapes")).vision_encoder.grid for v in ("clip_b32", "clip_b16")}
    assert grids == {"clip_b32": (4, 4), "clip_b16": (8, 8)}  # /32 against /16: half the grid
    assert (seen["bert"], seen["roberta"], seen["emb_only"]) == (("bert", False), ("roberta", False), ("bert", True))
    assert {t: seen[t] for t in ("electra", "deberta", "albert", "clip_text")} == {
        t: (t, False) for t in ("electra", "deberta", "albert", "clip_text")}
    paper = {v: prepared("vqa2.yaml", v, "roberta")["model"]["vision_encoder"] for v in VISION}
    assert {v: (n["type"], n.get("patch_size"), n["image_size"]) for v, n in paper.items()} == {
        "clip_b32": ("clip_vit_encoder", 32, 224), "clip_b16": ("clip_vit_encoder", 16, 224),
        "vit_b384_16": ("vit_encoder", 16, 384), "deit_b384_16": ("vit_encoder", 16, 384),
        "deit_distilled_b384_16": ("vit_encoder", 16, 384), "swin_b384_32": ("swin_encoder", 4, 384),
        # Table 4's resolutions; the sizes are the builders' defaults, timm's cait_m36_384 / volo_d4_448 /
        # beit_base_patch16_224 (tests/models/test_vision_transformers.py compares them with timm's)
        "cait_m384_32": ("cait_encoder", None, 384), "volo_d4_448_32": ("volo_encoder", None, 448),
        "beit_b224_16": ("beit_encoder", None, 224)}
    assert paper["swin_b384_32"]["window_size"] == 12 and paper["deit_distilled_b384_16"]["distilled"] is True
    assert paper["deit_b384_16"]["pretrained_path"] != paper["vit_b384_16"]["pretrained_path"]


def decay_free(vision: str, text: str = "roberta") -> tuple[set[str], set[str]]:
    """Names without and with weight decay under the config's training.no_decay (shapes model)."""
    from unimm.training.optimizers import param_groups

    cfg = prepared("vqa2.yaml", vision, text, "shapes")
    model = build(cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    free, decayed = set(), set()
    for group in param_groups(model, cfg["training"]["param_groups"], 1e-4, 0.01, no_decay=cfg["training"]["no_decay"]):
        (free if group["weight_decay"] == 0 else decayed).update(names[id(p)] for p in group["params"])
    return free, decayed


def test_no_decay_follows_each_encoders_names():
    """METER's substring rule (bias, LayerNorm.weight, norm.weight, norm1/norm2.weight): CLIP's ln_* decay (the
    vision encoder's exception); Swin's norm1 / norm2 / downsample.norm / patch_embed.norm / norm do not, nor
    its relative_position_bias_table ("bias" is in its name); ViT / DeiT as Swin."""
    free, decayed = decay_free("swin_b384_32")
    swin_norms = {n for n in free | decayed if n.startswith("vision_encoder.") and re.search(r"norm\d?\.weight$", n)}
    assert {"vision_encoder.model.patch_embed.norm.weight", "vision_encoder.model.norm.weight",
            "vision_encoder.model.layers.1.downsample.norm.weight",
            "vision_encoder.model.layers.0.blocks.0.norm1.weight"} <= swin_norms <= free
    assert "vision_encoder.model.layers.0.blocks.0.attn.relative_position_bias_table" in free
    assert "vision_encoder.model.layers.0.blocks.0.attn.qkv.weight" in decayed
    free, decayed = decay_free("clip_b16")
    assert {"vision_encoder.model.norm_pre.weight", "vision_encoder.model.blocks.0.norm1.weight",
            "vision_encoder.model.norm.weight"} <= decayed  # METER's ln_pre, ln_1, ln_post
    assert "vision_encoder.model.blocks.0.norm1.bias" in free
    assert "text_encoder.model.embeddings.LayerNorm.weight" in free
    assert "cross_modal_fusion.text_layers.0.output.LayerNorm.weight" in free
    free, _ = decay_free("deit_distilled_b384_16")
    assert {"vision_encoder.model.blocks.0.norm1.weight", "vision_encoder.model.norm.weight"} <= free


def test_no_decay_for_cait_volo_beit_and_the_table3_text_encoders():
    """Table 4's timm models under METER's rule read on timm's names (norms caught, LayerScale and VOLO's stem
    BatchNorm not; BEiT's fc_norm caught as "norm.weight" is); Table 3's text LayerNorms caught, ALBERT's FFN
    norm too (its name holds "norm.weight"), CLIP's text LayerNorms decay (METER's clip_model names them ln_*)."""
    free, decayed = decay_free("cait_m384_32", "albert")
    assert {"vision_encoder.model.blocks.0.norm1.weight", "vision_encoder.model.blocks_token_only.0.norm2.weight",
            "vision_encoder.model.norm.weight"} <= free
    assert {"vision_encoder.model.blocks.0.gamma_1", "vision_encoder.model.cls_token"} <= decayed
    assert {"text_encoder.model.embeddings.LayerNorm.weight",
            "text_encoder.model.encoder.albert_layer_groups.0.albert_layers.0.full_layer_layer_norm.weight",
            "text_encoder.model.encoder.albert_layer_groups.0.albert_layers.0.attention.LayerNorm.weight"} <= free
    free, decayed = decay_free("volo_d4_448_32", "clip_text")
    assert {"vision_encoder.model.network.0.0.norm1.weight", "vision_encoder.model.post_network.1.norm2.weight",
            "vision_encoder.model.norm.weight"} <= free
    assert "vision_encoder.model.patch_embed.conv.1.weight" in decayed  # the stem's BatchNorm
    assert {"text_encoder.model.encoder.layers.0.layer_norm1.weight",
            "text_encoder.model.final_layer_norm.weight"} <= decayed
    free, decayed = decay_free("beit_b224_16", "deberta")
    assert {"vision_encoder.model.fc_norm.weight", "vision_encoder.model.blocks.1.norm2.weight",
            "vision_encoder.model.blocks.0.attn.q_bias",
            "vision_encoder.model.blocks.0.attn.relative_position_bias_table",
            "text_encoder.model.encoder.layer.0.attention.output.LayerNorm.weight"} <= free
    assert {"vision_encoder.model.blocks.0.gamma_1", "text_encoder.model.encoder.rel_embeddings.weight"} <= decayed
    free, _ = decay_free("swin_b384_32", "electra")
    assert "text_encoder.model.encoder.layer.1.output.LayerNorm.weight" in free


# Swin-B-384 (window 12) from its architecture: a block of width C and h heads holds 12 C^2 + 13 C weights
# (two LayerNorms, qkv, projection, MLP x4) and a (2 * 12 - 1)^2 x h relative-position table; patch merging
# C -> 2C holds a LayerNorm over 4C and Linear(4C, 2C) without bias.
def swin_b_384() -> int:
    def block(c: int, h: int) -> int:
        return 12 * c * c + 13 * c + 23 ** 2 * h

    stages = [(128, 4, 2), (256, 8, 2), (512, 16, 18), (1024, 32, 2)]
    total = 3 * 4 * 4 * 128 + 128 + 2 * 128  # patch embedding and its LayerNorm
    total += sum(depth * block(c, h) for c, h, depth in stages)
    total += sum(8 * c + 8 * c * c for c in (128, 256, 512))  # patch merging before stages 2-4
    return total + 2 * 1024  # final LayerNorm


SWIN_B_384 = 86_878_584
VIT_B_384_16 = 3 * 16 * 16 * 768 + 768 + 768 + (1 + 24 * 24) * 768 + 12 * 7_087_872 + 2 * 768  # 86,090,496
ROBERTA_BASE = 124_055_040  # without pooler (REFERENCE_NOTES 1.1)
CO_ATTENTION = 113_421_312  # 12 x BertCrossLayer


def top(vision_width: int) -> int:
    """Fusion, the two projections (the image one from the vision width), two token types, two poolers."""
    return CO_ATTENTION + (768 * 768 + 768) + (vision_width * 768 + 768) + 2 * 768 + 2 * (768 * 768 + 768)


def test_paper_size_table4_rows_on_the_meta_device():
    """Table 4's Swin-B-384/32 and ViT-B-384/16 rows with RoBERTa-base, built without their files."""
    from projects.meter.model import count_parts

    assert swin_b_384() == SWIN_B_384  # timm's swin_base_patch4_window12_384 is 87.9M with its 1,025,000-weight head
    counts = {}
    for vision, width in (("swin_b384_32", 1024), ("vit_b384_16", 768)):
        cfg = prepared("vqa2.yaml", vision, "roberta", None, f"vars.vision_encoders.{vision}.pretrained_path=null",
                       "vars.text_encoders.roberta.pretrained_path=null", "vars.text_encoders.roberta.kind=roberta")
        with torch.device("meta"):
            counts[vision] = count_parts(build(cfg, vocab=50265))
        assert counts[vision]["text_encoder"] == ROBERTA_BASE
        assert counts[vision]["fusion_with_transforms_token_types_poolers"] == top(width)
        assert counts[vision]["heads.vqa_classifier"] == 1536 * 1536 + 1536 + 2 * 1536 + 1536 * 11 + 11
    assert counts["swin_b384_32"]["vision_encoder"] == SWIN_B_384
    assert counts["vit_b384_16"]["vision_encoder"] == VIT_B_384_16 == 86_090_496
    assert top(1024) == 115_981_824
    backbone = sum(counts["swin_b384_32"][k] for k in ("vision_encoder", "text_encoder",
                                                       "fusion_with_transforms_token_types_poolers"))
    assert backbone == 326_915_448


def test_a_shapes_row_runs_end_to_end_at_tiny_size(tiny_benchmark: Path, tmp_path: Path):
    """Table 4's Swin row without VLP: no pre-training stage, random-init small encoders, two updates."""
    overrides = [f"env.data_dir={tiny_benchmark}", "env.benchmark.size=tiny", f"env.save_dir={tmp_path / 'run'}",
                 "env.device=cpu", "vars.vision=swin_b384_32", "vars.text=roberta", "training.max_updates=2",
                 "training.batch_size=4", "evaluation.max_batches=1", "evaluation.batch_size=8",
                 "model.fusion.intermediate_size=64", "vars.text_encoders.roberta.intermediate_size=64"]
    cfg, text = session.prepare(ENCODERS / "vqa2.yaml", overrides, variant="shapes")
    results = session.execute(cfg, text)
    assert 0 <= results["vqa2/vqa_accuracy"] <= 100
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(r["update"] for r in rows if r["phase"] == "train") == 2
    log = (tmp_path / "run" / "train.log").read_text()
    assert "init_from" not in log  # nothing but the (random) encoders: no checkpoint, no stage
    assert "METER parameters: vision_encoder" in log
    table = {line.split()[0]: line.split() for line in log[log.rindex("parameter groups"):].splitlines()
             if line.startswith(("training.param_groups", "default"))}
    assert table["training.param_groups[0]"][1:3] == ["0.001", "0.01"]  # the heads at 10 x 1e-4
    assert table["training.param_groups[1]/no_decay"][1:3] == ["0.001", "0"]  # cross-modal x10, no decay
    assert table["default"][1:3] == ["0.0001", "0.01"] and table["default/no_decay"][1:3] == ["0.0001", "0"]
    assert "vision_encoder.model.patch_embed.norm.weight," in table["default/no_decay"]  # Swin's norms: no decay


# Without classifiers, timm's cait_m36_384, volo_d4_448 and beit_base_patch16_224 (their counts are checked against
# timm's models in tests/models/test_vision_transformers.py); Table 3's text encoders without pooler, from their
# released configs (counted by hand in tests/models/test_hf_text_encoder.py).
TABLE4_VISION = {"cait_m384_32": 270_452_352, "volo_d4_448_32": 191_875_104, "beit_b224_16": 85_761_984}
TABLE3_TEXT = {"electra": (108_891_648, 768), "deberta": (138_601_728, 768), "albert": (54_528_512, 2048),
               "clip_text": (63_165_952, 512)}


def test_paper_size_table3_and_table4_rows_on_the_meta_device():
    """Table 4's CaiT / VOLO / BEiT rows with RoBERTa-base and Table 3's text rows with CLIP-B/32, built from
    their configs without their files: each encoder's count, and the top sized by the encoders' widths."""
    from projects.meter.model import count_parts

    for vision, expected in TABLE4_VISION.items():
        cfg = prepared("vqa2.yaml", vision, "roberta", None, f"vars.vision_encoders.{vision}.pretrained_path=null",
                       "vars.text_encoders.roberta.pretrained_path=null", "vars.text_encoders.roberta.kind=roberta")
        with torch.device("meta"):
            counts = count_parts(build(cfg, vocab=50265))
        assert counts["vision_encoder"] == expected and counts["text_encoder"] == ROBERTA_BASE
        assert counts["fusion_with_transforms_token_types_poolers"] == top(768)
    for text, (expected, width) in TABLE3_TEXT.items():
        vocab = {"electra": 30522, "deberta": 50265, "albert": 30000, "clip_text": 49408}[text]
        cfg = prepared("vqa2.yaml", "clip_b32", text, None, "vars.vision_encoders.clip_b32.pretrained_path=null",
                       f"vars.text_encoders.{text}.pretrained_path=null", f"vars.text_encoders.{text}.kind={text}")
        with torch.device("meta"):
            counts = count_parts(build(cfg, vocab=vocab))
        assert counts["text_encoder"] == expected
        # the text projection takes the text encoder's width (ALBERT-xlarge 2048, CLIP's text tower 512)
        assert counts["fusion_with_transforms_token_types_poolers"] == top(768) + (width - 768) * 768
