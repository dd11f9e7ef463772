"""Optimizer hooks: skip_zero_grad leaves unused parameters bit-identical; the iterative gradient mask
(ViT-BERT Algorithm 1) on hand-made gradients, its sparsity per block and the plot of it."""
from __future__ import annotations

import contextlib
import io
import logging
import math

import pytest
import torch
from torch import nn

import unimm.training  # noqa: F401 (registers the hooks)
from unimm.config.errors import ConfigError
from unimm.config.validate import check_node
from unimm.interfaces import ReportsScalars
from unimm.registry import OPTIMIZER_HOOKS
from unimm.training.hooks import SkipZeroGrad, block_of
from unimm.utils.mask_plots import plot_mask_sparsity, sparsity_series


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Linear(3, 3)
        self.vqa = nn.Linear(3, 2)
        self.det = nn.Linear(3, 2)

    def loss(self, x: torch.Tensor, head: str) -> torch.Tensor:
        h = self.shared(x)
        out = getattr(self, head)(h).pow(2).mean()
        if head == "det":  # the VQA classifier takes part with a zero gradient, like an unused head
            out = out + 0.0 * self.vqa(h).sum()
        return out


OPTIMIZERS = {
    "adamw_foreach": lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.1, foreach=True),
    "adamw_loop": lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.1, foreach=False),
    "adam": lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=0.1),
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.1),
}


def snapshot(param: torch.Tensor, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    state = {k: v.clone() if torch.is_tensor(v) else v for k, v in opt.state[param].items()}
    return {"param": param.detach().clone(), **state}


def identical(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k] == b[k] for k in a)


def two_updates(make_opt, use_hook: bool):
    """Update 1 uses every head; update 2 is a detection step. Returns the model, optimizer, snapshots."""
    torch.manual_seed(0)
    model = TwoHeads()
    opt = make_opt(model.parameters())
    hooks = [OPTIMIZER_HOOKS.build("skip_zero_grad", model=model, optimizer=opt)] if use_hook else []
    x = torch.randn(4, 3)
    for step, heads in enumerate([("vqa", "det"), ("det",)]):
        for head in heads:
            model.loss(x, head).backward()
        if step == 1:
            before = {name: snapshot(p, opt) for name, p in model.named_parameters()}
        for hook in hooks:
            hook.before_step(step)
        opt.step()
        for hook in hooks:
            hook.after_step(step)
        opt.zero_grad(set_to_none=True)
    after = {name: snapshot(p, opt) for name, p in model.named_parameters()}
    return hooks, before, after


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_skip_zero_grad_leaves_unused_parameters_bit_identical(name):
    hooks, before, after = two_updates(OPTIMIZERS[name], use_hook=True)
    for key in ("vqa.weight", "vqa.bias"):  # zero gradient this update: untouched, moments and step included
        assert identical(before[key], after[key]), key
    for key in ("shared.weight", "det.weight", "det.bias"):
        assert not torch.equal(before[key]["param"], after[key]["param"]), key
    assert hooks[0].last_skipped == 2
    _, before, after = two_updates(OPTIMIZERS[name], use_hook=False)  # without the hook they do change
    assert not identical(before["vqa.weight"], after["vqa.weight"])


