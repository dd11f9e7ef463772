"""Trainer features in-process on the quickstart project: early stop, best checkpoint,
TensorBoard events, evaluation-only runs from a checkpoint, predictions."""
import json

import pytest

from tests.conftest import REPO
from unimm.config.errors import ConfigError
from unimm.session import execute, prepare

CONFIG = REPO / "projects" / "quickstart" / "configs" / "blobs_mlp.yaml"


def run(tmp_path, *overrides):
    cfg, text = prepare(CONFIG, [f"env.save_dir={tmp_path}", "env.log_level=warning", *overrides])
    return execute(cfg, text)


def rows(folder, phase):
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["phase"] == phase]


def test_early_stop_ends_the_run_and_keeps_the_best_checkpoint(tmp_path):
    run(tmp_path, "training.max_updates=400", "training.eval_every=10", "training.early_stop.metric=blobs/accuracy",
        "training.early_stop.patience=2", "checkpoint.keep_last=1")
    evals = rows(tmp_path, "val")
    assert evals[-1]["update"] < 400  # stopped early
    accs = [r["blobs/accuracy"] for r in evals]
    best_update = evals[accs.index(max(accs))]["update"]
    # the first evaluation reaching the maximum is the best; ties after it are no improvement
    assert len(accs) - 1 - accs.index(max(accs)) == 2  # ... for exactly `patience` evaluations
    best = json.loads((tmp_path / "checkpoints" / "best").read_text())
    assert best["update"] == best_update
    assert (tmp_path / "checkpoints" / best["checkpoint"] / "model.safetensors").exists()


def test_tensorboard_events_and_curves_are_written(tmp_path):
    run(tmp_path, "training.max_updates=20", "training.eval_every=10", "training.log_every=5")
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [r["update"] for r in rows(tmp_path, "train")] == [5, 10, 15, 20]
    assert all("lr" in r for r in rows(tmp_path, "train"))


def test_a_val_run_from_init_from_reproduces_the_final_evaluation(tmp_path):
    trained = run(tmp_path / "train", "training.max_updates=60")
    again = run(tmp_path / "val", "run_type=val", f"checkpoint.init_from={tmp_path / 'train' / 'checkpoints' / 'last'}")
    assert again["blobs/accuracy"] == pytest.approx(trained["blobs/accuracy"])
    assert again["blobs/accuracy"] > 0.9
    with pytest.raises(ConfigError, match="run_type=val evaluates trained weights, but none are given"):
        run(tmp_path / "fresh", "run_type=val")  # no weights: not a random model's numbers
    resumed = run(tmp_path / "train", "run_type=val", "checkpoint.resume=true")  # the run's own last weights
    assert resumed["blobs/accuracy"] == pytest.approx(trained["blobs/accuracy"])
    assert (tmp_path / "train" / "config_val.yaml").is_file() and (tmp_path / "train" / "val.log").is_file()
    assert "run_type: train_val" in (tmp_path / "train" / "config.yaml").read_text()  # the training run's own


def test_resume_without_a_checkpoint_is_an_error_unless_asked_to_start_fresh(tmp_path):
    with pytest.raises(ConfigError, match="checkpoint.resume: true, but .*does not exist.*resume=if_exists"):
        run(tmp_path / "none", "checkpoint.resume=true", "training.max_updates=4")
    run(tmp_path / "none", "checkpoint.resume=if_exists", "training.max_updates=4")
    assert max(r["update"] for r in rows(tmp_path / "none", "train")) == 4


def test_a_new_run_in_a_used_folder_sets_the_earlier_run_aside(tmp_path):
    run(tmp_path, "training.max_updates=4", "training.log_every=2")
    first = (tmp_path / "metrics.jsonl").read_text()
    run(tmp_path, "training.max_updates=6", "training.log_every=2")
    assert [r["update"] for r in rows(tmp_path, "train")] == [2, 4, 6]  # only the new run's records
    (earlier,) = (tmp_path / "earlier_runs").iterdir()
    assert (earlier / "metrics.jsonl").read_text() == first and (earlier / "checkpoints" / "last").is_file()
    assert "max_updates: 4" in (earlier / "config.yaml").read_text()


def test_a_resumed_run_keeps_each_update_once_in_metrics(tmp_path):
    run(tmp_path, "training.max_updates=6", "training.log_every=1", "checkpoint.every=3", "training.eval_every=3")
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    # as if killed after update 5: the checkpoint of update 3 is the last, rows 4 and 5 were written
    (tmp_path / "checkpoints" / "last").write_text('{"checkpoint": "update_3"}')
    (tmp_path / "metrics.jsonl").write_text("\n".join(l for l in lines if json.loads(l)["update"] <= 5) + "\n")
    run(tmp_path, "training.max_updates=6", "training.log_every=1", "checkpoint.every=3", "training.eval_every=3",
        "checkpoint.resume=true")
    updates = [(r["update"], r["phase"]) for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())]
    assert len(updates) == len(set(updates)) and [u for u, p in updates if p == "train"] == [1, 2, 3, 4, 5, 6]


