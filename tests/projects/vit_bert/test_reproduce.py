"""tools/reproduce_vit_bert.py: what each Table 1 row keeps for fine-tuning, and its table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import load_tool, tool_fixture

REPO = Path(__file__).resolve().parents[3]
tool = tool_fixture("reproduce_vit_bert")


def test_a_text_teacher_gives_images_its_encoder_only(tool, tmp_path, monkeypatch):
    runner = tool.Runner(tool.VIT_BERT, "shapes", tmp_path, tmp_path / "data", seed=2)
    seen = {}
    monkeypatch.setattr(runner, "run", lambda name, config, overrides: seen.setdefault(name, overrides) and {})
    monkeypatch.setattr(tool, "has_weights", lambda run, pattern: "image" not in pattern)  # a text-only model
    runner.finetune("image", tmp_path / "seed2" / "text_teacher", "image_from_bert")
    overrides = seen["image_from_bert"]
    assert "checkpoint.init_include=" + json.dumps([r"^encoder\."]) in overrides
    assert "checkpoint.init_resize=[]" in overrides  # the image tokenizer starts random: nothing to resize
    assert "env.seed=2" in overrides and "checkpoint.init_run.config=null" in overrides
    runner.finetune("sst2", None, "sst2_from_rand_init")
    assert {"checkpoint.init_from=null", "~checkpoint.init_include"} <= set(seen["sst2_from_rand_init"])


def test_the_table_sets_rows_beside_the_paper(tool):
    per_seed = [{"image": {"ViT-BERT": 0.5, "Rand. Init.": 0.4}, "sst2": {"ViT-BERT": 0.9, "Rand. Init.": 0.95}},
                {"image": {"ViT-BERT": 0.7, "Rand. Init.": 0.4}, "sst2": {"ViT-BERT": 0.8, "Rand. Init.": 0.97}}]
    table = load_tool(REPO / "tools" / "reproduction.py").summarise(per_seed)
    text = tool.render("main", table, {"image": "chance 16.7", "sst2": "chance 50.0"}, [1, 2])
    assert "| ViT-BERT | 60.0 ± 14.1 | 85.0 ± 7.1 | 78.3 / 90.4 |" in text
    assert "| Rand. Init. | 40.0 ± 0.0 | 96.0 ± 1.4 | 19.5 / 80.5 |" in text


# ----------------------------------------------------------------------------- every GLUE column of Table 1

FAKE = {"images/accuracy": 0.20, "mnli/accuracy": 0.60, "qqp/accuracy": 0.70, "qnli/accuracy": 0.55,
        "sst2/accuracy": 0.90, "rte/accuracy": 0.50}


def fake_runs(tool, runner, monkeypatch, mismatched: float = 0.50) -> list[tuple[str, str, list[str]]]:
    """Every run the plan asks for, in order; each 'fine-tuning' returns FAKE, the mismatched evaluation its own."""
    seen = []

    def run(name, config, overrides):
        seen.append((name, config, overrides))
        return {"mnli/accuracy": mismatched} if "run_type=val" in overrides else dict(FAKE)

    monkeypatch.setattr(runner, "run", run)
    monkeypatch.setattr(tool, "has_weights", lambda run, pattern: True)
    return seen


def test_glue_all_fine_tunes_every_text_task_and_evaluates_mnli_mismatched(tool, tmp_path, monkeypatch):
    runner = tool.Runner(tool.VIT_BERT, "shapes", tmp_path, tmp_path / "data", seed=1, glue=tool.GLUE)
    seen = fake_runs(tool, runner, monkeypatch)
    rows = tool.table1(runner, ["ViT-BERT"])
    assert [(name, config) for name, config, _ in seen] == [
        ("pretrain", "pretrain.yaml"), ("image_from_vit-bert", "finetune_image.yaml"),
        ("mnli_from_vit-bert", "finetune_mnli.yaml"), ("qqp_from_vit-bert", "finetune_qqp.yaml"),
        ("qnli_from_vit-bert", "finetune_qnli.yaml"), ("sst2_from_vit-bert", "finetune_sst2.yaml"),
        ("rte_from_vit-bert", "finetune_rte.yaml"), ("mnli_from_vit-bert_mismatched", "finetune_mnli.yaml")]
    tuned = dict((name, overrides) for name, _, overrides in seen)
    assert "checkpoint.init_include=" + json.dumps([r"^text_tokenizer\.", r"^encoder\."]) in tuned["rte_from_vit-bert"]
    evaluation = tuned["mnli_from_vit-bert_mismatched"]  # the fine-tuned MNLI run's every weight, on dev mismatched
    assert {"run_type=val", "datasets.mnli.mnli_dev=mismatched", "~checkpoint.init_include",
            "checkpoint.init_run.config=null",
            f"checkpoint.init_from={tmp_path / 'seed1' / 'mnli_from_vit-bert'}/checkpoints/last"} <= set(evaluation)
    assert evaluation.index("~checkpoint.init_include") > max(
        i for i, o in enumerate(evaluation) if o.startswith("checkpoint.init_"))  # nothing sets it again after
    row = {task: columns["ViT-BERT"] for task, columns in rows.items()}
    assert row["mnli_m"] == 0.60 and row["mnli_mm"] == 0.50 and row["mnli"] == pytest.approx(0.55)
    assert row["text_avg"] == pytest.approx((0.55 + 0.70 + 0.55 + 0.90 + 0.50) / 5)  # MNLI counted once
    assert row["image"] == 0.20


def test_the_default_keeps_main_to_sst2_and_no_text_average(tool, tmp_path, monkeypatch):
    runner = tool.Runner(tool.VIT_BERT, "shapes", tmp_path, tmp_path / "data", seed=1)
    seen = fake_runs(tool, runner, monkeypatch)
    rows = tool.table1(runner, ["Rand. Init."])
    assert [name for name, _, _ in seen] == ["image_from_rand_init", "sst2_from_rand_init"]
    assert rows["text_avg"] == {"Rand. Init.": None} and "mnli" not in rows
    captured = {}
    monkeypatch.setattr(tool, "command_line", lambda *args: captured.update(make=args[3], argv=args[-1]) or 0)
    tool.main(["main", "--glue", "rte", "mnli", "--seeds", "1", "2"])
    assert captured["argv"] == ["main", "--seeds", "1", "2"]
    assert captured["make"](tmp_path, tmp_path, 1, False).glue == ("mnli", "rte")  # Table 1's order
    tool.main(["table1", "--glue", "all"])
    assert captured["make"](tmp_path, tmp_path, 1, False).glue == ("mnli", "qqp", "qnli", "sst2", "rte")


def test_the_table_shows_mnli_matched_and_mismatched_and_the_text_average(tool, tmp_path, monkeypatch):
    per_seed = []
    for mismatched in (0.50, 0.70):
        runner = tool.Runner(tool.VIT_BERT, "shapes", tmp_path, tmp_path / "data", seed=1, glue=tool.GLUE)
        fake_runs(tool, runner, monkeypatch, mismatched)
        per_seed.append(tool.table1(runner, ["ViT-BERT"]))
    table = load_tool(REPO / "tools" / "reproduction.py").summarise(per_seed)
    baselines = {"image": "chance 16.7", "mnli": "chance 33.3", "mnli_mm": "chance 33.4", "qqp": "majority 70.0",
                 "qnli": "chance 50.0", "sst2": "chance 50.0", "rte": "chance 50.0"}
    text = tool.render("main", table, baselines, [1, 2])
    assert ("| pre-training | image folder (FT, accuracy) | MNLI avg (m / mm) | QQP | QNLI | SST-2 (FT, accuracy) | RTE "
            "| text avg | paper (IN-1K, MNLI, QQP, QNLI, SST-2, RTE, text avg) |") in text
    # MNLI: (60 + 50) / 2 = 55 and (60 + 70) / 2 = 65; text avg: (55 + 70 + 55 + 90 + 50) / 5 = 64 and 66
    assert ("| ViT-BERT | 20.0 ± 0.0 | 60.0 ± 7.1 (60.0 / 60.0) | 70.0 ± 0.0 | 55.0 ± 0.0 | 90.0 ± 0.0 | 50.0 ± 0.0 "
            "| 65.0 ± 1.4 | 78.3 / 81.8 / 88.9 / 89.7 / 90.4 / 64.6 / 83.1 |") in text
    assert "MNLI-m: chance 33.3; MNLI-mm: chance 33.4; QQP: majority 70.0" in text


def test_a_random_init_row_runs_mnli_matched_and_mismatched_at_tiny_size(tool, tiny_benchmark, tmp_path):
    tiny = ["env.benchmark.size=tiny", "env.device=cpu", "vars.model_type=vit_bert_tiny", "training.max_epochs=null",
            "training.max_updates=2", "training.batch_size=4", "scheduler.warmup_steps=1", "evaluation.batch_size=8"]

    class Tiny(tool.Runner):
        def every(self):
            return [*super().every(), *tiny]

    runner = Tiny(tool.VIT_BERT, "shapes", tmp_path / "out", tiny_benchmark, seed=1, glue=("mnli", "rte"))
    row = runner.row("Rand. Init.", None)
    assert all(0 <= row[k] <= 1 for k in ("image", "mnli_m", "mnli_mm", "rte"))
    assert row["mnli"] == pytest.approx((row["mnli_m"] + row["mnli_mm"]) / 2) and row["text_avg"] is None
    folder = tmp_path / "out" / "seed1" / "mnli_from_rand_init_mismatched"
    saved = yaml.safe_load((folder / "config_val.yaml").read_text())
    assert saved["run_type"] == "val" and saved["datasets"]["mnli"]["mnli_dev"] == "mismatched"
    assert saved["checkpoint"]["init_from"] == f"{tmp_path / 'out' / 'seed1' / 'mnli_from_rand_init'}/checkpoints/last"
    assert saved["checkpoint"]["init_include"] == []  # the default: every weight, the fine-tuned head too
    assert json.loads((folder / "reproduce.json").read_text())["metrics"]["mnli/accuracy"] == row["mnli_mm"]
    assert runner.row("Rand. Init.", None) == row  # every run's record is there: read back, nothing run again