def fused_case(seed: int):
    """Parameters of two dtypes with gradients: random, all zero (unused), a NaN, and none."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(4, 3), (3,), (5, 2), (2,), (6,), (3, 3)]
    params = [nn.Parameter(torch.randn(s, generator=g, dtype=torch.float64 if i in (1, 4) else torch.float32))
              for i, s in enumerate(shapes)]
    for i, p in enumerate(params):
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype) * 3
    params[0].grad.zero_()  # unused: the first of its dtype group, so the groups' order shifts once skipped
    params[4].grad.zero_()
    params[5].grad = None
    return params


@pytest.mark.parametrize("max_norm", [0.5, 1e6])  # clipping, and a bound far above the norm (coefficient 1)
def test_skip_and_clip_in_one_pass_equals_the_two_passes_to_the_bit(max_norm):
    two, one = fused_case(0), fused_case(0)
    SkipZeroGrad(torch.optim.SGD(two, lr=0.1)).before_step(0)
    total_two = torch.nn.utils.clip_grad_norm_(two, max_norm)
    hook = SkipZeroGrad(torch.optim.SGD(one, lr=0.1))
    total_one = hook.skip_and_clip(one, max_norm)
    assert hook.last_skipped == 2 and [p.grad is None for p in one] == [True, False, False, False, True, True]
    assert torch.equal(total_one, total_two)
    for a, b in zip(two, one):
        assert (a.grad is None and b.grad is None) or torch.equal(a.grad, b.grad)


def test_a_nan_gradient_is_kept_and_clipping_sees_it():
    params = fused_case(1)
    params[2].grad[0, 0] = float("nan")
    hook = SkipZeroGrad(torch.optim.SGD(params, lr=0.1))
    assert hook.skip_and_clip(params, 1.0).isnan() and params[2].grad is not None


def test_other_parameters_than_the_optimizers_take_the_two_passes():
    params = fused_case(2)
    hook = SkipZeroGrad(torch.optim.SGD(params[:3], lr=0.1))
    total = hook.skip_and_clip(params, 1.0)
    assert params[0].grad is None and params[4].grad is not None  # only the optimizer's are skipped
    assert total > 0


def make_mask(model, **kwargs):
    node = {"type": "iterative_gradient_mask", "params": "weight", **kwargs}
    return OPTIMIZER_HOOKS.build(node, model=model, optimizer=None)


@contextlib.contextmanager
def warnings_of_unimm():
    """The messages of the warnings logged on the "unimm" logger inside the block."""
    records: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    log = logging.getLogger("unimm")
    log.addHandler(handler)
    try:
        yield records
    finally:
        log.removeHandler(handler)


def kept(mask, param) -> list[bool]:
    return mask.mask_for(param).reshape(-1).tolist()


class Encoder(nn.Module):
    """Two layers and a final norm: blocks ``encoder.layers.0``, ``encoder.layers.1``, ``encoder.norm``."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
        self.encoder.norm = nn.LayerNorm(2)
        self.head = nn.Linear(2, 3)


def encoder_grads(model: Encoder) -> dict[torch.Tensor, torch.Tensor]:
    """Layer 1's text gradient is 100 times smaller than layer 0's; the norm's is the largest."""
    layer0, layer1, norm = model.encoder.layers[0], model.encoder.layers[1], model.encoder.norm
    return {layer0.weight: torch.tensor([[1.0, 2.0], [3.0, 4.0]]), layer0.bias: torch.tensor([5.0, 6.0]),
            layer1.weight: torch.tensor([[0.01, 0.02], [0.03, 0.04]]), layer1.bias: torch.tensor([0.05, 0.06]),
            norm.weight: torch.tensor([7.0, 8.0]), norm.bias: torch.tensor([9.0, 10.0])}


def test_mask_reaches_beta_after_ceil_beta_over_delta_rounds():
    model = nn.Linear(10, 10)  # the selected weight has 100 entries
    mask = make_mask(model, delta=0.1, beta=0.45, every=3)
    masked = []
    for update in range(20):
        mask.observe({model.weight: torch.randn(10, 10)})
        mask.before_step(update)
        masked.append(mask.masked)
    # rounds at updates 0, 3, 6, 9, 12: 10 entries each, the last one capped at beta
    assert masked == [10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40, 45] + [45] * 7
    assert mask.rounds == math.ceil(0.45 / 0.1) == 5 and mask.rounds_done == 5
    assert mask.masked_fraction == pytest.approx(0.45)
    assert mask.mask_for(model.bias) is None


