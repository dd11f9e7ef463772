"""Text encoders from Hugging Face transformers: every token's final state out (METER Sec. 3.1, Tables 3 and 5).

METER's text encoders: RoBERTa-base (its default), BERT-base, ELECTRA-base (the discriminator),
DeBERTa-base (v1, ``microsoft/deberta-base``), ALBERT-xlarge (``albert-xlarge-v2``), CLIP's text tower,
and the "Emb-only" ablation, a word-embedding lookup without any transformer layer. Each is
transformers' own model class, read from a local folder written by ``save_pretrained`` (config.json +
weights) or built at random init; no pooler (METER feeds the fusion the token states).

Positions and padding, per kind (the ids come from the kind's own tokenizer, ``unimm.data.tokenizers``):

=============  ============================  ==========================================================
kind           positions                     padding id (``pad_token_id`` of the model's config)
=============  ============================  ==========================================================
``bert``       absolute, ``0 .. T-1``         0 in the released model; only the word row it zeroes
``roberta``    absolute, from ``pad + 1``     1 in the released model; **sets the positions**, so the
               over the real tokens           padding in the batch must carry it (checked)
``electra``    absolute, ``0 .. T-1``         0 (BERT's WordPiece vocabulary)
``deberta``    relative (none added to the    0 (DeBERTa's BPE vocabulary with BERT's special tokens)
               input); ``pos`` out is zeros
``albert``     absolute, ``0 .. T-1``, in the  0; ``pos`` out is zeros (the table is 128 wide, the tokens
               128-wide factorised embedding   2048)
``clip_text``  absolute, ``0 .. T-1`` (77     unused: causal attention, and the padding is masked
               rows)
=============  ============================  ==========================================================
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import torch
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.models.encoded_sequence import EncodedSequence
from unimm.registry import ENCODERS

if TYPE_CHECKING:  # transformers is imported when an encoder is built: listing parts stays fast
    from transformers import PreTrainedModel

Kind = Literal["bert", "roberta", "electra", "deberta", "albert", "clip_text"]
Layers = Literal["all", "embeddings", "word_embeddings"]


@dataclass(frozen=True)
class TextKind:
    """What the encoder needs to know about one kind of transformers model.

    Attributes:
        config_class, model_class: transformers' names.
        base: a random-init config's values, from the released model METER used.
        positions: ``absolute`` (``0 .. T-1``), ``roberta`` (from ``pad_token_id + 1``) or ``relative``.
        token_types: the model takes ``token_type_ids``.
        pooler_argument: the model class takes ``add_pooling_layer`` (False is passed).
        dropout_keys: the config's dropout names.
    """

    config_class: str
    model_class: str
    base: dict[str, Any]
    positions: str = "absolute"
    token_types: bool = True
    pooler_argument: bool = False
    dropout_keys: tuple[str, ...] = ("hidden_dropout_prob", "attention_probs_dropout_prob")


# The random-init configs are those of the released models METER used: bert-base-uncased, roberta-base,
# google/electra-base-discriminator, microsoft/deberta-base (v1), albert-xlarge-v2, and the text tower of
# openai/clip-vit-base-patch32 (Table 3's vision encoder is CLIP-B/32).
KINDS: dict[str, TextKind] = {
    "bert": TextKind("BertConfig", "BertModel", dict(
        vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0),
        pooler_argument=True),
    "roberta": TextKind("RobertaConfig", "RobertaModel", dict(
        vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
        eos_token_id=2), positions="roberta", pooler_argument=True),
    "electra": TextKind("ElectraConfig", "ElectraModel", dict(
        vocab_size=30522, embedding_size=768, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
        pad_token_id=0)),
    "deberta": TextKind("DebertaConfig", "DebertaModel", dict(
        vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        max_position_embeddings=512, type_vocab_size=0, layer_norm_eps=1e-7, pad_token_id=0,
        relative_attention=True, max_relative_positions=-1, pos_att_type=["c2p", "p2c"],
        position_biased_input=False), positions="relative"),
    "albert": TextKind("AlbertConfig", "AlbertModel", dict(
        vocab_size=30000, embedding_size=128, hidden_size=2048, num_hidden_layers=24, num_attention_heads=16,
        intermediate_size=8192, max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
        pad_token_id=0, bos_token_id=2, eos_token_id=3, hidden_act="gelu_new", num_hidden_groups=1,
        inner_group_num=1), pooler_argument=True),
    "clip_text": TextKind("CLIPTextConfig", "CLIPTextModel", dict(
        vocab_size=49408, hidden_size=512, num_hidden_layers=12, num_attention_heads=8, intermediate_size=2048,
        max_position_embeddings=77, layer_norm_eps=1e-5, hidden_act="quick_gelu", pad_token_id=1,
        bos_token_id=49406, eos_token_id=49407), token_types=False, dropout_keys=("dropout", "attention_dropout")),
}
# config.json's model_type -> kind. A whole CLIP folder (model_type "clip") gives its text tower.
MODEL_TYPES = {"bert": "bert", "roberta": "roberta", "electra": "electra", "deberta": "deberta", "albert": "albert",
               "clip": "clip_text", "clip_text_model": "clip_text"}
REFUSED_TYPES = {"deberta-v2": "DeBERTa v2 / v3 is another architecture; METER used microsoft/deberta-base (v1)"}


class HFTextEncoder(nn.Module):
    """Token ids -> hidden states of a transformers text model (no pooler; METER leaves it unused).

    Runs the whole model with the padding mask and the kind's position ids (as METER's ``infer``
    runs ``text_transformer.embeddings`` then each ``encoder.layer``).

    CLIP's text tower is causal: token ``t`` sees tokens ``0 .. t`` only, and its sentence summary is
    the end-of-text token's state. Token 0 is ``<|startoftext|>``, which sees nothing but itself, so
    its CLIP state is the same for every sentence. We hand over every token in order, unchanged
    (METER's code for this row is not public). The fusion's text pooler takes token 0 of the
    *fusion's* output, and the fusion's self-attention is bidirectional, so what the pooler sees
    there has attended to the whole sentence and the image; only its starting state carries no text.

    Args:
        model: a transformers model of ``kind`` (``KINDS``) built without pooler.
        kind: a ``KINDS`` name.
        layers: ``all``; ``embeddings`` (the embedding layer, no transformer layer; BERT / RoBERTa);
            or ``word_embeddings`` (the word lookup alone, METER Table 3's "Emb-only").
    """

    def __init__(self, model: PreTrainedModel, kind: str, layers: str = "all") -> None:
        super().__init__()
        if layers == "embeddings" and kind not in ("bert", "roberta"):
            raise ConfigError(f"layers=embeddings keeps BERT's / RoBERTa's embedding layer; {kind} has no such "
                              "layer to keep alone: use layers=all or word_embeddings", key="layers")
        self.kind = kind
        self.spec = KINDS[kind]
        self.layers = layers
        self.config = model.config
        words = model.get_input_embeddings()
        if layers == "word_embeddings":
            self.model = None
            self.word_embeddings = words
            self.hidden_size = int(words.embedding_dim)
            return
        if layers == "embeddings":
            model.encoder.layer = nn.ModuleList()  # no transformer layer: nothing unused is kept
        self.model = model
        self.hidden_size = int(model.config.hidden_size)

    @property
    def pad_token_id(self) -> int | None:
        """The padding id of the model's config (a folder's, or the random-init one)."""
        return self.config.pad_token_id

    def position_ids(self, input_ids: Tensor) -> Tensor:
        """``[B, T]`` position ids: ``0 .. T-1``, or RoBERTa's from ``pad_token_id + 1`` over real tokens."""
        if self.spec.positions == "roberta":
            real = (input_ids != self.pad_token_id).long()  # [B, T]
            return torch.cumsum(real, dim=1) * real + self.pad_token_id  # padding keeps pad_token_id
        return torch.arange(input_ids.shape[1], device=input_ids.device)[None].expand_as(input_ids)

    def position_embedding(self) -> nn.Embedding | None:
        """The absolute position table whose rows are added to the tokens at their width, or None."""
        if self.spec.positions == "relative":
            return None
        if self.kind == "clip_text":
            table = self.model.embeddings.position_embedding  # CLIP's names: token_embedding, position_embedding
        else:
            table = self.model.embeddings.position_embeddings
        return table if table.embedding_dim == self.hidden_size else None  # ALBERT's is factorised

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> EncodedSequence:
        """Encode a batch of token sequences.

        Args:
            input_ids: long ``[B, T]``, padded with the tokenizer's pad id.
            attention_mask: ``[B, T]``, 1 on real tokens; None = all real.
            token_type_ids: long ``[B, T]`` segment ids; None = all 0 (ignored by kinds with one type).

        Returns:
            ``EncodedSequence``: hidden ``[B, T, D]``, padding_mask ``[B, T]`` (True on padding), pos
            ``[B, T, D]`` (the tokens' absolute position embeddings; zeros for relative positions,
            ALBERT's factorised table and ``word_embeddings``).
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        padding = attention_mask == 0  # [B, T]
        if self.model is None:
            hidden = self.word_embeddings(input_ids)  # [B, T, D]
            return EncodedSequence(hidden, padding, hidden.new_zeros(()).expand_as(hidden))
        if self.spec.positions == "roberta" and bool((input_ids[padding] != self.pad_token_id).any()):
            found = sorted({int(i) for i in input_ids[padding].unique()})
            raise ValueError(f"the padding holds ids {found} but the RoBERTa encoder's pad_token_id is "
                             f"{self.pad_token_id}, from which RoBERTa numbers its positions; build it with the "
                             "tokenizer's pad id (hf_text_encoder pad_token_id=...) or use that tokenizer")
        positions = self.position_ids(input_ids)  # [B, T]
        inputs = dict(input_ids=input_ids, attention_mask=attention_mask.long(), position_ids=positions)
        if self.spec.token_types:
            use_types = token_type_ids is not None and self.config.type_vocab_size > 1
            inputs["token_type_ids"] = token_type_ids if use_types else torch.zeros_like(input_ids)
        hidden = self.model(**inputs).last_hidden_state  # [B, T, D]
        table = self.position_embedding()
        pos = table(positions) if table is not None else hidden.new_zeros(()).expand_as(hidden)  # [B, T, D]
        return EncodedSequence(hidden, padding, pos)


def folder_kind(folder: Path) -> str:
    """The ``KINDS`` name of a folder, from ``model_type`` in its config.json (``MODEL_TYPES``).

    ELECTRA's generator (``ElectraForMaskedLM``) is refused: Table 3 uses the discriminator.
    """
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{folder}/config.json cannot be read: {err}", key="pretrained_path") from None
    model_type = config.get("model_type")
    if model_type in REFUSED_TYPES:
        raise ConfigError(f"{folder} holds a {model_type!r} model: {REFUSED_TYPES[model_type]}", key="pretrained_path")
    if model_type not in MODEL_TYPES:
        raise ConfigError(f"{folder} holds a {model_type!r} model; give a folder of one of "
                          f"{', '.join(sorted(MODEL_TYPES))} (config.json model_type)", key="pretrained_path")
    if model_type == "electra" and "ElectraForMaskedLM" in (config.get("architectures") or []):
        raise ConfigError(f"{folder} holds ELECTRA's generator; METER's Table 3 uses the discriminator "
                          "(google/electra-base-discriminator)", key="pretrained_path")
    return MODEL_TYPES[model_type]


def load_folder(folder: Path, kind: str | None) -> tuple[str, PreTrainedModel]:
    """The kind and model of a local folder, every weight of the model read from it."""
    import transformers

    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder} is not a local Hugging Face model folder (no config.json); give a folder "
                          "written by save_pretrained (hub names are not downloaded)", key="pretrained_path")
    found = folder_kind(folder)
    if kind is not None and kind != found:
        raise ConfigError(f"kind={kind} but {folder} holds a {found} model; set kind={found} or leave it out",
                          key="kind")
    spec = KINDS[found]
    extra = {"add_pooling_layer": False} if spec.pooler_argument else {}
    model, info = getattr(transformers, spec.model_class).from_pretrained(
        str(folder), local_files_only=True, output_loading_info=True, **extra)
    if info["missing_keys"]:
        missing = sorted(info["missing_keys"])
        raise ConfigError(f"{folder} lacks {len(missing)} weights of the {found} model ({', '.join(missing[:6])}); "
                          "save the whole model with save_pretrained", key="pretrained_path")
    return found, model


def random_config(kind: str, vocab_size: int | None, sizes: dict[str, int | None], dropout: float,
                  initializer_range: float, pad_token_id: int | None) -> Any:
    """A transformers config of ``kind``: the released model's values, with the sizes given (None: keep)."""
    import transformers

    spec = KINDS[kind]
    values = dict(spec.base)
    values.update({key: value for key, value in sizes.items() if value is not None})
    if kind == "electra" and sizes["embedding_size"] is None:
        values["embedding_size"] = values["hidden_size"]  # ELECTRA-base embeds at its width
    if vocab_size is not None:
        values["vocab_size"] = vocab_size
    if pad_token_id is not None:
        values["pad_token_id"] = pad_token_id
    values.update({key: dropout for key in spec.dropout_keys})
    return getattr(transformers, spec.config_class)(**values, initializer_range=initializer_range)


@ENCODERS.register()
def hf_text_encoder(
    kind: Kind | None = None,
    pretrained_path: str | None = None,
    layers: Layers = "all",
    vocab_size: Annotated[int, Range(ge=1)] | None = None,
    hidden_size: Annotated[int, Range(ge=1)] | None = None,
    num_layers: Annotated[int, Range(ge=0)] | None = None,
    num_heads: Annotated[int, Range(ge=1)] | None = None,
    intermediate_size: Annotated[int, Range(ge=1)] | None = None,
    embedding_size: Annotated[int, Range(ge=1)] | None = None,
    max_position_embeddings: Annotated[int, Range(ge=1)] | None = None,
    pad_token_id: Annotated[int, Range(ge=0)] | None = None,
    dropout: Annotated[float, Range(ge=0, lt=1)] = 0.1,
    initializer_range: Annotated[float, Range(gt=0)] = 0.02,
) -> HFTextEncoder:
    """A transformers text encoder from a local Hugging Face folder, or at random init (METER's text encoders).

    Args:
        kind: ``bert``, ``roberta``, ``electra``, ``deberta`` (v1), ``albert`` or ``clip_text``; None =
            read from the folder's config.json (``model_type``; a whole CLIP folder gives its text
            tower), required without a folder. A folder of another kind is an error.
        pretrained_path: a local folder written by ``save_pretrained`` (never a hub name); its
            config decides every size below, and every weight must be in it.
        layers: ``all`` (METER); ``embeddings``: BERT's / RoBERTa's embedding layer only;
            ``word_embeddings``: the word lookup only, initialised from the folder when given (Table 3 /
            5 "Emb-only"; ALBERT's is 128 wide).
        vocab_size: rows of the word embedding at random init (a model passes its tokenizer's; None
            = the released model's); with a folder it must equal the folder's.
        hidden_size, num_layers, num_heads, intermediate_size: sizes at random init (None: the released
            model's: base 768 / 12 / 12 / 3072; ALBERT-xlarge 2048 / 24 / 16 / 8192; CLIP's text tower
            512 / 12 / 8 / 2048).
        embedding_size: ALBERT's factorised embedding width at random init (None: 128; ELECTRA: the
            hidden size, as ELECTRA-base).
        max_position_embeddings: position rows at random init (None: 512; RoBERTa 514; CLIP 77).
        pad_token_id: the tokenizer's pad id at random init (None: the released model's). RoBERTa
            numbers its positions from it, so it must be the id its tokenizer pads with (the shapes
            benchmark's WordPiece [PAD] is 0, RoBERTa's ``<pad>`` 1). With a folder: None or the folder's.
        dropout: hidden and attention dropout (at random init; a folder's config keeps its own).
        initializer_range: standard deviation of the random init (0.02).
    """
    if pretrained_path:
        folder = Path(pretrained_path).expanduser()
        kind, model = load_folder(folder, kind)
        if vocab_size is not None and vocab_size != model.config.vocab_size:
            raise ConfigError(f"the tokenizer has {vocab_size} tokens but {folder} embeds {model.config.vocab_size}; "
                              "use the tokenizer saved with the model", key="vocab_size")
        if pad_token_id is not None and pad_token_id != model.config.pad_token_id:
            raise ConfigError(f"pad_token_id={pad_token_id} but {folder}'s config says {model.config.pad_token_id}; "
                              "leave pad_token_id out with a folder", key="pad_token_id")
        return HFTextEncoder(model, kind, layers)
    if kind is None:
        raise ConfigError(f"set kind ({', '.join(KINDS)}) or pretrained_path (a folder whose config.json says it)",
                          key="kind")
    import transformers

    if embedding_size is not None and "embedding_size" not in KINDS[kind].base:
        raise ConfigError(f"embedding_size is ALBERT's / ELECTRA's factorised embedding; {kind} has none",
                          key="embedding_size")
    sizes = dict(hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
                 intermediate_size=intermediate_size, embedding_size=embedding_size,
                 max_position_embeddings=max_position_embeddings)
    config = random_config(kind, vocab_size, sizes, dropout, initializer_range, pad_token_id)
    model_class = getattr(transformers, KINDS[kind].model_class)
    model = model_class(config, add_pooling_layer=False) if KINDS[kind].pooler_argument else model_class(config)
    return HFTextEncoder(model, kind, layers)
