"""BERT or RoBERTa (Hugging Face transformers) as a text encoder: every token's final state out.

METER's text encoders (Sec. 3.1, Tables 3 and 5): RoBERTa-base (its default), BERT-base, and the
"Emb-only" ablation, a word-embedding lookup without any transformer layer. Weights come from a local
folder written by ``save_pretrained`` (config.json + weights) or start from random init.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import torch
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.models.encoded_sequence import EncodedSequence
from unimm.registry import ENCODERS

if TYPE_CHECKING:  # transformers is imported when an encoder is built: listing parts stays fast
    from transformers import PreTrainedModel

Kind = Literal["bert", "roberta"]
Layers = Literal["all", "embeddings", "word_embeddings"]
# What a random-init config of each kind takes from its released base model (bert-base-uncased,
# roberta-base): vocabulary, position rows, segment types, LayerNorm epsilon, padding id.
BASE_CONFIG = {
    "bert": dict(vocab_size=30522, max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
                 pad_token_id=0),
    "roberta": dict(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                    pad_token_id=1, bos_token_id=0, eos_token_id=2),
}


class HFTextEncoder(nn.Module):
    """Token ids -> hidden states of a BERT / RoBERTa (its pooler is not built; METER leaves it unused).

    Runs the embedding layer (words + positions + token types, LayerNorm) and the transformer layers
    with the padding mask, as METER's ``infer`` does (``text_transformer.embeddings`` then each
    ``encoder.layer``).

    Args:
        model: a transformers ``BertModel`` / ``RobertaModel`` built without pooler.
        kind: ``bert`` or ``roberta`` (RoBERTa numbers positions from ``padding_idx + 1``).
        layers: ``all``; ``embeddings`` (BERT's embedding layer, no transformer layer); or
            ``word_embeddings`` (the word lookup alone, METER Table 3's "Emb-only").
    """

    def __init__(self, model: PreTrainedModel, kind: str, layers: str = "all") -> None:
        super().__init__()
        self.kind = kind
        self.layers = layers
        self.config = model.config
        self.hidden_size = int(model.config.hidden_size)
        if layers == "word_embeddings":
            self.model = None
            self.word_embeddings = model.embeddings.word_embeddings
        else:
            if layers == "embeddings":
                model.encoder.layer = nn.ModuleList()  # no transformer layer: nothing unused is kept
            self.model = model

    def position_ids(self, input_ids: Tensor) -> Tensor:
        """``[B, T]`` position ids: ``0 .. T-1`` (BERT), or from ``padding_idx + 1`` over real tokens (RoBERTa)."""
        if self.kind == "roberta":
            from transformers.models.roberta.modeling_roberta import RobertaEmbeddings

            return RobertaEmbeddings.create_position_ids_from_input_ids(input_ids, self.config.pad_token_id)
        return torch.arange(input_ids.shape[1], device=input_ids.device)[None].expand_as(input_ids)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> EncodedSequence:
        """Encode a batch of token sequences.

        Args:
            input_ids: long ``[B, T]``.
            attention_mask: ``[B, T]``, 1 on real tokens; None = all real.
            token_type_ids: long ``[B, T]`` segment ids; None = all 0 (RoBERTa has one type only).

        Returns:
            ``EncodedSequence``: hidden ``[B, T, D]``, padding_mask ``[B, T]`` (True on padding), pos
            ``[B, T, D]`` (the position embeddings of the tokens; zeros with ``word_embeddings``).
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        padding = attention_mask == 0  # [B, T]
        if self.model is None:
            hidden = self.word_embeddings(input_ids)  # [B, T, D]
            return EncodedSequence(hidden, padding, hidden.new_zeros(()).expand_as(hidden))
        from transformers.masking_utils import create_bidirectional_mask

        if token_type_ids is None or self.config.type_vocab_size == 1:
            token_type_ids = torch.zeros_like(input_ids)
        positions = self.position_ids(input_ids)  # [B, T]
        x = self.model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids,
                                  position_ids=positions)  # [B, T, D]
        if len(self.model.encoder.layer):
            mask = create_bidirectional_mask(config=self.config, inputs_embeds=x, attention_mask=attention_mask.long())
            x = self.model.encoder(x, attention_mask=mask).last_hidden_state  # [B, T, D]
        return EncodedSequence(x, padding, self.model.embeddings.position_embeddings(positions))


def folder_kind(folder: Path) -> str:
    """``bert`` or ``roberta``, from ``model_type`` in the folder's config.json."""
    try:
        model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as err:
        raise ConfigError(f"{folder}/config.json cannot be read: {err}", key="pretrained_path") from None
    if model_type not in BASE_CONFIG:
        raise ConfigError(f"{folder} holds a {model_type!r} model; give a bert or roberta folder",
                          key="pretrained_path")
    return str(model_type)


@ENCODERS.register()
def hf_text_encoder(
    kind: Kind | None = None,
    pretrained_path: str | None = None,
    layers: Layers = "all",
    vocab_size: Annotated[int, Range(ge=1)] | None = None,
    hidden_size: Annotated[int, Range(ge=1)] = 768,
    num_layers: Annotated[int, Range(ge=0)] = 12,
    num_heads: Annotated[int, Range(ge=1)] = 12,
    intermediate_size: Annotated[int, Range(ge=1)] = 3072,
    max_position_embeddings: Annotated[int, Range(ge=1)] | None = None,
    dropout: Annotated[float, Range(ge=0, lt=1)] = 0.1,
    initializer_range: Annotated[float, Range(gt=0)] = 0.02,
) -> HFTextEncoder:
    """BERT or RoBERTa from a local Hugging Face folder, or at random init (METER's text encoders).

    Args:
        kind: ``bert`` or ``roberta``; None = read from the folder's config.json (``model_type``),
            required without a folder. A folder of the other kind is an error.
        pretrained_path: a local folder written by ``save_pretrained`` (never a hub name); its
            config decides every size below.
        layers: ``all`` (METER); ``embeddings``: the embedding layer only; ``word_embeddings``: the
            word lookup only, initialised from the folder when given (Table 3 / 5 "Emb-only").
        vocab_size: rows of the word embedding at random init (a model passes its tokenizer's; None
            = the base model's: 30522 BERT, 50265 RoBERTa); with a folder it must equal the folder's.
        hidden_size, num_layers, num_heads, intermediate_size: sizes at random init (base: 768 / 12 /
            12 / 3072).
        max_position_embeddings: position rows at random init (None: 512 BERT, 514 RoBERTa).
        dropout: hidden and attention dropout (at random init; a folder's config keeps its own).
        initializer_range: standard deviation of the random init (BERT: 0.02).
    """
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    classes = {"bert": (BertConfig, BertModel), "roberta": (RobertaConfig, RobertaModel)}
    if pretrained_path:
        folder = Path(pretrained_path).expanduser()
        if not (folder / "config.json").is_file():
            raise ConfigError(f"{folder} is not a local Hugging Face model folder (no config.json); give a folder "
                              "written by save_pretrained (hub names are not downloaded)", key="pretrained_path")
        found = folder_kind(folder)
        if kind is not None and kind != found:
            raise ConfigError(f"kind={kind} but {folder} holds a {found} model; set kind={found} or leave it out",
                              key="kind")
        kind = found
        model = classes[kind][1].from_pretrained(str(folder), local_files_only=True, add_pooling_layer=False)
        if vocab_size is not None and vocab_size != model.config.vocab_size:
            raise ConfigError(f"the tokenizer has {vocab_size} tokens but {folder} embeds {model.config.vocab_size}; "
                              "use the tokenizer saved with the model", key="vocab_size")
    else:
        if kind is None:
            raise ConfigError("set kind (bert or roberta) or pretrained_path (a folder whose config.json says it)",
                              key="kind")
        base = dict(BASE_CONFIG[kind])
        base["vocab_size"] = vocab_size or base["vocab_size"]
        if max_position_embeddings is not None:
            base["max_position_embeddings"] = max_position_embeddings
        config = classes[kind][0](
            **base, hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
            intermediate_size=intermediate_size, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
            initializer_range=initializer_range)
        model = classes[kind][1](config, add_pooling_layer=False)
    return HFTextEncoder(model, kind, layers)
