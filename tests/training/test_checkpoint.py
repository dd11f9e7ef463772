"""Checkpoints: exact resume, atomic layout and pruning, damaged files, init_from with key maps."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import unimm.training  # noqa: F401 (registers the parts)
from unimm.config.errors import ConfigError
from unimm.registry import OPTIMIZER_HOOKS, SCHEDULERS, TASK_SAMPLERS
from unimm.training import checkpoint as ckpt
from unimm.training.optimizers import adamw, param_groups


class Tied(nn.Module):
    """Token embedding tied to the output layer, as in MoMo's MLM head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(7, 4)
        self.encoder = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(4, 7, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(torch.relu(self.encoder(self.embed(ids))))).logsumexp(-1).mean()


def setup(seed: int = 0):
    torch.manual_seed(seed)
    model = Tied()
    opt = adamw(param_groups(model, [{"pattern": "encoder", "lr_mult": 2.0}], 1e-2, 0.01), lr=1e-2)
    sched = SCHEDULERS.build({"type": "warmup_cosine", "warmup_steps": 2}, optimizer=opt, max_updates=10)
    sampler = TASK_SAMPLERS.build({"type": "ratios", "ratios": {"a": 0.3, "b": 0.7}},
                                  dataset_sizes={"a": 1, "b": 1}, seed=1)
    hooks = [OPTIMIZER_HOOKS.build("skip_zero_grad", model=model, optimizer=opt),
             OPTIMIZER_HOOKS.build({"type": "iterative_gradient_mask", "params": "encoder", "every": 1,
                                    "random": True}, model=model, optimizer=opt)]
    return {"model": model, "optimizer": opt, "scheduler": sched, "sampler": sampler, "hooks": hooks}


def train(parts, updates: int) -> list:
    """A few updates that use every RNG: dropout (torch), data (numpy, python), the sampler."""
    trace = []
    for _ in range(updates):
        name = parts["sampler"].next()
        ids = torch.from_numpy(np.random.randint(0, 7, size=(3, 5))) + random.randint(0, 0)
        loss = parts["model"](ids)
        loss.backward()
        parts["hooks"][1].observe({})
        for hook in parts["hooks"]:
            hook.before_step(0)
        parts["optimizer"].step()
        parts["scheduler"].step()
        parts["optimizer"].zero_grad(set_to_none=True)
        trace.append((name, loss.item(), random.random()))
    return trace


def test_resume_is_exact(tmp_path):
    parts = setup()
    train(parts, 3)
    ckpt.save_checkpoint(tmp_path, **parts, counters={"update": 3, "streams": {"a": {"epoch": 0}}})
    expected = train(parts, 4)
    final = {k: v.clone() for k, v in parts["model"].state_dict().items()}

    fresh = setup(seed=99)
    counters = ckpt.restore(ckpt.load_checkpoint(tmp_path / "checkpoints" / "last"), **fresh)
    assert counters == {"update": 3, "streams": {"a": {"epoch": 0}}}
    assert train(fresh, 4) == expected
    for key, value in fresh["model"].state_dict().items():
        assert torch.equal(value, final[key]), key
    assert fresh["model"].out.weight is fresh["model"].embed.weight  # still tied
    assert torch.equal(fresh["hooks"][1].mask_for(fresh["model"].encoder.weight),
                       parts["hooks"][1].mask_for(parts["model"].encoder.weight))


def test_layout_pointers_and_pruning(tmp_path):
    parts = setup()
    for update in (1, 2, 3, 4):
        ckpt.save_checkpoint(tmp_path, **parts, counters={"update": update}, keep_last=2, is_best=update == 1)
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["best", "last", "update_1", "update_3", "update_4"]
    assert json.loads((root / "last").read_text()) == {"checkpoint": "update_4", "update": 4}
    assert json.loads((root / "best").read_text())["checkpoint"] == "update_1"
    assert {p.name for p in (root / "update_4").iterdir()} == {"model.safetensors", "training_state.pt",
                                                               "manifest.json"}
    assert ckpt.load_checkpoint(tmp_path)["counters"] == {"update": 4}   # a run folder follows last
    assert ckpt.load_checkpoint(root / "best")["counters"] == {"update": 1}


def damage(path, how):
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:  # one flipped byte, same size
        path.write_bytes(data[:-20] + bytes([data[-20] ^ 0xFF]) + data[-19:])


