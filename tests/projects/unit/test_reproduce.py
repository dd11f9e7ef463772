"""tools/reproduce_unit.py: its plan, its paper tables, and one tiny run written into a README."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import tool_fixture

REPO = Path(__file__).resolve().parents[3]
README = REPO / "projects" / "unit" / "README.md"


tool = tool_fixture("reproduce_unit")


@pytest.fixture
def readme(tmp_path: Path) -> Path:
    copy = tmp_path / "README.md"
    copy.write_text(README.read_text())
    return copy


def test_the_project_readme_has_the_markers(tool):
    text = README.read_text()
    assert text.index(tool.BEGIN) < text.index(tool.END)
    assert "unimm_run config=projects/unit/all8.yaml variant=shapes" in text


def test_runs_and_paper_tables_fit_together(tool):
    tables = {t.key: t for t in tool.TABLES}
    for table in tool.TABLES:
        assert all(len(row.paper) == len(table.metrics) == len(table.columns) for row in table.rows)
    for run in tool.RUNS:
        assert (REPO / run.config).is_file(), run.config
        for key, line in run.rows:
            assert any(row.line == line for row in tables[key].rows), (run.name, key, line)
        assert run.needs is None or run.needs in tool.BY_NAME
    for _, key, line, reference in tool.COMPARISONS:
        assert {line, reference} <= {row.line for row in tables[key].rows}
    # Table 3 line 3 is the paper's shared 8-dataset model; line 1 its single-task models.
    assert tables["table3"].row(3).paper == (33.8, 2.69, 67.36, 74.14, 87.99, 81.40, 90.62, 89.40)
    assert tables["table1"].row(1).paper == (40.6, 3.87, 66.38)


def test_signs_agree_only_when_both_move_the_same_way(tool):
    assert tool.same_sign(0.5, 2.0) and tool.same_sign(-0.1, -3.0) and tool.same_sign(0.0, 0.0)
    assert not tool.same_sign(0.0, -0.98) and not tool.same_sign(0.2, 0.0) and not tool.same_sign(-1.0, 1.0)


def test_a_coco_init_run_brings_the_coco_run(tool, tmp_path: Path):
    assert [r.name for r in tool.select_runs("all8_coco_init", tmp_path)] == ["single_task_coco", "all8_coco_init"]
    default = [r.name for r in tool.select_runs(None, tmp_path)]
    assert default.index("single_task_coco") < default.index("all8_coco_init")
    assert not any(name.startswith("ablation_") for name in default)


def test_dry_run_validates_every_config_and_runs_nothing(tool, readme: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert tool.main(["--dry-run", "--out", str(out), "--readme", str(readme), "--updates", "5"]) == 0
    printed = capsys.readouterr().out
    assert all(run.name in printed for run in tool.RUNS if run.default)
    assert "dry run: 16 configs valid" in printed
    assert not out.exists() and readme.read_text() == README.read_text()


def test_errors_name_what_to_fix(tool, readme: Path, tmp_path: Path, capsys):
    assert tool.main(["--dry-run", "--only", "all9", "--readme", str(readme)]) == 2
    assert "unknown run all9" in capsys.readouterr().err
    readme.write_text("# no markers\n")
    assert tool.main(["--dry-run", "--readme", str(readme)]) == 2
    assert "reproduce_unit:begin" in capsys.readouterr().err


def test_one_tiny_run_fills_the_readme_table(tool, tiny_benchmark: Path, readme: Path, tmp_path: Path):
    out = tmp_path / "out"
    before = readme.read_text()
    code = tool.main(["--only", "single_task_sst2", "--updates", "2", "--size", "tiny",
                      "--data-dir", str(tiny_benchmark), "--out", str(out), "--readme", str(readme),
                      "--set", "env.device=cpu", "--set", "evaluation.max_batches=2"])
    assert code == 0
    record = json.loads((out / "single_task_sst2" / "reproduce.json").read_text())
    assert record["status"] == "finished" and record["updates"] == 2

    text = readme.read_text()
    head, rest = text.split(tool.BEGIN)
    section, tail = rest.split(tool.END)
    assert head == before.split(tool.BEGIN)[0] and tail == before.split(tool.END)[1]
    results = json.loads((out / "results.json").read_text())
    accuracy = 100 * results["runs"]["single_task_sst2"]["metrics"]["sst2/accuracy"]
    single = next(line for line in section.splitlines()  # Table 3's line (11 bars: 10 columns)
                  if line.startswith("| 1 | single-task training |") and line.count("|") == 11)
    assert single.rstrip(" |").endswith(f"{accuracy:.2f} / 91.63")  # ours / the paper's (Table 3 line 1)
    assert "| single_task_sst2 | `projects/unit/single_task/sst2.yaml` | 2 | 2 |" in section
    assert (out / "results.md").read_text() == section.lstrip("\n")


def test_the_backbone_stage_is_trained_once_up_front_into_the_out_folder(tool, tiny_benchmark: Path, readme: Path,
                                                                          tmp_path: Path, capsys):
    out = tmp_path / "out"
    stage = out / tool.BACKBONE_RUN
    quick = (f"checkpoint.init_run.overrides=[env.save_dir={stage},training.max_updates=2,scheduler.warmup_steps=0,"
             "evaluation.max_batches=1]")
    args = ["--updates", "2", "--size", "tiny", "--data-dir", str(tiny_benchmark), "--out", str(out),
            "--readme", str(readme), "--set", "env.device=cpu", "--set", "evaluation.max_batches=2", "--set", quick]
    assert tool.main(["--only", "single_task_snli_ve", *args]) == 0
    printed = capsys.readouterr().out
    assert printed.index(f"== {tool.BACKBONE_RUN}: finished") < printed.index("== single_task_snli_ve:")
    made = (stage / "checkpoints" / "last").stat().st_mtime_ns
    saved = (out / "single_task_snli_ve" / "config.yaml").read_text()
    assert f"init_from: {stage}/checkpoints/last" in saved
    assert tool.main(["--only", "single_task_vqa2", *args]) == 0  # a second picture run reuses it
    assert f"== {tool.BACKBONE_RUN}" not in capsys.readouterr().out
    assert (stage / "checkpoints" / "last").stat().st_mtime_ns == made
