import pytest
import torch

from unimm.config.errors import ConfigError
from projects.unit.text_encoder import unit_text_encoder

TINY = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)


def test_task_token_is_stripped_and_changes_the_output(dataset_info, batches):
    encoder = unit_text_encoder(list(dataset_info), vocab_size=50, **TINY).eval()
    assert encoder.bert.config.vocab_size == 50
    b = batches["vqa2"]
    vqa = encoder(b["input_ids"], b["attention_mask"], b["token_type_ids"], "vqa2")
    sst = encoder(b["input_ids"], b["attention_mask"], b["token_type_ids"], "sst2")
    assert vqa.hidden.shape == (2, 7, 32) and vqa.pos.shape == (2, 7, 32)
    assert vqa.padding_mask[1].tolist() == [False] * 5 + [True] * 2
    assert not torch.allclose(vqa.hidden, sst.hidden)
    # without task tokens, the encoder is BERT itself
    plain = unit_text_encoder(None, vocab_size=50, **TINY).eval()
    reference = plain.bert(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
    out = plain(b["input_ids"], b["attention_mask"], None, "vqa2").hidden
    assert torch.allclose(out[0], reference[0], atol=1e-5) and torch.allclose(out[1, :5], reference[1, :5], atol=1e-5)


def test_keep_only_cls(dataset_info, batches):
    encoder = unit_text_encoder(list(dataset_info), keep_only_cls=True, **TINY)
    out = encoder(batches["sst2"]["input_ids"], None, None, "sst2")
    assert out.hidden.shape == (2, 1, 32) and out.padding_mask.shape == (2, 1)


def test_loads_a_local_hugging_face_folder(dataset_info, tmp_path):
    source = unit_text_encoder(list(dataset_info), **TINY)
    source.bert.save_pretrained(tmp_path / "bert")
    loaded = unit_text_encoder(list(dataset_info), pretrained_path=str(tmp_path / "bert"))
    for (name, a), (_, b) in zip(source.bert.state_dict().items(), loaded.bert.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(ConfigError, match="hub names are not downloaded"):
        unit_text_encoder(list(dataset_info), pretrained_path="bert-base-uncased")


def test_a_folder_of_another_size_than_asked_is_built_and_said(dataset_info, tmp_path, caplog):
    unit_text_encoder(list(dataset_info), **TINY).bert.save_pretrained(tmp_path / "bert")
    with caplog.at_level("WARNING", logger="unimm"):
        loaded = unit_text_encoder(list(dataset_info), pretrained_path=str(tmp_path / "bert"))  # asks for BERT-base
    assert loaded.bert.config.hidden_size == 32
    assert ("its config.json describes 2 layers, width 32, 2 heads, FFN 64; the model preset asks for 12 layers, "
            "width 768, 12 heads, FFN 3072") in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="unimm"):
        unit_text_encoder(list(dataset_info), pretrained_path=str(tmp_path / "bert"), **TINY)
    assert "config.json describes" not in caplog.text


def test_the_small_presets_take_a_bert_folder(tmp_path):
    from projects.unit.presets import unit_tiny

    unit_text_encoder(None, vocab_size=60, **TINY).bert.save_pretrained(tmp_path / "bert")
    info = {"sst2": {"task_type": "text_classification", "num_classes": 2, "vocab_size": 60}}
    model = unit_tiny(info, bert_path=str(tmp_path / "bert"))
    assert model.text_encoder.bert.config.vocab_size == 60


def test_initializer_range_sets_the_random_init(dataset_info):
    torch.manual_seed(0)
    wide = unit_text_encoder(list(dataset_info), initializer_range=0.2, **TINY)
    default = unit_text_encoder(list(dataset_info), **TINY)
    query = "encoder.layer.0.attention.self.query.weight"
    for encoder, std in ((wide, 0.2), (default, 0.02)):
        weight = dict(encoder.bert.named_parameters())[query]
        assert weight.std().item() == pytest.approx(std, rel=0.15)


def test_unit_small_starts_its_narrow_bert_wider_than_bert_base(dataset_info):
    from projects.unit.presets import unit_small, unit_tiny

    torch.manual_seed(0)
    for model, std in ((unit_small(dataset_info), 0.2), (unit_tiny(dataset_info), 0.02)):
        weight = model.text_encoder.bert.encoder.layer[0].intermediate.dense.weight
        assert weight.std().item() == pytest.approx(std, rel=0.15)
