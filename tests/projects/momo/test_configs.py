"""The MoMo configs say what the paper says, chain their stages, and run end to end at tiny size.

Every YAML of projects/momo is also validated (paper and shapes) by tests/projects/unit/test_configs.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers import check_project_runs, load_tool
from tests.projects.unit.test_configs import resolved

MOMO = REPO / "projects" / "momo"
REPRODUCTION = load_tool(REPO / "tools" / "reproduction.py")  # what a stage passes down the chain
RUNNABLE = ["stage1", "stage2", "stage3", "finetune_sst2", "finetune_qqp", "finetune_rte", "finetune_mnli",
            "finetune_qnli", "finetune_vqa2", "linear_eval", "zero_shot_retrieval"]
PAPER_ONLY = ["finetune_mrpc", "finetune_stsb"]  # the benchmark has no MRPC or STS-B
DATA = "/benchmark-root"
ENCODER_SIDE = [r"^image_tokenizer\.", r"^text_tokenizer\.", r"^encoder\."]


def config(name: str, variant: str | None = None) -> dict:
    return resolved(MOMO / f"{name}.yaml", variant, (f"env.data_dir={DATA}",))


@pytest.mark.parametrize("variant", [None, "shapes"])
def test_the_three_stages_train_what_section_3_2_says(variant):
    stage1, stage2, stage3 = (config(f"stage{i}", variant) for i in (1, 2, 3))
    assert stage1["model"]["pretraining"] == {"images": {"objectives": ["mim"]}}
    assert stage2["model"]["pretraining"] == {"images": {"objectives": ["mim"], "decoder": "image"},
                                              "corpus": {"objectives": ["mlm"], "decoder": "text"}}
    assert stage3["model"]["pretraining"] == {"corpus": {"objectives": ["mlm"], "decoder": "text"},
                                              "pairs": {"objectives": ["cmm", "contrastive", "itm"],
                                                        "decoder": "multimodal"}}
    for cfg in (stage2, stage3):  # Sec. 3.5: one batch of each modality, one optimizer step from both
        assert cfg["training"]["step_strategy"] == {"type": "accumulate",
                                                     "datasets": list(cfg["model"]["pretraining"])}
    steps = [step["type"] for step in stage3["datasets"]["pairs"]["train_transform"]["steps"]]
    assert ("rand_augment" in steps) == (variant is None)  # Sec. 3.6; not on the benchmark's colour words
    corpus = stage2["datasets"]["corpus"]
    assert corpus["mlm_probability"] == 0.0 and corpus["next_sentence"] is False  # the model masks by removal
    if variant is None:
        assert [c["optimizer"]["lr"] for c in (stage1, stage2, stage3)] == [2.4e-3, 5e-5, 1e-4]  # Sec. 3.6
        assert [c["scheduler"]["type"] for c in (stage1, stage2, stage3)] == ["warmup_cosine"] * 3
        assert stage1["scheduler"]["warmup_ratio"] == 0.025  # 40 of 1600 epochs
        for cfg in (stage2, stage3):  # 64 per device for each dataset
            assert cfg["training"]["batch_sizes"] == {n: 64 for n in cfg["model"]["pretraining"]}
        assert stage1["optimizer"]["betas"] == [0.9, 0.95] and stage1["optimizer"]["weight_decay"] == 0.05


@pytest.mark.parametrize("variant", [None, "shapes"])
def test_each_stage_starts_from_the_previous_and_downstream_from_stage_3(variant):
    runs = {i: config(f"stage{i}", variant)["env"]["save_dir"] for i in (1, 2, 3)}
    for i in (2, 3):
        ckpt = config(f"stage{i}", variant)["checkpoint"]
        assert ckpt["init_from"] == f"{runs[i - 1]}/checkpoints/last"
        assert Path(ckpt["init_run"]["config"]) == MOMO / f"stage{i - 1}.yaml"
        assert ckpt["init_run"].get("variant") == variant
        assert not any("decoders" in p for p in ckpt["init_include"])  # every stage has decoders of its own
    assert config("stage2", variant)["checkpoint"]["init_include"] == [r"^image_tokenizer\.", r"^encoder\."]
    assert config("stage3", variant)["checkpoint"]["init_include"] == ENCODER_SIDE
    text = [r"^text_tokenizer\.", r"^encoder\."]  # Sec. 3.3: the decoders are discarded
    kept = {**{f"finetune_{task}": text for task in ("sst2", "qqp", "rte", "mnli", "qnli")},
            "finetune_vqa2": ENCODER_SIDE,
            "linear_eval": [r"^image_tokenizer\.", r"^encoder\."],
            "zero_shot_retrieval": ENCODER_SIDE + [r"^image_projection\.", r"^text_projection\."]}
    for name, include in kept.items():
        ckpt = config(name, variant)["checkpoint"]
        assert ckpt["init_from"] == f"{runs[3]}/checkpoints/last"
        assert Path(ckpt["init_run"]["config"]) == MOMO / "stage3.yaml"
        assert ckpt["init_include"] == include
    assert config("linear_eval", variant)["model"]["linear_probe"] is True
    assert config("zero_shot_retrieval", variant)["run_type"] == "test"


def test_shapes_variants_read_the_benchmark_and_every_run_has_its_own_folder():
    check_project_runs(config, RUNNABLE, "momo_small", DATA)
    assert all(config(name)["model"]["type"] == "momo_base" for name in RUNNABLE)


def test_the_readme_lists_every_runnable_config():
    readme = (MOMO / "README.md").read_text()
    missing = [name for name in RUNNABLE + PAPER_ONLY if f"`{name}.yaml`" not in readme]
    assert not missing


def test_glue_and_vqa_report_the_papers_metrics():
    metrics = {name: config(name)["evaluation"]["metrics"] for name in PAPER_ONLY + ["finetune_qqp", "finetune_vqa2"]}
    assert metrics["finetune_mrpc"] == {"mrpc": ["f1"]} and metrics["finetune_qqp"] == {"qqp": ["f1"]}
    assert metrics["finetune_stsb"] == {"stsb": ["correlation"]}  # Pearson / Spearman (Table 2)
    assert metrics["finetune_vqa2"] == {"vqa2": [{"type": "vqa_accuracy", "per_answer_type": True}]}
    for name in PAPER_ONLY:
        assert config(name)["checkpoint"]["init_include"] == [r"^text_tokenizer\.", r"^encoder\."]


# ----------------------------------------------------------------------------- the chain at tiny size

def rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_the_three_stage_chain_runs_at_tiny_size(tiny_benchmark: Path, tmp_path: Path):
    """One command: fine-tuning trains stage 3, which trains stage 2, which trains stage 1 (2 updates each)."""
    from unimm import session
    from unimm.training.checkpoint import read_weights

    runs = {f"stage{i}": tmp_path / f"stage{i}" for i in (1, 2, 3)}
    every_stage = ["vars.model_type=momo_tiny", "vars.image_size=64",  # hidden 32, 2 layers, 16x16 patches
                   *(f"vars.{name}_run={folder}" for name, folder in runs.items()),
                   "training.max_updates=2", "training.batch_size=4", "~training.batch_sizes",
                   "evaluation.max_batches=1", "evaluation.batch_size=8", "training.log_every=1"]
    overrides = [f"env.data_dir={tiny_benchmark}", "env.benchmark.size=tiny", "env.device=cpu",
                 f"vars.finetune_run={tmp_path / 'finetune'}", *every_stage,
                 "vars.stage_overrides=" + REPRODUCTION.passed_on(every_stage, depth=3)]
    cfg, text = session.prepare(MOMO / "finetune_sst2.yaml", overrides, variant="shapes")
    results = session.execute(cfg, text)
    assert 0 <= results["sst2/accuracy"] <= 1

    expected = {"stage1": {"images/mim"}, "stage2": {"images/mim", "corpus/mlm"},
                "stage3": {"corpus/mlm", "pairs/cmm_image", "pairs/cmm_text", "pairs/contrastive", "pairs/itm"}}
    for name, losses in expected.items():
        train = [r for r in rows(runs[name]) if r["phase"] == "train"]
        assert max(r["update"] for r in train) == 2
        assert losses <= set(train[-1]), (name, train[-1])
        evaluated = [r for r in rows(runs[name]) if r["phase"] == "val"]
        assert losses <= set(evaluated[-1])  # validation losses on fixed masks
    for name, metrics in {"stage2": {"corpus/mlm_accuracy"}, "stage3": {"corpus/mlm_accuracy", "pairs/itm_accuracy"}
                          }.items():
        final = [r for r in rows(runs[name]) if r["phase"] == "val"][-1]
        assert metrics <= set(final) and all(0 <= final[m] <= 1 for m in metrics)
    stage = {name: read_weights(folder / "checkpoints" / "last")[1] for name, folder in runs.items()}
    assert {k.split(".")[0] for k in stage["stage1"]} == {"image_tokenizer", "encoder", "decoders"}
    assert {k.split(".")[1] for k in stage["stage3"] if k.startswith("decoders.")} == {"text", "multimodal"}
    tuned = read_weights(tmp_path / "finetune_sst2" / "checkpoints" / "last")[1]
    assert {k.split(".")[0] for k in tuned} == {"text_tokenizer", "encoder", "heads"}  # decoders dropped

    cfg, text = session.prepare(MOMO / "zero_shot_retrieval.yaml", overrides, variant="shapes")
    results = session.execute(cfg, text)  # stage 3 found, not trained again; no training at all
    assert 0 <= results["coco_retrieval/ir_tr_r1_r5_mean"] <= 1
    assert max(r["update"] for r in rows(runs["stage3"]) if r["phase"] == "train") == 2