def test_mask_prunes_the_smallest_text_gradients():
    model = nn.Linear(4, 5)
    mask = make_mask(model, delta=0.25, beta=0.5, every=1)
    order = torch.randperm(20)
    grad = (order.float() - 9.5).reshape(5, 4)  # distinct magnitudes, both signs
    mask.observe({model.weight: grad})
    smallest = grad.abs().reshape(-1).argsort()[:5]
    expected = torch.ones(20, dtype=torch.bool)
    expected[smallest] = False
    assert torch.equal(mask.mask_for(model.weight).reshape(-1), expected)
    # round 2 prunes among the entries still kept: already pruned entries do not count again
    mask.observe({model.weight: grad})
    kept_scores = torch.where(expected, grad.abs().reshape(-1), torch.tensor(math.inf))
    expected[kept_scores.argsort()[:5]] = False
    assert torch.equal(mask.mask_for(model.weight).reshape(-1), expected)
    assert mask.masked == 10


def test_ranking_is_global_so_blocks_get_uneven_sparsity():
    model = Encoder()
    mask = make_mask(model, params=r"^encoder\.", delta=0.25, beta=0.5, every=1)  # 16 entries, 4 per round
    assert mask.mask_for(model.head.weight) is None
    grads = encoder_grads(model)
    mask.observe(grads)  # round 1: 0.01 .. 0.04, all of layer 1's weight
    assert mask.sparsity_by_parameter() == {
        "encoder.layers.0.weight": 0.0, "encoder.layers.0.bias": 0.0, "encoder.layers.1.weight": 1.0,
        "encoder.layers.1.bias": 0.0, "encoder.norm.weight": 0.0, "encoder.norm.bias": 0.0}
    assert mask.sparsity_by_block() == {"encoder.layers.0": 0.0, "encoder.layers.1": 4 / 6, "encoder.norm": 0.0}
    mask.observe(grads)  # round 2: 0.05, 0.06 (layer 1's bias), then 1 and 2 (layer 0's first row)
    assert kept(mask, model.encoder.layers[0].weight) == [False, False, True, True]
    assert mask.scalars() == {"mask/sparsity": 0.5, "mask/round": 2.0, "mask/block/encoder.layers.0": 2 / 6,
                              "mask/block/encoder.layers.1": 1.0, "mask/block/encoder.norm": 0.0}
    assert isinstance(mask, ReportsScalars) and not isinstance(SkipZeroGrad(None), ReportsScalars)


def test_equal_scores_are_pruned_in_parameter_then_index_order():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))  # 8 entries
    mask = make_mask(model, delta=0.375, beta=0.5, every=1)  # 3 per round
    mask.observe({model[0].weight: torch.tensor([[1.0, 2.0], [2.0, 5.0]]),
                  model[1].weight: torch.tensor([[2.0, 2.0], [7.0, 8.0]])})
    # 1, then two of the four tied 2s: the first ones in position order, all in parameter 0
    assert kept(mask, model[0].weight) == [False, False, False, True]
    assert kept(mask, model[1].weight) == [True] * 4


def test_zero_text_gradients_are_pruned_last_and_in_position_order():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))  # 8 entries
    mask = make_mask(model, delta=0.25, beta=1.0, every=1)  # 2 per round, 4 rounds
    grads = {model[0].weight: torch.tensor([[0.0, 3.0], [0.0, 1.0]]),
             model[1].weight: torch.tensor([[2.0, 0.0], [4.0, 5.0]])}
    steps = []
    with warnings_of_unimm() as warned:
        for _ in range(4):
            mask.observe(grads)
            steps.append((kept(mask, model[0].weight), kept(mask, model[1].weight), len(warned)))
    assert steps == [
        ([True, True, True, False], [False, True, True, True], 0),     # |G| 1 and 2: the zeros are not ranked
        ([True, False, True, False], [False, True, False, True], 0),   # 3 and 4
        ([False, False, True, False], [False, True, False, False], 1),  # 5, then one zero: the first in position
        ([False] * 4, [False] * 4, 2),                                 # only zeros left
    ]
    assert "only 1 kept entries have a non-zero group-a gradient" in warned[0]


