"""METER's configs: each runnable file has a shapes variant and a row in the README, the paper settings
are the reference code's, and a tiny pre-train -> VQA fine-tune chain runs through the session.

Every YAML under projects/ is also validated (paper and shapes) by tests/projects/unit/test_configs.py.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from omegaconf import OmegaConf

from unimm import session

REPO = Path(__file__).resolve().parents[3]
METER = REPO / "projects" / "meter"
RUNNABLE = sorted(p for p in METER.rglob("*.yaml") if f"config=projects/meter/{p.relative_to(METER).as_posix()}"
                  in p.read_text().split("\n", 1)[0])


def test_runnable_configs_have_a_shapes_variant_and_a_readme_row():
    assert {p.name for p in RUNNABLE} >= {"pretrain.yaml", "vqa2.yaml", "snli_ve.yaml", "nlvr2.yaml"}
    readme = (METER / "README.md").read_text()
    for path in RUNNABLE:
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        assert "shapes" in (raw.get("variants") or {}), path.name
        assert f"`{path.relative_to(METER).as_posix()}`" in readme, path.name


def test_paper_settings_of_the_reference_code():
    pre, _ = session.prepare(METER / "pretrain.yaml", [])
    vqa, _ = session.prepare(METER / "vqa2.yaml", [])
    assert pre["optimizer"] == {"type": "adamw", "lr": 1e-5, "betas": [0.9, 0.98], "eps": 1e-8, "weight_decay": 0.01}
    assert pre["scheduler"] == {"type": "warmup_linear", "warmup_ratio": 0.1, "end_lr_ratio": 0.0}
    assert pre["training"]["max_updates"] == 100_000
    assert pre["training"]["batch_size"] * pre["training"]["grad_accum_steps"] * 8 == 4096
    assert pre["model"]["type"] == "meter_paper" and pre["datasets"]["coco"]["mlm_probability"] == 0.15
    assert [g["lr_mult"] for g in pre["training"]["param_groups"]] == [5.0, 5.0]
    assert [g["lr_mult"] for g in vqa["training"]["param_groups"]] == [50.0, 5.0]
    assert vqa["optimizer"]["lr"] == 5e-6 and vqa["training"]["max_epochs"] == 10
    assert vqa["model"]["image_size"] == 576 and vqa["datasets"]["vqa2"]["train_transform"]["rand_augment_ops"] == 2
    assert vqa["checkpoint"]["init_run"]["config"].endswith("projects/meter/pretrain.yaml")
    assert vqa["checkpoint"]["init_include"] == ["^(?!heads\\.)"] and vqa["checkpoint"]["init_resize"] == ["pos_embed$"]
    snli, _ = session.prepare(METER / "snli_ve.yaml", [])
    assert snli["optimizer"]["lr"] == 2e-6 and [g["lr_mult"] for g in snli["training"]["param_groups"]] == [10.0, 5.0]
    assert (snli["training"]["batch_size"], snli["training"]["max_epochs"], snli["model"]["image_size"]) == (64, 5, 384)
    assert snli["checkpoint"]["init_include"] == vqa["checkpoint"]["init_include"]
    nlvr2, _ = session.prepare(METER / "nlvr2.yaml", [])
    assert nlvr2["optimizer"]["lr"] == 1e-5 and [g["lr_mult"] for g in nlvr2["training"]["param_groups"]] == [10.0, 5.0]
    assert (nlvr2["training"]["batch_size"] * 8, nlvr2["training"]["max_epochs"], nlvr2["model"]["image_size"]) == (
        256, 10, 288)
    for name in ("flickr30k", "coco"):
        irtr, _ = session.prepare(METER / f"retrieval_{name}.yaml", [])
        assert irtr["optimizer"]["lr"] == 5e-6 and [g["lr_mult"] for g in irtr["training"]["param_groups"]] == [5.0, 5.0]
        assert (irtr["training"]["batch_size"], irtr["training"]["max_epochs"], irtr["model"]["image_size"]) == (
            512, 10, 384)
        train = irtr["datasets"]["retrieval"]["train"]
        assert (train["negative_texts"], train["itm"], train["mlm_probability"]) == (15, True, 0.0)
        assert irtr["datasets"]["retrieval"]["eval"]["sample_per"] == "pair"


TINY = ["model.type=meter_tiny", "training.max_updates=2", "training.batch_size=4", "evaluation.max_batches=1",
        "evaluation.batch_size=8"]


def after_tiny_pretraining(config: str, tiny_benchmark: Path, tmp_path: Path, run: str, *extra: str) -> dict:
    """``config`` (shapes variant) run into ``tmp_path/run`` from a tiny pre-training that its
    ``checkpoint.init_run`` trains first into ``tmp_path/pre``; its final metrics."""
    overrides = [f"env.data_dir={tiny_benchmark}", "env.benchmark.size=tiny", f"env.save_dir={tmp_path / run}",
                 "env.device=cpu", *TINY, f"checkpoint.init_from={tmp_path / 'pre' / 'checkpoints' / 'last'}",
                 f"checkpoint.init_run.overrides=[env.save_dir={tmp_path / 'pre'},{','.join(TINY)}]", *extra]
    cfg, text = session.prepare(METER / config, overrides, variant="shapes")
    return session.execute(cfg, text)


def test_ablations_change_only_what_their_table_varies():
    for variant in (None, "shapes"):
        merged, _ = session.prepare(METER / "ablations" / "merged_attention.yaml", [], variant=variant)
        assert merged["model"]["fusion"] == "merged_attention", variant
        mlm, _ = session.prepare(METER / "ablations" / "mlm_only.yaml", [], variant=variant)
        itm, _ = session.prepare(METER / "ablations" / "itm_only.yaml", [], variant=variant)
        assert (mlm["datasets"]["coco"]["itm"], mlm["datasets"]["coco"]["mlm_probability"]) == (False, 0.15)
        assert (itm["datasets"]["coco"]["itm"], itm["datasets"]["coco"]["mlm_probability"]) == (True, 0.0)
        uniform, _ = session.prepare(METER / "ablations" / "uniform_lr.yaml", [], variant=variant)
        default, _ = session.prepare(METER / "pretrain.yaml", [], variant=variant)
        assert uniform["training"]["param_groups"] == [] and default["training"]["param_groups"]
        assert uniform["model"] == default["model"] and uniform["optimizer"] == default["optimizer"]
        for name, head in (("mim_in_batch", "mim_in_batch_head"), ("mim_discrete", "mim_code_head")):
            mim, _ = session.prepare(METER / "ablations" / f"{name}.yaml", [], variant=variant)
            assert mim["model"]["mim"]["type"] == head, (name, variant)  # the shapes model node keeps it
            assert {k: v for k, v in mim["model"].items() if k != "mim"} == default["model"]
            assert mim["datasets"] == default["datasets"] and mim["optimizer"] == default["optimizer"]
        codes = session.prepare(METER / "ablations" / "mim_discrete.yaml", [], variant=variant)[0]["model"]["mim"]
        assert codes["tokenizer"]["patch_size"] == (8 if variant else 16)  # the vision encoder's patch grid


def test_pretrain_then_vqa_fine_tuning_at_tiny_size(tiny_benchmark: Path, tmp_path: Path):
    results = after_tiny_pretraining("vqa2.yaml", tiny_benchmark, tmp_path, "vqa")

    pre_rows = [json.loads(line) for line in (tmp_path / "pre" / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in pre_rows if r["phase"] == "train"]
    assert max(r["update"] for r in trained) == 2 and {"coco/mlm", "coco/itm"} <= set(trained[-1])
    evaluated = [r for r in pre_rows if r["phase"] == "val"][-1]
    assert 0 <= evaluated["coco/itm_accuracy"] <= 1 and 0 <= evaluated["coco/mlm_accuracy"] <= 1

    assert 0 <= results["vqa2/vqa_accuracy"] <= 100
    rows = [json.loads(line) for line in (tmp_path / "vqa" / "metrics.jsonl").read_text().splitlines()]
    assert max(r["update"] for r in rows if r["phase"] == "train") == 2
    log = (tmp_path / "vqa" / "train.log").read_text()
    assert "parameter groups" in log and "METER parameters" in log
    # the fine-tuned model started from the pre-trained one: every weight loaded but the VQA head's 6
    report = log[log.index("INFO init_from"):]
    assert re.search(r"excluded\s+6\s+not selected by checkpoint.init_include: heads\.vqa_classifier\.", report)
    from safetensors.torch import load_file

    weights = load_file(next((tmp_path / "vqa" / "checkpoints").glob("update_*/model.safetensors")))
    assert re.search(rf"loaded\s+{len(weights) - 6}\s", report) and re.search(r"missing\s+0\n", report)
    assert (tmp_path / "vqa" / "results.md").exists()  # the shapes variant's table beside the baselines


def test_pretrain_then_nlvr2_fine_tuning_at_tiny_size(tiny_benchmark: Path, tmp_path: Path):
    """NLVR2 from a pre-training checkpoint: its two-row token-type table gains the second image's row."""
    results = after_tiny_pretraining("nlvr2.yaml", tiny_benchmark, tmp_path, "nlvr2")
    assert 0 <= results["nlvr2/accuracy"] <= 1
    log = (tmp_path / "nlvr2" / "train.log").read_text()
    assert "token_type_embeddings.weight extended to 3 rows" in log
    report = log[log.index("INFO init_from"):]
    assert re.search(r"excluded\s+6\s+not selected by checkpoint.init_include: heads\.nlvr2_classifier\.", report)
    assert re.search(r"missing\s+0\n", report)


