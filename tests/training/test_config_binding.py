"""The YAML nodes of every training part bind to their builders' typed signatures."""
from __future__ import annotations

import pytest

import unimm.training  # noqa: F401 (registers the parts)
from unimm.config.validate import check_node
from unimm.registry import OPTIMIZER_HOOKS, OPTIMIZERS, SCHEDULERS, STEP_STRATEGIES, TASK_SAMPLERS

GOOD = [
    (TASK_SAMPLERS, {"type": "ratios", "ratios": {"coco": 0.33, "vqa2": 0.67}}),
    (TASK_SAMPLERS, {"type": "size_proportional", "temperature": 2}),
    (TASK_SAMPLERS, {"type": "round_robin", "order": ["img", "txt"]}),
    (SCHEDULERS, {"type": "warmup_cosine", "warmup_steps": 2000}),
    (SCHEDULERS, {"type": "warmup_linear", "warmup_ratio": 0.1}),
    (SCHEDULERS, {"type": "polynomial", "warmup_steps": 0, "power": 2, "end_lr_ratio": 0.0}),
    (SCHEDULERS, "constant"),
    (OPTIMIZERS, {"type": "adamw", "lr": 5.0e-5, "betas": [0.9, 0.98], "weight_decay": 0.01}),
    (OPTIMIZERS, {"type": "sgd", "lr": 0.01, "momentum": 0.9}),
    (OPTIMIZER_HOOKS, "skip_zero_grad"),
    (OPTIMIZER_HOOKS, {"type": "iterative_gradient_mask", "params": "^encoder\\.", "delta": 0.1, "beta": 0.5,
                       "every": 10000, "random": False}),
    (STEP_STRATEGIES, {"type": "accumulate", "datasets": ["img", "txt"]}),
    (STEP_STRATEGIES, {"type": "masked_combine", "group_a": ["^text/"], "group_b": ["^image/"]}),
]
BAD = [
    (TASK_SAMPLERS, {"type": "ratios", "ratios": [0.5, 0.5]}, "ratios"),
    (SCHEDULERS, {"type": "warmup_cosine", "warmup_steps": "2k"}, "warmup_steps"),
    (OPTIMIZERS, {"type": "adamw"}, "lr"),
    (OPTIMIZER_HOOKS, {"type": "iterative_gradient_mask", "params": "^encoder\\.", "every": 0.5}, "every"),
    (STEP_STRATEGIES, {"type": "masked_combine", "group_a": ["x"]}, "group_b"),
]


@pytest.mark.parametrize("registry, node", GOOD, ids=lambda v: getattr(v, "kind", None) or str(v)[:40])
def test_good_nodes_bind(registry, node):
    errors: list[str] = []
    check_node(node, registry, "part", errors, runtime=())
    assert errors == []


@pytest.mark.parametrize("registry, node, key", BAD, ids=lambda v: getattr(v, "kind", None) or str(v)[:40])
def test_bad_nodes_name_the_key(registry, node, key):
    errors: list[str] = []
    check_node(node, registry, "part", errors, runtime=())
    assert len(errors) == 1 and f"part.{key}" in errors[0]
