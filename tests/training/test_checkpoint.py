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
    damage(folder / name, how)
    if not with_manifest:
        (folder / "manifest.json").unlink()
    victim = setup(seed=5)
    before = {k: v.clone() for k, v in victim["model"].state_dict().items()}
    # without its manifest a checkpoint cannot be checked (a flipped byte in tensor data would load): refused
    expected = "damaged" if with_manifest else "no manifest.json, so its files cannot be checked"
    with pytest.raises(ConfigError) as err:
        ckpt.restore(ckpt.load_checkpoint(folder), **victim)
    assert expected in str(err.value) and (name in str(err.value) or not with_manifest)
    if name == "model.safetensors":  # init_from reads the weights only
        with pytest.raises(ConfigError, match=expected):
            ckpt.init_from(victim["model"], folder)
    if not with_manifest and how == "truncate":  # trusted, parsing still finds a truncated file
        with pytest.raises(ConfigError, match=f"{name}.*damaged"):
            ckpt.restore(ckpt.load_checkpoint(folder, trust_unverified=True), **victim)
    for key, value in victim["model"].state_dict().items():
        assert torch.equal(value, before[key])


def test_a_training_state_without_optimizer_groups_is_named(tmp_path):
    parts = setup()
    folder = ckpt.save_checkpoint(tmp_path, **parts, counters={"update": 1})
    state = torch.load(folder / "training_state.pt", weights_only=True)
    del state["optimizer"]["param_groups"], state["sampler"]
    torch.save(state, folder / "training_state.pt")
    (folder / "manifest.json").unlink()  # written by hand (a foreign tool), not damaged in transit
    with pytest.raises(ConfigError, match=r"training_state\.pt.*lacks sampler, optimizer\.param_groups"):
        ckpt.load_checkpoint(folder, trust_unverified=True)


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
def test_init_from_maps_keys_and_refuses_what_it_cannot_account_for(tmp_path, kind):
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
    # the pooler is not in the checkpoint and the head has another shape: both refused, nothing loaded
    with pytest.raises(ConfigError) as err:
        ckpt.init_from(target, path, {"backbone.": "encoder."})
    assert [p.split(":")[0] for p in err.value.problems] == ["checkpoint.init_from", "checkpoint.init_from"]
    assert "2 model weights are not in" in err.value.problems[0] and "pooler.bias" in err.value.problems[0]
    assert "head.bias (5,)->(3,)" in err.value.problems[1]
    assert not torch.equal(target.encoder.weight, source.backbone.weight)
    # excluded on purpose with init_include: loaded, and the report says what happened to every key
    report = ckpt.init_from(target, path, {"backbone.": "encoder."}, include=[r"^encoder\."])
    assert report["loaded"] == ["encoder.bias", "encoder.weight"]
    assert report["excluded"] == ["head.bias", "head.weight", "pooler.bias", "pooler.weight"]
    assert report["missing"] == [] and report["mismatched"] == [] and report["unexpected"] == []
    assert torch.equal(target.encoder.weight, source.backbone.weight)
    assert torch.equal(target.head.weight, head_before)
    table = ckpt.format_report(report)
    assert "loaded          2" in table and "excluded        4  not selected by checkpoint.init_include" in table


def test_a_key_map_or_include_that_matches_nothing_is_reported(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(Pretrained(classes=3).state_dict(), path)
    with pytest.raises(ConfigError) as err:
        ckpt.init_from(Downstream(), path, {"backbone.": "encoder.", "bakbone.": "x."}, include=[r"^encoder\.", "^nope"])
    assert err.value.problems == [
        f"checkpoint.key_map.bakbone.: matches no key of {path} (its keys look like ['backbone.bias', "
        "'backbone.weight', 'extra.bias'])",
        "checkpoint.init_include: '^nope' matches no weight of the model"]


def test_init_resize_resizes_a_position_table_to_the_models_grid(tmp_path):
    from unimm.modules.pos_embed import resize_pos_embed

    class WithPositions(nn.Module):
        def __init__(self, grid: int) -> None:
            super().__init__()
            self.pos_embed = nn.Parameter(torch.randn(1, 1 + grid * grid, 8))

    small = WithPositions(2)
    path = tmp_path / "w.pt"
    torch.save(small.state_dict(), path)
    large = WithPositions(3)
    with pytest.raises(ConfigError, match=r"pos_embed \(1, 5, 8\)->\(1, 10, 8\).*checkpoint\.init_resize"):
        ckpt.init_from(large, path)
    report = ckpt.init_from(large, path, resize=[r"pos_embed$"])
    assert report["resized"] == ["pos_embed"] and report["loaded"] == []
    assert torch.equal(large.pos_embed.data, resize_pos_embed(small.pos_embed.data, (3, 3)))
    assert torch.equal(large.pos_embed.data[:, :1], small.pos_embed.data[:, :1])  # the [CLS] row is kept


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


def test_init_resize_with_two_prefix_rows_keeps_both_hand_checked(tmp_path):
    """A distilled DeiT's table: [CLS] and distillation rows, then the grid. A 1 x 1 grid resized to 2 x 2
    (bicubic, edges replicated) repeats its one row four times; both prefix rows stay. A plain regex (one
    prefix row) refuses the 2 + 1 rows with the fix in the message."""

    class WithPositions(nn.Module):
        def __init__(self, rows: int) -> None:
            super().__init__()
            self.pos_embed = nn.Parameter(torch.zeros(1, rows, 2))

    small = WithPositions(2 + 1)
    small.pos_embed.data = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])  # cls, dist, the 1 x 1 grid
    path = tmp_path / "w.pt"
    torch.save(small.state_dict(), path)
    refused = (r"6 rows, not 1 prefix row\(s\) \+ a square grid; "
               r"give its prefix rows with \{pattern: \.\.\., num_prefix_tokens: P\}")
    with pytest.raises(ConfigError, match=refused):
        ckpt.init_from(WithPositions(2 + 4), path, resize=["pos_embed$"])
    large = WithPositions(2 + 4)
    report = ckpt.init_from(large, path, resize=[{"pattern": "pos_embed$", "num_prefix_tokens": 2}])
    assert report["resized"] == ["pos_embed"]
    assert large.pos_embed.data.tolist() == [[[1.0, 2.0], [3.0, 4.0]] + [[5.0, 6.0]] * 4]
    with pytest.raises(ConfigError, match=r"init_resize\[0\]\.num_prefix_tokens: -1"):
        ckpt.init_from(large, path, resize=[{"pattern": "pos_embed$", "num_prefix_tokens": -1}])


def test_distilled_deit_fine_tuned_at_a_new_resolution_from_a_checkpoint(tmp_path):
    from unimm.models.encoders.vision_transformers import vit_encoder
    from unimm.modules.pos_embed import resize_pos_embed

    tiny = dict(patch_size=16, hidden_size=32, num_layers=1, num_heads=2, distilled=True)
    source = vit_encoder(image_size=32, **tiny)
    torch.save(source.state_dict(), tmp_path / "deit.pt")
    target = vit_encoder(image_size=48, **tiny)
    ckpt.init_from(target, tmp_path / "deit.pt", resize=[{"pattern": r"pos_embed$", "num_prefix_tokens": 2}])
    expected = resize_pos_embed(source.model.pos_embed.detach(), (3, 3), num_prefix_tokens=2)
    torch.testing.assert_close(target.model.pos_embed.detach(), expected)