def test_a_parameter_without_text_gradient_is_kept_and_named():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
    mask = make_mask(model, delta=0.5, beta=0.5, every=1)  # 4 entries in one round
    with warnings_of_unimm() as warned:
        mask.observe({model[0].weight: torch.tensor([[1.0, 2.0], [3.0, 0.0]])})  # none for parameter 1
    # 3 entries with a gradient, then the first zero in position order: parameter 0's last entry
    assert kept(mask, model[0].weight) == [False] * 4 and kept(mask, model[1].weight) == [True] * 4
    assert len(warned) == 1 and "no group-a gradient at all: 1.weight" in warned[0]


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_round_with_non_finite_text_gradients_prunes_nothing_and_retries(bad):
    model = nn.Linear(4, 5)
    mask = make_mask(model, delta=0.25, beta=0.5, every=3)  # 5 entries per round, rounds at 0, 3
    grad = torch.arange(1.0, 21.0).reshape(5, 4)
    broken = grad.clone()
    broken[2, 1] = bad
    masked, due = [], []
    with warnings_of_unimm() as warned:
        for update in range(5):
            mask.observe({model.weight: broken if update == 0 else grad})
            masked.append(mask.masked)
            due.append(mask.mask_update_due())
    assert masked == [0, 5, 5, 10, 10]  # the round of update 0 happens at update 1; the next stays at 3
    assert due == [True, False, True, False, False]
    assert len(warned) == 1 and "not finite" in warned[0] and "retries at the next update" in warned[0]
    assert kept(mask, model.weight) == [False] * 10 + [True] * 10


def test_random_baseline_prunes_the_same_count_per_round():
    model = nn.Linear(20, 20)
    grad = torch.randn(20, 20)
    grad[:, :15] = 0.0  # 100 entries with a gradient: the magnitude rule fills its later rounds with zeros
    by_magnitude = make_mask(model, delta=0.1, beta=0.5, every=2)
    by_chance = make_mask(model, delta=0.1, beta=0.5, every=2, random=True, seed=4)
    again = make_mask(model, delta=0.1, beta=0.5, every=2, random=True, seed=4)
    counts = {id(m): [] for m in (by_magnitude, by_chance, again)}
    with warnings_of_unimm():
        for _ in range(11):
            for m in (by_magnitude, by_chance, again):
                m.observe({model.weight: grad})
                counts[id(m)].append(m.masked)
    assert counts[id(by_magnitude)] == counts[id(by_chance)] == [40, 40, 80, 80, 120, 120, 160, 160, 200, 200, 200]
    assert not torch.equal(by_magnitude.mask_for(model.weight), by_chance.mask_for(model.weight))
    assert torch.equal(by_chance.mask_for(model.weight), again.mask_for(model.weight))


def test_mask_state_round_trip_keeps_the_mask_and_the_generator():
    model = nn.Linear(6, 6)
    mask = make_mask(model, delta=0.2, beta=0.6, every=2, random=True)
    for _ in range(3):
        mask.observe({})
    buffer = io.BytesIO()
    torch.save(mask.state_dict(), buffer)  # as a checkpoint does
    buffer.seek(0)
    resumed = make_mask(model, delta=0.2, beta=0.6, every=2, random=True, seed=123)  # another seed
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(resumed.state_dict()["generator"], mask.state_dict()["generator"])
    assert torch.equal(resumed.mask_for(model.weight), mask.mask_for(model.weight))
    for _ in range(4):
        mask.observe({}), resumed.observe({})
        assert torch.equal(mask.mask_for(model.weight), resumed.mask_for(model.weight))
    assert resumed.masked == mask.masked == round(0.6 * 36) and resumed.observed == mask.observed
    assert resumed.sparsity_by_block() == mask.sparsity_by_block() == {"weight": 22 / 36}  # no index: the module
    with pytest.raises(ConfigError, match="gradient mask"):
        make_mask(nn.Linear(6, 5)).load_state_dict(mask.state_dict())


