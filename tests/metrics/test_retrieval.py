"""Retrieval recall@K: hand-made scores with ties and several texts per image, and the embedding metric."""
from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as tdist

from tests.helpers import free_port, spawn_ranks
from unimm.metrics.retrieval import pair_retrieval_recall, recall_at_k, retrieval_recall
from unimm.registry import METRICS

# 3 images, 5 texts; texts 0, 1 show image 0, text 2 image 1, texts 3, 4 image 2
TEXT_TO_IMAGE = torch.tensor([0, 0, 1, 2, 2])
SCORES = torch.tensor([
    # t0   t1   t2   t3   t4
    [0.9, 0.2, 0.9, 0.1, 0.3],  # image 0: best positive 0.9 ties with negative t2 -> rank 1
    [0.5, 0.5, 0.4, 0.6, 0.0],  # image 1: 0.5, 0.5, 0.6 beat its 0.4 -> rank 3
    [0.1, 0.8, 0.7, 0.6, 0.2],  # image 2: best positive 0.6 (t3); 0.8, 0.7 beat it -> rank 2
])
# IR ranks (column by column, images scoring >= the text's own image): t0 0, t1 2 (0.5, 0.8), t2 2 (0.9, 0.7),
# t3 1 (image 1 ties its 0.6), t4 1 (0.3)


def test_ties_and_several_texts_per_image_by_hand():
    r = recall_at_k(SCORES, TEXT_TO_IMAGE, ks=(1, 2, 3))
    assert r["ir_r1"] == pytest.approx(1 / 5)  # t0 only
    assert r["ir_r2"] == pytest.approx(3 / 5)  # t0, t3, t4
    assert r["ir_r3"] == 1.0
    assert r["tr_r1"] == 0.0
    assert r["tr_r2"] == pytest.approx(1 / 3)  # image 0
    assert r["tr_r3"] == pytest.approx(2 / 3)  # images 0 and 2
    assert r["r_mean"] == pytest.approx((0.2 + 0.6 + 1.0 + 0.0 + 1 / 3 + 2 / 3) / 6)
    assert "ir_tr_r1_r5_mean" not in r


def test_default_keys_and_means():
    r = recall_at_k(SCORES, TEXT_TO_IMAGE)
    assert list(r) == ["ir_r1", "ir_r5", "ir_r10", "tr_r1", "tr_r5", "tr_r10", "r_mean", "ir_tr_r1_r5_mean"]
    assert r["ir_r5"] == r["tr_r5"] == r["ir_r10"] == r["tr_r10"] == 1.0  # K above the candidates: always found
    assert r["r_mean"] == pytest.approx((0.2 + 1 + 1 + 0 + 1 + 1) / 6)
    assert r["ir_tr_r1_r5_mean"] == pytest.approx((0.2 + 1 + 0 + 1) / 4)  # MoMo's average of R@1 and R@5
    assert METRICS.get("retrieval_recall").outputs() == list(r)
    assert METRICS.get("retrieval_recall").outputs(ks=[1, 3]) == ["ir_r1", "ir_r3", "tr_r1", "tr_r3", "r_mean"]


def test_equal_scores_count_against_the_query_and_order_does_not_matter():
    flat = recall_at_k(torch.full((3, 3), 0.5), torch.tensor([0, 1, 2]), ks=(1, 2, 3))
    assert flat == {"ir_r1": 0.0, "ir_r2": 0.0, "ir_r3": 1.0, "tr_r1": 0.0, "tr_r2": 0.0, "tr_r3": 1.0,
                    "r_mean": pytest.approx(1 / 3)}
    # tied positives of one image never hurt it: image 0's two texts share its top score
    tied = recall_at_k(torch.tensor([[1.0, 1.0, 0.2], [0.1, 0.3, 0.9]]), torch.tensor([0, 0, 1]), ks=(1,))
    assert tied["tr_r1"] == 1.0 and tied["ir_r1"] == 1.0
    images, texts = torch.tensor([2, 0, 1]), torch.tensor([4, 1, 3, 0, 2])  # shuffle both sides
    remap = torch.argsort(images)  # old image row -> new row
    shuffled = recall_at_k(SCORES[images][:, texts], remap[TEXT_TO_IMAGE[texts]], ks=(1, 2, 3))
    assert shuffled == recall_at_k(SCORES, TEXT_TO_IMAGE, ks=(1, 2, 3))


