"""``hf_text_encoder``: BERT / RoBERTa from a local folder (tiny random models saved with save_pretrained),
the kind read from config.json, the embedding-only variants, and RoBERTa-base's size."""
from __future__ import annotations

import pytest
import torch

from unimm.config.errors import ConfigError
from unimm.models.encoders.hf_text_encoder import hf_text_encoder

TINY = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, vocab_size=60)


def save_tiny(kind: str, folder) -> torch.nn.Module:
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    config_cls, model_cls = {"bert": (BertConfig, BertModel), "roberta": (RobertaConfig, RobertaModel)}[kind]
    extra = {"pad_token_id": 1, "max_position_embeddings": 20, "type_vocab_size": 1} if kind == "roberta" else {}
    torch.manual_seed(5)
    model = model_cls(config_cls(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64, **extra), add_pooling_layer=False).eval()
    model.save_pretrained(folder)
    return model


def batch(pad: int):
    ids = torch.tensor([[2, 11, 12, 13, 3], [2, 14, 3, pad, pad]])
    return ids, (ids != pad).long()


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_folder_round_trip_kind_from_config_and_forward(kind, tmp_path):
    reference = save_tiny(kind, tmp_path / kind)
    encoder = hf_text_encoder(pretrained_path=str(tmp_path / kind)).eval()  # kind read from config.json
    assert encoder.kind == kind and encoder.hidden_size == 32
    ours = encoder.model.state_dict()
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(ours[key], value, rtol=0, atol=0, msg=key)
    ids, mask = batch(pad=1 if kind == "roberta" else 0)
    with torch.no_grad():
        out = encoder(ids, mask)
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    torch.testing.assert_close(out.hidden[real], expected[real], atol=1e-5, rtol=1e-5)
    assert out.padding_mask.tolist() == (~real).tolist()


def test_a_folder_of_the_other_kind_is_refused(tmp_path):
    save_tiny("bert", tmp_path / "bert")
    with pytest.raises(ConfigError, match="holds a bert model"):
        hf_text_encoder(kind="roberta", pretrained_path=str(tmp_path / "bert"))
    with pytest.raises(ConfigError, match="set kind"):
        hf_text_encoder()
    with pytest.raises(ConfigError, match="tokenizer has 61 tokens"):
        hf_text_encoder(pretrained_path=str(tmp_path / "bert"), vocab_size=61)


def test_embedding_only_variants(tmp_path):
    reference = save_tiny("bert", tmp_path / "bert")
    words = hf_text_encoder(pretrained_path=str(tmp_path / "bert"), layers="word_embeddings")
    assert [name for name, _ in words.named_parameters()] == ["word_embeddings.weight"]  # Table 3's "Emb-only"
    ids, mask = batch(pad=0)
    torch.testing.assert_close(words(ids, mask).hidden, reference.embeddings.word_embeddings(ids))
    layer = hf_text_encoder(kind="roberta", layers="embeddings", **TINY).eval()
    assert not any(".layer." in name for name, _ in layer.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(layer(ids, mask).hidden, layer.model.embeddings(
            input_ids=ids, position_ids=layer.position_ids(ids)))


def test_roberta_positions_start_after_the_padding_index():
    encoder = hf_text_encoder(kind="roberta", **TINY)
    ids = torch.tensor([[0, 5, 2, 1, 1]])
    assert encoder.position_ids(ids).tolist() == [[2, 3, 4, 1, 1]]  # padding_idx + 1 onwards, padding at 1


def test_roberta_base_size():
    """REFERENCE_NOTES 1.1: RoBERTa-base without its pooler, 124,055,040 parameters."""
    with torch.device("meta"):
        encoder = hf_text_encoder(kind="roberta")
    assert sum(p.numel() for p in encoder.parameters()) == 124_055_040
