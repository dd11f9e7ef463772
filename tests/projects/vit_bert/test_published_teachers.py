"""Teachers from the published post-LN BERT (a Hugging Face folder) and ViT (a timm state dict): the source
model's own logits, frozen, outside the student, with the student's vocabulary / classes."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import REPO
from tests.projects.vit_bert.conftest import VOCAB, build, corpus_batch, image_batch
from unimm.config.errors import ConfigError

KD = {"type": "distillation", "alpha": 1.0, "temperature": 1.0}
VIT_ARCH = {"arch": "vit_tiny_patch16_224", "arch_args": {"img_size": 32, "embed_dim": 32, "depth": 2, "num_heads": 2}}


def tiny_bert(folder, vocab: int = VOCAB, heads: bool = True):
    """A random post-LN BertForPreTraining (hidden 32, 2 layers) saved as a Hugging Face folder."""
    from transformers import BertConfig, BertForPreTraining, BertModel

    torch.manual_seed(3)
    config = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=16, type_vocab_size=2)
    model = (BertForPreTraining if heads else BertModel)(config).eval()
    model.save_pretrained(folder)
    return model


def tiny_vit(path, classes: int = 3):
    """A random timm ViT (width 32, 2 blocks, 16x16 patches at 32) saved as its state dict."""
    import timm

    torch.manual_seed(4)
    model = timm.create_model(VIT_ARCH["arch"], pretrained=False, num_classes=classes, **VIT_ARCH["arch_args"]).eval()
    torch.save(model.state_dict(), path)
    return model


@pytest.fixture
def published(tmp_path):
    bert, vit = tiny_bert(tmp_path / "bert"), tiny_vit(tmp_path / "vit.pth")
    teachers = {"text": {"model": {"type": "published_bert_teacher", "path": str(tmp_path / "bert")},
                         "datasets": ["corpus"]},
                "image": {"model": {"type": "published_vit_teacher", "path": str(tmp_path / "vit.pth"), **VIT_ARCH},
                          "datasets": ["images"]}}
    return bert, vit, teachers


def test_the_teachers_give_the_source_models_own_logits(published):
    bert, vit, teachers = published
    student = build({"type": "vit_bert_tiny", "distillation": KD, "teachers": teachers})
    batch = corpus_batch()
    taught = student.teachers["corpus"](batch)
    with torch.no_grad():
        source = bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      token_type_ids=batch["token_type_ids"])
    picked = batch["mlm_labels"] >= 0
    assert taught["mlm_logits"].shape == (3, VOCAB)  # the 3 masked positions, as the student's MLM head
    torch.testing.assert_close(taught["mlm_logits"], source.prediction_logits[picked])
    # Hugging Face's NSP class 0 is "B follows A"; the student's class 1 is (is_next = 1)
    torch.testing.assert_close(taught["nsp_logits"], source.seq_relationship_logits[:, [1, 0]])
    with torch.no_grad():
        torch.testing.assert_close(student.teachers["images"](image_batch())["logits"], vit(image_batch()["image"]))
    out = student(batch)  # Eq. 7 against them
    assert set(out["losses"]) == {"corpus/mlm", "corpus/nsp"} and all(v.isfinite() for v in out["losses"].values())
    assert student(image_batch())["losses"]["images/distillation"] > 0


def test_published_teachers_are_frozen_and_outside_the_student(published, tmp_path):
    from unimm.training.checkpoint import read_weights, save_checkpoint
    from unimm.training.trainer import build_optimizer

    student = build({"type": "vit_bert_tiny", "distillation": KD, "teachers": published[2]})
    teachers = {id(t): t for t in student.teachers.values()}.values()
    params = [p for t in teachers for p in t.model.parameters()]
    assert params and all(not p.requires_grad for p in params)
    student.train()
    assert all(not t.model.training for t in teachers)
    sum(student(corpus_batch())["losses"].values()).backward()
    assert all(p.grad is None for p in params)
    ids = {id(p) for p in params}
    assert not ids & {id(p) for p in student.parameters()}
    optimizer = build_optimizer({"type": "adamw", "lr": 1e-3}, student, [])
    assert not ids & {id(p) for group in optimizer.param_groups for p in group["params"]}

    class Stub:
        def state_dict(self):
            return {}

    save_checkpoint(tmp_path / "run", model=student, optimizer=optimizer, scheduler=Stub(), sampler=Stub(), hooks=[],
                    counters={"update": 1})
    saved = read_weights(tmp_path / "run" / "checkpoints" / "last")[1]
    assert {k.split(".")[0] for k in saved} == {"image_tokenizer", "text_tokenizer", "encoder", "heads"}
    assert not any("bert" in k or k.startswith("vit") for k in saved)
    student.to(torch.float64)  # the teachers follow the student (device and dtype)
    assert all(p.dtype == torch.float64 for p in params)
    image = {**image_batch(), "image": image_batch()["image"].double()}
    assert student(image)["logits"].dtype == student.teachers["images"](image)["logits"].dtype == torch.float64


def test_published_teacher_mistakes_are_clear_errors(published, tmp_path):
    _, _, teachers = published
    tiny_bert(tmp_path / "bert60", vocab=60)
    with pytest.raises(ConfigError, match=r"model\.teachers\.text\.model\.path: .*vocabulary has 60 entries, the "
                                          r"student's MLM head 50"):
        build({"type": "vit_bert_tiny", "distillation": KD, "teachers": {
            "text": {**teachers["text"], "model": {"type": "published_bert_teacher", "path": str(tmp_path / "bert60")}}}})
    tiny_bert(tmp_path / "encoder_only", heads=False)
    with pytest.raises(ConfigError, match=r"lacks .* weights of BertForPreTraining .*cls\.predictions"):
        build({"type": "vit_bert_tiny", "distillation": KD, "teachers": {"text": {
            **teachers["text"], "model": {"type": "published_bert_teacher", "path": str(tmp_path / "encoder_only")}}}})
    tiny_vit(tmp_path / "vit5.pth", classes=5)
    with pytest.raises(ConfigError, match=r"model\.teachers\.image\.model\.path: .*a head of 5 classes, the "
                                          r"student's head 3 classes"):
        build({"type": "vit_bert_tiny", "distillation": KD, "teachers": {"image": {
            **teachers["image"], "model": {**teachers["image"]["model"], "path": str(tmp_path / "vit5.pth")}}}})
    with pytest.raises(ConfigError, match=r"does not fit timm's vit_tiny_patch16_224"):
        build({"type": "vit_bert_tiny", "distillation": KD, "teachers": {"image": {
            **teachers["image"], "model": {**teachers["image"]["model"], "arch_args": {"img_size": 32}}}}})
    with pytest.raises(ConfigError, match=r"model\.teachers\.text\.checkpoint: .*reads its weights from its model "
                                          r"node's path .*remove checkpoint"):
        build({"type": "vit_bert_tiny", "distillation": KD,
               "teachers": {"text": {**teachers["text"], "checkpoint": "somewhere"}}})
    with pytest.raises(ConfigError, match=r"labels text_pretraining datasets .*images is classification"):
        build({"type": "vit_bert_tiny", "distillation": KD, "teachers": {"text": {**teachers["text"],
                                                                                  "datasets": ["images"]}}})
    with pytest.raises(ConfigError, match=r"model\.teachers\.text\.checkpoint: required"):
        build({"type": "vit_bert_tiny", "distillation": KD,
               "teachers": {"text": {"model": {"type": "vit_bert_tiny"}, "datasets": ["corpus"]}}})


def test_a_config_selects_them(published, tmp_path):
    from unimm import session

    _, _, teachers = published
    text = teachers["text"]["model"]
    overrides = [f"env.data_dir={tmp_path / 'data'}", f"model.teachers.text.model={{type: published_bert_teacher, "
                 f"path: {text['path']}}}", "~model.teachers.text.checkpoint"]
    cfg, _ = session.prepare(REPO / "projects" / "vit_bert" / "pretrain.yaml", overrides)
    assert cfg["model"]["teachers"]["text"] == {"model": text, "datasets": ["corpus"]}
    with pytest.raises(ConfigError, match=r"model\.teachers\.text\.model\.folder: unknown"):
        session.prepare(REPO / "projects" / "vit_bert" / "pretrain.yaml", [*overrides, "model.teachers.text.model.folder=x"])
