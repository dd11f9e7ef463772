"""GLUE's F1 (MRPC, QQP) and correlations (STS-B): by hand, against sklearn / scipy, and over two gloo ranks."""
from __future__ import annotations

import math
import os

import pytest
import torch
import torch.distributed as tdist
from scipy import stats

from tests.helpers import free_port, spawn_ranks
from unimm.metrics.glue_scores import average_ranks, correlation, f1
from unimm.registry import METRICS

WORLD = 2

# sample:   0  1  2  3  4  5   6  7
LABELS = [1, 0, 1, 1, 0, 0, -1, 0]
PREDICTED = [1, 1, 0, 1, 0, 0, 1, 0]
# positive 1 (sample 6 ignored): tp = 2 (0, 3), fp = 1 (1), fn = 1 (2), correct = 5 of 7
# positive 0: tp = 3 (4, 5, 7), fp = 1 (2), fn = 1 (1)


def one_hot(predictions: list[int], classes: int = 2) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(predictions), classes).float()


def test_f1_by_hand_ignores_negative_labels():
    metric = f1()
    metric.update({"label": torch.tensor(LABELS)}, {"logits": one_hot(PREDICTED)})
    assert metric.compute() == {"accuracy": pytest.approx(5 / 7), "f1": pytest.approx(4 / 6),
                                "accuracy_f1_mean": pytest.approx((5 / 7 + 4 / 6) / 2)}
    zero = f1(positive=0)
    zero.update({"label": torch.tensor(LABELS)}, {"logits": one_hot(PREDICTED)})
    assert zero.compute()["f1"] == pytest.approx(6 / 8)
    # one logit per sample: class 1 above 0
    single = f1()
    single.update({"label": torch.tensor(LABELS)}, {"logits": torch.tensor([2.0, 0.5, -1, 3, -2, 0, 1, -0.5])})
    assert single.compute()["f1"] == pytest.approx(4 / 6)


def test_f1_two_batches_equal_one_and_reset_clears():
    metric = f1()
    metric.update({"label": torch.tensor(LABELS[:3])}, {"logits": one_hot(PREDICTED[:3])})
    metric.update({"label": torch.tensor(LABELS[3:])}, {"logits": one_hot(PREDICTED[3:])})
    whole = f1()
    whole.update({"label": torch.tensor(LABELS)}, {"logits": one_hot(PREDICTED)})
    assert metric.compute() == whole.compute()
    metric.reset()
    assert metric.compute() == {"accuracy": 0.0, "f1": 0.0, "accuracy_f1_mean": 0.0}


def test_f1_is_zero_when_undefined_and_refuses_bad_shapes():
    metric = f1()  # no positive label, none predicted: F1 is 0/0
    metric.update({"label": torch.tensor([0, 0])}, {"logits": one_hot([0, 0])})
    assert metric.compute() == {"accuracy": 1.0, "f1": 0.0, "accuracy_f1_mean": 0.5}
    with pytest.raises(ValueError, match=r"output 'logits' must be \[B, C\] or \[B\], got shape \(2, 3, 2\)"):
        metric.update({"label": torch.tensor([0, 0])}, {"logits": torch.zeros(2, 3, 2)})


def test_f1_equals_sklearn_on_random_data():
    metrics = pytest.importorskip("sklearn.metrics")  # not a unimm dependency: runs where it is installed
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (200,), generator=g)
    logits = torch.randn(200, 2, generator=g)
    for positive in (0, 1):
        metric = f1(positive=positive)
        metric.update({"label": labels}, {"logits": logits})
        result = metric.compute()
        pred = logits.argmax(-1).numpy()
        assert result["f1"] == pytest.approx(metrics.f1_score(labels.numpy(), pred, pos_label=positive))
        assert result["accuracy"] == pytest.approx(metrics.accuracy_score(labels.numpy(), pred))


