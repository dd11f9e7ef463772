"""registry.md is generated from the live registry; a stale committed file fails here."""
import subprocess
import sys

from tests.conftest import REPO


def test_registry_md_is_fresh():
    # A fresh process: only unimm's parts and the projects, none registered by other tests.
    result = subprocess.run([sys.executable, "tools/gen_registry.py", "--check"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + "\nregenerate with: python tools/gen_registry.py"


def test_registry_md_lists_parts_of_the_core_and_projects():
    text = (REPO / "registry.md").read_text()
    for line in ("## models", "## optimizer_hooks", "`mlp_classifier`", "`accuracy`"):
        assert line in text
