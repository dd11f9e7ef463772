"""Every registered model part of unimm and its projects, built at tiny size through its registry.

Each case builds the part (hidden 32, 2 layers, 2 heads where it has them) and returns the losses
of a forward pass (or several, e.g. one per dataset of a multi-task model); the test then checks
that the values are finite and that every trainable parameter got a finite gradient, except those
the case declares unused. A part registered without a case in ``part_cases`` fails ``test_every_part_has_a_case``,
so a new encoder, decoder, head, loss or model is enrolled by registering it and writing its case.
Paper-size presets are built on the meta device (no memory, no forward); their parts run here
at tiny size through the presets and the composable ``unit`` model.
"""
from __future__ import annotations

import math
import re

import pytest
import torch

from tests.conftest import REPO
from tests.models.part_cases import CASES
from unimm.plugins import import_builtins, load_user_dirs
from unimm.registry import REGISTRIES

MODEL_KINDS = ("models", "encoders", "fusions", "decoders", "heads", "losses")
SHIPPED = ("unimm.", "projects.")  # parts of unimm and of its projects (not the tests' own plugins)
PROJECTS = ("quickstart", "unit", "meter", "vit_bert", "momo")


@pytest.fixture(scope="module", autouse=True)
def parts():
    import_builtins()
    load_user_dirs([str(REPO / "projects" / name) for name in PROJECTS])


def shipped_parts() -> list[tuple[str, str]]:
    import_builtins()
    load_user_dirs([str(REPO / "projects" / name) for name in PROJECTS])
    return [(kind, entry.name) for kind in MODEL_KINDS for entry in REGISTRIES[kind].entries()
            if entry.module.startswith(SHIPPED)]


def test_every_part_has_a_case():
    missing = [f"{kind}/{name}" for kind, name in shipped_parts() if (kind, name) not in CASES]
    assert not missing, f"add a tiny case to tests/models/part_cases/ for: {missing}"
    stale = [f"{kind}/{name}" for kind, name in CASES if name not in REGISTRIES[kind]]
    assert not stale, f"cases of parts that are no longer registered: {stale}"


@pytest.mark.parametrize(("kind", "name"), sorted(CASES), ids=[f"{k}/{n}" for k, n in sorted(CASES)])
def test_part_runs_forward_and_backward_at_tiny_size(kind: str, name: str):
    case = CASES[(kind, name)]
    torch.manual_seed(0)
    if case.meta:
        with torch.device("meta"):
            part = case.build()
        assert sum(p.numel() for p in part.parameters()) > 0
        return
    part = case.build()
    losses = case.losses(part)
    assert losses, "the case computes no loss"
    for loss in losses:
        assert loss.dim() == 0 and math.isfinite(loss.item()), loss
    sum(losses).backward()
    unused = [re.compile(p) for p in case.unused]
    for param_name, param in part.named_parameters():
        if not param.requires_grad or any(r.search(param_name) for r in unused):
            continue
        assert param.grad is not None, f"{kind}/{name}: {param_name} got no gradient (declare it unused if by design)"
        assert torch.isfinite(param.grad).all(), f"{kind}/{name}: {param_name} has a non-finite gradient"
