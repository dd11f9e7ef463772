"""Every YAML under projects/ validates, and the UniT configs say what the paper says.

A file is a runnable config when its leading comment shows the command that runs it
(``config=<its path>``); every other YAML is a part that some runnable config includes. UniT
configs are checked in the paper's setting and in the ``shapes`` variant. A last test runs
two training updates of the all-8 config on the tiny benchmark.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from unimm.config import flatten as flat, load_config, validate_config
from unimm.config.loader import find_config
from unimm.plugins import import_builtins, load_user_dirs

REPO = Path(__file__).resolve().parents[3]
PROJECTS = REPO / "projects"
UNIT = PROJECTS / "unit"
ALL_YAML = sorted(PROJECTS.rglob("*.yaml"))
DATA = "/benchmark-root"  # an env.data_dir that shows where every dataset path points

ALL8_RATIOS = {"coco": 0.20, "vg": 0.07, "vqa2": 0.26, "snli_ve": 0.12, "qnli": 0.10, "mnli": 0.10,
               "qqp": 0.10, "sst2": 0.05}  # Table A.2 line 2
ABLATION_RATIOS = {"coco": 0.30, "snli_ve": 0.50, "mnli": 0.20}  # Table A.2 line 3
SINGLE_TASK_COCO = UNIT / "single_task" / "coco.yaml"


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def leading_comment(path: Path) -> str:
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines[:next((i for i, l in enumerate(lines) if not l.startswith("#")),
                                                  len(lines))])


def is_runnable(path: Path) -> bool:
    """Whether the file's leading comment shows the command that runs it."""
    return f"config={rel(path)}" in leading_comment(path)


RUNNABLE = [p for p in ALL_YAML if is_runnable(p)]
PARTS = [p for p in ALL_YAML if not is_runnable(p)]
# UniT runs; includes/ holds the parts they include (shapes/backbone.yaml, the benchmark's backbone
# pretraining, is also runnable on its own)
UNIT_RUNNABLE = [p for p in RUNNABLE if UNIT in p.parents and UNIT / "includes" not in p.parents]
UNIT_MULTI = [p for p in UNIT_RUNNABLE if p.parent != UNIT / "single_task"]


def own_variants(path: Path) -> list[str]:
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    return sorted((raw.get("variants") or {}).keys())


def cases() -> list[Any]:
    found = []
    for path in RUNNABLE:
        paper_and_shapes = UNIT in path.parents and UNIT / "includes" not in path.parents  # includes/: building blocks
        variants = [None, "shapes"] if paper_and_shapes else [None, *own_variants(path)]
        found += [pytest.param(path, v, id=f"{rel(path)}-{v or 'paper'}") for v in variants]
    return found


