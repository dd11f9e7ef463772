"""Key maps by round trip: random BERT / timm-ViT weights saved in their own layout, loaded, compared."""
from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel

from unimm.config.errors import ConfigError
from unimm.models.encoders.key_maps import load_pretrained
from unimm.models.encoders.modality_tokenizers import image_tokenizer, text_tokenizer
from unimm.models.encoders.shared_transformer import shared_transformer

TINY = dict(hidden_size=32, num_layers=2, num_heads=2, mlp_size=64)


def randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # LayerNorms off identity too, so every tensor is told apart
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return module.eval()


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=40, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = randomize(BertModel(config), 1)
    folder = tmp_path_factory.mktemp("bert")
    model.save_pretrained(folder)
    return model, folder


def bert_parts(max_positions: int = 40):
    return {"image_tokenizer": None,
            "text_tokenizer": text_tokenizer(vocab_size=50, hidden_size=32, max_positions=max_positions, dropout=0.0),
            "encoder": shared_transformer(**TINY, dropout=0.0, attention_dropout=0.0)}


def test_bert_round_trip_puts_every_tensor_where_the_map_says(bert):
    model, folder = bert
    parts = bert_parts()
    report = load_pretrained(parts, folder, "bert")
    src = {k: v for k, v in model.state_dict().items()}
    text, enc = parts["text_tokenizer"].state_dict(), parts["encoder"].state_dict()
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        assert torch.equal(text[f"{name}.weight"], src[f"embeddings.{name}.weight"])
    for part in ("weight", "bias"):
        assert torch.equal(enc[f"blocks.0.norm1.{part}"], src[f"embeddings.LayerNorm.{part}"])  # LN_emb -> first pre-LN
        for layer in range(2):
            bert_l, ours = f"encoder.layer.{layer}.", f"blocks.{layer}."
            qkv = torch.cat([src[f"{bert_l}attention.self.{w}.{part}"] for w in ("query", "key", "value")])
            assert torch.equal(enc[f"{ours}attn.qkv.{part}"], qkv)
            assert torch.equal(enc[f"{ours}attn.proj.{part}"], src[f"{bert_l}attention.output.dense.{part}"])
            assert torch.equal(enc[f"{ours}norm2.{part}"], src[f"{bert_l}attention.output.LayerNorm.{part}"])
            assert torch.equal(enc[f"{ours}mlp.fc1.{part}"], src[f"{bert_l}intermediate.dense.{part}"])
            assert torch.equal(enc[f"{ours}mlp.fc2.{part}"], src[f"{bert_l}output.dense.{part}"])
        assert torch.equal(enc[f"blocks.1.norm1.{part}"], src[f"encoder.layer.0.output.LayerNorm.{part}"])
        assert torch.equal(enc[f"norm.{part}"], src[f"encoder.layer.1.output.LayerNorm.{part}"])
    assert len(report["loaded"]) == len(text) + len(enc)  # every weight of both parts came from BERT
    assert {k.split(".")[0] for k in report["ignored"]} == {"pooler"}


def test_bert_sub_layers_compute_what_bert_computes(bert):
    """Where the architectures agree: the embeddings (through the first pre-LN), each attention and MLP."""
    model, folder = bert
    parts = bert_parts()
    load_pretrained(parts, folder, "bert")
    text, enc = parts["text_tokenizer"].eval(), parts["encoder"].eval()
    ids = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(0))
    segments = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        embedded = model.embeddings(input_ids=ids, token_type_ids=segments)
        torch.testing.assert_close(enc.blocks[0].norm1(text(ids, segments)), embedded)
        for layer, block in zip(model.encoder.layer, enc.blocks):
            x = torch.randn(2, 7, 32, generator=torch.Generator().manual_seed(5))
            attention = layer.attention.self(x)[0]  # softmax(q k^T / sqrt(d)) v of BERT's heads
            torch.testing.assert_close(block.attn(x), layer.attention.output.dense(attention))
            torch.testing.assert_close(block.mlp(x), layer.output.dense(layer.intermediate(x)))


