"""checkpoint.needs: other runs whose files a run reads (e.g. distillation teachers), trained first when absent."""
import re

import pytest

from tests.conftest import REPO
from unimm.config.errors import ConfigError
from unimm.session import execute, prepare

QUICKSTART = REPO / "projects" / "quickstart" / "configs" / "blobs_mlp.yaml"


def write_configs(folder):
    """Two independent stages (the quickstart for a few updates) that a run needs, and the run."""
    for name, updates in (("first", 4), ("second", 6)):
        (folder / f"{name}.yaml").write_text(
            f"includes: [{QUICKSTART}]\n"
            f"env: {{save_dir: {folder / name}, log_level: warning}}\n"
            f"training: {{max_updates: {updates}, eval_every: 0}}\n")
    (folder / "main.yaml").write_text(
        f"includes: [{QUICKSTART}]\n"
        f"env: {{save_dir: {folder / 'main'}, log_level: warning}}\n"
        "training: {max_updates: 2, eval_every: 0}\n"
        "checkpoint:\n"
        "  needs:\n"  # relative configs: found beside main.yaml
        f"    - {{path: {folder / 'first'}/checkpoints/last, config: first.yaml}}\n"
        f"    - {{path: {folder / 'second'}/checkpoints/last, config: second.yaml, overrides: [training.max_updates=3]}}\n")


def run(path, *overrides):
    cfg, text = prepare(path, list(overrides))
    return execute(cfg, text)


def last_update(folder) -> int:
    return int(re.search(r'"update": (\d+)', (folder / "checkpoints" / "last").read_text()).group(1))


def test_every_needed_run_is_trained_first_with_its_overrides(tmp_path, monkeypatch):
    write_configs(tmp_path)
    monkeypatch.chdir(REPO)  # the stages are found beside main.yaml, not in the working dir
    run(tmp_path / "main.yaml")
    assert last_update(tmp_path / "first") == 4
    assert last_update(tmp_path / "second") == 3  # its own overrides
    assert last_update(tmp_path / "main") == 2


def test_an_existing_file_is_used_and_a_changed_stage_is_refused(tmp_path):
    write_configs(tmp_path)
    run(tmp_path / "main.yaml")
    made = (tmp_path / "first" / "checkpoints" / "last").stat().st_mtime_ns
    run(tmp_path / "main.yaml")
    assert (tmp_path / "first" / "checkpoints" / "last").stat().st_mtime_ns == made  # not trained again
    with pytest.raises(ConfigError, match=re.escape("differs from what checkpoint.needs[1] would train now in: "
                                                    "training.max_updates")):
        run(tmp_path / "main.yaml", "checkpoint.needs[1].overrides=[training.max_updates=5]")


def test_a_stage_that_does_not_make_its_path_is_a_clear_error(tmp_path):
    write_configs(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(f"checkpoint.needs[0].path={tmp_path}/elsewhere is still absent")):
        run(tmp_path / "main.yaml", f"checkpoint.needs[0].path={tmp_path}/elsewhere")


def test_entries_are_validated(tmp_path):
    write_configs(tmp_path)
    with pytest.raises(ConfigError) as err:
        prepare(tmp_path / "main.yaml", ["checkpoint.needs=[{path: a, configs: b}]"])
    assert "checkpoint.needs[0].configs: unknown key" in str(err.value)
    assert "checkpoint.needs[0].config: required" in str(err.value)
