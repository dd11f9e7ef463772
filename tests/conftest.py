"""Test-wide settings: no network (loopback stays open for gloo), offline hubs, fixed seeds, and
run folders that default to ``$UNIMM_SAVE_DIR`` kept out of the repository."""
from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# A run that keeps a config's default folder (e.g. the shapes backbone stage) must not leave a
# checkpoint in the repository's save/ that a later run of the main job would reuse.
os.environ["UNIMM_SAVE_DIR"] = tempfile.mkdtemp(prefix="unimm-tests-save-")


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and the like stay on this machine
    host = str(address[0])
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: resolving it is already a network request


class NetworkBlocked(RuntimeError):
    pass


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded(real):
    def connect(self, address):  # type: ignore[no-untyped-def]
        if not _is_loopback(address):
            raise NetworkBlocked(f"tests may not reach the network (tried {address!r})")
        return real(self, address)

    return connect


socket.socket.connect = _guarded(_real_connect)  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded(_real_connect_ex)  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _seed_and_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:
        pass


@pytest.fixture(scope="session")
def tiny_benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding the shapes benchmark at its tiny size (generated once per test run; read only)."""
    from unimm.benchmark.shapes import generate_shapes

    root = tmp_path_factory.mktemp("data")
    generate_shapes(root, size="tiny")
    return root
