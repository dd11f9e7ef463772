"""UniT's text encoder (Sec. 3.2): BERT with a learned task token prefixed to the embedded
tokens and stripped from the output (Eq. 3), handing the decoder BERT's learned positions.

Registered as ``unit_text_encoder`` (formerly ``unit_text_encoder``, a name kept free for a plain
BERT / RoBERTa encoder that other models share)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.models.encoded_sequence import EncodedSequence
from unimm.modules.task_tokens import TaskTokens
from unimm.registry import ENCODERS

logger = logging.getLogger("unimm")

if TYPE_CHECKING:  # transformers is imported when a text encoder is built: listing parts stays fast
    from transformers import BertModel

BERT_BASE_VOCAB = 30522  # bert-base-uncased


class BertTextEncoder(nn.Module):
    """``h^t = BERT({w_1 .. w_S}, w_t^task)`` (Eq. 3).

    Tokens are embedded by BERT's embedding layer (words + positions + segments); the task
    token is prefixed to the embedded sequence (no position or segment of its own, as in MMF's
    UniT), BERT's layers run, and the token's output is stripped. The decoder's cross-attention
    keys get BERT's learned position embeddings of the tokens (MMF's UniT does the same).

    Args:
        bert: a transformers ``BertModel`` (pooler unused).
        task_tokens: per-dataset tokens, or None to run without a task embedding.
        keep_only_cls: hand only the [CLS] state to the decoder (Sec. 3.2: "works nearly
            equally well ... saves computation"; the default of the paper's Table 4).
    """

    def __init__(self, bert: BertModel, task_tokens: TaskTokens | None, keep_only_cls: bool = False) -> None:
        super().__init__()
        self.bert = bert
        self.task_tokens = task_tokens
        self.keep_only_cls = keep_only_cls

    @property
    def hidden_size(self) -> int:
        return int(self.bert.config.hidden_size)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None, token_type_ids: Tensor | None,
                dataset_name: str | None = None) -> EncodedSequence:
        """Encode a batch of token sequences.

        Args:
            input_ids: long ``[B, T]``.
            attention_mask: ``[B, T]``, 1 on real tokens; None = all real.
            token_type_ids: long ``[B, T]`` segment ids; None = all 0.
            dataset_name: selects the task token.

        Returns:
            ``EncodedSequence`` of length ``T`` (1 with ``keep_only_cls``): hidden ``[B, T, D]``,
            padding_mask ``[B, T]``, pos ``[B, T, D]``.
        """
        from transformers.masking_utils import create_bidirectional_mask

        batch, length = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        position_ids = torch.arange(length, device=input_ids.device)[None].expand(batch, -1)  # [B, T]
        x = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids,
                                 position_ids=position_ids)  # [B, T, D]
        padding = attention_mask == 0  # [B, T]
        if self.task_tokens is not None:
            x, padding_in, _ = self.task_tokens.prepend(x, padding, None, dataset_name)  # [B, 1+T, D]
        else:
            padding_in = padding
        mask = create_bidirectional_mask(config=self.bert.config, inputs_embeds=x,
                                         attention_mask=(~padding_in).long())
        hidden = self.bert.encoder(x, attention_mask=mask).last_hidden_state  # [B, (1+)T, D]
        if self.task_tokens is not None:
            hidden = TaskTokens.strip(hidden)  # [B, T, D]
        pos = self.bert.embeddings.position_embeddings(position_ids)  # [B, T, D]
        if self.keep_only_cls:
            return EncodedSequence(hidden[:, :1], padding[:, :1], pos[:, :1])
        return EncodedSequence(hidden, padding, pos)


@ENCODERS.register()
def unit_text_encoder(
    task_names: Sequence[str] | None = None,
    vocab_size: int | None = None,
    hidden_size: int = 768,
    num_layers: int = 12,
    num_heads: int = 12,
    intermediate_size: int = 3072,
    max_position_embeddings: int = 512,
    type_vocab_size: int = 2,
    dropout: float = 0.1,
    initializer_range: float = 0.02,
    pretrained_path: str | None = None,
    keep_only_cls: bool = False,
) -> BertTextEncoder:
    """UniT's text encoder: BERT (random init, or a local Hugging Face folder) with task tokens (Eq. 3).

    Args:
        task_names: one learned token ``w_t^task`` per name, prefixed to the embedded tokens
            and stripped from the output; None = no task tokens. The UniT model passes its
            dataset names (or None when ``use_task_embedding`` is off).
        vocab_size: token embeddings; the UniT model passes its datasets' ``vocab_size``; None
            = 30522 (bert-base-uncased).
        hidden_size, num_layers, num_heads, intermediate_size: BERT sizes (paper: BERT-base,
            768 / 12 / 12 / 3072). Ignored with ``pretrained_path`` (its config.json decides).
        max_position_embeddings, type_vocab_size: BERT's position and segment tables.
        dropout: hidden and attention dropout.
        initializer_range: standard deviation of the random init (BERT: 0.02, chosen for width
            768). Narrow encoders trained from scratch want more: at width 64 the attention
            logits start about 12x smaller than at 768 and attention stays uniform for
            thousands of updates (see ``unit_small``).
        pretrained_path: a local folder written by ``save_pretrained`` (config.json + weights);
            never a hub name.
        keep_only_cls: give the decoder only the [CLS] state (Sec. 3.2).
    """
    from transformers import BertConfig, BertModel

    if pretrained_path:
        folder = Path(pretrained_path).expanduser()
        if not (folder / "config.json").is_file():
            raise ConfigError(f"{folder} is not a local Hugging Face model folder (no config.json); give a "
                              "folder written by save_pretrained (hub names are not downloaded)",
                              key="pretrained_path")
        bert = BertModel.from_pretrained(str(folder), local_files_only=True, add_pooling_layer=False)
        warn_on_other_size(folder, bert.config, hidden_size, num_layers, num_heads, intermediate_size)
    else:
        config = BertConfig(
            vocab_size=vocab_size or BERT_BASE_VOCAB,
            hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
            intermediate_size=intermediate_size, max_position_embeddings=max_position_embeddings,
            type_vocab_size=type_vocab_size, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
            initializer_range=initializer_range)
        bert = BertModel(config, add_pooling_layer=False)
    tokens = None if task_names is None else TaskTokens(list(task_names), int(bert.config.hidden_size))
    return BertTextEncoder(bert, tokens, keep_only_cls=keep_only_cls)


def warn_on_other_size(folder: Path, loaded: Any, hidden_size: int, num_layers: int, num_heads: int,
                       intermediate_size: int) -> None:
    """Say when a pretrained folder's BERT differs from the size the model preset asks for (the paper
    config asks for bert-base-uncased: a 6-layer MiniLM given as ``bert_path`` trains, but it is not the
    paper's model); the folder's own size is what is built."""
    asked = (num_layers, hidden_size, num_heads, intermediate_size)
    given = (loaded.num_hidden_layers, loaded.hidden_size, loaded.num_attention_heads, loaded.intermediate_size)
    if asked != given:
        describe = "{} layers, width {}, {} heads, FFN {}".format
        logger.warning("text encoder from %s: its config.json describes %s; the model preset asks for %s "
                       "(the size its paper uses); the folder's size is built", folder, describe(*given),
                       describe(*asked))


def datasets_vocab_size(dataset_info: dict[str, dict[str, Any]] | None) -> int | None:
    """The ``vocab_size`` the datasets' tokenizers report (all must agree), or None."""
    sizes = {name: int(info["vocab_size"]) for name, info in (dataset_info or {}).items() if "vocab_size" in info}
    if len(set(sizes.values())) > 1:
        raise ConfigError(f"datasets report different vocab_size values {sizes}; one text encoder needs "
                          "one tokenizer; use the same tokenizer or set the text encoder's vocab_size")
    return next(iter(sizes.values()), None)