@pytest.mark.parametrize("name", ["model.safetensors", "training_state.pt"])
@pytest.mark.parametrize("how", ["truncate", "flip"])
@pytest.mark.parametrize("with_manifest", [True, False])
def test_damaged_checkpoint_is_a_clear_error_and_touches_nothing(tmp_path, name, how, with_manifest):
    parts = setup()
    train(parts, 2)
    folder = ckpt.save_checkpoint(tmp_path, **parts, counters={"update": 2})
    if how == "flip" and not with_manifest:
        return  # a flipped byte inside tensor data is only found by the manifest's checksum
    damage(folder / name, how)
    if not with_manifest:
        (folder / "manifest.json").unlink()
    victim = setup(seed=5)
    before = {k: v.clone() for k, v in victim["model"].state_dict().items()}
    with pytest.raises(ConfigError) as err:
        ckpt.restore(ckpt.load_checkpoint(folder), **victim)
    assert name in str(err.value) and "damaged" in str(err.value)
    if name == "model.safetensors":  # init_from reads the weights only
        with pytest.raises(ConfigError, match="damaged"):
            ckpt.init_from(victim["model"], folder)
    for key, value in victim["model"].state_dict().items():
        assert torch.equal(value, before[key])


def test_restore_into_another_model_is_refused_before_loading(tmp_path):
    parts = setup()
    folder = ckpt.save_checkpoint(tmp_path, **parts, counters={"update": 1})
    other = setup()
    other["model"].encoder = nn.Linear(4, 4, bias=False)
    before = {k: v.clone() for k, v in other["model"].state_dict().items()}
    with pytest.raises(ConfigError, match="encoder.bias is not in this model"):
        ckpt.restore(ckpt.load_checkpoint(folder), **other)
    assert all(torch.equal(v, before[k]) for k, v in other["model"].state_dict().items())


class Pretrained(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.backbone = nn.Linear(4, 4)
        self.head = nn.Linear(4, classes)
        self.extra = nn.Linear(2, 2)


class Downstream(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(4, 4)
        self.head = nn.Linear(4, 3)
        self.pooler = nn.Linear(4, 4)


@pytest.mark.parametrize("kind", ["pt_nested", "safetensors", "folder"])
def test_init_from_maps_keys_and_reports(tmp_path, kind):
    source = Pretrained(classes=5)
    weights = source.state_dict()
    if kind == "pt_nested":
        path = tmp_path / "detr.pth"
        torch.save({"model": weights, "epoch": 3}, path)
    elif kind == "safetensors":
        path = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in weights.items()}, str(path))
    else:
        parts = setup()
        parts["model"] = source
        ckpt.save_checkpoint(tmp_path, **parts, counters={"update": 7})
        path = tmp_path / "checkpoints" / "last"
    target = Downstream()
    head_before = target.head.weight.clone()
    report = ckpt.init_from(target, path, {"backbone.": "encoder."})
    assert report["loaded"] == ["encoder.bias", "encoder.weight"]
    assert report["missing"] == ["pooler.bias", "pooler.weight"]
    assert report["unexpected"] == ["extra.bias", "extra.weight"]
    assert report["mismatched"] == [("head.bias", (5,), (3,)), ("head.weight", (5, 4), (3, 4))]
    assert torch.equal(target.encoder.weight, source.backbone.weight)
    assert torch.equal(target.head.weight, head_before)  # shape mismatch: skipped
    assert "mismatched (2)" in ckpt.format_report(report)


def test_init_from_refuses_code_and_useless_files(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"model": Pretrained(3)}, path)  # a whole module: loading it would run code
    with pytest.raises(ConfigError, match="without running code"):
        ckpt.init_from(Downstream(), path)
    torch.save({"model": Pretrained(5).state_dict()}, path)
    with pytest.raises(ConfigError, match="key_map"):
        ckpt.init_from(Downstream(), path)  # no key fits without a key map
    with pytest.raises(ConfigError, match="does not exist"):
        ckpt.init_from(Downstream(), tmp_path / "nope.pt")


def test_missing_file_or_pointer_target_is_a_clear_error(tmp_path):
    parts = setup()
    folder = ckpt.save_checkpoint(tmp_path, **parts, counters={"update": 1})
    (folder / "training_state.pt").unlink()
    with pytest.raises(ConfigError, match="training_state.pt.*damaged.*missing"):
        ckpt.load_checkpoint(folder)
    (tmp_path / "checkpoints" / "last").write_text('{"checkpoint": "upd')  # a torn pointer
    with pytest.raises(ConfigError, match="last: not a readable checkpoint pointer"):
        ckpt.load_checkpoint(tmp_path / "checkpoints" / "last")