@functools.lru_cache(maxsize=None)
def resolved(path: Path, variant: str | None, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """The validated config (plain containers); parts and the file's plugin folders imported first."""
    cfg = load_config(path, overrides, variant=variant)
    import_builtins()
    user_dirs = OmegaConf.to_container(cfg.env, resolve=True)["user_dir"]
    load_user_dirs(user_dirs)
    return validate_config(cfg)


@functools.lru_cache(maxsize=None)
def includes_of(path: Path) -> frozenset[Path]:
    """Every file ``path`` includes, directly or not, variants' includes too."""
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    direct = list(raw.get("includes") or [])
    for block in (raw.get("variants") or {}).values():
        direct += list(block.get("includes") or [])
    found: set[Path] = set()
    for name in direct:
        target = find_config(Path(name), path.parent)
        found |= {target} | includes_of(target)
    return frozenset(found)


# ----------------------------------------------------------------------------- every file

@pytest.mark.parametrize(("path", "variant"), cases())
def test_shipped_config_validates(path: Path, variant: str | None):
    cfg = resolved(path, variant)
    assert cfg["datasets"], rel(path)


@pytest.mark.parametrize("path", PARTS, ids=[rel(p) for p in PARTS])
def test_every_other_yaml_is_a_part_of_a_runnable_config(path: Path):
    users = [rel(p) for p in RUNNABLE if path.resolve() in includes_of(p)]
    assert users, f"{rel(path)} neither shows its command in its first comment nor is included by a config"
    assert path.read_text().startswith("#"), f"{rel(path)}: start with a comment saying what it holds"


def test_every_unit_file_outside_includes_shows_its_command():
    loose = [rel(p) for p in UNIT.rglob("*.yaml") if UNIT / "includes" not in p.parents and not is_runnable(p)]
    assert not loose, f"start these with a comment showing 'unimm_run config=<path>': {loose}"
    assert all(p.read_text().startswith("#") for p in UNIT_RUNNABLE)
    without = [rel(p) for p in UNIT_RUNNABLE if own_variants(p) != ["shapes"]]
    assert not without, f"give these their own 'variants: shapes:' block: {without}"


def test_the_project_readme_lists_every_unit_config():
    readme = (UNIT / "README.md").read_text()
    missing = [rel(p) for p in UNIT_RUNNABLE if f"| `{p.relative_to(UNIT).as_posix()}` |" not in readme]
    assert not missing, f"add these to the config table of projects/unit/README.md: {missing}"


def test_every_setting_of_tables_1_to_4_has_a_file():
    names = {rel(p).removeprefix("projects/unit/") for p in UNIT_RUNNABLE}
    single = {f"single_task/{d}.yaml" for d in ALL8_RATIOS}
    joint = {f"{s}{suffix}.yaml" for s in ("coco_vqa2", "vg_vqa2", "coco_vg_vqa2")
             for suffix in ("", "_separate", "_coco_init")}
    all8 = {f"all8{s}.yaml" for s in ("", "_separate", "_coco_init", "_separate_coco_init", "_no_task_embedding")}
    ablations = {f"ablations/{a}.yaml" for a in ("default", "decoder_layers_8", "decoder_layers_12",
                                                 "decoder_hidden_256", "all_bert_states", "all_layer_losses",
                                                 "no_task_embedding", "batch_size_32")}
    assert single | joint | all8 | ablations <= names, sorted((single | joint | all8 | ablations) - names)


# ----------------------------------------------------------------------------- UniT facts

UNIT_CASES = [pytest.param(p, v, id=f"{rel(p)}-{v or 'paper'}") for p in UNIT_RUNNABLE for v in (None, "shapes")]


PICTURE_TASKS = ("coco", "vg", "vqa2", "snli_ve")


def test_all8_samples_as_table_a2_line_2():
    ratios = resolved(UNIT / "all8.yaml", None)["training"]["sampler"]["ratios"]
    assert ratios == ALL8_RATIOS
    assert sum(ratios.values()) == pytest.approx(1.0)


def test_all8_shapes_gives_the_cheap_text_tasks_no_fewer_updates():
    training = resolved(UNIT / "all8.yaml", "shapes")["training"]
    ratios, updates = training["sampler"]["ratios"], training["max_updates"]
    assert sum(ratios.values()) == pytest.approx(1.0)
    for name in PICTURE_TASKS:  # about the updates 6000 x Table A.2 gives them
        assert ratios[name] * updates == pytest.approx(ALL8_RATIOS[name] * 6000, rel=0.05), name
    for name in set(ALL8_RATIOS) - set(PICTURE_TASKS):
        assert ratios[name] * updates >= ALL8_RATIOS[name] * 6000 - 1e-6, name


@pytest.mark.parametrize(("path", "variant"), UNIT_CASES)
def test_sampling_and_iterations_follow_the_paper(path: Path, variant):
    cfg = resolved(path, variant)
    names, training = set(cfg["datasets"]), cfg["training"]
    if len(names) == 1:
        assert training["optimizer_hooks"] == []
        if variant is None:
            assert training["max_updates"] == 150_000  # Sec. 4.1
        return
    sampler = training["sampler"]
    assert sampler["type"] == "ratios" and set(sampler["ratios"]) == names, "every dataset needs a ratio"
    ratios = sampler["ratios"]
    if path.parent == UNIT / "ablations":
        assert ratios == ABLATION_RATIOS
    elif len(names) < 8:  # Sec. 4.1 and Table A.2 line 1: equal probabilities
        assert len(set(ratios.values())) == 1
    elif variant is None:
        assert ratios == ALL8_RATIOS
    else:  # the shapes variants of all8.yaml sample as it does
        assert ratios == resolved(UNIT / "all8.yaml", "shapes")["training"]["sampler"]["ratios"]
    if variant is None:
        expected = 500_000 if len(names) == 8 or path.parent == UNIT / "ablations" else 150_000 * len(names)
        assert training["max_updates"] == expected


@pytest.mark.parametrize(("path", "variant"), [c for c in UNIT_CASES if c.values[0] in UNIT_MULTI])
def test_decoder_sharing_and_skip_zero_grad(path: Path, variant):
    cfg = resolved(path, variant)
    separate = "separate" in path.stem
    assert cfg["model"].get("shared_decoder", True) is (not separate)
    # Sec. 4.1 footnote 2: skipping the zero-gradient updates is the shared decoder's remedy.
    assert cfg["training"]["optimizer_hooks"] == ([] if separate else ["skip_zero_grad"])


CHECKPOINT_KEYS = {  # parameters of the single-task COCO model, for checking what init_include loads
    "backbone": "image_encoder.backbone.body.layer4.0.conv1.weight",
    "image encoder": "image_encoder.encoder.layers.0.linear1.weight",
    "task token": "image_encoder.task_tokens.tokens.coco",
    "projection": "image_proj.weight",
    "decoder": "decoder.transformer.layers.0.linear1.weight",
    "COCO queries": "decoder.queries.coco.weight",
    "COCO head": "heads.coco.class_embed.weight",
    "text encoder": "text_encoder.bert.encoder.layer.0.output.dense.weight",
}
SEC_4_1 = {"backbone", "image encoder", "task token", "COCO head"}  # image encoder and detection heads
SEC_4_2 = {"backbone", "image encoder", "task token", "projection", "decoder", "COCO queries"}  # and decoder
COCO_INIT = {"coco_vqa2_coco_init": SEC_4_1, "vg_vqa2_coco_init": SEC_4_1, "coco_vg_vqa2_coco_init": SEC_4_1,
             "all8_coco_init": SEC_4_2, "all8_separate_coco_init": SEC_4_2}


def test_every_coco_init_file_is_checked():
    assert {p.stem for p in UNIT_RUNNABLE if p.stem.endswith("_coco_init")} == set(COCO_INIT)


@pytest.mark.parametrize("variant", [None, "shapes"])
@pytest.mark.parametrize("name", sorted(COCO_INIT))
def test_coco_init_starts_from_the_single_task_coco_run(name, variant):
    from unimm.training.checkpoint import rename_keys

    ckpt = resolved(UNIT / f"{name}.yaml", variant)["checkpoint"]
    coco_run = resolved(SINGLE_TASK_COCO, variant)["env"]["save_dir"]
    assert ckpt["init_from"] == f"{coco_run}/checkpoints/last"
    renamed = rename_keys({key: torch.zeros(0) for key in CHECKPOINT_KEYS.values()}, ckpt["key_map"])
    what = dict(zip(renamed, CHECKPOINT_KEYS))  # model key -> what it is
    loaded = {what[key] for key in renamed if any(re.search(p, key) for p in ckpt["init_include"])}
    assert loaded == COCO_INIT[name]
    if "separate" in name:  # the single-task model's one decoder becomes COCO's own
        assert {key for key in renamed if what[key] in ("decoder", "COCO queries")} == {
            "decoders.coco.transformer.layers.0.linear1.weight", "decoders.coco.queries.coco.weight"}


@pytest.mark.parametrize("path", UNIT_RUNNABLE, ids=[rel(p) for p in UNIT_RUNNABLE])
def test_shapes_variant_reads_the_embedded_benchmark(path: Path):
    raw = load_config(path, variant="shapes")
    assert OmegaConf.to_container(raw.vars, resolve=False)["data"] == "${env.data_dir}/shapes"
    cfg = resolved(path, "shapes", (f"env.data_dir={DATA}",))
    assert cfg["env"]["benchmark"] == {"type": "shapes", "size": "default", "seed": 0}
    paths = {k: v for k, v in flat(cfg["datasets"]).items()
             if k.rsplit(".", 1)[-1] in ("data_dir", "image_dir", "vqa2_data_dir", "path")}
    assert paths and all(str(v).startswith(f"{DATA}/shapes/") for v in paths.values()), paths
    model = cfg["model"]
    assert model["type"] == "unit_small" or (model["type"] == "unit" and model["image_encoder"]["backbone"] == "tiny")


BACKBONE_STAGE = UNIT / "includes" / "shapes" / "backbone.yaml"
PICTURE_DATASETS = {"coco", "vg", "vqa2", "snli_ve"}


@pytest.mark.parametrize("path", UNIT_RUNNABLE, ids=[rel(p) for p in UNIT_RUNNABLE])
def test_shapes_runs_with_pictures_start_from_the_pretrained_backbone_or_the_coco_model(path: Path):
    cfg = resolved(path, "shapes", (f"env.data_dir={DATA}",))
    checkpoint = cfg["checkpoint"]
    if not PICTURE_DATASETS & set(cfg["datasets"]):
        assert checkpoint["init_from"] is None and checkpoint["init_run"]["config"] is None
        return
    stage = resolved(Path(checkpoint["init_run"]["config"]), checkpoint["init_run"]["variant"],
                     (f"env.data_dir={DATA}", *checkpoint["init_run"]["overrides"]))
    assert checkpoint["init_from"] == f"{stage['env']['save_dir']}/checkpoints/last"  # the stage writes it
    # a pretrained trunk trains at the paper setting's lower backbone LR
    assert cfg["training"]["param_groups"] == resolved(path, None)["training"]["param_groups"] == [
        {"pattern": r"^image_encoder\.backbone\.", "lr_mult": 0.2}]
    if "coco_init" in path.name:
        assert Path(checkpoint["init_run"]["config"]) == SINGLE_TASK_COCO
        assert r"^image_encoder\." in checkpoint["init_include"]  # the whole image encoder, as Sec. 4.2
    else:
        assert Path(checkpoint["init_run"]["config"]) == BACKBONE_STAGE
        assert checkpoint["init_include"] == [r"^image_encoder\.backbone\."]  # the trunk only


def test_the_backbone_stage_trains_unit_smalls_trunk_on_visual_genome_cells():
    from projects.unit.presets import SMALL

    cfg = resolved(BACKBONE_STAGE, None, (f"env.data_dir={DATA}",))
    model = cfg["model"]
    assert model["type"] == "cell_classifier"
    assert (model["backbone"], model["dilation"], model["frozen_batch_norm"], model["trainable_stages"]) == (
        SMALL.backbone, SMALL.dilation, SMALL.frozen_batch_norm, SMALL.trainable_stages)
    (name, dataset), = cfg["datasets"].items()
    assert (name, dataset["type"], dataset["data_dir"]) == ("vg", "visual_genome", f"{DATA}/shapes/vg")
    # the trunk sees the pictures at the size the VL tasks show them
    assert dataset["train_transform"] == dataset["eval_transform"] == cfg["vars"]["resize_800"]
    assert cfg["checkpoint"]["init_run"]["config"] is None and cfg["run_type"] in ("train", "train_val")
    runs = {resolved(p, v)["env"]["save_dir"] for p in UNIT_RUNNABLE for v in (None, "shapes")}
    assert cfg["env"]["save_dir"] not in runs


def test_every_run_has_its_own_folder():
    folders = [(resolved(p, v)["env"]["save_dir"], rel(p), v) for p in UNIT_RUNNABLE for v in (None, "shapes")]
    seen: dict[str, tuple] = {}
    for folder, name, variant in folders:
        assert folder not in seen, f"{name} ({variant}) writes to {folder} like {seen[folder]}"
        seen[folder] = (name, variant)


@pytest.mark.parametrize("path", UNIT_MULTI, ids=[rel(p) for p in UNIT_MULTI])
def test_shapes_table_has_a_row_per_dataset(path: Path):
    cfg = resolved(path, "shapes")
    tables = [c for c in cfg["training"]["callbacks"] if c["type"] == "baseline_table"]
    assert len(tables) == 1
    assert {key.split("/")[0] for key in tables[0]["rows"]} == set(cfg["datasets"])


@pytest.mark.parametrize("path", UNIT_RUNNABLE, ids=[rel(p) for p in UNIT_RUNNABLE])
def test_includes_the_training_and_dataset_files(path: Path):
    included = includes_of(path)
    assert UNIT / "includes" / "training.yaml" in included
    assert UNIT / "includes" / "shapes" / "base.yaml" in included
    datasets = {p.stem for p in included if p.parent == UNIT / "includes" / "datasets"}
    assert datasets == set(resolved(path, None)["datasets"])


class Per:
    """A value that differs between the paper's setting and the shapes variant."""

    def __init__(self, paper: Any, shapes: Any) -> None:
        self.paper, self.shapes = paper, shapes


SEPARATE = {"model.shared_decoder": False, "training.optimizer_hooks": []}
DERIVED = {  # file -> (the file it includes, the only keys it changes)
    "coco_vqa2_separate": ("coco_vqa2", SEPARATE),
    "vg_vqa2_separate": ("vg_vqa2", SEPARATE),
    "coco_vg_vqa2_separate": ("coco_vg_vqa2", SEPARATE),
    "all8_separate": ("all8", SEPARATE),
    "all8_no_task_embedding": ("all8", {"model.use_task_embedding": False}),
    "ablations/decoder_layers_8": ("ablations/default", {"model.decoder.num_layers": Per(8, 3)}),
    "ablations/decoder_layers_12": ("ablations/default", {"model.decoder.num_layers": Per(12, 4)}),
    "ablations/decoder_hidden_256": ("ablations/default", {"model.decoder.hidden_size": Per(256, 20)}),
    "ablations/all_bert_states": ("ablations/default", {"model.text_encoder.keep_only_cls": False}),
    "ablations/no_task_embedding": ("ablations/default", {"model.use_task_embedding": False}),
    "ablations/batch_size_32": ("ablations/default", {"training.batch_size": Per(1, 8)}),
}
COMPARED = ("model", "datasets", "optimizer", "scheduler", "training", "evaluation", "vars")


@pytest.mark.parametrize("variant", [None, "shapes"])
@pytest.mark.parametrize("name", sorted(DERIVED))
def test_a_variation_changes_only_its_setting(name, variant):
    base, changes = DERIVED[name]
    a = flat({k: v for k, v in resolved(UNIT / f"{name}.yaml", variant).items() if k in COMPARED})
    b = flat({k: v for k, v in resolved(UNIT / f"{base}.yaml", variant).items() if k in COMPARED})
    differing = {k: a.get(k) for k in set(a) | set(b) if a.get(k) != b.get(k) and ".callbacks" not in k}
    expected = {k: (getattr(v, "shapes" if variant else "paper") if isinstance(v, Per) else v)
                for k, v in changes.items()}
    assert differing == {k: v for k, v in expected.items() if b.get(k) != v}


def test_ablation_model_is_unit_paper_and_unit_small_written_out():
    """ablations/default.yaml spells out the presets' parts: the same parameters, name by name."""
    from projects.unit.presets import unit_small, unit_paper
    from unimm.registry import MODELS

    cats = [{"id": i + 1, "name": str(i)} for i in range(5)]
    info = {"coco": {"task_type": "detection", "categories": cats},
            "snli_ve": {"task_type": "classification", "num_classes": 3, "vocab_size": 100},
            "mnli": {"task_type": "text_classification", "num_classes": 3, "vocab_size": 100}}
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    bench = MODELS.build(resolved(UNIT / "ablations/default.yaml", "shapes")["model"], dataset_info=info)
    assert shapes(bench) == shapes(unit_small(info))
    with torch.device("meta"):
        paper = MODELS.build(resolved(UNIT / "ablations/default.yaml", None)["model"], dataset_info=info)
        assert shapes(paper) == shapes(unit_paper(info))


# ----------------------------------------------------------------------------- a tiny run

def test_all8_runs_two_updates_at_tiny_size(tiny_benchmark: Path, tmp_path: Path):
    from unimm import session
    from projects.unit.model import UniT
    from unimm.registry import MODELS
    from unimm.training.trainer import build_datasets, dataset_info

    overrides = [f"env.data_dir={tiny_benchmark}", "env.benchmark.size=tiny", "training.max_updates=2",
                 "scheduler.warmup_steps=0", f"env.save_dir={tmp_path / 'run'}", "env.device=cpu",
                 "training.batch_size=4", "evaluation.batch_size=8", "evaluation.max_batches=1",
                 "model.type=unit_tiny",  # hidden 32, 2 layers, 2 heads
                 f"vars.backbone_run={tmp_path / 'backbone'}",  # the backbone stage, kept out of the repository
                 f"checkpoint.init_run.overrides=[env.save_dir={tmp_path / 'backbone'},training.max_updates=2,"
                 "scheduler.warmup_steps=0,evaluation.max_batches=1,training.batch_size=4]"]
    cfg, text = session.prepare(UNIT / "all8.yaml", overrides, variant="shapes")
    assert cfg["model"]["type"] == "unit_tiny"

    datasets = build_datasets(cfg, "train")
    model = MODELS.build(cfg["model"], dataset_info=dataset_info(datasets))
    assert isinstance(model, UniT) and model.shared_decoder
    assert set(model.heads) == set(ALL8_RATIOS)
    assert {name for name, spec in model.tasks.items() if spec.task == "detection"} == {"coco", "vg"}

    results = session.execute(cfg, text)
    run = tmp_path / "run"
    assert {"coco/map", "vg/map", "vqa2/vqa_accuracy", "snli_ve/accuracy", "qnli/accuracy", "mnli/accuracy",
            "qqp/accuracy", "sst2/accuracy"} <= set(results)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(r["update"] for r in rows if r["phase"] == "train") == 2
    assert (run / "checkpoints" / "last").exists() and (run / "config.yaml").exists()
    assert (tmp_path / "backbone" / "checkpoints" / "last").exists()  # the stage ran first, where it was told
    stage_rows = [json.loads(line) for line in (tmp_path / "backbone" / "metrics.jsonl").read_text().splitlines()]
    assert any(0 <= r.get("vg/cell_accuracy", -1) <= 1 for r in stage_rows if r["phase"] == "val")
    table = (run / "results.md").read_text().splitlines()
    assert sum(line.startswith("| ") for line in table) == 1 + 8  # a header, the 8 metrics beside their baselines
