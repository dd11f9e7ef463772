"""Two gloo processes: the set criterion's box normaliser and the metrics see every rank."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as tdist

from tests.helpers import free_port, spawn_ranks
from tests.metrics.test_coco_map import FakeDetection, batch, model_output
from tests.metrics.test_vqa_accuracy import FakeVQA, logits_for
from unimm.metrics.accuracy import accuracy
from unimm.metrics.coco_map import coco_map, evaluate_boxes
from unimm.metrics.vqa_accuracy import vqa_accuracy
from unimm.losses.set_criterion import average_box_count

WORLD = 2


def worker(rank: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        # rank 0 has 3 boxes, rank 1 has none: every rank divides by the mean, 1.5
        boxes = [torch.zeros(3, 4)] if rank == 0 else [torch.zeros(0, 4)]
        assert average_box_count([{"boxes": b} for b in boxes], torch.device("cpu")) == 1.5

        # rank 0 sees image 1 predicted exactly, rank 1 image 2 predicted shifted; the mAP
        # of the gathered detections equals that of one process seeing both
        full = {k: torch.cat([model_output()[k][:1], model_output(shift=0.2)[k][1:]]) for k in ("pred_logits",
                                                                                             "pred_boxes")}
        single = coco_map(FakeDetection(), name="coco")
        single.update(batch(), full)
        expected = evaluate_boxes(single.ground_truth, np.concatenate(single.rows), [1, 2])
        detections = coco_map(FakeDetection(), name="coco")
        detections.update({"targets": batch()["targets"][rank:rank + 1]},
                          {k: v[rank:rank + 1] for k, v in full.items()})
        assert detections.compute() == pytest.approx(expected)
        assert 0.0 < expected["map"] < 1.0

        # rank 0: a 1.0 question; rank 1: a 0.3 and a 0.0 question
        answers = [["2"] * 10] if rank == 0 else [["2"] + ["no"] * 9, ["yes"] * 10]
        metric = vqa_accuracy(FakeVQA(), name="vqa2", per_answer_type=True)
        types = ["number"] if rank == 0 else ["number", "yes/no"]
        metric.update({"answers": answers, "answer_type": types}, {"logits": logits_for(*["2"] * len(answers))})
        assert metric.compute() == pytest.approx({"vqa_accuracy": 1.3 / 3, "vqa_accuracy/number": 1.3 / 2,
                                                  "vqa_accuracy/yes/no": 0.0})

        # per-class recalls add up the ranks' counts: class 1 is right once on each rank
        labels = torch.tensor([0, 1] if rank == 0 else [1, 1])
        predicted = torch.tensor([0, 1] if rank == 0 else [1, 0])
        per_class = accuracy(per_class=True)
        per_class.update({"label": labels}, {"logits": torch.nn.functional.one_hot(predicted, 2).float()})
        assert per_class.compute() == {"accuracy": 0.75, "recall/0": 1.0, "recall/1": pytest.approx(2 / 3)}
    finally:
        tdist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_two_gloo_ranks():
    # fork: the workers inherit the imported modules instead of importing them again
    spawn_ranks(worker, (free_port(),), WORLD, start_method="fork")
