"""The ViT-BERT model: per-dataset tokenizer, shared encoder and heads; sizes at the paper's scale."""
from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from tests.projects.vit_bert.conftest import INFO, build, corpus_batch, image_batch
from unimm.config.errors import ConfigError

PAPER_INFO = {"images": {"task_type": "classification", "num_classes": 1000},
              "corpus": {"task_type": "text_pretraining", "vocab_size": 30_000}}


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_size_on_the_meta_device_has_the_papers_parameter_counts(caplog):
    from unimm.registry import MODELS

    with caplog.at_level(logging.INFO, logger="unimm"), torch.device("meta"):
        model = MODELS.build({"type": "vit_bert_paper"}, dataset_info=PAPER_INFO)
    assert count(model.encoder) == 85_056_000  # final LN included
    assert count(model.image_tokenizer) == 742_656  # at 224
    assert count(model.text_tokenizer) == 23_434_752  # vocabulary 30,000
    heads = {f"{d}/{o}": count(h) for d, by in model.heads.items() for o, h in by.items()}
    assert heads == {"images/classification": 1_359_592, "corpus/mlm": 23_660_592, "corpus/nsp": 592_130}
    assert count(model.encoder) + count(model.image_tokenizer) == 85_798_656  # timm's ViT-B/16 without head
    assert count(model.encoder) + count(model.text_tokenizer) == 108_490_752
    assert "shared encoder 85,056,000, image tokenizer 742,656, text tokenizer 23,434,752" in caplog.text
    with torch.device("meta"):
        at_384 = MODELS.build({"type": "vit_bert_paper", "image_size": 384}, dataset_info=PAPER_INFO)
    assert count(at_384.image_tokenizer) == 1_034_496


def test_each_dataset_runs_its_tokenizer_the_shared_encoder_and_its_heads():
    model = build({"type": "vit_bert_tiny"}, ("images", "corpus", "sst2")).eval()
    image = model(image_batch())
    assert image["logits"].shape == (3, 3) and set(image["losses"]) == {"images/cross_entropy"}
    torch.testing.assert_close(image["losses"]["images/cross_entropy"],
                               F.cross_entropy(image["logits"], image_batch()["label"]))
    text = model(corpus_batch())
    assert text["mlm_logits"].shape == (3, 50) and text["nsp_logits"].shape == (2, 2)  # MLM on the 3 masked positions
    assert set(text["losses"]) == {"corpus/mlm", "corpus/nsp"}
    labels = corpus_batch()["mlm_labels"]
    assert torch.equal(text["mlm_targets"], labels[labels >= 0])  # the rows of mlm_logits, for MLM accuracy
    torch.testing.assert_close(text["losses"]["corpus/mlm"],
                               F.cross_entropy(text["mlm_logits"], torch.tensor([7, 8, 9])))
    glue = model({**{k: v for k, v in corpus_batch().items() if k not in ("mlm_labels", "is_next")},
                  "dataset_name": "sst2", "label": torch.tensor([1, 0])})
    assert glue["logits"].shape == (2, 2) and set(glue["losses"]) == {"sst2/cross_entropy"}
    no_labels = model({k: v for k, v in corpus_batch().items() if k not in ("mlm_labels", "is_next")})
    assert no_labels["mlm_logits"].shape == (2, 6, 50) and no_labels["losses"] == {}


def test_heads_are_the_papers_two_layer_gelu_mlp_on_cls():
    """Eq. 5: z = W2 GeLU(W1 z_0^L + b1) + b2, hidden width D, on the [CLS] state."""
    model = build({"type": "vit_bert_tiny"}, ("images",)).eval()
    batch = image_batch()
    hidden = model.encoder(model.image_tokenizer(batch["image"]))[:, 0]  # [B, D]
    head = model.heads["images"]["classification"]
    assert head.dense.weight.shape == (32, 32)
    z = F.linear(F.gelu(F.linear(hidden, head.dense.weight, head.dense.bias)), head.out.weight, head.out.bias)
    torch.testing.assert_close(model(batch)["logits"], z)


def test_only_the_tokenizers_the_datasets_read_are_built():
    assert build({"type": "vit_bert_tiny"}, ("images",)).text_tokenizer is None
    model = build({"type": "vit_bert_tiny"}, ("corpus",))
    assert model.image_tokenizer is None and model.text_tokenizer.word_embeddings.num_embeddings == 50


def test_the_written_out_model_equals_the_preset():
    from projects.vit_bert.presets import TINY, part_nodes

    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    written = build({"type": "vit_bert", **part_nodes(TINY)})
    assert shapes(written) == shapes(build({"type": "vit_bert_tiny"}))


def test_pretrained_bert_through_the_builder(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(tmp_path)
    bert = BertModel.from_pretrained(tmp_path)
    model = build({"type": "vit_bert_tiny", "pretrained_path": str(tmp_path)}, ("images", "corpus"))
    assert torch.equal(model.text_tokenizer.word_embeddings.weight, bert.embeddings.word_embeddings.weight)
    assert torch.equal(model.encoder.norm.weight, bert.encoder.layer[1].output.LayerNorm.weight)


def test_mistakes_are_clear_errors():
    from unimm.registry import MODELS

    with pytest.raises(ConfigError, match="task_type 'detection'"):
        MODELS.build({"type": "vit_bert_tiny"}, dataset_info={"coco": {"task_type": "detection"}})
    with pytest.raises(ConfigError, match="different vocab_size"):
        MODELS.build({"type": "vit_bert_tiny"},
                     dataset_info={"corpus": INFO["corpus"], "sst2": {**INFO["sst2"], "vocab_size": 7}})
    model = build({"type": "vit_bert_tiny"}, ("images",))
    mask = torch.ones(3, 32, 32, dtype=torch.bool)
    mask[0, :, 20:] = False  # one picture padded: another size than the others
    with pytest.raises(ValueError, match="pictures of different sizes"):
        model({**image_batch(), "pixel_mask": mask})
