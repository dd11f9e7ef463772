"""Moved modules and renamed parts: old imports and names keep working or say where they went."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO
from unimm.registry import Registry, RegistryError

PROBE = """
import warnings
warnings.simplefilter("error", DeprecationWarning)
try:
    import unimm.data.shapes
except DeprecationWarning as w:
    print("warned:", w)
warnings.simplefilter("ignore", DeprecationWarning)
import unimm.data.shapes as old
import unimm.benchmark.shapes as new
print("same module:", old is new)
from unimm.modules.set_criterion import SetCriterion
from unimm.losses.set_criterion import SetCriterion as moved
print("same class:", SetCriterion is moved)
try:
    from unimm.models.unit import UniT
except ImportError as err:
    print("import error:", err)
"""


def test_a_module_moved_in_unimm_imports_with_a_warning_and_one_moved_to_a_project_says_where():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert "warned: unimm.data.shapes moved to unimm.benchmark.shapes" in out
    assert "same module: True" in out and "same class: True" in out
    assert "import error: unimm.models.unit is UniT's and moved out of unimm to projects/unit/model.py" in out


def test_a_renamed_part_builds_under_its_old_name_with_a_warning(caplog):
    widgets = Registry("widgets")
    widgets.register("new_widget")(lambda: "built")
    widgets.rename("old_widget", "new_widget")
    with caplog.at_level("WARNING", logger="unimm"):
        assert widgets.build("old_widget") == "built"
    assert "'old_widget' was renamed 'new_widget'" in caplog.text
    assert widgets.renamed() == {"old_widget": "new_widget"}


def test_a_renamed_part_whose_new_home_is_not_loaded_says_what_to_load():
    widgets = Registry("widgets")
    widgets.rename("unit_bench", "unit_small", "projects/unit")
    with pytest.raises(RegistryError, match="'unit_bench' was renamed 'unit_small', which projects/unit registers; "
                                            "load it"):
        widgets.get("unit_bench")
