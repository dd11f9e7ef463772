"""Parameter groups (per-group lr and weight decay) and the optimizer builders."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import unimm.training  # noqa: F401 (registers the optimizers)
from unimm.config.errors import ConfigError
from unimm.config.validate import check_node
from unimm.registry import OPTIMIZERS
from unimm.training.optimizers import param_groups


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        self.fusion = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def by_param(groups):
    return {id(p): g for g in groups for p in g["params"]}


def test_rules_lr_and_decay():
    model = Tiny()
    rules = [{"pattern": r"^backbone\.", "lr_mult": 0.2},                   # METER: pre-trained bottom
             {"pattern": "fusion", "lr_mult": 5.0, "weight_decay": 0.05}]   # random top, own decay
    groups = param_groups(model, rules, base_lr=1e-4, base_weight_decay=0.01)
    of = by_param(groups)
    assert of[id(model.backbone[0].weight)]["lr"] == pytest.approx(2e-5)
    assert of[id(model.backbone[0].weight)]["weight_decay"] == 0.01
    assert of[id(model.backbone[0].bias)]["weight_decay"] == 0.0       # bias: no decay
    assert of[id(model.backbone[1].weight)]["weight_decay"] == 0.0     # norm: no decay
    assert of[id(model.backbone[1].weight)]["lr"] == pytest.approx(2e-5)
    assert of[id(model.fusion.weight)]["lr"] == pytest.approx(5e-4)
    assert of[id(model.fusion.weight)]["weight_decay"] == 0.05
    assert of[id(model.head.weight)]["lr"] == pytest.approx(1e-4)
    assert of[id(model.head.weight)]["name"] == "default"
    assert of[id(model.head.bias)]["name"] == "default/no_decay"
    assert id(model.frozen.weight) not in of                           # frozen: left out
    assert sum(len(g["params"]) for g in groups) == 8
    assert all(g["params"] for g in groups)


def test_first_matching_rule_wins_and_decay_on_all_when_asked():
    model = Tiny()
    groups = param_groups(model, [{"pattern": "head.weight"}, {"pattern": "head", "lr_mult": 3.0}],
                          base_lr=1.0, base_weight_decay=0.1, no_decay_norm_bias=False)
    of = by_param(groups)
    assert of[id(model.head.weight)]["lr"] == 1.0
    assert of[id(model.head.bias)]["lr"] == 3.0
    assert of[id(model.head.bias)]["weight_decay"] == 0.1


def test_bad_rules_are_reported_together():
    rules = [{"pattern": "head", "lr_mul": 2.0},        # unknown key
             {"pattern": "nothing_like_this"},          # matches nothing
             {"pattern": "head.bias"},                  # shadowed by rule 0
             {"pattern": "(", "lr_mult": -1}]           # bad regex and value
    with pytest.raises(ConfigError) as err:
        param_groups(Tiny(), rules, base_lr=1.0, base_weight_decay=0.0)
    text = str(err.value)
    assert "training.param_groups[0].lr_mul: unknown key" in text
    assert "training.param_groups[3].pattern" in text and "training.param_groups[3].lr_mult" in text
    rules = rules[1:3]
    with pytest.raises(ConfigError) as err:
        param_groups(Tiny(), [{"pattern": "head"}] + rules, base_lr=1.0, base_weight_decay=0.0)
    text = str(err.value)
    assert "training.param_groups[1].pattern" in text and "matches no parameter" in text
    assert "training.param_groups[2].pattern" in text and "earlier rule" in text


@pytest.mark.parametrize("node, cls", [
    ({"type": "adamw", "lr": 1e-3, "betas": [0.9, 0.98]}, torch.optim.AdamW),
    ({"type": "adam", "lr": 1e-3}, torch.optim.Adam),
    ({"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True}, torch.optim.SGD),
])
def test_builders_keep_group_settings(node, cls):
    model = Tiny()
    errors: list[str] = []
    check_node(node, OPTIMIZERS, "optimizer", errors, runtime=())   # the YAML node binds to the signature
    assert errors == []
    groups = param_groups(model, [{"pattern": "head", "lr_mult": 0.5}], base_lr=node["lr"], base_weight_decay=0.0)
    opt = OPTIMIZERS.build(node, params=groups)
    assert isinstance(opt, cls)
    assert opt.param_groups[0]["lr"] == pytest.approx(node["lr"] * 0.5)
    assert opt.param_groups[0]["name"] == "training.param_groups[0]"


@pytest.mark.parametrize("node, key", [
    ({"type": "adamw", "lr": 1e-3, "betas": [0.9]}, "optimizer.betas"),
    ({"type": "sgd", "lr": 0.1, "nesterov": True}, "optimizer.nesterov"),
    ({"type": "adam", "lr": -1.0}, "optimizer.lr"),
])
def test_builder_errors(node, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        OPTIMIZERS.build(node, path="optimizer", params=Tiny().parameters())


def test_no_decay_by_name_replaces_the_dimension_rule():
    """training.no_decay (METER's rule): names decide, so a 1-D weight no pattern matches decays."""
    from unimm.training.optimizers import describe_groups, format_groups

    model = Tiny()  # backbone.1 is a LayerNorm whose name matches no pattern below
    groups = param_groups(model, [{"pattern": "head", "lr_mult": 5.0}], base_lr=1e-4, base_weight_decay=0.01,
                          no_decay=[r"bias$"])
    of = by_param(groups)
    assert of[id(model.backbone[1].weight)]["weight_decay"] == 0.01  # 1-D, yet decayed: its name is not matched
    assert of[id(model.backbone[1].bias)]["weight_decay"] == 0.0
    assert of[id(model.head.bias)]["name"] == "training.param_groups[0]/no_decay"
    rows = describe_groups(model, groups)
    assert sum(r["tensors"] for r in rows) == 8 and {"head.weight"} == set(next(
        r for r in rows if r["group"] == "training.param_groups[0]")["names"])
    assert "training.param_groups[0]/no_decay" in format_groups(rows)
    with pytest.raises(ConfigError, match=r"training.no_decay\[0\]"):
        param_groups(model, [], base_lr=1.0, base_weight_decay=0.0, no_decay=["("])


def test_adam_and_adamw_use_the_fused_kernel_where_it_applies():
    model = Tiny()
    assert OPTIMIZERS.build({"type": "adamw", "lr": 1e-3}, params=model.parameters()).defaults["fused"] is True
    assert OPTIMIZERS.build({"type": "adam", "lr": 1e-3, "fused": False}, params=model.parameters()).defaults["fused"] is False


def test_layer_names_fold_their_indices_in_first_seen_order():
    from unimm.training.optimizers import fold_layer_names

    names = ["blocks.0.attn.qkv.weight", "blocks.0.mlp.fc1.weight", "blocks.1.attn.qkv.weight",
             "blocks.1.mlp.fc1.weight", "cls_token", "blocks.10.attn.qkv.weight"]
    assert fold_layer_names(names) == ["blocks.N.attn.qkv.weight x3", "blocks.N.mlp.fc1.weight x2", "cls_token"]
