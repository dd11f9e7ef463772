"""Learning-rate schedules: closed forms at warm-up end, midpoint and end; per-group ratios kept."""
from __future__ import annotations

import math

import pytest
import torch

import unimm.training  # noqa: F401 (registers the schedulers)
from unimm.config.errors import ConfigError
from unimm.registry import SCHEDULERS

T = 100


def lr_curve(node, max_updates=T):
    """lr of both groups after 0..max_updates scheduler steps; group 1 starts at 0.1 x group 0."""
    w = torch.nn.Parameter(torch.zeros(1))
    v = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [w], "lr": 2.0}, {"params": [v], "lr": 0.2}], lr=2.0)
    sched = SCHEDULERS.build(node, path="scheduler", optimizer=opt, max_updates=max_updates)
    curve = []
    for _ in range(max_updates + 1):
        curve.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return curve


def multipliers(node):
    curve = lr_curve(node)
    for lr0, lr1 in curve:
        assert lr1 == pytest.approx(0.1 * lr0, abs=1e-12)  # per-group ratio preserved
    return [lr0 / 2.0 for lr0, _ in curve]


def test_constant():
    assert multipliers("constant") == [1.0] * (T + 1)


def test_warmup_cosine():
    f = multipliers({"type": "warmup_cosine", "warmup_steps": 10, "min_lr_ratio": 0.1})
    assert f[0] == 0.0 and f[5] == pytest.approx(0.5)
    assert f[10] == pytest.approx(1.0)                       # warm-up end: the peak
    assert f[55] == pytest.approx(0.1 + 0.9 * 0.5)           # halfway through the cosine
    assert f[32] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 22 / 90)))
    assert f[100] == pytest.approx(0.1)                      # end: min_lr_ratio


def test_warmup_linear_with_ratio_decays_to_zero():
    f = multipliers({"type": "warmup_linear", "warmup_ratio": 0.1})  # METER: 10% warm-up
    assert f[10] == pytest.approx(1.0)
    assert f[55] == pytest.approx(0.5)
    assert f[100] == pytest.approx(0.0, abs=1e-12)


def test_polynomial():
    f = multipliers({"type": "polynomial", "warmup_steps": 0, "power": 2.0, "end_lr_ratio": 0.2})
    assert f[0] == pytest.approx(1.0)
    assert f[50] == pytest.approx(0.2 + 0.8 * 0.25)
    assert f[100] == pytest.approx(0.2)


def test_past_max_updates_stays_at_the_end_value():
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=1.0)
    sched = SCHEDULERS.build({"type": "warmup_linear", "warmup_steps": 2, "end_lr_ratio": 0.3},
                             optimizer=opt, max_updates=10)
    for _ in range(15):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.3)


@pytest.mark.parametrize("node, key", [
    ({"type": "warmup_cosine"}, "scheduler.warmup_steps"),
    ({"type": "warmup_linear", "warmup_steps": 5, "warmup_ratio": 0.1}, "scheduler.warmup_steps"),
    ({"type": "polynomial", "warmup_steps": 500}, "scheduler.warmup_steps"),
    ({"type": "warmup_cosine", "warmup_ratio": 1.5}, "scheduler.warmup_ratio"),
    ({"type": "polynomial", "warmup_steps": 1, "power": 0.0}, "scheduler.power"),
])
def test_errors_name_the_key(node, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        lr_curve(node)


def test_state_dict_resumes_the_curve():
    w = torch.nn.Parameter(torch.zeros(1))
    node = {"type": "warmup_cosine", "warmup_steps": 3}
    opt = torch.optim.SGD([w], lr=1.0)
    sched = SCHEDULERS.build(node, optimizer=opt, max_updates=20)
    for _ in range(7):
        opt.step()
        sched.step()
    opt2 = torch.optim.SGD([w], lr=1.0)
    sched2 = SCHEDULERS.build(node, optimizer=opt2, max_updates=20)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    for _ in range(5):
        opt.step(), sched.step(), opt2.step(), sched2.step()
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
