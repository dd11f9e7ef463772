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


def forward_like_reference(encoder, reference, pad: int):
    """The encoder's output on a padded batch, checked against the model's own last_hidden_state on the
    real tokens and its padding mask."""
    ids, mask = batch(pad)
    with torch.no_grad():
        out = encoder(ids, mask)
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    torch.testing.assert_close(out.hidden[real], expected[real], atol=1e-5, rtol=1e-5)
    assert out.padding_mask.tolist() == (~real).tolist()
    return out


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_folder_round_trip_kind_from_config_and_forward(kind, tmp_path):
    reference = save_tiny(kind, tmp_path / kind)
    encoder = hf_text_encoder(pretrained_path=str(tmp_path / kind)).eval()  # kind read from config.json
    assert encoder.kind == kind and encoder.hidden_size == 32
    assert_same_tensors(encoder.model.state_dict(), reference.state_dict())
    forward_like_reference(encoder, reference, pad=1 if kind == "roberta" else 0)


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
    layer = hf_text_encoder(kind="roberta", layers="embeddings", pad_token_id=0, **TINY).eval()  # padded with 0
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


# Table 3's other text encoders, each saved by transformers itself at tiny size (hidden 32, 2 layers, 2 heads).
def tiny_config(kind: str):
    from transformers import AlbertConfig, CLIPTextConfig, DebertaConfig, ElectraConfig

    sizes = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=20)
    return {
        "electra": lambda: ElectraConfig(**sizes, embedding_size=32),
        # microsoft/deberta-base's attention: relative (c2p and p2c), no absolute positions at the input
        "deberta": lambda: DebertaConfig(**sizes, relative_attention=True, pos_att_type=["c2p", "p2c"],
                                         position_biased_input=False, type_vocab_size=0),
        "albert": lambda: AlbertConfig(**sizes, embedding_size=16, hidden_act="gelu_new"),  # factorised: 16 -> 32
        "clip_text": lambda: CLIPTextConfig(**sizes, eos_token_id=3, bos_token_id=2, pad_token_id=0),
    }[kind]()


def save_kind(kind: str, folder) -> torch.nn.Module:
    from transformers import AlbertModel, CLIPTextModel, DebertaModel, ElectraModel

    model_cls = {"electra": ElectraModel, "deberta": DebertaModel, "albert": AlbertModel,
                 "clip_text": CLIPTextModel}[kind]
    torch.manual_seed(7)
    config = tiny_config(kind)
    model = model_cls(config, add_pooling_layer=False) if kind == "albert" else model_cls(config)
    with torch.no_grad():  # non-trivial norms and biases, so that a weight left at init shows
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    model.eval().save_pretrained(folder)
    return model


def assert_same_tensors(ours: dict, reference: dict) -> None:
    assert set(ours) == set(reference)
    for key, value in reference.items():
        torch.testing.assert_close(ours[key], value, rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("kind", ["electra", "deberta", "albert", "clip_text"])
def test_table3_kinds_round_trip_from_their_folders(kind, tmp_path):
    """Every tensor saved by transformers comes back, the kind is read from config.json, and the encoder
    computes the model's own last_hidden_state on the real tokens."""
    reference = save_kind(kind, tmp_path / kind)
    encoder = hf_text_encoder(pretrained_path=str(tmp_path / kind)).eval()
    assert encoder.kind == kind and encoder.hidden_size == 32
    assert_same_tensors(encoder.model.state_dict(), reference.state_dict())
    out = forward_like_reference(encoder, reference, pad=0)
    if kind in ("deberta", "albert"):  # relative positions; ALBERT's table is 16 wide, not 32
        assert not out.pos.any()
    else:
        table = (reference.embeddings.position_embedding if kind == "clip_text"
                 else reference.embeddings.position_embeddings)
        torch.testing.assert_close(out.pos[0], table.weight[:5])  # positions 0 .. T-1


def test_clip_text_tower_from_a_whole_clip_folder_and_causality(tmp_path):
    """A folder of the whole CLIP (model_type clip) gives its text tower; the vision tower is not built.
    CLIP's text attention is causal: a token's state does not depend on the tokens after it."""
    from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig

    text = tiny_config("clip_text").to_dict()
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=16).to_dict()
    torch.manual_seed(3)
    reference = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval()
    reference.save_pretrained(tmp_path / "clip")
    encoder = hf_text_encoder(pretrained_path=str(tmp_path / "clip")).eval()
    assert encoder.kind == "clip_text" and not any("vision" in k for k in encoder.state_dict())
    assert_same_tensors(encoder.model.state_dict(), reference.text_model.state_dict())
    ids = torch.tensor([[2, 11, 12, 13, 3], [2, 11, 12, 40, 41]])
    with torch.no_grad():
        out = encoder(ids).hidden
    torch.testing.assert_close(out[0, :3], out[1, :3])  # the same first three tokens, whatever follows
    torch.testing.assert_close(out[0, 0], out[1, 0])  # token 0 (start of text) sees itself only


