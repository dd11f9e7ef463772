"""tools/reproduce_momo.py: the overrides it passes down the chain, and its table from per-seed results."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import load_tool, tool_fixture

REPO = Path(__file__).resolve().parents[3]
tool = tool_fixture("reproduce_momo")


def test_a_run_passes_on_what_its_stage_of_the_chain_passes_on(tool, tmp_path):
    runner = tool.Runner(tool.MOMO, "shapes", tmp_path, tmp_path / "data", seed=3)
    every = ["env.seed=3", *(f"vars.stage{i}_run={tmp_path / 'seed3' / f'stage{i}'}" for i in (1, 2, 3))]
    assert runner.chain_overrides(1) == every
    level3 = runner.chain_overrides(3)[-1]
    assert level3.startswith("vars.stage_overrides=")
    passed = json.loads(level3.split("=", 1)[1])  # stage 3 tells stage 2 ...
    assert passed[:4] == every and passed[4].startswith("vars.stage_overrides=")
    assert json.loads(passed[4].split("=", 1)[1]) == every  # ... which tells stage 1 only what every run gets
    assert json.loads(runner.chain_overrides(2)[-1].split("=", 1)[1]) == every  # a level-2 ablation: as stage 2


def test_the_table_gives_mean_and_spread_over_seeds_beside_paper_and_baselines(tool):
    per_seed = [{"sst2": {"stage 3": 0.90, "random init": 0.95}, "linear_eval": {"stage 3": 0.20},
                 "retrieval": {"stage 3": 0.05}},
                {"sst2": {"stage 3": 0.80, "random init": 0.97}, "linear_eval": {"stage 3": 0.30},
                 "retrieval": {"stage 3": None}}]
    table = load_tool(REPO / "tools" / "reproduction.py").summarise(per_seed)
    assert table["sst2"]["stage 3"] == pytest.approx((85.0, 7.0711, 2), abs=1e-4)
    assert table["retrieval"]["stage 3"] == (5.0, 0.0, 1)  # a missing value is left out, not zero
    text = tool.render("main", table, {"sst2": "chance 50.0", "linear_eval": "chance 16.7",
                                       "vqa2": "chance 4.6", "retrieval": "chance 1.5"}, [1, 2])
    assert "| SST-2 (FT, accuracy) | 80.1 / 89.4 / 89.6 | 85.0 ± 7.1 | 96.0 ± 1.4 | chance 50.0 |" in text
    assert "| COCO zero-shot (R@1/5 mean) | - / - / 64.0 | 5.0 | - | chance 1.5 |" in text


def test_baselines_come_from_the_benchmarks_file(tool, tiny_benchmark):
    shown = tool.baselines_of(tiny_benchmark)
    assert set(shown) == {"sst2", "linear_eval", "vqa2", "retrieval"}
    assert "question_only_prior" in shown["vqa2"]
    assert shown["sst2"].startswith("chance 50.0, majority ") and "bag_of_words" in shown["sst2"]
    assert shown["retrieval"].startswith("chance ")
