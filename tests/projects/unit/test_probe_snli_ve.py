"""projects/unit/probe_snli_ve.py: its reading of the hypotheses, its existence reader, one tiny run probed."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("probe_snli_ve", REPO / "projects" / "unit" / "probe_snli_ve.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_hypotheses_are_read_for_their_described_object(tool):
    texts = ["There is a large cross that is a gift from a friend.", "The orange star is very heavy.",
             "The red circle is above the blue squares.", "The background is striped."]
    assert tool.described(texts[0]) == {"shape": ["cross"], "colour": [], "size": ["large"]}
    shapes = tool.word_class(texts, "shape").tolist()
    none = len(tool.WORDS["shape"])
    assert shapes == [tool.WORDS["shape"].index("cross"), tool.WORDS["shape"].index("star"), none, none]
    hot = tool.oracle(texts[:2])
    vocabulary = [w for words in tool.WORDS.values() for w in words]
    assert [vocabulary[i] for i in hot[0].nonzero().flatten()] == ["cross", "large"]
    assert [vocabulary[i] for i in hot[1].nonzero().flatten()] == ["star", "orange"]
    names = ["contradiction", "neutral", "entailment"]
    labels = torch.tensor([1, 0, 0, 2])
    keep, present = tool.unseen_property(texts, labels, names)
    assert keep.tolist() == [True, True, False, False] and present[keep].tolist() == [1, 0]


def test_statements_are_sorted_by_the_template_that_wrote_them(tool):
    written = {"There is a small red circle in the picture.": "exists",
               "There are two blue squares.": "count", "There is one star.": "count",
               "There are no green crosses.": "count", "There are no shapes in the picture.": "count",
               "The star is purple.": "colour", "The red circle is left of the blue square.": "relation",
               "The background is checkered.": "background", "The picture is made of wood.": "unseen",
               "There is a star that is brand new.": "unseen", "The red circle is very heavy.": "unseen"}
    assert {text: tool.statement_kind(text) for text in written} == written


def test_answers_by_kind_rank_contradictions_against_the_kinds_other_label(tool):
    names = ["contradiction", "neutral", "entailment"]
    texts = ["The background is striped."] * 4 + ["The star is very heavy."] * 3
    labels = torch.tensor([2, 2, 0, 0, 1, 1, 0])
    # margins logit(contradiction) - logit(other): background, entailment -1, 1 / contradiction 1, -3;
    # unseen, neutral -1, -2 / contradiction -1.5
    logits = torch.tensor([[0.0, 0, 1], [2, 0, 1], [1, 0, 0], [0, 0, 3], [0, 1, 0], [0, 2, 0], [0, 1.5, 0]])
    rows = tool.by_kind(texts, labels, logits, names)
    assert [r["kind"] for r in rows] == ["background", "unseen"]
    background, unseen = rows
    assert background["labels"] == {"contradiction": 2, "neutral": 0, "entailment": 2}
    assert background["accuracy"] == 0.5 and background["other"] == "entailment"
    assert background["ranking"] == pytest.approx(1.5 / 4)  # 1 beats -1 and ties 1; -3 beats neither
    assert unseen["other"] == "neutral" and unseen["accuracy"] == pytest.approx(2 / 3)
    assert unseen["ranking"] == pytest.approx(0.5)  # -1.5 lies between -1 and -2
    assert tool.ranking(torch.tensor([1.0, 1.0]), torch.tensor([True, False])) == 0.5  # a tie counts half


def test_the_existence_reader_finds_a_planted_object(tool):
    g = torch.Generator().manual_seed(0)
    n, cells, size = 1024, 16, 8
    kinds = torch.randint(4, (n,), generator=g)
    text = torch.nn.functional.one_hot(kinds, 4).float()
    grid = torch.randn(n, cells, size, generator=g) * 0.1
    grid[..., -1] += 1.0  # background cells
    present = torch.randint(2, (n,), generator=g)
    where = torch.randint(cells, (n,), generator=g)
    grid[present.bool(), where[present.bool()], kinds[present.bool()]] += 3.0  # the described object, when there
    other = (kinds + 1) % 4
    grid[~present.bool(), where[~present.bool()], other[~present.bool()]] += 3.0  # else a different one
    padding = torch.zeros(n, cells, dtype=torch.bool)
    split = {"text": text, "cells": grid, "padding": padding, "y": present}
    train = {k: v[:768] for k, v in split.items()}
    val = {k: v[768:] for k, v in split.items()}
    scores = tool.existence_probe(train, val, steps=600, batch_size=64, report=[1, 600])
    assert [step for step, _ in scores] == [1, 600]
    assert scores[0][1] < 0.6 and scores[-1][1] > 0.85  # from chance to the look-up


def test_a_finished_run_is_probed(tool, tiny_benchmark: Path, tmp_path: Path, capsys):
    from unimm.session import execute, prepare

    run = tmp_path / "snli"
    overrides = [f"env.data_dir={tiny_benchmark}", "env.benchmark.size=tiny", f"env.save_dir={run}",
                 "env.device=cpu", "training.max_updates=2", "scheduler.warmup_steps=0", "checkpoint.init_from=null",
                 "training.param_groups=[]", "evaluation.max_batches=1"]
    execute(*prepare(REPO / "projects/unit/single_task/snli_ve.yaml", overrides, variant="shapes"))
    capsys.readouterr()
    assert tool.main([str(run), "--steps", "4", "--batch-size", "8"]) == 0
    table = capsys.readouterr().out
    kinds = [line.split(" | ")[0][2:] for line in table.splitlines()
             if line.split(" | ")[0][2:] in tool.STATEMENT_KINDS]
    assert kinds and set(kinds) <= set(tool.STATEMENT_KINDS)
    rows = [line for line in table.splitlines() if line.startswith("| text") or line.startswith("| trunk")]
    assert [r.split(" | ")[0] for r in rows[:2]] == ["| text [CLS] -> described shape",
                                                     "| text [CLS] -> described colour"]
    assert [re.search(r"(\d+) steps", r).group(1) for r in rows[2:]] == ["1", "2", "3", "4"]
    for row in rows:
        accuracy, base = (float(v) for v in row.rstrip(" |").split(" | ")[-2:])
        assert 0.0 <= accuracy <= 1.0 and 0.0 < base <= 1.0
    assert tool.main([str(tmp_path / "nothing")]) == 2
    assert "no config.yaml" in capsys.readouterr().err