def test_a_longer_bert_position_table_is_cut_and_a_mismatch_refused(bert):
    model, folder = bert
    parts = bert_parts(max_positions=16)
    report = load_pretrained(parts, folder, "bert")
    assert report["resized"] == ["text_tokenizer.position_embeddings.weight"]
    assert torch.equal(parts["text_tokenizer"].position_embeddings.weight,
                       model.embeddings.position_embeddings.weight[:16])
    wrong_heads = {**bert_parts(), "encoder": shared_transformer(hidden_size=32, num_layers=2, num_heads=4, mlp_size=64)}
    with pytest.raises(ConfigError, match="BERT has 2 attention heads, the encoder 4"):
        load_pretrained(wrong_heads, folder, "bert")
    deeper = {**bert_parts(), "encoder": shared_transformer(hidden_size=32, num_layers=3, num_heads=2, mlp_size=64)}
    with pytest.raises(ConfigError, match="blocks.2.attn.qkv.weight: not in"):
        load_pretrained(deeper, folder, "bert")
    normed = {**bert_parts(), "text_tokenizer": text_tokenizer(vocab_size=50, hidden_size=32, max_positions=40,
                                                                embedding_norm=True)}
    with pytest.raises(ConfigError, match="embedding_norm=false"):
        load_pretrained(normed, folder, "bert")


@pytest.fixture(scope="module")
def timm_vit(tmp_path_factory):
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    model = randomize(VisionTransformer(img_size=32, patch_size=16, embed_dim=32, depth=2, num_heads=2,
                                        mlp_ratio=2.0, num_classes=5), 2)
    path = tmp_path_factory.mktemp("vit") / "vit.pth"
    torch.save(model.state_dict(), path)
    return model, path


def vit_parts(image_size: int = 32):
    return {"image_tokenizer": image_tokenizer(hidden_size=32, image_size=image_size, patch_size=16, dropout=0.0),
            "text_tokenizer": None, "encoder": shared_transformer(**TINY, dropout=0.0, attention_dropout=0.0)}


def test_timm_round_trip_and_the_same_features(timm_vit):
    model, path = timm_vit
    parts = vit_parts()
    report = load_pretrained(parts, path, "timm_vit")
    src = model.state_dict()
    for key, value in parts["image_tokenizer"].state_dict().items():
        assert torch.equal(value, src[key])  # cls_token, pos_embed, patch_embed.proj.*: timm's own names
    for key, value in parts["encoder"].state_dict().items():
        assert torch.equal(value, src[key])  # blocks.*, norm.*
    assert report["ignored"] == ["head.bias", "head.weight"]
    image = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # both pre-LN: timm's features (final norm included) are ours
        torch.testing.assert_close(parts["encoder"](parts["image_tokenizer"](image)), model.forward_features(image))


def test_timm_position_table_is_resized_to_the_model_grid(timm_vit):
    from unimm.modules.pos_embed import resize_pos_embed

    model, path = timm_vit
    parts = vit_parts(image_size=64)
    report = load_pretrained(parts, path, "timm_vit")
    assert report["resized"] == ["image_tokenizer.pos_embed"]
    torch.testing.assert_close(parts["image_tokenizer"].pos_embed, resize_pos_embed(model.pos_embed, (4, 4)))


def test_a_model_without_the_text_tokenizer_takes_berts_encoder_only(bert):
    """Sec. 4.2's cross-modal baseline: BERT fine-tuned on images starts the transformer only."""
    _, folder = bert
    parts = {**vit_parts(), "text_tokenizer": None}
    before = parts["image_tokenizer"].pos_embed.clone()
    report = load_pretrained(parts, folder, "bert")
    assert {k.split(".")[0] for k in report["loaded"]} == {"encoder"}
    assert len(report["not_in_model"]) == 3 and torch.equal(parts["image_tokenizer"].pos_embed, before)


def test_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_pretrained(vit_parts(), tmp_path / "nowhere", "timm_vit")
    tmp_path.joinpath("empty").mkdir()
    with pytest.raises(ConfigError, match="holds no model.safetensors"):
        load_pretrained(bert_parts(), tmp_path / "empty", "bert")
