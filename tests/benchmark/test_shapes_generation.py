"""Determinism, atomic writing, reuse and overwrite of ``generate_shapes``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unimm.benchmark.shapes import generate_shapes
from unimm.benchmark.shapes import generate as generate_module

REPO = Path(__file__).resolve().parents[2]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# Generates in a fresh interpreter with another hash seed, and without the rest of ``unimm.data``
# and ``unimm.metrics`` (their package ``__init__`` replaced by empty packages: the generator uses
# their torch-free VQA scorer and COCOeval path, as runs do), so the generator must need nothing
# but numpy, Pillow and pycocotools, never torch, and must not depend on the hash seed or on the
# number of workers.
STANDALONE = """
import pathlib, sys, types
import unimm
for name in ("data", "metrics"):
    package = types.ModuleType(f"unimm.{name}")
    package.__path__ = [str(pathlib.Path(unimm.__file__).parent / name)]
    sys.modules[f"unimm.{name}"] = package
from unimm.benchmark.shapes import generate_shapes
generate_shapes(sys.argv[1], size="tiny", seed=0, workers=1)
assert "torch" not in sys.modules, "the generator must not need torch"
"""


def test_same_seed_gives_byte_identical_files_in_another_process(shapes_dir: Path, tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", STANDALONE, str(tmp_path)], check=True, env=environment, cwd=REPO)
    first, second = _tree(shapes_dir), _tree(tmp_path / "shapes")
    assert first.keys() == second.keys()
    different = [name for name in first if first[name] != second[name]]
    assert different == []
    assert json.loads(first["summary.json"])["files"] == len(first)


def test_existing_benchmark_is_reused_refused_or_replaced(shapes_dir: Path, tmp_path: Path) -> None:
    first = generate_shapes(tmp_path, size="tiny", seed=0)
    assert not first["reused"]
    again = generate_shapes(tmp_path, size="tiny", seed=0)
    assert again["reused"] and again["counts"] == first["counts"]
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_shapes(tmp_path, size="tiny", seed=1)
    replaced = generate_shapes(tmp_path, size="tiny", seed=1, overwrite=True)
    assert replaced["seed"] == 1 and not replaced["reused"]
    other = _tree(Path(replaced["path"]))
    instances = "coco/annotations/instances_train2017.json"
    assert other[instances] != (shapes_dir / instances).read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["shapes"]  # no temporary or retired folder left


def test_failed_generation_leaves_no_partial_benchmark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = generate_shapes(tmp_path / "kept", size="tiny", seed=0)
    before = _tree(Path(first["path"]))

    def broken_writer(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(generate_module, "write_glue", broken_writer)
    with pytest.raises(RuntimeError, match="interrupted"):
        generate_shapes(tmp_path / "fresh", size="tiny", seed=0)
    assert list((tmp_path / "fresh").iterdir()) == []
    with pytest.raises(RuntimeError, match="interrupted"):
        generate_shapes(tmp_path / "kept", size="tiny", seed=1, overwrite=True)
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["shapes"]
    assert _tree(Path(first["path"])) == before  # the old benchmark is untouched


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tiny, default, large"):
        generate_shapes(tmp_path, size="huge")
    with pytest.raises(ValueError, match="image_size"):
        generate_shapes(tmp_path, size="tiny", image_size=8)
    assert list(tmp_path.iterdir()) == []


def test_summary_counts_every_dataset(shapes_dir: Path) -> None:
    summary = json.loads((shapes_dir / "summary.json").read_text())
    expected = {"coco", "vqa2", "visual_genome", "snli_ve", "karpathy", "nlvr2", "imagefolder", "glue", "corpus",
                "vocab"}
    assert set(summary["counts"]) == expected
    assert summary["seed"] == 0 and summary["size"] == "tiny"
    assert summary["counts"]["coco"]["train2017"]["images"] == 24


def _tool():
    import importlib.util

    path = REPO / "tools" / "generate_shapes.py"
    spec = importlib.util.spec_from_file_location("generate_shapes_tool", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_command_line_reports_and_refuses(shapes_dir: Path, capsys: pytest.CaptureFixture) -> None:
    tool = _tool()
    assert tool.main(["--out", str(shapes_dir.parent), "--size", "tiny", "--seed", "0"]) == 0
    printed = capsys.readouterr().out
    assert "already holds this benchmark" in printed and "coco/train2017/images" in printed and "vqa2" in printed
    assert tool.main(["--out", str(shapes_dir.parent), "--size", "tiny", "--seed", "3"]) == 2
    assert "--overwrite" in capsys.readouterr().err
