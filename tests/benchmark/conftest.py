"""One tiny shapes benchmark shared by the tests of this folder (generated once per session)."""
from __future__ import annotations

from pathlib import Path

import pytest

from unimm.benchmark.shapes import generate_shapes


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a tiny benchmark, seed 0, its pictures drawn by two worker processes."""
    summary = generate_shapes(tmp_path_factory.mktemp("data"), size="tiny", seed=0, workers=2)
    return Path(summary["path"])
