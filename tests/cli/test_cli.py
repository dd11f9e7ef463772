"""unimm_run as a user meets it: help, errors without tracebacks, a real run."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from unimm.cli.run import main

QUICKSTART = REPO / "projects" / "quickstart" / "configs" / "blobs_mlp.yaml"


def unimm_run(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unimm.cli.run", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=240)


def test_help_lists_verbs_and_keys_without_importing_torch(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("train_val", "predict", "env.user_dir", "checkpoint.resume", "a.b[0]=x", "--debug"):
        assert word in out
    probe = "import sys; from unimm.cli.run import main; main(['--help']); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True)


def test_help_is_fast():
    start = time.perf_counter()
    result = unimm_run("--help")
    assert result.returncode == 0
    assert time.perf_counter() - start < 5  # generous here; the measured figure is ~0.1 s


def test_no_arguments_prints_usage_and_fails(capsys):
    assert main([]) == 2
    assert "usage: unimm_run" in capsys.readouterr().out


def test_config_errors_are_one_message_without_traceback(tmp_path):
    result = unimm_run(f"config={QUICKSTART}", "training.max_update=5", "model.type=mlp_clasifier",
                       f"env.save_dir={tmp_path}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "2 config errors" in result.stderr
    assert "training.max_update: unknown key; did you mean max_updates?" in result.stderr
    assert not (tmp_path / "config.yaml").exists()  # nothing written before validation passes


def test_debug_shows_the_traceback(tmp_path):
    result = unimm_run(f"config={QUICKSTART}", "model.type=nope", f"env.save_dir={tmp_path}", "--debug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_missing_config_file_and_unknown_flag(tmp_path):
    result = unimm_run("config=nope.yaml")
    assert result.returncode == 1 and "config file not found: nope.yaml" in result.stderr
    result = unimm_run(f"config={QUICKSTART}", "--verbose")
    assert result.returncode == 1 and "unknown flag --verbose" in result.stderr


def test_dry_run_prints_the_resolved_config(tmp_path):
    result = unimm_run(f"config={QUICKSTART}", "--dry-run", f"env.save_dir={tmp_path}", "training.batch_size=7")
    assert result.returncode == 0, result.stderr
    assert "batch_size: 7" in result.stdout
    assert not (tmp_path / "config.yaml").exists()


def test_quickstart_trains_evaluates_and_saves_its_run_folder(tmp_path):
    result = unimm_run(f"config={QUICKSTART}", f"env.save_dir={tmp_path}", "training.max_updates=60",
                       "training.eval_every=30", "training.log_every=20", cwd=tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    saved = (tmp_path / "config.yaml").read_text()
    assert "max_updates: 60" in saved and "${" not in saved  # resolved
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["phase"] == "val"]
    assert [r["update"] for r in evals] == [30, 60]
    assert evals[-1]["blobs/accuracy"] > 0.9  # well-separated blobs: chance is 0.25
    trains = [r for r in rows if r["phase"] == "train"]
    assert trains[-1]["blobs/cross_entropy"] < trains[0]["blobs/cross_entropy"]
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert (tmp_path / "checkpoints" / "last").exists()
