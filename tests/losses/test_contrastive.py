"""The image-text contrastive loss: values by hand, the logit scale and its clamp, and 2 ranks == 1 process."""
from __future__ import annotations

import copy
import math
import os

import pytest
import torch
import torch.distributed as tdist
from torch import nn

from tests.helpers import free_port, spawn_ranks
from unimm.losses.contrastive import ContrastiveLoss
from unimm.registry import LOSSES
from unimm.training import distributed as dist

WORLD = 2
TOL = dict(rtol=0, atol=1e-5)


def softplus_neg(x: float) -> float:
    """CE of a 2-way softmax whose right logit leads by x: log(1 + e^-x)."""
    return math.log1p(math.exp(-x))


def pairs() -> tuple[torch.Tensor, torch.Tensor]:
    # cosines: image0.text0 = 1, image0.text1 = 0.6, image1.text0 = 0, image1.text1 = 0.8;
    # the rows are scaled to show that only directions count
    image = torch.tensor([[3.0, 0.0], [0.0, 1.0]], requires_grad=True)
    text = torch.tensor([[1.0, 0.0], [0.3, 0.4]], requires_grad=True)
    return image, text


def test_two_by_two_by_hand():
    loss = LOSSES.build({"type": "contrastive", "temperature": 0.1})  # scale 10
    image, text = pairs()
    i2t = (softplus_neg(10 - 6) + softplus_neg(8 - 0)) / 2  # image 0: logits [10, 6]; image 1: [0, 8]
    t2i = (softplus_neg(10 - 0) + softplus_neg(8 - 6)) / 2  # text 0: [10, 0]; text 1: [6, 8]
    value = loss(image, text)
    assert value.item() == pytest.approx((i2t + t2i) / 2, abs=1e-6)
    one_way = LOSSES.build({"type": "contrastive", "temperature": 0.1, "symmetric": False})
    assert one_way(*pairs()).item() == pytest.approx(i2t, abs=1e-6)
    logits_per_image, logits_per_text, labels = loss.logits(image, text)
    torch.testing.assert_close(logits_per_image, torch.tensor([[10.0, 6.0], [0.0, 8.0]]))
    torch.testing.assert_close(logits_per_text, torch.tensor([[10.0, 0.0], [6.0, 8.0]]))
    assert labels.tolist() == [0, 1]


def test_gradient_reaches_the_logit_scale():
    loss = ContrastiveLoss(temperature=0.1)
    assert loss.logit_scale.item() == pytest.approx(math.log(10))
    loss(*pairs()).backward()
    # d CE / d log-scale = scale * (sum_j p_j c_j - c_label) for a row of cosines c
    p = lambda x: math.exp(-x) / (1 + math.exp(-x))  # noqa: E731 (the losing logit's probability)
    i2t = (p(4) * (0.6 - 1) + p(8) * (0 - 0.8)) / 2
    t2i = (p(10) * (0 - 1) + p(2) * (0.6 - 0.8)) / 2
    assert loss.logit_scale.grad.item() == pytest.approx(10 * (i2t + t2i) / 2, rel=1e-5)
    assert loss.logit_scale.grad.item() < 0  # a sharper softmax lowers the loss here
    assert ContrastiveLoss().logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert not ContrastiveLoss(learnable_scale=False).logit_scale.requires_grad


def test_the_clamp_moves_the_value_and_keeps_the_gradient():
    loss = ContrastiveLoss()
    with torch.no_grad():
        loss.logit_scale.fill_(10.0)  # e^10 > 100
    value = loss(*pairs())
    assert loss.logit_scale.item() == pytest.approx(math.log(100))
    assert value.item() == pytest.approx(ContrastiveLoss(temperature=0.01)(*pairs()).item(), abs=1e-6)
    value.backward()
    assert loss.logit_scale.grad.item() != 0  # FLAVA clamps the data, not the gradient
    with torch.no_grad():
        loss.logit_scale.fill_(-1.0)  # below scale 1
    value = loss(*pairs())
    assert loss.logit_scale.item() == 0.0
    assert value.item() == pytest.approx(ContrastiveLoss(temperature=1.0)(*pairs()).item(), abs=1e-6)


def test_mismatched_batches_are_refused():
    with pytest.raises(ValueError, match=r"both be \[B, E\], got \(3, 4\) and \(2, 4\)"):
        ContrastiveLoss()(torch.randn(3, 4), torch.randn(2, 4))


class DualEncoder(nn.Module):
    """Two linear encoders and the loss (the logit scale is a model parameter, as in training)."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Linear(6, 4)
        self.text = nn.Linear(5, 4)
        self.loss = ContrastiveLoss()

    def forward(self, images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        return self.loss(self.image(images), self.text(texts))


def check_ranks(rank: int, world: int) -> None:
    torch.manual_seed(0)
    model, images, texts = DualEncoder(), torch.randn(8, 6), torch.randn(8, 5)
    reference = copy.deepcopy(model)
    reference.loss.gather = False  # one process's computation (inside the group it would gather 2 x 8 rows)
    whole = reference(images, texts)  # the whole batch
    whole.backward()
    mine = slice(rank * 4, (rank + 1) * 4)

    # DDP: the mean of the rank losses is the whole-batch loss, every gradient is the whole-batch one
    ddp = dist.wrap_model(model)
    local = ddp(images[mine], texts[mine])
    torch.testing.assert_close(dist.all_reduce_mean(local.detach()), whole.detach(), **TOL)
    local.backward()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, **TOL, msg=name)
    assert model.loss.logit_scale.grad.abs() > 0

    # without DDP: the gradient at the local embeddings is world x the whole-batch gradient there
    image_emb = reference.image(images).detach().requires_grad_()
    text_emb = reference.text(texts).detach().requires_grad_()
    reference.loss(image_emb, text_emb).backward()
    local_image = image_emb.detach()[mine].requires_grad_()
    local_text = text_emb.detach()[mine].requires_grad_()
    loss = ContrastiveLoss()
    _, _, labels = loss.logits(local_image, local_text)
    assert labels.tolist() == [4 * rank + i for i in range(4)]
    loss(local_image, local_text).backward()
    torch.testing.assert_close(local_image.grad, world * image_emb.grad[mine], **TOL)
    torch.testing.assert_close(local_text.grad, world * text_emb.grad[mine], **TOL)

    # uneven batches (3 and 5 rows): the labels follow the row counts; sum_r B_r L_r / N is the whole loss
    rows = slice(0, 3) if rank == 0 else slice(3, 8)
    uneven = loss(image_emb.detach()[rows], text_emb.detach()[rows])
    _, _, labels = loss.logits(image_emb.detach()[rows], text_emb.detach()[rows])
    assert labels.tolist() == list(range(8))[rows]
    weighted = dist.all_reduce_sum(uneven.detach() * (rows.stop - rows.start)) / 8
    torch.testing.assert_close(weighted, reference.loss(image_emb, text_emb).detach(), **TOL)

    # gather=False: this rank's rows only, labels 0..B-1
    _, per_text, labels = ContrastiveLoss(gather=False).logits(local_image, local_text)
    assert per_text.shape == (4, 4) and labels.tolist() == [0, 1, 2, 3]


def worker(rank: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        check_ranks(rank, WORLD)
        tdist.barrier()
    finally:
        tdist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process():
    spawn_ranks(worker, (free_port(),), WORLD, start_method="fork")
