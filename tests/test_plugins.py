"""Both plugin routes, end to end through unimm_run: a folder and an installed package."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from unimm.config import ConfigError
from unimm.plugins import load_user_dirs

ASSETS = REPO / "tests" / "assets"


def run_cli(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unimm.cli.run", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=240)


def final_losses(folder: Path) -> tuple[float, float]:
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    key = next(k for k in rows[0] if k.endswith("/mse"))
    return rows[0][key], rows[-1][key]


def test_user_dir_plugin_trains_through_unimm_run(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"""\
env: {{user_dir: {ASSETS / 'plugin_folder'}, save_dir: {tmp_path / 'out'}}}
model: {{type: folder_line}}
datasets: {{line: {{type: folder_points, count: 64}}}}
optimizer: {{type: sgd, lr: 0.5}}
training: {{max_updates: 40, batch_size: 16, log_every: 1}}
""")
    result = run_cli([f"config={config}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    first, last = final_losses(tmp_path / "out")
    assert last < first / 10


def make_installed_package(root: Path) -> Path:
    """Copy the fixture package into ``root`` with a dist-info that declares the entry point."""
    shutil.copytree(ASSETS / "plugin_package" / "unimm_fixture_plugin", root / "unimm_fixture_plugin")
    info = root / "unimm_fixture_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: unimm-fixture-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[unimm.plugins]\nfixture = unimm_fixture_plugin\n")
    return root


def test_entry_point_plugin_trains_through_unimm_run(tmp_path):
    site = make_installed_package(tmp_path / "site")
    (tmp_path / "empty.yaml").write_text("# everything comes from the command line\n")
    result = run_cli(["model.type=package_bias", "datasets.c.type=package_constant", "datasets.c.value=3.0",
                      f"env.save_dir={tmp_path / 'out'}", "training.max_updates=30", "training.batch_size=8",
                      "training.log_every=1", "optimizer.type=sgd", "optimizer.lr=0.2", "config=empty.yaml"],
                     cwd=tmp_path, env={"PYTHONPATH": f"{site}{os.pathsep}{REPO}"})
    assert result.returncode == 0, result.stderr + result.stdout
    first, last = final_losses(tmp_path / "out")
    assert first == pytest.approx(9.0) and last < 1e-3


def test_unimm_registry_lists_parts_from_both_routes(tmp_path):
    site = make_installed_package(tmp_path / "site")
    result = subprocess.run([sys.executable, "-m", "unimm.cli.registry_cmd", "models", "datasets",
                             "--user-dir", str(ASSETS / "plugin_folder")], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{REPO}"})
    assert result.returncode == 0, result.stderr
    for name in ("package_bias", "package_constant", "folder_line", "folder_points"):
        assert name in result.stdout
    assert "One learnable number fitted to the targets." in result.stdout


def test_missing_user_dir_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="env.user_dir: folder not found"):
        load_user_dirs([str(tmp_path / "absent")])
    (tmp_path / "noinit").mkdir()
    with pytest.raises(ConfigError, match="has no __init__.py"):
        load_user_dirs([str(tmp_path / "noinit")])


def test_a_plugin_that_fails_to_import_names_the_folder(tmp_path):
    bad = tmp_path / "broken_plugin"
    bad.mkdir()
    (bad / "__init__.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match=r"importing .*broken_plugin failed: RuntimeError: boom"):
        load_user_dirs([str(bad)])


def test_a_folder_already_imported_as_a_package_is_not_registered_twice():
    probe = ("import projects.quickstart\n"
             "from unimm.plugins import load_user_dirs\n"
             "(module,) = load_user_dirs(['projects/quickstart'])\n"
             "assert module.__name__ == 'projects.quickstart', module.__name__\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