def sts_data(n: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """STS-B-like scores with many ties: labels on a 0.2 grid in [0, 5], predictions on a 0.5 grid."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 26, (n,), generator=g).double() / 5
    predictions = ((labels + torch.randn(n, generator=g, dtype=torch.float64)) * 2).round() / 2
    return predictions, labels


def test_average_ranks_share_ties():
    assert average_ranks(torch.tensor([3.0, 1.0, 3.0, 2.0, 3.0])).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]


def test_correlation_equals_scipy_with_ties_in_batches():
    predictions, labels = sts_data()
    assert predictions.unique().numel() < 30 and labels.unique().numel() < 30  # ties on both sides
    metric = correlation()
    for rows in (slice(0, 25), slice(25, None)):  # [B, 1] float32 logits: 0.5 steps are exact in float32
        metric.update({"label": labels[rows]}, {"logits": predictions[rows, None].float()})
    result = metric.compute()
    r = stats.pearsonr(predictions.numpy(), labels.numpy())[0]
    rho = stats.spearmanr(predictions.numpy(), labels.numpy())[0]
    assert result == {"pearson": pytest.approx(r, abs=1e-12), "spearman": pytest.approx(rho, abs=1e-12),
                      "pearson_spearman_mean": pytest.approx((r + rho) / 2, abs=1e-12)}
    assert 0.3 < rho < 0.95


def test_correlation_zero_variance_few_samples_and_bad_shapes():
    metric = correlation()
    metric.update({"label": [1.0, 2.0, 3.0]}, {"logits": torch.full((3,), 0.1)})  # constant predictions
    assert metric.compute() == {"pearson": 0.0, "spearman": 0.0, "pearson_spearman_mean": 0.0}
    metric.reset()
    metric.update({"label": [0.1] * 10}, {"logits": torch.arange(10.0)})  # constant labels
    assert metric.compute() == {"pearson": 0.0, "spearman": 0.0, "pearson_spearman_mean": 0.0}
    metric.reset()
    metric.update({"label": torch.tensor([2.5])}, {"logits": torch.tensor([1.0])})
    with pytest.raises(ValueError, match="needs at least 2 samples to correlate, got 1"):
        metric.compute()
    with pytest.raises(ValueError, match=r"output 'score' must be \[B\] or \[B, 1\], got shape \(4, 2\)"):
        correlation(logits_key="score").update({"label": torch.zeros(4)}, {"score": torch.zeros(4, 2)})
    with pytest.raises(ValueError, match=r"batch 'label' must be \[B\] = \(4,\) .* got shape \(3,\)"):
        correlation().update({"label": torch.zeros(3)}, {"logits": torch.zeros(4)})
    nan = correlation()
    nan.update({"label": torch.tensor([1.0, 2.0])}, {"logits": torch.tensor([float("nan"), 1.0])})
    assert all(math.isnan(value) for value in nan.compute().values())


def test_registry_builds_both_with_declared_keys():
    metric = METRICS.build({"type": "f1", "positive": 0})
    metric.update({"label": torch.tensor(LABELS)}, {"logits": one_hot(PREDICTED)})
    assert list(metric.compute()) == METRICS.get("f1").outputs(positive=0)
    assert metric.compute()["f1"] == pytest.approx(6 / 8)
    metric = METRICS.build({"type": "correlation", "logits_key": "score"})
    metric.update({"label": torch.tensor([0.0, 1.0, 3.0])}, {"score": torch.tensor([0.2, 0.1, 0.9])})
    assert list(metric.compute()) == METRICS.get("correlation").outputs(logits_key="score")


def worker(rank: int, port: int, expected: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        rows = slice(rank, None, WORLD)  # each rank half of the samples, as eval_batches deals them out
        predictions, labels = sts_data()
        scores = correlation()
        scores.update({"label": labels[rows]}, {"logits": predictions[rows]})
        assert scores.compute() == pytest.approx(expected["correlation"], abs=1e-12)
        classes = f1()
        classes.update({"label": torch.tensor(LABELS[rows])}, {"logits": one_hot(PREDICTED[rows])})
        assert classes.compute() == pytest.approx(expected["f1"])
    finally:
        tdist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_two_gloo_ranks_with_half_the_data_each_equal_one_rank():
    predictions, labels = sts_data()
    scores = correlation()
    scores.update({"label": labels}, {"logits": predictions})
    classes = f1()
    classes.update({"label": torch.tensor(LABELS)}, {"logits": one_hot(PREDICTED)})
    expected = {"correlation": scores.compute(), "f1": classes.compute()}
    # a rank alone would report another value: the gather is what makes them equal
    half = correlation()
    half.update({"label": labels[0::WORLD]}, {"logits": predictions[0::WORLD]})
    assert half.compute()["spearman"] != pytest.approx(expected["correlation"]["spearman"])
    spawn_ranks(worker, (free_port(), expected), WORLD, start_method="fork")