def topk_reference(scores: torch.Tensor, text_to_image: torch.Tensor, k: int) -> tuple[float, float]:
    """METER's evaluation: the top-k indices from torch.topk on each side."""
    top_images = scores.topk(k, dim=0).indices  # [k, T]
    ir = (top_images == text_to_image[None, :]).any(dim=0).float().mean()
    top_texts = scores.topk(k, dim=1).indices  # [I, k]
    tr = (text_to_image[top_texts] == torch.arange(scores.shape[0])[:, None]).any(dim=1).float().mean()
    return float(ir), float(tr)


def test_equals_topk_without_ties():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(7, 20, generator=g)
    text_to_image = torch.arange(20) % 7  # 2 or 3 texts per image
    r = recall_at_k(scores, text_to_image, ks=(1, 2, 5))
    for k in (1, 2, 5):
        ir, tr = topk_reference(scores, text_to_image, k)
        assert (r[f"ir_r{k}"], r[f"tr_r{k}"]) == (pytest.approx(ir), pytest.approx(tr))
    assert 0 < r["ir_r1"] < r["ir_r5"] < 1


def test_nan_scores_lose_and_bad_inputs_are_refused():
    scores = torch.tensor([[float("nan"), 0.1], [0.5, float("nan")]])
    r = recall_at_k(scores, torch.tensor([0, 1]), ks=(1,))
    assert r["ir_r1"] == 0.0 and r["tr_r1"] == 0.0  # each positive is NaN: ranked after every candidate
    r = recall_at_k(torch.tensor([[0.5, float("nan")]]), torch.tensor([0, 0]), ks=(1,))
    assert r["tr_r1"] == 1.0 and r["ir_r1"] == 1.0  # one candidate image; the NaN text is a positive too
    r = recall_at_k(torch.tensor([[0.5, float("nan")], [0.1, 0.2]]), torch.tensor([0, 1]), ks=(1,))
    assert r["tr_r1"] == 0.5 and r["ir_r1"] == 0.5  # the NaN negative beats image 0's text 0.5
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        recall_at_k(torch.zeros(2, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="scores must be"):
        recall_at_k(torch.zeros(2, 3), torch.tensor([0, 1]))


def test_images_without_texts_are_candidates_but_not_queries():
    # image 1 has no text: it is not a TR query, but it still competes in IR
    scores = torch.tensor([[0.9, 0.1], [0.95, 0.0], [0.0, 0.8]])
    r = recall_at_k(scores, torch.tensor([0, 2]), ks=(1, 2))
    assert r["tr_r1"] == 1.0  # images 0 and 2 find their text first
    assert r["ir_r1"] == 0.5 and r["ir_r2"] == 1.0  # text 0 ranks image 1 above its own


def embeddings_batches() -> list[tuple[dict, dict]]:
    """Two batches of an image-text pair dataset: image ids repeat, texts refer to ids of either batch."""
    a, b, c = [10.0, 0.0], [0.6, 0.8], [0.0, -1.0]  # image 10 is long: its dot products win without normalize
    return [({"image_index": torch.tensor([10, 20]), "text_image_index": torch.tensor([20, 10, 30])},
             {"image_embeds": torch.tensor([a, b]), "text_embeds": torch.tensor([b, [1.0, 0.1], c])}),
            ({"image_index": [30, 20], "text_image_index": [20]},
             {"image_embeds": torch.tensor([c, b]), "text_embeds": torch.tensor([[0.5, 0.9]])})]


def test_metric_collects_embeddings_and_scores_cosines():
    metric = METRICS.build({"type": "retrieval_recall", "ks": [1, 2]})
    for batch, output in embeddings_batches():
        metric.update(batch, output)
    images = torch.nn.functional.normalize(torch.tensor([[10.0, 0.0], [0.6, 0.8], [0.0, -1.0]]), dim=-1)
    texts = torch.nn.functional.normalize(torch.tensor([[0.6, 0.8], [1.0, 0.1], [0.0, -1.0], [0.5, 0.9]]), dim=-1)
    expected = recall_at_k(images @ texts.T, torch.tensor([1, 0, 2, 1]), ks=(1, 2))
    assert metric.compute() == expected
    assert expected["ir_r1"] == 1.0 and expected["tr_r1"] == 1.0
    raw = retrieval_recall(ks=(1,), normalize=False)  # dot products: image 10 wins every text with x > 0
    for batch, output in embeddings_batches():
        raw.update(batch, output)
    assert raw.compute()["ir_r1"] == pytest.approx(2 / 4)  # texts of image 20 are lost to image 10
    metric.reset()
    with pytest.raises(ValueError, match="no text was seen"):
        metric.compute()


def test_metric_refuses_texts_of_unseen_images():
    metric = retrieval_recall()
    metric.update({"image_index": [1], "text_image_index": [1, 2]},
                  {"image_embeds": torch.ones(1, 2), "text_embeds": torch.ones(2, 2)})
    with pytest.raises(ValueError, match=r"never seen: ids \[2\]"):
        metric.compute()


def worker(rank: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        # each rank sees one batch; texts on rank 0 refer to an image only rank 1 sees
        single = retrieval_recall(ks=(1, 2))
        for batch, output in embeddings_batches():
            single.update(batch, output)
        expected = recall_at_k(*_matrix(single), ks=(1, 2))
        split = retrieval_recall(ks=(1, 2))
        split.update(*embeddings_batches()[rank])
        assert split.compute() == expected
    finally:
        tdist.destroy_process_group()


def _matrix(metric: retrieval_recall) -> tuple[torch.Tensor, torch.Tensor]:
    """The single-process score matrix and text rows, without a process group."""
    images = torch.nn.functional.normalize(torch.cat(metric.image_embeds)[[0, 1, 2]], dim=-1)  # ids 10, 20, 30
    texts = torch.nn.functional.normalize(torch.cat(metric.text_embeds), dim=-1)
    return images @ texts.T, torch.tensor([1, 0, 2, 1])


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_two_gloo_ranks_give_the_single_process_recall():
    spawn_ranks(worker, (free_port(),), 2, start_method="fork")



def pair_batches(scores: torch.Tensor, owners: list[int], order: list[int], size: int):
    """The pairs of a [images, texts] score matrix in the given order, as batches of RetrievalPairs."""
    n_texts = scores.shape[1]
    for start in range(0, len(order), size):
        ks = order[start:start + size]
        rows, cols = [k // n_texts for k in ks], [k % n_texts for k in ks]
        yield ({"image_index": torch.tensor(rows), "text_index": torch.tensor(cols),
                "text_image_index": torch.tensor([owners[c] for c in cols])},
               {"pair_score": scores[rows, cols]})


def test_pair_recall_reassembles_the_matrix_in_any_order():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(4, 9, generator=g)
    owners = [0, 0, 1, 1, 1, 2, 3, 3, 3]
    metric = pair_retrieval_recall(ks=(1, 2, 5))
    order = torch.randperm(36, generator=g).tolist()
    for batch, output in pair_batches(scores, owners, order, size=7):
        metric.update(batch, output)
    assert metric.compute() == recall_at_k(scores, torch.tensor(owners), (1, 2, 5))


def test_pair_recall_by_hand_and_a_pair_twice_is_an_error():
    # 2 images, 3 texts (0, 1 of image 0; 2 of image 1). Text 1 ranks image 1 first; image 1 ranks text 0 first.
    scores = torch.tensor([[0.9, 0.1, 0.2],
                           [0.8, 0.7, 0.6]])
    metric = pair_retrieval_recall(ks=(1,))
    for batch, output in pair_batches(scores, [0, 0, 1], list(range(6)), size=4):
        metric.update(batch, output)
    result = metric.compute()
    assert result["ir_r1"] == pytest.approx(2 / 3) and result["tr_r1"] == pytest.approx(1 / 2)
    for batch, output in pair_batches(scores, [0, 0, 1], [0, 1], size=2):
        metric.update(batch, output)
    with pytest.raises(ValueError, match="scored more than once"):
        metric.compute()


def test_pair_recall_over_complete_rows_when_an_evaluation_stops_early(caplog):
    scores = torch.tensor([[0.9, 0.1, 0.2, 0.0],
                           [0.8, 0.7, 0.6, 0.5],
                           [0.1, 0.1, 0.1, 0.9]])
    owners = [0, 0, 1, 2]
    metric = pair_retrieval_recall(ks=(1,))
    for batch, output in pair_batches(scores, owners, list(range(8)), size=8):  # rows 0 and 1 only
        metric.update(batch, output)
    with caplog.at_level("WARNING", logger="unimm"):
        result = metric.compute()
    assert "2 of 3 images have every text scored" in caplog.text
    assert result == recall_at_k(scores[:2, :3], torch.tensor([0, 0, 1]), (1,))
