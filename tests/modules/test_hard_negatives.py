import math

import pytest
import torch

from unimm.modules.hard_negatives import (
    NO_NEGATIVE,
    itm_negatives,
    sample_hard_negatives,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tolerance(draws: int) -> float:
    """Five standard deviations of an empirical frequency at its worst (p = 1/2) over ``draws``: a
    correct sampler exceeds it with probability < 6e-7 per column, and the seeded draw is fixed anyway."""
    return 5 * math.sqrt(0.25 / draws)


def test_never_picks_the_positive():
    torch.manual_seed(0)
    sim = torch.randn(8, 8) + 30 * torch.eye(8)  # the positive dominates: unmasked, it would win every draw
    ids = torch.arange(8)
    repeats = 1000  # 8000 draws in one call: every row repeated, the candidates unchanged
    picks = sample_hard_negatives(sim.repeat(repeats, 1), ids.repeat(repeats), ids, generator=_gen())
    assert picks.dtype == torch.long and picks.shape == (8 * repeats,)
    assert ((picks >= 0) & (picks < 8)).all()
    assert (picks != ids.repeat(repeats)).all()
    assert set(picks.tolist()) == set(range(8))  # and every other column does come up


def test_never_picks_a_caption_of_the_same_image():
    ids = torch.tensor([0, 0, 1, 2])  # two captions of image 0
    sim = torch.zeros(4, 4)
    sim[ids[:, None] == ids[None, :]] = 50.0  # same image: what an unmasked softmax would almost always pick
    repeats = 1000
    picks = sample_hard_negatives(sim.repeat(repeats, 1), ids.repeat(repeats), ids, generator=_gen())
    assert (ids[picks] != ids.repeat(repeats)).all()
    assert set(picks[0::4].tolist()) == {2, 3} and set(picks[1::4].tolist()) == {2, 3}
    text_for_image, image_for_text = itm_negatives(sim, sim.t(), ids, generator=_gen())
    assert (ids[text_for_image] != ids).all() and (ids[image_for_text] != ids).all()


def test_rows_without_a_candidate_get_minus_one():
    ids = torch.tensor([5, 5, 5])  # one image's three captions: no negative anywhere
    text_for_image, image_for_text = itm_negatives(torch.randn(3, 3), torch.randn(3, 3), ids, generator=_gen())
    assert text_for_image.tolist() == [NO_NEGATIVE] * 3 and image_for_text.tolist() == [-1] * 3
    # mixed: image 5's rows have exactly one negative (column 2), image 7's row two
    picks = sample_hard_negatives(torch.randn(3, 3), torch.tensor([5, 5, 7]), torch.tensor([5, 5, 7]), _gen())
    assert picks[:2].tolist() == [2, 2] and picks[2].item() in (0, 1)
    # no candidates at all, and no queries at all
    none = torch.tensor([], dtype=torch.long)
    assert sample_hard_negatives(torch.randn(2, 0), torch.tensor([1, 2]), none).tolist() == [-1, -1]
    assert sample_hard_negatives(torch.randn(0, 3), none, ids).shape == (0,)


def test_frequencies_match_the_masked_softmax():
    sim = torch.tensor([[2.0, 1.0, 0.5, 0.0, 3.0, -1.0]])
    candidate_ids = torch.tensor([0, 1, 2, 3, 0, 4])  # columns 0 and 4 show the query's image
    draws = 20000
    picks = sample_hard_negatives(sim.expand(draws, -1), torch.zeros(draws, dtype=torch.long), candidate_ids,
                                  generator=_gen(1))
    freq = torch.bincount(picks, minlength=6).float() / draws
    valid = candidate_ids != 0
    expected = torch.zeros(6)
    expected[valid] = sim[0, valid].softmax(0)
    assert freq[~valid].sum() == 0
    assert (freq - expected).abs().max() < _tolerance(draws), (freq, expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_large_and_infinite_low_precision_logits(dtype):
    ids = torch.arange(4)
    sim = torch.full((4, 4), 1e4).to(dtype)  # 1e4 / 0.07 would already be inf in fp16
    sim[0, 2] = float("inf")  # a +inf negative takes all of row 0's mass (the softmax limit)
    sim[1, 1] = float("inf")  # a +inf positive is masked: row 1 stays uniform over 0, 2, 3
    sim[2, 0] = float("-inf")  # weight 0
    sim[3, :] = torch.tensor([float("nan"), 1.0, float("nan"), 0.0]).to(dtype)  # NaN -> weight 0
    repeats = 2000
    picks = sample_hard_negatives(sim.repeat(repeats, 1), ids.repeat(repeats), ids, generator=_gen(2))
    rows = picks.view(repeats, 4)
    assert (rows >= 0).all() and (rows != ids).all()
    assert (rows[:, 0] == 2).all()
    assert set(rows[:, 1].tolist()) == {0, 2, 3}
    assert set(rows[:, 2].tolist()) == {1, 3}
    assert (rows[:, 3] == 1).all()  # column 3 is the positive, columns 0 and 2 are NaN


def test_rows_whose_weights_all_vanish_are_uniform_over_the_valid_columns():
    ids = torch.arange(4)
    sim = torch.tensor([[0.0, float("-inf"), float("nan"), float("-inf")]])  # row 0: valid 1, 2, 3 all weight 0
    draws = 6000
    picks = sample_hard_negatives(sim.expand(draws, -1), torch.zeros(draws, dtype=torch.long), ids, _gen(3))
    freq = torch.bincount(picks, minlength=4).float() / draws
    assert freq[0] == 0
    assert (freq[1:] - 1 / 3).abs().max() < _tolerance(draws)


def test_gathered_candidates():
    # rank 1 of 3, two pairs per rank: the local pairs are columns 2 and 3 of the gathered six
    all_image_ids = torch.tensor([10, 11, 12, 13, 14, 12])  # image 12 also has a caption on rank 2
    image_ids = all_image_ids[2:4]
    torch.manual_seed(0)
    sim_i2t, sim_t2i = torch.randn(2, 6), torch.randn(2, 6)
    sim_i2t[0, 5] = sim_t2i[0, 5] = 40.0  # the duplicate of image 12 is the most similar candidate
    for seed in range(200):
        text_for_image, image_for_text = itm_negatives(sim_i2t, sim_t2i, image_ids, all_image_ids, _gen(seed))
        assert text_for_image.shape == image_for_text.shape == (2,)
        for picks in (text_for_image, image_for_text):
            assert picks[0].item() not in (2, 5) and picks[1].item() != 3
            assert ((picks >= 0) & (picks < 6)).all()


def test_same_seed_same_draw():
    torch.manual_seed(0)
    sim, ids = torch.randn(64, 64), torch.randint(0, 40, (64,))
    first = itm_negatives(sim, sim.t(), ids, generator=_gen(7))
    again = itm_negatives(sim, sim.t(), ids, generator=_gen(7))
    other = itm_negatives(sim, sim.t(), ids, generator=_gen(8))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_no_graph_whatever_the_inputs_require():
    torch.manual_seed(0)
    features = torch.randn(6, 8, requires_grad=True)
    sim = features @ features.detach().t() / 0.07  # part of a graph, as the contrastive logits are
    ids = torch.arange(6)
    picks = sample_hard_negatives(sim, ids, ids, generator=_gen(4))
    assert not picks.requires_grad and picks.grad_fn is None
    assert torch.equal(picks, sample_hard_negatives(sim.detach(), ids, ids, generator=_gen(4)))
    sim.sum().backward()  # the caller's graph is untouched
    assert features.grad is not None


@pytest.mark.parametrize("args, message", [
    ((torch.randn(4), torch.arange(4), torch.arange(4)), "must be 2-D"),
    ((torch.zeros(2, 2, dtype=torch.long), torch.arange(2), torch.arange(2)), "floating-point"),
    ((torch.randn(3, 4), torch.arange(4), torch.arange(4)), "query_ids has 4 ids but similarity has 3"),
    ((torch.randn(3, 4), torch.arange(3), torch.arange(3)), "candidate_ids has 3 ids but similarity has 4"),
    ((torch.randn(2, 2), torch.arange(4).view(2, 2), torch.arange(2)), "query_ids must be 1-D"),
    ((torch.randn(2, 2), torch.arange(2), torch.zeros(2)), "candidate_ids must hold integer"),
])
def test_bad_inputs_raise(args, message):
    with pytest.raises(ValueError, match=message):
        sample_hard_negatives(*args)


def test_itm_negatives_checks_and_defaults():
    with pytest.raises(ValueError, match="same shape"):
        itm_negatives(torch.randn(2, 4), torch.randn(2, 3), torch.arange(2), torch.arange(4))
    with pytest.raises(ValueError, match="pass all_image_ids"):
        itm_negatives(torch.randn(2, 4), torch.randn(2, 4), torch.arange(2))
    sim, ids = torch.randn(5, 5), torch.tensor([0, 1, 1, 2, 3])
    assert all(torch.equal(a, b) for a, b in zip(itm_negatives(sim, sim, ids, generator=_gen(5)),
                                                 itm_negatives(sim, sim, ids, ids, generator=_gen(5)), strict=True))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_with_a_cuda_generator():
    ids = torch.tensor([0, 0, 1, 2], device="cuda")
    sim = torch.full((4, 4), 6e4, dtype=torch.float16, device="cuda")
    sim[0, 3] = float("inf")
    generator = torch.Generator(device="cuda").manual_seed(0)
    picks = sample_hard_negatives(sim, ids, ids.cpu(), generator=generator)  # CPU ids are moved
    assert picks.device.type == "cuda" and picks[0].item() == 3 and (ids[picks] != ids).all()
    again = sample_hard_negatives(sim, ids, ids, generator=torch.Generator(device="cuda").manual_seed(0))
    assert torch.equal(picks, again)
    with pytest.raises(ValueError, match="generator is on cpu"):
        sample_hard_negatives(sim, ids, ids, generator=torch.Generator())