def test_a_log_line_averages_the_losses_of_its_interval(tmp_path):
    run(tmp_path / "each", "training.max_updates=8", "training.log_every=1", "run_type=train")
    run(tmp_path / "four", "training.max_updates=8", "training.log_every=4", "run_type=train")
    each = {r["update"]: r["blobs/cross_entropy"] for r in rows(tmp_path / "each", "train")}
    four = {r["update"]: r["blobs/cross_entropy"] for r in rows(tmp_path / "four", "train")}
    assert sorted(four) == [4, 8]
    assert four[4] == pytest.approx(sum(each[u] for u in range(1, 5)) / 4)
    assert four[8] == pytest.approx(sum(each[u] for u in range(5, 9)) / 4)


def test_max_epochs_caps_the_updates_at_passes_over_the_largest_dataset(tmp_path):
    # 1024 samples / batch 32 = 32 updates per epoch
    run(tmp_path, "run_type=train", "training.max_updates=1000", "training.max_epochs=2", "training.log_every=1")
    assert max(r["update"] for r in rows(tmp_path, "train")) == 64


def test_evaluation_every_epoch_keeps_the_best_checkpoint_without_stopping(tmp_path):
    """METER's SNLI-VE / NLVR2 set-up: validate once an epoch, keep the best, train every epoch."""
    # 1024 samples / batch 32 = 32 updates per epoch; half an epoch is 16
    run(tmp_path, "training.max_updates=null", "training.max_epochs=3", "training.eval_every=0",
        "training.eval_every_epochs=0.5", "training.early_stop.metric=blobs/accuracy", "checkpoint.keep_last=1")
    evals = rows(tmp_path, "val")
    assert [r["update"] for r in evals] == [16, 32, 48, 64, 80, 96]
    accs = [r["blobs/accuracy"] for r in evals]
    best = json.loads((tmp_path / "checkpoints" / "best").read_text())
    assert best["update"] == evals[accs.index(max(accs))]["update"]
    assert (tmp_path / "checkpoints" / best["checkpoint"] / "model.safetensors").exists()
    with pytest.raises(ConfigError, match="evaluate by updates or by epochs, not both"):
        run(tmp_path / "both", "training.eval_every=10", "training.eval_every_epochs=1")


def test_bf16_autocast_trains_close_to_float32(tmp_path):
    full = run(tmp_path / "fp32", "training.max_updates=30", "training.log_every=1")
    half = run(tmp_path / "bf16", "training.max_updates=30", "training.log_every=1", "training.amp=bf16")
    a = [r["blobs/cross_entropy"] for r in rows(tmp_path / "fp32", "train")]
    b = [r["blobs/cross_entropy"] for r in rows(tmp_path / "bf16", "train")]
    assert a != b  # bf16 rounding shows: the autocast path ran
    assert max(abs(x - y) for x, y in zip(a, b)) < 0.05
    assert half["blobs/accuracy"] == pytest.approx(full["blobs/accuracy"], abs=0.05)


def test_fp16_without_a_gpu_is_a_clear_error(tmp_path):
    from unimm.config import ConfigError

    with pytest.raises(ConfigError, match="training.amp: fp16 needs a CUDA device; use training.amp=bf16"):
        run(tmp_path, "training.amp=fp16", "env.device=cpu")


def test_val_and_predict_runs_with_resume_use_the_runs_own_last_weights(tmp_path):
    trained = run(tmp_path, "training.max_updates=60")
    again = run(tmp_path, "run_type=val", "checkpoint.resume=true")
    assert again["blobs/accuracy"] == pytest.approx(trained["blobs/accuracy"])



def test_each_dataset_may_have_its_own_batch_size(tmp_path):
    one_epoch = ["training.max_updates=null", "training.max_epochs=1", "training.log_every=1"]
    run(tmp_path / "shared", *one_epoch)  # the config's batch of 32
    run(tmp_path / "own", *one_epoch, "training.batch_sizes={blobs: 8}")
    assert len(rows(tmp_path / "own", "train")) == 4 * len(rows(tmp_path / "shared", "train"))
    with pytest.raises(ConfigError, match=r"training\.batch_sizes\.dotz: \(a key\) 'dotz' is not a configured"):
        run(tmp_path / "bad", "training.batch_sizes={dotz: 4}")
    with pytest.raises(ConfigError, match=r"training\.batch_sizes\.blobs: 0 must be at least 1"):
        run(tmp_path / "bad", "training.batch_sizes={blobs: 0}")


def test_resuming_with_another_max_updates_is_refused_rather_than_stretching_the_schedule(tmp_path):
    run(tmp_path, "training.max_updates=4")
    with pytest.raises(ConfigError, match=r"training\.max_updates: the run resumed from .* planned 4 updates, this "
                                          r"config 8; its learning-rate schedule runs over 4"):
        run(tmp_path, "training.max_updates=8", "checkpoint.resume=true")
    run(tmp_path, "training.max_updates=4", "checkpoint.resume=true")  # the same plan: resumes (nothing left to do)
