"""Small helpers shared by tests (not fixtures)."""
from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Callable

import torch.multiprocessing as mp


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now (for gloo)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_rank(rank: int, fn: Callable, args: tuple, done_dir: str) -> None:
    fn(rank, *args)
    Path(done_dir, str(rank)).touch()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every check passed: leave without running interpreter and C++ static teardown, where
    # torch's gloo and autograd threads can abort a finished process ("terminate called
    # without an active exception"), which would fail a run whose assertions all held.
    os._exit(0)


def spawn_ranks(fn: Callable, args: tuple, world: int, start_method: str = "spawn") -> None:
    """Run ``fn(rank, *args)`` in ``world`` processes; an assertion in any rank fails the test.

    A process that dies from a signal is reported with the ranks that had finished every check.
    """
    with tempfile.TemporaryDirectory() as done_dir:
        try:
            mp.start_processes(_run_rank, args=(fn, args, done_dir), nprocs=world, join=True,
                               start_method=start_method)
        except mp.ProcessExitedException as error:
            finished = sorted(int(p.name) for p in Path(done_dir).iterdir())
            raise AssertionError(f"{error} (ranks that had passed every check: {finished})") from error


def check_project_runs(config: Callable[[str, str | None], dict], names: list[str], model_type: str,
                       data: str) -> None:
    """Every runnable file of a project, in its paper setting and its shapes variant, writes to its own
    folder; the shapes variants read the embedded benchmark under ``data`` and build ``model_type``."""
    folders: dict[str, tuple[str, str | None]] = {}
    for name in names:
        for variant in (None, "shapes"):
            cfg = config(name, variant)
            folder = cfg["env"]["save_dir"]
            assert folder not in folders, f"{name} ({variant}) writes to {folder} like {folders[folder]}"
            folders[folder] = (name, variant)
            if variant == "shapes":
                assert cfg["env"]["benchmark"] == {"type": "shapes", "size": "default", "seed": 0}
                assert cfg["model"]["type"] == model_type
                paths = [d["data_dir"] for d in cfg["datasets"].values()]
                assert all(p.startswith(f"{data}/shapes/") for p in paths), paths


def load_tool(path: Path):
    """Import a script of tools/ as a module (registered in sys.modules while its dataclasses are made)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def tool_fixture(name: str):
    """A module-scoped pytest fixture giving ``tools/<name>.py`` as a module (unloaded after the module's tests)."""
    import pytest

    @pytest.fixture(scope="module")
    def tool():
        module = load_tool(Path(__file__).resolve().parents[1] / "tools" / f"{name}.py")
        yield module
        sys.modules.pop(module.__name__, None)

    return tool


def predict_with_random_weights(config: Path, overrides: list[str], split: str, folder: Path) -> None:
    """``run_type=predict`` of ``config`` with a freshly built model's weights given as
    ``checkpoint.init_from`` (written to ``folder/weights.pt``): predictions without a training run."""
    import torch

    from unimm import session
    from unimm.registry import MODELS
    from unimm.training.trainer import build_datasets, dataset_info

    cfg, _ = session.prepare(config, overrides, variant="shapes")
    model = MODELS.build(cfg["model"], dataset_info=dataset_info(build_datasets(cfg, split)))
    torch.save(model.state_dict(), folder / "weights.pt")
    cfg, text = session.prepare(config, [*overrides, f"checkpoint.init_from={folder / 'weights.pt'}"],
                                variant="shapes")
    session.execute(cfg, text)
