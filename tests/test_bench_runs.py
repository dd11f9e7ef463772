"""tools/bench_runs.py: the arms it compares, their alternation within rounds, and the medians it prints."""
from __future__ import annotations

import pytest

from tests.helpers import tool_fixture

bench_runs = tool_fixture("bench_runs")


def test_arms_are_every_combination_in_a_fixed_order(bench_runs):
    arms = bench_runs.arms_of(["28d53fe", "work env.num_threads=2"], workers=[0, 1], neighbours=[0])
    assert [(a.revision, a.overrides, a.workers, a.neighbours) for a in arms] == [
        ("28d53fe", (), 0, 0), ("28d53fe", (), 1, 0),
        ("work", ("env.num_threads=2",), 0, 0), ("work", ("env.num_threads=2",), 1, 0)]
    assert str(arms[3]) == "work env.num_threads=2, 1 workers"
    assert str(bench_runs.Arm("work", (), 0, 2)) == "work, 0 workers, 2 busy neighbours"
    with pytest.raises(SystemExit, match="starts with a git revision"):
        bench_runs.arms_of(["env.num_threads=2"], workers=[0], neighbours=[0])


def test_arms_alternate_within_each_round_and_medians_compare_to_the_first(bench_runs, monkeypatch, capsys):
    seconds = iter([10.0, 5.0, 12.0, 4.0, 11.0, 6.0])  # arm A, arm B, A, B, A, B
    calls = []

    def fake_run(overrides, arm, updates, code, save_dir, shared):
        calls.append((str(arm), updates, overrides, code == bench_runs.REPO))
        return next(seconds), 1.0, 2**20

    monkeypatch.setattr(bench_runs, "run_once", fake_run)
    assert bench_runs.main(["config=x.yaml", "--updates", "7", "--rounds", "3", "--neighbours", "0", "1"]) == 0
    assert [c[0] for c in calls] == ["work, 0 workers", "work, 0 workers, 1 busy neighbour"] * 3
    assert all(c[1:] == (7, ["config=x.yaml"], True) for c in calls)
    out = capsys.readouterr().out
    assert "work, 0 workers: median 11.0 s (1.00x" in out
    assert "work, 0 workers, 1 busy neighbour: median 5.0 s (2.20x the speed of work, 0 workers)" in out


def test_a_config_is_required(bench_runs):
    with pytest.raises(SystemExit):
        bench_runs.main(["--updates", "5"])


def test_an_unknown_revision_is_named_with_the_fix(bench_runs, tmp_path):
    with pytest.raises(SystemExit, match="cannot check out revision 'no-such-revision'.*'work' for the working tree"):
        bench_runs.checkout("no-such-revision", tmp_path)
    assert bench_runs.checkout("work", tmp_path) == bench_runs.REPO
