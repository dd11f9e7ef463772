"""Step strategies: the gradients of one update equal a hand-computed reference."""
from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

import unimm.training  # noqa: F401 (registers the strategies and hooks)
from unimm.config.errors import ConfigError
from unimm.config.validate import check_node
from unimm.registry import OPTIMIZER_HOOKS, STEP_STRATEGIES
from unimm.training.steps import StepContext


class Unified(nn.Module):
    """A shared layer, an image head (one loss) and a text head (two losses)."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Linear(4, 4)
        self.img_head = nn.Linear(4, 2)
        self.txt_head = nn.Linear(4, 3)

    def forward(self, batch: dict) -> dict:
        h = torch.tanh(self.shared(batch["x"]))
        name = batch["dataset_name"]
        if name == "img":
            return {"losses": {"img/cls": nn.functional.cross_entropy(self.img_head(h), batch["y"] % 2)}}
        logits = self.txt_head(h)
        return {"losses": {"txt/mlm": nn.functional.cross_entropy(logits, batch["y"] % 3),
                           "txt/nsp": logits.pow(2).mean()}}


def batches(name: str, n: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    return [{"dataset_name": name, "x": torch.randn(5, 4, generator=g), "y": torch.randint(0, 6, (5,), generator=g)}
            for _ in range(n)]


class Counting:
    """A no_sync factory that counts how often it is entered."""

    def __init__(self) -> None:
        self.entered = 0

    def __call__(self):
        self.entered += 1
        return contextlib.nullcontext()


def context(model, data, *, accum=1, hooks=(), sampler=None, no_sync=None) -> StepContext:
    streams = {name: iter(items) for name, items in data.items()}
    return StepContext(model=model, sampler=sampler, next_batch=lambda name: next(streams[name]),
                       dataset_names=list(data), grad_accum_steps=accum, hooks=list(hooks),
                       no_sync=no_sync or contextlib.nullcontext)


def reference(model, loss_fn):
    """d loss_fn(model) / d params by torch.autograd.grad, one tensor per parameter."""
    return torch.autograd.grad(loss_fn(model), list(model.parameters()), allow_unused=True)


def assert_grads(model, expected):
    for (name, p), g in zip(model.named_parameters(), expected):
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, g, rtol=1e-6, atol=1e-7, msg=name)


def total(model, batch):
    return sum(model(batch)["losses"].values())


def test_sampled_is_the_mean_over_accumulated_batches():
    torch.manual_seed(0)
    model = Unified()
    data = {"img": batches("img", 3, 1), "txt": batches("txt", 3, 2)}
    sampler = type("Fixed", (), {"next": lambda self: "txt"})()
    no_sync = Counting()
    STEP_STRATEGIES.build("sampled")(context(model, data, accum=3, sampler=sampler, no_sync=no_sync))
    expected = reference(model, lambda m: sum(total(m, b) for b in data["txt"]) / 3)
    for (name, p), g in zip(model.named_parameters(), expected):
        if name.startswith("img_head"):
            assert p.grad is None and g is None
        else:
            torch.testing.assert_close(p.grad, g, rtol=1e-6, atol=1e-7)
    assert no_sync.entered == 2


def test_accumulate_sums_every_dataset_into_one_update():
    torch.manual_seed(0)
    model = Unified()
    data = {"img": batches("img", 2, 1), "txt": batches("txt", 2, 2)}
    no_sync = Counting()
    logged = STEP_STRATEGIES.build("accumulate")(context(model, data, accum=2, no_sync=no_sync))
    expected = reference(model, lambda m: sum(total(m, b) for name in data for b in data[name]) / 2)
    assert_grads(model, expected)
    assert no_sync.entered == 3  # 4 backward passes, all but the last without DDP's all-reduce
    assert set(logged) == {"img/cls", "txt/mlm", "txt/nsp"}


def test_accumulate_with_weights_and_a_subset():
    torch.manual_seed(0)
    model = Unified()
    data = {"img": batches("img", 1, 1), "txt": batches("txt", 1, 2)}
    node = {"type": "accumulate", "weights": {"img": 0.2, "txt": 0.8}}  # ViT-BERT "Joint", Eq. 9
    STEP_STRATEGIES.build(node)(context(model, data))
    expected = reference(model, lambda m: 0.2 * total(m, data["img"][0]) + 0.8 * total(m, data["txt"][0]))
    assert_grads(model, expected)
    with pytest.raises(ConfigError, match="training.step_strategy.datasets"):
        STEP_STRATEGIES.build({"type": "accumulate", "datasets": ["audio"]})(context(Unified(), data))


def test_masked_combine_follows_eq_8():
    torch.manual_seed(0)
    model = Unified()
    data = {"img": batches("img", 2, 1), "txt": batches("txt", 2, 2)}
    hook = OPTIMIZER_HOOKS.build({"type": "iterative_gradient_mask", "params": "^shared", "delta": 0.25,
                                  "beta": 0.5, "every": 1}, model=model, optimizer=None)
    node = {"type": "masked_combine", "group_a": ["^txt/"], "group_b": ["^img/"]}
    errors: list[str] = []
    check_node(node, STEP_STRATEGIES, "training.step_strategy", errors, runtime=())
    assert errors == []
    STEP_STRATEGIES.build(node)(context(model, data, accum=2, hooks=[hook]))

    params = list(model.parameters())
    g_txt = reference(model, lambda m: sum(total(m, b) for b in data["txt"]) / 2)
    g_img = reference(model, lambda m: sum(total(m, b) for b in data["img"]) / 2)
    # Algorithm 1 line 6 on the first update: the 25% smallest |G_txt| of the shared entries
    shared = {id(model.shared.weight): g_txt[0], id(model.shared.bias): g_txt[1]}
    scores = torch.cat([g.abs().reshape(-1) for g in shared.values()])
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep[scores.argsort()[: round(0.25 * scores.numel())]] = False
    masks = dict(zip(shared, keep.split([g.numel() for g in shared.values()])))
    for p, ga, gb in zip(params, g_txt, g_img):
        ga = torch.zeros_like(p) if ga is None else ga
        gb = torch.zeros_like(p) if gb is None else gb
        if id(p) in masks:
            m = masks[id(p)].reshape(p.shape).float()
            assert torch.equal(hook.mask_for(p), m.bool())
            expected = m * ga + (1 - m) * gb                          # Eq. 8
        else:
            expected = ga + gb                                       # heads: unmasked
        torch.testing.assert_close(p.grad, expected, rtol=1e-6, atol=1e-7)
    hook.before_step(0)  # observe() was called: no complaint


def test_masked_combine_errors():
    data = {"img": batches("img", 1, 1), "txt": batches("txt", 1, 2)}
    with pytest.raises(ConfigError, match="iterative_gradient_mask"):
        STEP_STRATEGIES.build({"type": "masked_combine", "group_a": ["txt"], "group_b": ["img"]})(
            context(Unified(), data))
    model = Unified()
    hook = OPTIMIZER_HOOKS.build({"type": "iterative_gradient_mask", "params": "^shared"}, model=model, optimizer=None)
    with pytest.raises(ConfigError, match="'txt/nsp' matches neither"):
        STEP_STRATEGIES.build({"type": "masked_combine", "group_a": ["mlm"], "group_b": ["img"]})(
            context(model, data, hooks=[hook]))
    with pytest.raises(ConfigError, match="group_b"):
        STEP_STRATEGIES.build({"type": "masked_combine", "group_a": ["mlm"], "group_b": "img"})
