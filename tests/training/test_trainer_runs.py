"""The loop end to end: exact resume after a kill, non-finite losses, 2 processes vs 1."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers import free_port

PLUGIN = REPO / "tests" / "assets" / "plugin_folder"


def run(args: list[str], cwd: Path, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = (launcher or [sys.executable, "-m", "unimm.cli.run"]) + args
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})


def write_config(path: Path, save_dir: Path) -> Path:
    path.write_text(f"""\
env: {{user_dir: {PLUGIN}, save_dir: {save_dir}, seed: 3}}
model: {{type: folder_noisy_line}}
datasets: {{line: {{type: folder_points, count: 48}}}}
optimizer: {{type: adamw, lr: 0.05}}
scheduler: {{type: warmup_cosine, warmup_steps: 3}}
checkpoint: {{every: 5, keep_last: 2}}
training: {{max_updates: 16, batch_size: 8, log_every: 1}}
""")
    return path


def losses_by_update(folder: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return {r["update"]: r["line/mse"] for r in rows if r["phase"] == "train"}  # the last write wins


def test_a_killed_and_resumed_run_repeats_the_uninterrupted_losses(tmp_path):
    whole = run([f"config={write_config(tmp_path / 'a.yaml', tmp_path / 'whole')}"], tmp_path)
    assert whole.returncode == 0, whole.stderr
    cfg = write_config(tmp_path / "b.yaml", tmp_path / "cut")
    killed = run([f"config={cfg}", "training.callbacks=[{type: kill_at, update: 12}]"], tmp_path)
    assert killed.returncode == -9  # SIGKILL after update 12; the last checkpoint is update 10
    resumed = run([f"config={cfg}", "checkpoint.resume=true"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "at update 10" in resumed.stdout
    expected, got = losses_by_update(tmp_path / "whole"), losses_by_update(tmp_path / "cut")
    assert sorted(got) == list(range(1, 17))
    assert [got[u] for u in range(1, 17)] == [expected[u] for u in range(1, 17)]  # exactly


def test_workers_and_a_kill_change_nothing_with_random_augmentation(tmp_path):
    """A DataLoader worker reads the samples (noise drawn per read), the run is killed and resumed: the same
    losses as one uninterrupted run in one process."""
    jitter = ["datasets.line.jitter=0.1"]
    whole = run([f"config={write_config(tmp_path / 'a.yaml', tmp_path / 'whole')}", *jitter], tmp_path)
    assert whole.returncode == 0, whole.stderr
    cfg = write_config(tmp_path / "b.yaml", tmp_path / "cut")
    workers = [*jitter, "training.num_workers=1"]
    killed = run([f"config={cfg}", *workers, "training.callbacks=[{type: kill_at, update: 12}]"], tmp_path)
    assert killed.returncode == -9
    resumed = run([f"config={cfg}", *workers, "checkpoint.resume=true"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    expected, got = losses_by_update(tmp_path / "whole"), losses_by_update(tmp_path / "cut")
    assert [got[u] for u in range(1, 17)] == [expected[u] for u in range(1, 17)]  # exactly
    plain = run([f"config={write_config(tmp_path / 'c.yaml', tmp_path / 'plain')}"], tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert losses_by_update(tmp_path / "plain")[16] != expected[16]  # the noise is there to be reproduced


def test_a_nan_loss_stops_with_the_dataset_and_loss_named(tmp_path):
    cfg = write_config(tmp_path / "a.yaml", tmp_path / "out")
    result = run([f"config={cfg}", "datasets.line.nan_index=5"], tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "non-finite loss line/mse on dataset 'line'" in result.stderr
    assert "training.on_nonfinite=skip" in result.stderr


def test_on_nonfinite_skip_keeps_going(tmp_path):
    cfg = write_config(tmp_path / "a.yaml", tmp_path / "out")
    result = run([f"config={cfg}", "datasets.line.nan_index=5", "training.on_nonfinite=skip"], tmp_path)
    assert result.returncode == 0, result.stderr
    match = re.search(r"trained 16 updates in .* \((\d+) skipped\)", result.stdout)
    assert match and int(match.group(1)) >= 2  # the NaN sample lands in one batch of 6 per epoch
    rows = losses_by_update(tmp_path / "out")
    assert all(v == v for v in rows.values())  # no NaN reached the logged losses



@pytest.mark.distributed
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    base = ["model.type=folder_line", "training.max_updates=6", "checkpoint.every=0", "env.device=cpu"]
    one = run([f"config={write_config(tmp_path / 'one.yaml', tmp_path / 'one')}", *base,
               "training.batch_size=16"], tmp_path)
    assert one.returncode == 0, one.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
                f"--master_port={free_port()}", "-m", "unimm.cli.run"]
    two = run([f"config={write_config(tmp_path / 'two.yaml', tmp_path / 'two')}", *base,
               "training.batch_size=8"], tmp_path, launcher=torchrun)
    assert two.returncode == 0, two.stderr + two.stdout
    a, b = losses_by_update(tmp_path / "one"), losses_by_update(tmp_path / "two")
    assert sorted(a) == sorted(b) == list(range(1, 7))
    assert all(abs(a[u] - b[u]) < 1e-5 for u in a)


@pytest.mark.distributed
def test_fsdp_checkpoints_resume_exactly_on_two_processes(tmp_path):
    def torchrun() -> list[str]:
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
                f"--master_port={free_port()}", "-m", "unimm.cli.run"]

    base = ["training.parallel=fsdp", "env.device=cpu", "model.type=folder_line", "training.max_updates=8",
            "checkpoint.every=4"]
    whole = run([f"config={write_config(tmp_path / 'a.yaml', tmp_path / 'whole')}", *base], tmp_path,
                launcher=torchrun())
    assert whole.returncode == 0, whole.stderr[-3000:]
    cfg = write_config(tmp_path / "b.yaml", tmp_path / "cut")
    killed = run([f"config={cfg}", *base, "training.callbacks=[{type: kill_at, update: 6}]"], tmp_path,
                 launcher=torchrun())
    assert killed.returncode != 0
    resumed = run([f"config={cfg}", *base, "checkpoint.resume=true"], tmp_path, launcher=torchrun())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at update 4" in resumed.stdout
    expected, got = losses_by_update(tmp_path / "whole"), losses_by_update(tmp_path / "cut")
    assert [got[u] for u in range(1, 9)] == [expected[u] for u in range(1, 9)]
    # every rank builds the same initial weights, so the sharded run is the 1-process run
    one = run([f"config={write_config(tmp_path / 'one.yaml', tmp_path / 'one')}", *base[1:],
               "training.batch_size=16"], tmp_path)
    assert one.returncode == 0, one.stderr
    single = losses_by_update(tmp_path / "one")
    assert all(abs(single[u] - expected[u]) < 1e-5 for u in range(1, 9))
