"""tools/reproduce_meter.py: what each fine-tuning run starts from, and its table."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import load_tool, tool_fixture

REPO = Path(__file__).resolve().parents[3]
tool = tool_fixture("reproduce_meter")


def test_fine_tuning_starts_from_this_seeds_pretraining_or_from_scratch(tool, tmp_path, monkeypatch):
    runner = tool.Runner(tool.METER, "shapes", tmp_path, tmp_path / "data", seed=4)
    seen = {}
    monkeypatch.setattr(runner, "run", lambda name, config, overrides: seen.setdefault(name, (config, overrides))
                        and {})
    runner.finetune("snli_ve", tmp_path / "seed4" / "pretrain", "pretrained")
    runner.finetune("vqa2", None, "random_init")
    config, overrides = seen["snli_ve_pretrained"]
    assert config == "snli_ve.yaml" and "env.seed=4" in overrides
    assert f"checkpoint.init_from={tmp_path / 'seed4' / 'pretrain'}/checkpoints/last" in overrides
    config, overrides = seen["vqa2_random_init"]
    assert config == "vqa2.yaml"
    assert {"checkpoint.init_from=null", "~checkpoint.init_include", "checkpoint.init_resize=[]"} <= set(overrides)


def test_retrieval_ir_and_tr_come_from_one_fine_tuning_run(tool, tmp_path, monkeypatch):
    runner = tool.Runner(tool.METER, "shapes", tmp_path, tmp_path / "data", seed=1)
    seen = []

    def run(name, config, overrides):
        seen.append((name, config))
        return {"retrieval/ir_r1": 0.03, "retrieval/tr_r1": 0.05}

    monkeypatch.setattr(runner, "run", run)
    found = [runner.finetune(task, None, "random_init") for task in ("flickr30k_ir", "flickr30k_tr")]
    assert found == [0.03, 0.05] and {name for name, _ in seen} == {"retrieval_flickr30k_random_init"}


def test_the_table_and_the_baselines(tool, tiny_benchmark):
    table = load_tool(REPO / "tools" / "reproduction.py").summarise(
        [{"vqa2": {"pre-trained": 0.45, "random init": 0.46}, "snli_ve": {"pre-trained": 0.66, "random init": 0.6}}])
    shown = tool.baselines_of(tiny_benchmark)
    assert "question_only_prior" in shown["vqa2"] and "hypothesis_only" in shown["snli_ve"]
    assert "sentence_only 50.0" in shown["nlvr2"] and shown["flickr30k_ir"] == tool.RETRIEVAL_CHANCE
    text = tool.render("main", table, shown, [1])
    assert "| SNLI-VE (accuracy) | 80.86 | 66.0 | 60.0 | chance 33.3" in text


def test_the_ablation_plan_and_its_table(tool, tmp_path, monkeypatch):
    """Tables 6, 7, 10: each pre-training setting, VQAv2 and zero-shot retrieval from it (none after MLM alone)."""
    runner = tool.Runner(tool.METER, "shapes", tmp_path, tmp_path / "data", seed=2)
    seen = {}

    def run(name, config, overrides):
        seen[name] = (config, overrides)
        return {"vqa2/vqa_accuracy": 0.4, "flickr30k/ir_r1": 0.01, "flickr30k/tr_r1": 0.02}

    monkeypatch.setattr(runner, "run", run)
    rows = tool.ablation_rows(runner)
    assert seen["pretrain"][0] == "pretrain.yaml" and seen["merged_attention"][0] == "ablations/merged_attention.yaml"
    assert "model.fusion=merged_attention" in seen["vqa2_after_merged_attention"][1]
    assert "model.fusion=merged_attention" in seen["zero_shot_after_merged_attention"][1]
    assert f"checkpoint.init_from={tmp_path / 'seed2' / 'itm_only'}/checkpoints/last" in seen["vqa2_after_itm_only"][1]
    assert "vqa2_pretrained" in seen and "zero_shot_after_mlm_only" not in seen  # MLM leaves no matching head
    assert set(rows["ablation_vqa2"]) == set(tool.ABLATIONS) and "mlm_only" not in rows["ablation_zero_shot_ir1"]
    table = load_tool(REPO / "tools" / "reproduction.py").summarise([rows])
    text = tool.render("ablations", table, {}, [2])
    assert "| Table 7: merged attention | 74.00 | 57.46 / 73.10 | 40.0 | 1.0 / 2.0 |" in text
    assert "| Table 10: MLM only | 74.19 | - | 40.0 | - |" in text
    # Table 7's encoder-decoder row: its downstream runs take the architecture and its own checkpoint
    assert seen["encoder_decoder"][0] == "ablations/encoder_decoder.yaml"
    for run_name in ("vqa2_after_encoder_decoder", "zero_shot_after_encoder_decoder"):
        assert "model.architecture=encoder_decoder" in seen[run_name][1]
        assert f"checkpoint.init_from={tmp_path / 'seed2' / 'encoder_decoder'}/checkpoints/last" in seen[run_name][1]
    assert "| Table 7: encoder-decoder (3 + 3 layers, span LM + ITM through a class token) | unreadable in our " \
           "copy | unreadable in our copy | 40.0 | 1.0 / 2.0 |" in text


def test_the_encoder_plan_and_its_table(tool, tmp_path, monkeypatch):
    """Tables 3 and 4 without VLP: each built row fine-tuned on VQAv2 and SNLI-VE from the encoders alone; the
    shared RoBERTa + CLIP-B/32 row and DeiT (ViT's model from random init) run once."""
    runner = tool.Runner(tool.METER, "shapes", tmp_path, tmp_path / "data", seed=3)
    seen = {}

    def run(name, config, overrides):
        seen[name] = (config, overrides)
        score = 0.3 + 0.01 * len(seen)
        return {"vqa2/vqa_accuracy": score, "snli_ve/accuracy": score + 0.3}

    monkeypatch.setattr(runner, "run", run)
    rows = tool.encoder_rows(runner)
    pairs = {("clip_b32", "bert"), ("clip_b32", "roberta"), ("clip_b32", "emb_only"), ("vit_b384_16", "roberta"),
             ("deit_distilled_b384_16", "roberta"), ("swin_b384_32", "roberta"), ("clip_b16", "roberta"),
             ("clip_b32", "electra"), ("clip_b32", "deberta"), ("clip_b32", "albert"), ("clip_b32", "clip_text"),
             ("cait_m384_32", "roberta"), ("volo_d4_448_32", "roberta"), ("beit_b224_16", "roberta")}
    assert set(seen) == {f"no_vlp_{task}_{v}_{t}" for v, t in pairs for task in ("vqa2", "snli_ve")}
    config, overrides = seen["no_vlp_snli_ve_swin_b384_32_roberta"]
    assert config == "encoders/snli_ve.yaml"
    assert overrides == ["env.seed=3", "vars.vision=swin_b384_32", "vars.text=roberta"]
    assert not any("init_from" in item for _, items in seen.values() for item in items)  # no pre-training
    built = {"bert", "roberta", "emb_only", "vit", "deit", "deit_distilled", "swin", "clip_b16", "electra", "deberta",
             "albert", "clip_text", "cait", "volo", "beit"}  # every row of Tables 3 and 4
    assert set(rows["encoders_vqa2"]) == set(rows["encoders_snli_ve"]) == built
    assert rows["encoders_vqa2"]["deit"] == rows["encoders_vqa2"]["vit"]
    table = load_tool(REPO / "tools" / "reproduction.py").summarise([rows])
    text = tool.render("encoders", table, {"vqa2": "majority 25.1", "snli_ve": "chance 33.3"}, [3])
    # swin's runs are the 23rd and 24th
    assert (rows["encoders_vqa2"]["swin"], rows["encoders_snli_ve"]["swin"]) == pytest.approx((0.53, 0.84))
    assert "| 4 | RoBERTa + Swin-B-384/32 | 72.38 | 77.65 | 52.30 / 69.50 | 53.0 | 84.0 |" in text
    assert "| 3 | ELECTRA + CLIP-B-224/32 | 69.22 | 76.57 | 41.80 / 58.30 |" in text and "not built" not in text
    assert "| 4 | RoBERTa + CaiT-M-384/32 (timm cait_m36_384) | 71.52 | 76.62 | 38.96 / 61.30 |" in text
    assert "| 3, 4 | RoBERTa + CLIP-B-224/32 | 69.69 | 76.53 | 49.86 / 68.90 |" in text  # Table 4's CLIP-B/32 row
    assert "| 3 | Emb-only + CLIP-B-224/32 | 67.13 | 74.85 | 49.06 / 68.20 |" in text
    assert "RoBERTa + DeiT-B-384/16 (the vit_b384_16 run" in text and "Benchmark baselines: vqa2 majority 25.1" in text
    assert sum(line.startswith("| ") for line in text.splitlines()) == 1 + 15  # header + the tables' 15 rows


def test_the_encoder_plan_validates(tool, tiny_benchmark, tmp_path, capsys):
    assert tool.main(["encoders", "--dry-run", "--out", str(tmp_path), "--data-dir", str(tiny_benchmark)]) == 0
    out = capsys.readouterr().out
    assert out.count("ok  no_vlp_") == 28 and "encoders/vqa2.yaml" in out  # 14 encoder pairs x 2 tasks
