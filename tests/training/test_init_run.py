"""checkpoint.init_run: a pretraining stage that a run trains first when its init_from is absent."""
import json
import re

import pytest
import torch

from tests.conftest import REPO
from unimm.config.errors import ConfigError
from unimm.session import execute, prepare
from unimm.training.checkpoint import read_weights

QUICKSTART = REPO / "projects" / "quickstart" / "configs" / "blobs_mlp.yaml"


def write_configs(folder, stage_updates=20):
    """A stage (the quickstart for a few updates) and a run that starts from it, in ``folder``."""
    stage_dir, run_dir = folder / "stage_run", folder / "main_run"
    (folder / "stage.yaml").write_text(
        f"includes: [{QUICKSTART}]\n"
        f"env: {{save_dir: {stage_dir}, log_level: warning}}\n"
        f"training: {{max_updates: {stage_updates}, eval_every: 0}}\n")
    (folder / "main.yaml").write_text(
        f"includes: [{QUICKSTART}]\n"
        f"env: {{save_dir: {run_dir}, log_level: warning}}\n"
        "training: {max_updates: 3, eval_every: 0}\n"
        "optimizer: {lr: 0.0}\n"  # the run keeps the stage's weights, so they can be compared
        "checkpoint:\n"
        f"  init_from: {stage_dir}/checkpoints/last\n"
        "  init_run: {config: stage.yaml}\n")  # relative to main.yaml, not to the working dir
    return stage_dir, run_dir


def run(path, *overrides):
    cfg, text = prepare(path, list(overrides))
    return execute(cfg, text)


def weights(run_folder):
    return read_weights(run_folder / "checkpoints" / "last")[1]


def test_the_stage_is_trained_first_and_the_run_starts_from_its_weights(tmp_path, monkeypatch):
    stage_dir, run_dir = write_configs(tmp_path)
    monkeypatch.chdir(REPO)  # stage.yaml is found beside main.yaml, not in the working dir
    run(tmp_path / "main.yaml")
    stage, final = weights(stage_dir), weights(run_dir)
    assert set(stage) == set(final)
    for key in stage:  # lr 0: the run's weights are the stage's
        torch.testing.assert_close(final[key], stage[key])
    assert (stage_dir / "config.yaml").read_text().count("max_updates: 20") == 1
    rows = [json.loads(line) for line in (stage_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(r["update"] for r in rows) == 20  # the stage trained its own 20 updates, the run its 3
    assert max(r["update"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())) == 3


def test_an_existing_checkpoint_is_used_without_training_the_stage_again(tmp_path, capsys):
    stage_dir, run_dir = write_configs(tmp_path)
    run(tmp_path / "main.yaml")
    made = (stage_dir / "checkpoints" / "last").stat().st_mtime_ns
    before = weights(stage_dir)
    capsys.readouterr()
    run(tmp_path / "main.yaml", "env.log_level=info")
    assert (stage_dir / "checkpoints" / "last").stat().st_mtime_ns == made
    assert "exists; not training" in capsys.readouterr().out
    after = weights(stage_dir)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_the_stage_gets_the_runs_data_dir_and_its_own_overrides(tmp_path):
    stage_dir, run_dir = write_configs(tmp_path)
    run(tmp_path / "main.yaml", f"env.data_dir={tmp_path / 'data'}",
        "checkpoint.init_run.overrides=[training.max_updates=7]")
    saved = (stage_dir / "config.yaml").read_text()
    assert f"data_dir: {tmp_path / 'data'}" in saved
    assert "max_updates: 7" in saved


@pytest.mark.parametrize(("override", "message"), [
    ("checkpoint.init_from={tmp}/elsewhere", "point init_from at {tmp}/stage_run/checkpoints/last"),  # never written
    ("checkpoint.init_run.overrides=[run_type=val]", "has run_type=val; a stage that makes init_from must train"),
    ("checkpoint.init_run.config=missing.yaml", "checkpoint.init_run.config: missing.yaml is not a file"),
])
def test_a_stage_that_cannot_make_init_from_is_a_clear_error(tmp_path, override, message):
    write_configs(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(message.format(tmp=tmp_path))):
        run(tmp_path / "main.yaml", override.format(tmp=tmp_path))


def test_without_init_from_the_stage_is_not_needed(tmp_path):
    stage_dir, run_dir = write_configs(tmp_path)
    run(tmp_path / "main.yaml", "checkpoint.init_from=null")  # from scratch: the stage is not trained
    assert not stage_dir.exists() and (run_dir / "checkpoints" / "last").exists()


def test_stages_that_name_each_other_are_a_cycle(tmp_path):
    write_configs(tmp_path)
    with (tmp_path / "stage.yaml").open("a") as f:  # the stage now starts from a run of main.yaml
        f.write(f"checkpoint: {{init_from: {tmp_path / 'nowhere'}, init_run: {{config: main.yaml}}}}\n")
    with pytest.raises(ConfigError, match="forms a cycle"):
        run(tmp_path / "main.yaml")


def test_a_stage_checkpoint_made_with_other_settings_is_refused(tmp_path):
    stage_dir, _ = write_configs(tmp_path)
    run(tmp_path / "main.yaml")
    with pytest.raises(ConfigError, match=r"differs from what checkpoint.init_run would train now in: "
                                          r"training.max_updates; delete"):
        run(tmp_path / "main.yaml", "checkpoint.init_run.overrides=[training.max_updates=5]")
    assert (stage_dir / "checkpoints" / "last").exists()  # left as it was


def test_a_stage_checkpoint_is_kept_when_only_its_evaluation_or_logging_changed(tmp_path):
    stage_dir, run_dir = write_configs(tmp_path)
    run(tmp_path / "main.yaml")
    made = (stage_dir / "checkpoints" / "last").stat().st_mtime_ns
    run(tmp_path / "main.yaml", "checkpoint.init_run.overrides=[evaluation.batch_size=3,training.log_every=7]")
    assert (stage_dir / "checkpoints" / "last").stat().st_mtime_ns == made  # loaded, not trained again


def test_a_stage_made_before_a_setting_existed_is_kept_when_the_setting_is_at_its_default(tmp_path):
    stage_dir, _ = write_configs(tmp_path)
    run(tmp_path / "main.yaml")
    saved = stage_dir / "config.yaml"
    text = saved.read_text()
    assert "trust_unverified: false" in text and "init_resize: []" in text
    # as written by a unimm that had neither setting
    saved.write_text("\n".join(line for line in text.splitlines()
                               if "trust_unverified" not in line and "init_resize" not in line) + "\n")
    made = (stage_dir / "checkpoints" / "last").stat().st_mtime_ns
    run(tmp_path / "main.yaml")
    assert (stage_dir / "checkpoints" / "last").stat().st_mtime_ns == made  # loaded, not refused or retrained
