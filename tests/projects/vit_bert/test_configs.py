"""The ViT-BERT configs say what the paper says, chain their stages, and run end to end at tiny size.

Every YAML of projects/vit_bert is also validated (paper and shapes) by tests/projects/unit/test_configs.py.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers import check_project_runs
from tests.projects.unit.test_configs import resolved

VIT_BERT = REPO / "projects" / "vit_bert"
RUNNABLE = ["image_teacher", "text_teacher", "pretrain", "finetune_image", "finetune_sst2", "finetune_mnli",
            "finetune_qqp", "finetune_qnli", "finetune_rte"]
DATA = "/benchmark-root"


def config(name: str, variant: str | None = None) -> dict:
    return resolved(VIT_BERT / f"{name}.yaml", variant, (f"env.data_dir={DATA}",))


@pytest.mark.parametrize("variant", [None, "shapes"])
def test_pretraining_mixes_both_datasets_with_kd_and_gm_on_the_shared_encoder(variant):
    cfg = config("pretrain", variant)
    training, model = cfg["training"], cfg["model"]
    assert set(cfg["datasets"]) == {"images", "corpus"}
    assert set(training["batch_sizes"]) == {"images", "corpus"}
    if variant is None:
        assert training["batch_sizes"] == {"images": 4096, "corpus": 512}  # Sec. 4.3
        assert training["max_updates"] == 1_000_000
        assert cfg["optimizer"] == {"type": "adamw", "lr": 5e-4, "betas": [0.9, 0.999], "weight_decay": 0.01}
        assert cfg["scheduler"] == {"type": "polynomial", "warmup_steps": 10_000, "power": 1.0}
    assert model["distillation"] == {"type": "distillation", "alpha": 1.0, "temperature": 1.0}
    assert {n: t["datasets"] for n, t in model["teachers"].items()} == {"image": ["images"], "text": ["corpus"]}
    assert training["step_strategy"] == {"type": "masked_combine", "group_a": ["^corpus/"], "group_b": ["^images/"]}
    (mask,) = training["optimizer_hooks"]
    assert (mask["type"], mask["params"], mask["delta"], mask["beta"]) == ("iterative_gradient_mask", r"^encoder\.",
                                                                           0.1, 0.5)
    assert mask["every"] == (10_000 if variant is None else 20)


def test_the_mask_regex_selects_the_shared_encoder_and_nothing_else():
    from tests.projects.vit_bert.conftest import build

    pattern = re.compile(config("pretrain")["training"]["optimizer_hooks"][0]["params"])
    model = build({"type": "vit_bert_tiny"})
    chosen = {n for n, _ in model.named_parameters() if pattern.search(n)}
    assert chosen == {f"encoder.{n}" for n, _ in model.encoder.named_parameters()}


@pytest.mark.parametrize("variant", [None, "shapes"])
def test_the_chain_teachers_then_student_then_fine_tuning(variant):
    image_teacher, text_teacher = config("image_teacher", variant), config("text_teacher", variant)
    pretrain = config("pretrain", variant)
    assert set(image_teacher["datasets"]) == {"images"} and set(text_teacher["datasets"]) == {"corpus"}
    ckpt = pretrain["checkpoint"]
    # Algorithm 1 line 2: the student starts from the text teacher ("BERT"), which init_run trains first
    assert ckpt["init_from"] == f"{text_teacher['env']['save_dir']}/checkpoints/last"
    assert Path(ckpt["init_run"]["config"]) == VIT_BERT / "text_teacher.yaml"
    assert ckpt["init_include"] == [r"^text_tokenizer\.", r"^encoder\.", r"^heads\.corpus\."]
    (need,) = ckpt["needs"]  # the image teacher: an independent stage, trained first when absent
    assert Path(need["config"]) == VIT_BERT / "image_teacher.yaml"
    assert need["path"] == f"{image_teacher['env']['save_dir']}/checkpoints/last"
    teachers = pretrain["model"]["teachers"]
    assert teachers["image"]["checkpoint"] == need["path"] and teachers["text"]["checkpoint"] == ckpt["init_from"]
    for teacher, stage in ((teachers["image"], image_teacher), (teachers["text"], text_teacher)):
        assert teacher["model"] == stage["model"]  # the architecture the teacher's run builds
    for stage in (ckpt["init_run"], need):
        assert stage.get("variant") == variant
    for name in ("finetune_image", "finetune_sst2", "finetune_mnli", "finetune_qqp", "finetune_qnli", "finetune_rte"):
        fine = config(name, variant)["checkpoint"]
        assert fine["init_from"] == f"{pretrain['env']['save_dir']}/checkpoints/last"
        assert Path(fine["init_run"]["config"]) == VIT_BERT / "pretrain.yaml" and fine["init_run"]["variant"] == variant
        assert not any("heads" in p for p in fine["init_include"])  # supplementary A.2: new heads


@pytest.mark.parametrize("variant", [None, "shapes"])
def test_image_fine_tuning_is_sgd_cosine_clipped_at_a_higher_resolution(variant):
    cfg, pretrain = config("finetune_image", variant), config("pretrain", variant)
    assert cfg["model"]["image_size"] > pretrain["model"]["image_size"]
    if variant is None:
        assert (pretrain["model"]["image_size"], cfg["model"]["image_size"]) == (224, 384)
        assert cfg["training"]["batch_size"] == 512
    assert cfg["checkpoint"]["init_resize"] == [r"^image_tokenizer\.pos_embed$"]
    assert cfg["optimizer"]["type"] == "sgd" and cfg["optimizer"]["momentum"] == 0.9
    assert cfg["optimizer"]["weight_decay"] == 0.0 and cfg["training"]["clip_grad_norm"] == 1.0
    assert cfg["scheduler"]["type"] == "warmup_cosine"


@pytest.mark.parametrize("name, dataset, data_type", [("finetune_flowers102", "flowers102", "oxford_flowers102"),
                                                      ("finetune_pets", "pets", "oxford_pets")])
def test_flowers_and_pets_fine_tuning_is_finetune_image_for_500_steps_on_the_distributed_files(name, dataset,
                                                                                              data_type):
    cfg, image = config(name), config("finetune_image")
    assert cfg["training"]["max_updates"] == 500  # Sec. 4.1.1: 500 steps for Pets and Flowers
    for section in ("optimizer", "model"):
        assert cfg[section] == image[section]  # SGD 0.9, no weight decay; the 384-pixel model
    assert cfg["scheduler"] == {"type": "warmup_cosine", "warmup_steps": 100}  # BiT's warm-up for < 20K pictures
    assert {k: cfg["training"][k] for k in ("batch_size", "clip_grad_norm")} == {"batch_size": 512,
                                                                                 "clip_grad_norm": 1.0}
    for key in ("init_from", "init_include", "init_resize", "init_run"):
        assert cfg["checkpoint"][key] == image["checkpoint"][key]
    node = cfg["datasets"][dataset]
    assert node["type"] == data_type and node["data_dir"] == f"{DATA}/{dataset}"
    assert node["train_transform"] == image["datasets"]["images"]["train_transform"]
    assert node["eval_transform"] == image["datasets"]["images"]["eval_transform"]
    assert cfg["evaluation"]["split"] == "test" and cfg["evaluation"]["metrics"] == {dataset: ["accuracy"]}
    assert cfg["env"]["save_dir"].endswith(f"vit_bert_finetune_{dataset}")
    if dataset == "flowers102":  # fine-tuned on the official train and validation sets, scored on test
        assert node["split_sets"] == {"train": ["trnid", "valid"]}


def test_glue_fine_tuning_is_adamw_with_polynomial_decay_for_three_epochs():
    cfg = config("finetune_sst2")
    assert cfg["optimizer"]["type"] == "adamw" and cfg["optimizer"]["weight_decay"] == 0.01
    assert cfg["scheduler"]["type"] == "polynomial" and cfg["training"]["max_epochs"] == 3


def test_shapes_variants_read_the_benchmark_and_every_run_has_its_own_folder():
    check_project_runs(config, RUNNABLE, "vit_bert_small", DATA)


def test_the_readme_lists_every_runnable_config():
    readme = (VIT_BERT / "README.md").read_text()
    assert all(f"`{name}.yaml`" in readme for name in RUNNABLE)


# ----------------------------------------------------------------------------- the chain at tiny size

def as_list(items: list[str]) -> str:
    return "[" + ",".join(json.dumps(item) for item in items) + "]"


def rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_the_chain_runs_at_tiny_size(tiny_benchmark: Path, tmp_path: Path):
    """One command: fine-tuning trains ViT-BERT first, which trains its two teachers first (2 updates each)."""
    from unimm import session
    from unimm.training.checkpoint import read_weights

    runs = {name: tmp_path / name for name in ("image_teacher", "text_teacher", "pretrain", "finetune")}
    every_stage = ["vars.model_type=vit_bert_tiny", "vars.image_size=64",  # hidden 32, 2 layers, 2 heads
                   *(f"vars.{name}_run={folder}" for name, folder in runs.items() if name != "finetune"),
                   "training.max_updates=2", "training.batch_size=4", "training.batch_sizes={}",
                   "evaluation.max_batches=1", "evaluation.batch_size=8", "scheduler.warmup_steps=1",
                   "training.log_every=1"]
    overrides = [f"env.data_dir={tiny_benchmark}", "env.benchmark.size=tiny", "env.device=cpu",
                 f"vars.finetune_run={runs['finetune']}", *every_stage,  # the stages pass these on to theirs
                 "vars.stage_overrides=" + as_list(every_stage + ["vars.stage_overrides=" + as_list(every_stage)])]
    cfg, text = session.prepare(VIT_BERT / "finetune_image.yaml", overrides, variant="shapes")
    results = session.execute(cfg, text)

    assert 0 <= results["images/accuracy"] <= 1
    for name in ("image_teacher", "text_teacher", "pretrain"):
        assert max(r["update"] for r in rows(runs[name]) if r["phase"] == "train") == 2
    train = {k for r in rows(runs["pretrain"]) if r["phase"] == "train" for k in r}
    assert {"corpus/mlm", "corpus/nsp", "images/distillation"} <= train  # every head distilled from its teacher
    final = [r for r in rows(runs["pretrain"]) if r["phase"] == "val"][-1]
    assert 0 <= final["corpus/mlm_accuracy"] <= 1 and 0 <= final["corpus/accuracy"] <= 1  # MLM and NSP
    sparsity = [r["mask/sparsity"] for r in rows(runs["pretrain"]) if "mask/sparsity" in r]
    assert sparsity and sparsity[-1] == pytest.approx(0.1, abs=1e-3)  # one round of delta = 10% at update 0
    student = read_weights(runs["pretrain"] / "checkpoints" / "last")[1]
    assert {k.split(".")[0] for k in student} == {"image_tokenizer", "text_tokenizer", "encoder", "heads"}
    tuned = read_weights(Path(f"{runs['finetune']}_images") / "checkpoints" / "last")[1]
    assert tuned["image_tokenizer.pos_embed"].shape == (1, 1 + 6 * 6, 32)  # 96 pixels, 16x16 patches
    assert student["image_tokenizer.pos_embed"].shape == (1, 1 + 4 * 4, 32)  # 64 pixels

    cfg, text = session.prepare(VIT_BERT / "finetune_sst2.yaml", overrides, variant="shapes")
    results = session.execute(cfg, text)  # the same pre-trained run: found, checked, not trained again
    assert 0 <= results["sst2/accuracy"] <= 1
    assert max(r["update"] for r in rows(runs["pretrain"]) if r["phase"] == "train") == 2
    tuned = read_weights(Path(f"{runs['finetune']}_sst2") / "checkpoints" / "last")[1]
    assert {k.split(".")[0] for k in tuned} == {"text_tokenizer", "encoder", "heads"}  # a text-only model


@pytest.mark.parametrize("variant", [None, "shapes"])
def test_table_1_and_fig_2_rows_change_only_their_recipe(variant):
    base = config("pretrain", variant)
    rows = {name: resolved(VIT_BERT / "ablations" / f"{name}.yaml", variant, (f"env.data_dir={DATA}",))
            for name in ("pretrain_joint", "pretrain_no_kd", "pretrain_no_gm", "pretrain_random_mask")}
    weighted = {"type": "accumulate", "weights": {"images": 0.2, "corpus": 0.8}}  # supplementary Eq. 9, lambda 0.2
    joint, no_kd, no_gm, random_mask = rows.values()
    assert joint["model"]["distillation"] is None and not joint["model"]["teachers"]
    assert joint["training"]["step_strategy"] == weighted and joint["training"]["optimizer_hooks"] == []
    assert joint["checkpoint"]["needs"] == [] and no_kd["checkpoint"]["needs"] == []  # no image teacher to train
    assert no_kd["model"]["distillation"] is None and no_kd["training"] == base["training"]  # GM as ViT-BERT
    assert no_gm["model"] == base["model"] and no_gm["training"]["step_strategy"] == weighted
    assert no_gm["training"]["optimizer_hooks"] == []
    (mask,) = random_mask["training"]["optimizer_hooks"]
    (ours,) = base["training"]["optimizer_hooks"]
    assert mask == {**ours, "random": True}  # the same rounds, random entries
    for cfg in rows.values():  # every row starts where ViT-BERT starts, each in a folder of its own
        assert cfg["checkpoint"]["init_from"] == base["checkpoint"]["init_from"]
        assert cfg["env"]["save_dir"] != base["env"]["save_dir"]


@pytest.mark.parametrize("name, classes", [("flowers102", 102), ("pets", 37)])
def test_flowers_and_pets_fine_tune_on_the_official_fixture(name: str, classes: int, tmp_path: Path):
    """Two updates at tiny size on tests/assets/official, without the pre-training chain: a new head per dataset."""
    import math

    from unimm import session

    overrides = [f"env.data_dir={REPO / 'tests' / 'assets' / 'official'}", "env.device=cpu",
                 f"env.save_dir={tmp_path / 'run'}", "vars.model_type=vit_bert_tiny", "vars.finetune_image_size=32",
                 "checkpoint.init_from=null", "checkpoint.init_include=[]", "checkpoint.init_resize=[]",
                 "training.max_updates=2", "training.batch_size=4", "training.eval_every=2", "checkpoint.every=0",
                 "scheduler.warmup_steps=1", "evaluation.max_batches=1", "evaluation.batch_size=4"]
    cfg, text = session.prepare(VIT_BERT / f"finetune_{name}.yaml", overrides)
    results = session.execute(cfg, text)
    assert 0 <= results[f"{name}/accuracy"] <= 1
    assert results[f"{name}/cross_entropy"] == pytest.approx(math.log(classes), rel=0.05)  # a fresh head of `classes`