def test_a_retried_round_survives_a_resume():
    model = nn.Linear(2, 2)
    mask = make_mask(model, delta=0.5, every=10)
    with warnings_of_unimm():
        mask.observe({model.weight: torch.full((2, 2), math.nan)})
    resumed = make_mask(model, delta=0.5, every=10)
    resumed.load_state_dict(mask.state_dict())
    assert resumed.pending and resumed.mask_update_due()
    older = {k: v for k, v in mask.state_dict().items() if k != "pending"}  # a checkpoint from before the flag
    resumed.load_state_dict(older)
    assert not resumed.pending and not resumed.mask_update_due()


def test_block_of_cuts_at_the_first_numeric_index():
    assert block_of("encoder.layers.3.mlp.fc1.weight") == "encoder.layers.3"
    assert block_of("module.blocks.11.attn.qkv.bias") == "module.blocks.11"
    assert block_of("0.weight") == "0"
    assert block_of("encoder.fc1.weight") == "encoder.fc1"  # fc1 is no index
    assert block_of("encoder.final_norm.weight") == "encoder.final_norm"
    assert block_of("cls_token") == "cls_token"


def test_sparsity_plot_is_written_from_the_logged_rows(tmp_path):
    model = Encoder()
    mask = make_mask(model, params=r"^encoder\.", delta=0.25, beta=0.5, every=2)
    rows = []
    for update in range(1, 6):
        mask.observe(encoder_grads(model))
        rows.append({"update": update, "phase": "train", "loss": 1.0, **mask.scalars()})
    rows.append({"update": 5, "phase": "val", "acc": 0.5})  # no mask keys: passed over
    updates, blocks, values = sparsity_series(rows)
    assert updates == [1, 2, 3, 4, 5] and blocks == ["encoder.layers.0", "encoder.layers.1", "encoder.norm"]
    assert values[0] == [0.0, 4 / 6, 0.0] and values[-1] == [2 / 6, 1.0, 0.0]
    assert sparsity_series([{"update": 1, "mask/block/l.10": 0.5, "mask/block/l.2": 0.1}])[1] == ["l.2", "l.10"]
    path = plot_mask_sparsity(rows, tmp_path / "mask.png")
    assert path == tmp_path / "mask.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_mask_sparsity(rows[-1:], tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


def test_mask_errors():
    with pytest.raises(ConfigError, match="masked_combine"):
        make_mask(nn.Linear(2, 2)).before_step(0)  # observe() was never called: wrong step strategy
    with pytest.raises(ConfigError, match="matches no trainable parameter"):
        OPTIMIZER_HOOKS.build({"type": "iterative_gradient_mask", "params": "encoder"},
                              model=nn.Linear(2, 2), optimizer=None)
    with pytest.raises(ConfigError, match="delta"):
        make_mask(nn.Linear(2, 2), delta=0.0)


def test_params_must_be_given():
    # no default: ".*" would also mask embeddings and heads, whose pruned entries never learn again;
    # config validation names it before anything is built, and so does a build from code
    with pytest.raises(ConfigError, match=r"training\.optimizer_hooks\[0\]\.params: required by optimizer_hooks"):
        OPTIMIZER_HOOKS.build("iterative_gradient_mask", path="training.optimizer_hooks[0]", model=nn.Linear(2, 2),
                              optimizer=None)
    errors: list[str] = []
    check_node({"type": "iterative_gradient_mask"}, OPTIMIZER_HOOKS, "training.optimizer_hooks[0]", errors,
               runtime=())
    assert errors == ["training.optimizer_hooks[0].params: required by optimizer_hooks 'iterative_gradient_mask'; "
                      "set training.optimizer_hooks[0].params=..."]
