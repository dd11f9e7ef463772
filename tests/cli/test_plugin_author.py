"""A plugin author's first hour: the README's commands work, errors come before the run folder,
installed plugins can be left out, and ``unimm_registry NAME`` shows a part's arguments."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO
from unimm.cli import registry_cmd
from unimm.cli.run import main
from unimm.config import ConfigError

ASSETS = REPO / "tests" / "assets"
QUICKSTART = REPO / "projects" / "quickstart" / "configs" / "blobs_mlp.yaml"


def cli(module: str, *args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=240)


def test_the_readme_form_of_env_user_dir_works(monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # a plain path, relative to the working directory
    assert main([f"config={QUICKSTART}", "env.user_dir=projects/quickstart", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"user_dir:\n  - projects/quickstart\n" in out


def test_help_tells_how_paths_are_resolved_and_how_to_delete_a_key(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    assert "env.user_dir in a YAML file is relative to that file" in out
    assert "given on the command line, is relative to the working directory" in out
    assert "~a.b" in out and "env.plugins=all" in out


def test_cheap_parts_are_built_before_the_run_and_every_error_is_reported():
    from unimm.plugins import import_builtins
    from unimm.session import check_training_parts

    import_builtins()
    cfg = {"run_type": "train", "env": {"seed": 1}, "datasets": {"a": {}, "b": {}},
           "scheduler": {"type": "warmup_cosine", "warmup_steps": 10, "warmup_ratio": 0.1},
           "training": {"max_updates": 50, "sampler": {"type": "ratios", "ratios": {"a": 1.0}},
                        "step_strategy": "sampled", "callbacks": [{"type": "baseline_table", "rows": {}}]}}
    with pytest.raises(ConfigError) as err:
        check_training_parts(cfg)
    problems = err.value.problems
    assert problems[0].startswith("scheduler.warmup_steps: both of warmup_steps and warmup_ratio given")
    assert problems[1].startswith("training.sampler.ratios.b: missing; give every training dataset a ratio")
    assert problems[2] == "training.callbacks[0].baselines: required by callbacks 'baseline_table'; set it"
    assert len(problems) == 3
    check_training_parts({**cfg, "run_type": "val"})  # an evaluation builds none of them


def test_dry_run_fails_where_the_real_run_would_and_the_real_run_writes_nothing(tmp_path):
    args = (f"config={QUICKSTART}", "scheduler.warmup_steps=10", f"env.save_dir={tmp_path / 'run'}")
    dry = cli("unimm.cli.run", *args, "--dry-run")
    assert dry.returncode == 1
    assert "scheduler.warmup_steps: both of warmup_steps and warmup_ratio given" in dry.stderr
    real = cli("unimm.cli.run", *args)
    assert real.returncode == 1 and "both of warmup_steps and warmup_ratio" in real.stderr
    assert not (tmp_path / "run").exists()
    fixed = cli("unimm.cli.run", *args, "~scheduler.warmup_ratio", "--dry-run")
    assert fixed.returncode == 0, fixed.stderr
    assert "warmup_steps: 10" in fixed.stdout and "warmup_ratio" not in fixed.stdout


def test_a_plugin_that_does_not_import_its_module_gets_a_hint(tmp_path, monkeypatch):
    from unimm.session import prepare

    plugin = tmp_path / "forgetful_plugin"
    plugin.mkdir()
    (plugin / "__init__.py").write_text('"""Forgot: from . import metrics"""\n')
    (plugin / "metrics.py").write_text("raise AssertionError('never imported')\n")
    config = tmp_path / "run.yaml"
    config.write_text(textwrap.dedent("""\
        env: {user_dir: forgetful_plugin}
        model: {type: mlp_classifier}
        datasets: {blobs: {type: blobs}}
        evaluation: {metrics: {blobs: [forgetful_f1]}}
        """))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        prepare(str(config), ["env.user_dir=[forgetful_plugin, " + str(REPO / "projects" / "quickstart") + "]"])
    text = str(err.value)
    assert "evaluation.metrics.blobs[0]: unknown metrics name 'forgetful_f1'" in text
    assert "its __init__.py must import the module that registers it" in text
    assert str(plugin) in text


def install(site: Path, entry_points: str, packages: dict[str, Path | str]) -> Path:
    """Packages on a fake site folder with a dist-info that declares ``entry_points`` (no pip)."""
    for name, source in packages.items():
        if isinstance(source, Path):
            shutil.copytree(source, site / name)
        else:
            (site / name).mkdir(parents=True)
            (site / name / "__init__.py").write_text(source)
    info = site / "fixture_plugins-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fixture-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[unimm.plugins]\n" + entry_points)
    return site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install(tmp_path_factory.mktemp("site"), "points = plugin_folder\nbroken = broken_plugin\n",
                   {"plugin_folder": ASSETS / "plugin_folder", "broken_plugin": "import not_a_module_anywhere\n"})


def test_a_broken_installed_plugin_is_named_and_can_be_left_out(site):
    env = {"PYTHONPATH": f"{site}{os.pathsep}{REPO}"}
    failed = cli("unimm.cli.run", f"config={QUICKSTART}", "--dry-run", env=env)
    assert failed.returncode == 1
    assert "plugin entry point 'broken' (broken_plugin, installed by fixture-plugins) failed to import: " \
           "ModuleNotFoundError: No module named 'not_a_module_anywhere'; leave it out with " \
           "env.plugins=[points]" in failed.stderr
    for choice in ("none", "[points]"):
        ok = cli("unimm.cli.run", f"config={QUICKSTART}", f"env.plugins={choice}", "--dry-run", env=env)
        assert ok.returncode == 0, ok.stderr
    absent = cli("unimm.cli.run", f"config={QUICKSTART}", "env.plugins=[pointz]", "--dry-run", env=env)
    assert "env.plugins: pointz is not an installed plugin" in absent.stderr
    assert "installed: points, broken" in absent.stderr


def test_a_config_naming_the_folder_of_an_installed_plugin_uses_the_installed_one(site, tmp_path):
    env = {"PYTHONPATH": f"{site}{os.pathsep}{REPO}"}
    result = cli("unimm.cli.run", "env.plugins=[points]", f"env.user_dir={ASSETS / 'plugin_folder'}",
                 "model.type=folder_line", "datasets.line.type=folder_points", "training.max_updates=3",
                 f"env.save_dir={tmp_path / 'run'}", "config=" + str(write_empty(tmp_path)), env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"env.user_dir: {ASSETS / 'plugin_folder'} is not imported: its package 'plugin_folder' is already " \
           f"imported from {site / 'plugin_folder' / '__init__.py'} (entry point 'points', installed by " \
           "fixture-plugins)" in result.stderr


def write_empty(folder: Path) -> Path:
    path = folder / "empty.yaml"
    path.write_text("# everything from the command line\n")
    return path


def test_registry_name_shows_arguments_types_defaults_and_runtime_ones(capsys):
    assert registry_cmd.main(["warmup_cosine"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("warmup_cosine  (schedulers, from unimm: unimm.training.schedulers)")
    assert "  warmup_steps: int (>= 0) | None  [default None]" in out
    assert "given by the framework at run time (never in the config):\n  optimizer: Optimizer\n  max_updates: int" in out
    assert "Linear warm-up, then half a cosine" in out and "min_lr_ratio: the final multiplier." in out
    assert registry_cmd.main(["acuracy"]) == 2
    assert "did you mean accuracy" in capsys.readouterr().err


def test_registry_with_user_dir_marks_the_parts_of_a_plugin_and_shows_them(tmp_path):
    listing = cli("unimm.cli.registry_cmd", "models", "--user-dir", str(REPO / "projects" / "quickstart"))
    assert listing.returncode == 0, listing.stderr
    assert "mlp_classifier               [projects/quickstart] A 2-layer GeLU MLP" in listing.stdout
    part = cli("unimm.cli.registry_cmd", "folder_points", "--user-dir", str(ASSETS / "plugin_folder"))
    assert part.returncode == 0, part.stderr
    assert part.stdout.startswith("folder_points  (datasets, from tests: tests.assets.plugin_folder.parts)")
    assert "  count: int  [default 64]" in part.stdout and "  nan_index: int | None  [default None]" in part.stdout
    assert "given by the framework at run time (never in the config):\n  name: str\n  split: str" in part.stdout


def test_registry_can_leave_a_broken_installed_plugin_out(site):
    env = {"PYTHONPATH": f"{site}{os.pathsep}{REPO}"}
    failed = cli("unimm.cli.registry_cmd", "models", env=env)
    assert failed.returncode == 1 and "plugin entry point 'broken'" in failed.stderr
    assert "(here: --plugins none, or --plugins NAME,...)" in failed.stderr
    listed = cli("unimm.cli.registry_cmd", "models", "--plugins", "points", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "folder_line                  [plugin_folder] A 1-d linear regressor." in listed.stdout
