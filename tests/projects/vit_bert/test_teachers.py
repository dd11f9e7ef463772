"""Teachers are frozen: eval mode, no gradient, outside the optimizer, absent from checkpoints, on the run's device."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.projects.vit_bert.conftest import build, corpus_batch, image_batch
from unimm.config.errors import ConfigError
from unimm.losses.distillation import Distillation

KD = {"type": "distillation", "alpha": 1.0, "temperature": 1.0}


@pytest.fixture
def student(teachers):
    return build({"type": "vit_bert_tiny", "distillation": KD, "teachers": teachers})


def teacher_params(model):
    return [p for t in {id(t): t for t in model.teachers.values()}.values() for p in t.model.parameters()]


def test_teachers_load_their_checkpoints_and_label_their_datasets(student, teachers):
    from unimm.training.checkpoint import read_weights

    assert set(student.teachers) == {"images", "corpus"}
    for name, spec in teachers.items():
        (dataset,) = spec["datasets"]
        saved = read_weights(spec["checkpoint"])[1]
        own = student.teachers[dataset].model.state_dict()
        assert set(own) == set(saved) and all(torch.equal(own[k], saved[k]) for k in own)


def test_teachers_stay_in_eval_mode_and_get_no_gradient(student):
    student.train()
    assert all(not t.model.training for t in student.teachers.values())
    assert all(not p.requires_grad for p in teacher_params(student))
    for batch in (image_batch(), corpus_batch()):
        losses = student(batch)["losses"]
        sum(losses.values()).backward()
    assert all(p.grad is None for p in teacher_params(student))
    assert all(p.grad is not None for n, p in student.named_parameters() if n.startswith("encoder."))
    student.teachers["images"].model.train()  # even if someone turns it on, a call runs it in eval mode
    student(image_batch())
    assert not student.teachers["images"].model.training


def test_teachers_are_outside_the_parameters_the_optimizer_and_the_checkpoint(student, tmp_path):
    from unimm.training.checkpoint import read_weights, save_checkpoint
    from unimm.training.trainer import build_optimizer

    ids = {id(p) for p in teacher_params(student)}
    assert ids and not ids & {id(p) for p in student.parameters()}
    optimizer = build_optimizer({"type": "adamw", "lr": 1e-3}, student, [])
    assert not ids & {id(p) for group in optimizer.param_groups for p in group["params"]}
    keys = set(student.state_dict())
    assert keys and all(k.split(".")[0] in ("image_tokenizer", "text_tokenizer", "encoder", "heads") for k in keys)

    class Stub:  # scheduler / sampler stand-ins with a state
        def state_dict(self):
            return {}

    save_checkpoint(tmp_path, model=student, optimizer=optimizer, scheduler=Stub(), sampler=Stub(), hooks=[],
                    counters={"update": 1})
    assert set(read_weights(tmp_path / "checkpoints" / "last")[1]) == keys


def test_teachers_follow_the_student_to_its_device_and_dtype(student):
    student.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in teacher_params(student))
    out = student({**image_batch(), "image": image_batch()["image"].double()})
    assert out["logits"].dtype == torch.float64
    if torch.cuda.is_available():
        student.to("cuda")
        assert all(p.device.type == "cuda" for p in teacher_params(student))


def test_each_head_follows_its_teachers_logits_by_eq_7(student):
    student.eval()
    batch = corpus_batch()
    out = student(batch)
    taught = student.teachers["corpus"](batch)
    assert out["mlm_logits"].shape == taught["mlm_logits"].shape == (3, 50)  # the 3 masked positions
    kl = lambda s, t: (F.softmax(t, -1) * (F.log_softmax(t, -1) - F.log_softmax(s, -1))).sum(-1).mean()  # noqa: E731
    torch.testing.assert_close(out["losses"]["corpus/mlm"], kl(out["mlm_logits"], taught["mlm_logits"]))
    torch.testing.assert_close(out["losses"]["corpus/nsp"], kl(out["nsp_logits"], taught["nsp_logits"]))
    image = student(image_batch())
    torch.testing.assert_close(image["losses"]["images/distillation"],
                               kl(image["logits"], student.teachers["images"](image_batch())["logits"]))
    assert image["losses"]["images/distillation"] > 0.01  # a teacher that says something


def test_alpha_zero_is_the_cross_entropy_of_the_labels(teachers):
    student = build({"type": "vit_bert_tiny", "distillation": {**KD, "alpha": 0.0}, "teachers": teachers}).eval()
    out = student(image_batch())
    torch.testing.assert_close(out["losses"]["images/distillation"], F.cross_entropy(out["logits"], image_batch()["label"]))
    assert isinstance(student.distillation, Distillation)


def test_teacher_mistakes_are_clear_errors(teachers, tmp_path):
    with pytest.raises(ConfigError, match=r"model.teachers.image.checkpoint: .*does not exist; train the teacher first"):
        build({"type": "vit_bert_tiny", "distillation": KD,
               "teachers": {**teachers, "image": {**teachers["image"], "checkpoint": str(tmp_path / "none")}}})
    with pytest.raises(ConfigError, match=r"model.teachers.image.checkpoint: .*is not this teacher's checkpoint"):
        build({"type": "vit_bert_tiny", "distillation": KD,  # the text teacher's weights for the image teacher
               "teachers": {**teachers, "image": {**teachers["image"], "checkpoint": teachers["text"]["checkpoint"]}}})
    with pytest.raises(ConfigError, match=r"model.teachers.text.datasets: .*already have a teacher"):
        build({"type": "vit_bert_tiny", "distillation": KD,
               "teachers": {**teachers, "text": {**teachers["text"], "datasets": ["images"]}}})
    with pytest.raises(ConfigError, match="set both or neither"):
        build({"type": "vit_bert_tiny", "teachers": teachers})