def test_pretrain_then_retrieval_fine_tuning_at_tiny_size(tiny_benchmark: Path, tmp_path: Path):
    """Flickr30k fine-tuning: 1 + 15 texts ranked by rank_output (from the ITM "match" row), ITM frozen,
    then every val pair scored by rank_output."""
    results = after_tiny_pretraining("retrieval_flickr30k.yaml", tiny_benchmark, tmp_path, "irtr",
                                     "vars.retrieval.eval_images=4", "evaluation.max_batches=null")
    assert set(results) >= {f"retrieval/{d}_r{k}" for d in ("ir", "tr") for k in (1, 5, 10)}
    rows = [json.loads(line) for line in (tmp_path / "irtr" / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in rows if r["phase"] == "train"]
    assert {"retrieval/itm", "retrieval/irtr"} <= set(trained[-1])
    log = (tmp_path / "irtr" / "train.log").read_text()
    assert "rank_output starts as heads.itm_score.fc's 'match' row" in log
    report = log[log.index("INFO init_from"):]
    assert re.search(r"missing\s+0\n", report)
    groups = log[log.rindex("parameter groups"):]  # this run's (the pre-training stage logs here first)
    assert "heads.itm_score" not in groups  # frozen: in no optimizer group
    assert "images have every text scored" not in log


def test_dry_run_prints_every_parameter_in_its_group_with_its_rate(tiny_benchmark: Path, capsys):
    """Issue-prone in the reference: which parameters train at which rate. --dry-run shows it, runs nothing."""
    from unimm.cli.run import main

    args = [f"config={METER / 'pretrain.yaml'}", "variant=shapes", f"env.data_dir={tiny_benchmark}",
            "env.benchmark.size=tiny", "model.type=meter_tiny", "optimizer.lr=0.001", "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    report = out[out.index("parameter groups (training.param_groups"):]
    assert "training.param_groups[0]: lr 0.005, weight decay 0.01" in report  # heads x5
    assert "training.param_groups[1]/no_decay: lr 0.005, weight decay 0" in report  # cross-modal x5, no decay
    assert "default: lr 0.001, weight decay 0.01" in report  # the encoders
    heads = report[report.index("training.param_groups[0]: "):report.index("training.param_groups[0]/no_decay: ")]
    assert "  heads.mlm_score.dense.weight\n" in heads and "  heads.itm_score.fc.weight\n" in heads
    assert re.search(r"\n  cross_modal_fusion\.text_layers\.N\.attention\.self\.query\.weight x\d+\n", report)
    paper = main([f"config={METER / 'pretrain.yaml'}", "env.data_dir=/nonexistent", "--dry-run"])
    assert paper == 0
    assert "parameter groups: not shown (building the model from the train datasets failed:" in \
        capsys.readouterr().out


def test_pretrain_then_zero_shot_retrieval_scores_every_pair(tiny_benchmark: Path, tmp_path: Path):
    """Zero-shot Flickr30k: the pre-trained ITM head scores every (image, caption) pair of the test split."""
    results = after_tiny_pretraining("retrieval_zero_shot.yaml", tiny_benchmark, tmp_path, "zs",
                                     "evaluation.max_batches=null", "evaluation.batch_size=64")
    assert set(results) >= {f"flickr30k/{d}_r{k}" for d in ("ir", "tr") for k in (1, 5, 10)}
    assert all(0 <= v <= 1 for v in results.values())
    log = (tmp_path / "zs" / "test.log").read_text()
    report = log[log.index("INFO init_from"):]
    assert re.search(r"missing\s+0\n", report) and re.search(r"excluded\s+0\n", report)  # the ITM head included
    assert "images have every text scored" not in log  # every pair was scored: no partial matrix
