"""website/docs/plugin_tutorial.md, built from the page's own code blocks and run, so the page cannot rot.

Each fenced block whose first line is ``# file: <path>`` is written to ``<path>`` (the whole
block, that line included: a comment in Python, YAML and TOML alike, so line numbers match
the page's error examples). The folder variant runs through ``env.user_dir``; the package
variant goes on a fake site folder with the entry point the page's ``pyproject.toml`` declares.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGE = REPO / "website" / "docs" / "plugin_tutorial.md"
BLOCK = re.compile(r"^```[a-z]*\n(# file: (\S+)\n.*?)^```$", re.S | re.M)


def page_files() -> dict[str, str]:
    files = {path: text for text, path in BLOCK.findall(PAGE.read_text(encoding="utf-8"))}
    assert set(files) == {"make_data.py", "my_plugin/__init__.py", "my_plugin/data.py", "my_plugin/model.py",
                          "my_plugin/metrics.py", "flowers.yaml", "pyproject.toml"}
    return files


def toml_sections(text: str) -> dict[str, dict[str, str]]:
    """``[section]`` -> its ``key = "value"`` lines: enough of TOML for the page's pyproject (Python 3.10 has
    no tomllib)."""
    sections: dict[str, dict[str, str]] = {}
    current = sections.setdefault("", {})
    for line in text.splitlines():
        if header := re.fullmatch(r"\[(.+)\]", line.strip()):
            current = sections.setdefault(header.group(1), {})
        elif pair := re.fullmatch(r'(\S+)\s*=\s*"([^"]*)"', line.strip()):
            current[pair.group(1)] = pair.group(2)
    return sections


def run(args: list[str], cwd: Path, module: str = "unimm.cli.run", env: dict | None = None
        ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=240)


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tutorial")
    for path, text in page_files().items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")
    subprocess.run([sys.executable, "make_data.py"], cwd=root, check=True, timeout=60)
    return root


def test_the_folder_plugin_trains_evaluates_and_predicts(tutorial):
    short = ["training.max_updates=40", "training.eval_every=20", "training.log_every=20"]
    trained = run(["config=flowers.yaml", *short], tutorial)
    assert trained.returncode == 0, trained.stderr + trained.stdout
    folder = tutorial / "save" / "flowers"
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["phase"] == "val"]
    assert [r["update"] for r in evals] == [20, 40]
    assert evals[-1]["flowers/macro_f1"] > 0.6 and evals[-1]["flowers/accuracy"] > 0.6  # chance: 1/3
    assert "update 20/40  flowers/cross_entropy " in (folder / "train.log").read_text()

    predicted = run(["config=flowers.yaml", "run_type=predict", "checkpoint.resume=true"], tutorial)
    assert predicted.returncode == 0, predicted.stderr + predicted.stdout
    rows = json.loads((folder / "predictions" / "flowers_val.json").read_text())
    assert len(rows) == 90 and {r["label"] for r in rows} <= {"iris", "rose", "tulip"}
    assert "predictions of datasets.flowers (val split): 90 rows" in predicted.stdout


def test_a_bad_csv_value_is_reported_as_the_page_shows(tutorial, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tutorial / "data" / "flowers", bad)
    lines = (bad / "train.csv").read_text().splitlines()
    lines[4] = "abc," + lines[4].split(",", 1)[1]  # row 3 (after the header)
    (bad / "train.csv").write_text("\n".join(lines) + "\n")
    result = run(["config=flowers.yaml", f"datasets.flowers.data_dir={bad}", f"env.save_dir={tmp_path / 'run'}"],
                 tutorial)
    assert result.returncode == 1
    assert ("ValueError in datasets.flowers (type csv_table), sample 3, at my_plugin/data.py:33 in "
            in result.stderr), result.stderr
    assert result.stderr.rstrip().endswith("could not convert string to float: 'abc' (run with --debug for the "
                                           "traceback)")


def test_the_installed_package_runs_through_its_entry_point(tutorial, tmp_path):
    sections = toml_sections((tutorial / "pyproject.toml").read_text())
    project, entry_points = sections["project"], sections['project.entry-points."unimm.plugins"']
    assert entry_points == {"my_plugin": "my_plugin"}
    site = tmp_path / "site"  # what `pip install .` puts in site-packages
    shutil.copytree(tutorial / "my_plugin", site / "my_plugin")
    info = site / f"my_plugin-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                   f"Version: {project['version']}\n")
    (info / "entry_points.txt").write_text("[unimm.plugins]\n" + "".join(f"{k} = {v}\n"
                                                                         for k, v in entry_points.items()))
    elsewhere = tmp_path / "elsewhere"  # not the tutorial folder: `import my_plugin` finds only the installed one
    elsewhere.mkdir()
    env = {"PYTHONPATH": f"{site}{os.pathsep}{REPO}"}
    common = [f"config={tutorial / 'flowers.yaml'}", f"datasets.flowers.data_dir={tutorial / 'data' / 'flowers'}",
              f"env.save_dir={tmp_path / 'run'}", "training.max_updates=10", "training.eval_every=0"]
    still_named = run(common, elsewhere, env=env)  # the config still names the folder
    assert still_named.returncode == 0, still_named.stderr + still_named.stdout
    assert "is not imported: its package 'my_plugin' is already imported from " in still_named.stderr
    assert f"(entry point 'my_plugin', installed by {project['name']})" in still_named.stderr
    assert "flowers/macro_f1" in still_named.stdout

    alone = run([*common, "~env.user_dir", "--dry-run"], elsewhere, env=env)  # the entry point alone
    assert alone.returncode == 0, alone.stderr
    listed = run(["metrics"], elsewhere, module="unimm.cli.registry_cmd", env=env)
    assert "[my_plugin] The mean over classes" in listed.stdout
