"""tools/reproduce_vit_bert.py: what each Table 1 row keeps for fine-tuning, and its table."""
from __future__ import annotations

import json
from pathlib import Path


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