def test_padding_id_comes_from_the_models_config(tmp_path):
    """RoBERTa numbers positions from its pad_token_id + 1: the folder's config, or the argument at random
    init (the benchmark's WordPiece pads with 0); padding that carries another id is refused."""
    from transformers import RobertaConfig, RobertaModel

    RobertaModel(RobertaConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=20, pad_token_id=3),
                 add_pooling_layer=False).save_pretrained(tmp_path / "roberta")
    folder = hf_text_encoder(pretrained_path=str(tmp_path / "roberta"))
    ids = torch.tensor([[0, 5, 2, 3, 3]])
    assert folder.pad_token_id == 3 and folder.position_ids(ids).tolist() == [[4, 5, 6, 3, 3]]
    with pytest.raises(ConfigError, match="leave pad_token_id out"):
        hf_text_encoder(pretrained_path=str(tmp_path / "roberta"), pad_token_id=0)
    shapes = hf_text_encoder(kind="roberta", pad_token_id=0, **TINY)
    ids = torch.tensor([[2, 1, 9, 3, 0, 0]])  # id 1 is a real token here ([UNK] in the benchmark vocabulary)
    assert shapes.position_ids(ids).tolist() == [[1, 2, 3, 4, 0, 0]]
    assert shapes.model.embeddings.word_embeddings.padding_idx == 0
    with pytest.raises(ValueError, match=r"padding holds ids \[0\] but the RoBERTa encoder's pad_token_id is 1"):
        hf_text_encoder(kind="roberta", **TINY)(ids, (ids != 0).long())
    for kind, pad in (("bert", 0), ("electra", 0), ("deberta", 0), ("albert", 0)):
        assert hf_text_encoder(kind=kind, **TINY).pad_token_id == pad  # the released models' ids


def test_table3_kinds_refusals(tmp_path):
    from transformers import DebertaV2Config, DebertaV2Model, ElectraConfig, ElectraForMaskedLM

    tiny = dict(vocab_size=60, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    DebertaV2Model(DebertaV2Config(**tiny)).save_pretrained(tmp_path / "v3")
    with pytest.raises(ConfigError, match="DeBERTa v2 / v3 is another architecture"):
        hf_text_encoder(pretrained_path=str(tmp_path / "v3"))
    ElectraForMaskedLM(ElectraConfig(**tiny, embedding_size=32)).save_pretrained(tmp_path / "generator")
    with pytest.raises(ConfigError, match="ELECTRA's generator"):
        hf_text_encoder(pretrained_path=str(tmp_path / "generator"))
    with pytest.raises(ConfigError, match="layers=embeddings keeps BERT"):
        hf_text_encoder(kind="albert", layers="embeddings", **TINY)
    with pytest.raises(ConfigError, match="embedding_size is ALBERT"):
        hf_text_encoder(kind="bert", embedding_size=16, **TINY)
    lookup = hf_text_encoder(kind="albert", layers="word_embeddings", embedding_size=16, **TINY)
    assert lookup.hidden_size == 16  # ALBERT's word lookup is its factorised width


# Paper sizes of Table 3's encoders without pooler, from their released configs (see KINDS), against the count
# each architecture gives by hand.
ELECTRA_BASE = 108_891_648  # = BERT-base-uncased without pooler (the same architecture and vocabulary)
ALBERT_XLARGE = (30000 * 128 + 512 * 128 + 2 * 128 + 2 * 128  # factorised embeddings and their LayerNorm
                 + 128 * 2048 + 2048  # embedding_hidden_mapping_in
                 + 4 * (2048 * 2048 + 2048) + 2 * 2048  # the one shared layer: attention and its LayerNorm
                 + 2048 * 8192 + 8192 + 8192 * 2048 + 2048 + 2 * 2048)  # its FFN and LayerNorm
CLIP_TEXT_B32 = (49408 * 512 + 77 * 512  # token and position embeddings
                 + 12 * (4 * (512 * 512 + 512) + 2 * 2 * 512 + 512 * 2048 + 2048 + 2048 * 512 + 512)
                 + 2 * 512)  # final_layer_norm
DEBERTA_BASE = (50265 * 768 + 2 * 768  # words and LayerNorm (no absolute positions)
                + 12 * (768 * 2304 + 2 * 768  # in_proj without bias, q_bias and v_bias
                        + 768 * 768 + (768 * 768 + 768)  # pos_proj (no bias), pos_q_proj
                        + (768 * 768 + 768) + 2 * 768 + (768 * 3072 + 3072) + (3072 * 768 + 768) + 2 * 768)
                + 2 * 512 * 768)  # rel_embeddings: max_relative_positions = 512 each way


@pytest.mark.parametrize(("kind", "expected"), [("electra", ELECTRA_BASE), ("albert", ALBERT_XLARGE),
                                                ("clip_text", CLIP_TEXT_B32), ("deberta", DEBERTA_BASE)])
def test_table3_paper_sizes_on_the_meta_device(kind, expected):
    with torch.device("meta"):
        encoder = hf_text_encoder(kind=kind)
    assert sum(p.numel() for p in encoder.parameters()) == expected
    assert (ALBERT_XLARGE, CLIP_TEXT_B32, DEBERTA_BASE) == (54_528_512, 63_165_952, 138_601_728)
