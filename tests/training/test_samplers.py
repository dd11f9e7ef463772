"""Task samplers: frequencies, equal draws for equal seeds (= ranks), exact resume, config errors."""
from __future__ import annotations

from collections import Counter

import pytest

import unimm.training  # noqa: F401 (registers the samplers)
from unimm.config.errors import ConfigError
from unimm.registry import TASK_SAMPLERS

# UniT supplementary Table A.2, row 2: all 8 datasets
TABLE_A2 = {"coco": 0.20, "vg": 0.07, "vqa2": 0.26, "snli_ve": 0.12, "qnli": 0.10, "mnli": 0.10,
            "qqp": 0.10, "sst2": 0.05}
SIZES = {name: 1000 * (i + 1) for i, name in enumerate(TABLE_A2)}


def build(node, sizes=SIZES, seed=3):
    return TASK_SAMPLERS.build(node, path="training.sampler", dataset_sizes=sizes, seed=seed)


def frequencies(sampler, n):
    counts = Counter(sampler.next() for _ in range(n))
    return {k: v / n for k, v in counts.items()}


def test_ratios_match_table_a2():
    freq = frequencies(build({"type": "ratios", "ratios": TABLE_A2}), 20000)
    for name, p in TABLE_A2.items():
        assert freq.get(name, 0.0) == pytest.approx(p, abs=0.012)


def test_ratios_are_normalised_and_zero_is_never_drawn():
    sampler = build({"type": "ratios", "ratios": {"a": 1, "b": 3, "c": 0}}, sizes={"a": 5, "b": 5, "c": 5})
    assert sampler.probabilities == pytest.approx([0.25, 0.75, 0.0])
    freq = frequencies(sampler, 8000)
    assert "c" not in freq
    assert freq["b"] == pytest.approx(0.75, abs=0.02)


@pytest.mark.parametrize("ratios, key", [
    ({"a": 1, "b": 1, "zzz": 1}, "training.sampler.ratios.zzz"),   # unknown dataset
    ({"a": 1}, "training.sampler.ratios.b"),                      # missing dataset
    ({"a": 0, "b": 0}, "training.sampler.ratios"),                # all zero
    ({"a": -1, "b": 2}, "training.sampler.ratios.a"),             # negative
])
def test_ratios_errors_name_the_key(ratios, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build({"type": "ratios", "ratios": ratios}, sizes={"a": 1, "b": 1})


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_size_proportional(temperature):
    sizes = {"small": 100, "big": 900}
    sampler = build({"type": "size_proportional", "temperature": temperature}, sizes=sizes)
    weights = {k: v ** (1 / temperature) for k, v in sizes.items()}
    expected = {k: w / sum(weights.values()) for k, w in weights.items()}
    assert sampler.probabilities == pytest.approx([expected["small"], expected["big"]])
    freq = frequencies(sampler, 8000)
    assert freq["big"] == pytest.approx(expected["big"], abs=0.02)


def test_size_proportional_bad_temperature():
    with pytest.raises(ConfigError, match="training.sampler.temperature"):
        build({"type": "size_proportional", "temperature": 0.0})


def test_round_robin_order_and_repeats():
    sampler = build("round_robin", sizes={"a": 1, "b": 1, "c": 1})
    assert [sampler.next() for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]
    sampler = build({"type": "round_robin", "order": ["b", "b", "a"]}, sizes={"a": 1, "b": 1})
    assert [sampler.next() for _ in range(6)] == ["b", "b", "a", "b", "b", "a"]


def test_round_robin_errors():
    with pytest.raises(ConfigError) as err:
        build({"type": "round_robin", "order": ["a", "x"]}, sizes={"a": 1, "b": 1})
    assert "'x'" in str(err.value) and "'b' is never drawn" in str(err.value)


@pytest.mark.parametrize("node", [{"type": "ratios", "ratios": TABLE_A2}, "size_proportional", "round_robin"])
def test_equal_seeds_draw_equally_like_two_ranks(node):
    rank0, rank1 = build(node, seed=11), build(node, seed=11)
    assert [rank0.next() for _ in range(300)] == [rank1.next() for _ in range(300)]


def test_draws_ignore_the_global_rng():
    import torch

    a = build({"type": "ratios", "ratios": TABLE_A2}, seed=5)
    first = [a.next() for _ in range(50)]
    torch.manual_seed(123)
    torch.rand(10)
    b = build({"type": "ratios", "ratios": TABLE_A2}, seed=5)
    assert [b.next() for _ in range(50)] == first
    c = build({"type": "ratios", "ratios": TABLE_A2}, seed=6)
    assert [c.next() for _ in range(50)] != first


@pytest.mark.parametrize("node", [{"type": "ratios", "ratios": TABLE_A2}, "size_proportional",
                                  {"type": "round_robin", "order": list(TABLE_A2)[::-1]}])
def test_resume_continues_exactly(node):
    sampler = build(node)
    for _ in range(37):
        sampler.next()
    state = sampler.state_dict()
    expected = [sampler.next() for _ in range(100)]
    resumed = build(node)
    resumed.load_state_dict(state)
    assert [resumed.next() for _ in range(100)] == expected


def test_resume_with_other_datasets_is_an_error():
    state = build("size_proportional").state_dict()
    with pytest.raises(ConfigError, match="training.sampler"):
        build("size_proportional", sizes={"a": 1}).load_state_dict(state)
