"""The distillation loss (ViT-BERT Eq. 7) against numbers worked out by hand on 2 x 3 logits.

Student logits ``[[0, 0, 0], [ln 2, 0, 0]]`` have softmax ``[1/3, 1/3, 1/3]`` and ``[1/2, 1/4, 1/4]``;
teacher logits ``[[ln 2, 0, 0], [0, 0, ln 2]]`` have softmax ``[1/2, 1/4, 1/4]`` and ``[1/4, 1/4, 1/2]``,
so the teacher's argmax is ``[0, 2]``; the ground truth is ``[1, 0]``.
"""
from __future__ import annotations

import math

import pytest
import torch

import unimm.losses  # noqa: F401 (registers the losses)
from unimm.config.errors import ConfigError
from unimm.registry import LOSSES

LN2, LN3 = math.log(2), math.log(3)
LABELS = torch.tensor([1, 0])
CE = (LN3 + LN2) / 2  # -ln(1/3) and -ln(1/2): the student's probability of the true class
HARD = (LN3 + 2 * LN2) / 2  # -ln(1/3) and -ln(1/4): of the teacher's argmax, classes 0 and 2
# KL(teacher || student): row 1: 1/2 ln(3/2) + 2 * 1/4 ln(3/4) = 1/2 ln(9/8); row 2: 1/4 ln(1/2) + 1/2 ln 2 = 1/4 ln 2
KL_TS = (0.5 * math.log(9 / 8) + 0.25 * LN2) / 2
# KL(student || teacher): row 1: 1/3 ln(2/3) + 2 * 1/3 ln(4/3) = 1/3 ln(32/27); row 2: 1/2 ln 2 + 1/4 ln(1/2) = 1/4 ln 2
KL_ST = (math.log(32 / 27) / 3 + 0.25 * LN2) / 2


def logits(requires_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    student = torch.tensor([[0.0, 0.0, 0.0], [LN2, 0.0, 0.0]], requires_grad=requires_grad)
    teacher = torch.tensor([[LN2, 0.0, 0.0], [0.0, 0.0, LN2]], requires_grad=requires_grad)
    return student, teacher


def loss_value(labels: torch.Tensor = LABELS, **node) -> float:
    loss = LOSSES.build({"type": "distillation", **node})
    return loss(*logits(), labels).item()


def test_alpha_0_is_the_cross_entropy_with_the_ground_truth():
    assert loss_value(alpha=0.0) == pytest.approx(CE, rel=1e-6)
    assert loss_value(alpha=0.0, temperature=0.0) == pytest.approx(CE, rel=1e-6)  # t plays no part


def test_alpha_1_temperature_1_is_the_kl_in_the_chosen_direction():
    assert loss_value() == pytest.approx(KL_TS, rel=1e-6)  # the defaults: alpha 1, t 1, KL(teacher || student)
    assert loss_value(kl_direction="student_teacher") == pytest.approx(KL_ST, rel=1e-6)
    assert KL_TS != pytest.approx(KL_ST, rel=1e-3)  # the two directions differ on these logits
    assert loss_value(temperature_squared=True) == pytest.approx(KL_TS, rel=1e-6)  # t^2 = 1


def test_alpha_mixes_the_two_terms():
    assert loss_value(alpha=0.3) == pytest.approx(0.7 * CE + 0.3 * KL_TS, rel=1e-6)


def test_temperature_0_is_hard_distillation_on_the_teacher_argmax():
    assert loss_value(temperature=0.0) == pytest.approx(HARD, rel=1e-6)
    assert loss_value(temperature=0.0, alpha=0.5) == pytest.approx(0.5 * CE + 0.5 * HARD, rel=1e-6)


def test_temperature_2_softens_both_and_has_no_t_squared_by_default():
    # logits / 2: the ln 2 entries become ln sqrt 2, so with s = 2 + sqrt 2 the teacher's rows are
    # [sqrt 2, 1, 1] / s and [1, 1, sqrt 2] / s, and the student's [1/3] * 3 and [sqrt 2, 1, 1] / s
    r2, s = math.sqrt(2), 2 + math.sqrt(2)
    row1 = LN3 + (r2 / s) * 0.5 * LN2 - math.log(s)  # sum p_t ln(3 p_t)
    row2 = (r2 - 1) / s * 0.5 * LN2  # (1/s) ln(1/sqrt 2) + (sqrt 2/s) ln(sqrt 2)
    expected = (row1 + row2) / 2
    assert loss_value(temperature=2.0) == pytest.approx(expected, rel=1e-6)
    assert loss_value(temperature=2.0, temperature_squared=True) == pytest.approx(4 * expected, rel=1e-6)


def test_ignored_rows_take_no_part():
    # only row 1 counts: CE -ln(1/3), KL(teacher || student) 1/2 ln(9/8)
    one_row = loss_value(labels=torch.tensor([1, -100]), alpha=0.5)
    assert one_row == pytest.approx(0.5 * LN3 + 0.5 * 0.5 * math.log(9 / 8), rel=1e-6)
    loss = LOSSES.build("distillation")
    student, teacher = logits(requires_grad=True)
    none = loss(student, teacher, torch.tensor([-100, -100]))
    assert none.item() == 0.0
    none.backward()  # still a graph, with zero gradient
    assert torch.equal(student.grad, torch.zeros(2, 3))


def test_gradients_reach_the_student_only():
    student, teacher = logits(requires_grad=True)
    LOSSES.build("distillation")(student, teacher, LABELS).backward()
    assert teacher.grad is None
    # d KL(teacher || student) / d z_s = p_s - p_t per row, averaged over the 2 rows
    expected = torch.tensor([[1 / 3 - 1 / 2, 1 / 3 - 1 / 4, 1 / 3 - 1 / 4], [1 / 2 - 1 / 4, 0.0, 1 / 4 - 1 / 2]]) / 2
    torch.testing.assert_close(student.grad, expected)
    student, teacher = logits(requires_grad=True)
    LOSSES.build({"type": "distillation", "temperature": 0.0, "alpha": 0.5})(student, teacher, LABELS).backward()
    assert teacher.grad is None and student.grad is not None


def test_arguments_are_checked_at_build_time():
    with pytest.raises(ConfigError, match="alpha"):
        LOSSES.build({"type": "distillation", "alpha": 1.5})
    with pytest.raises(ConfigError, match="temperature"):
        LOSSES.build({"type": "distillation", "temperature": -1.0})
    with pytest.raises(ConfigError, match="kl_direction"):
        LOSSES.build({"type": "distillation", "kl_direction": "forward"})
    with pytest.raises(ValueError, match="differ in shape"):
        LOSSES.build("distillation")(torch.zeros(2, 3), torch.zeros(2, 4), LABELS)
