"""METER's encoder-decoder variant (Sec. 3.1 "Encoder-Only vs. Encoder-Decoder", Fig. 3; Sec. 4.3; Table 7).

What the paper says: the encoder is the co-attention fusion with 3 layers (per stream), the decoder has 3
layers, "each decoding layer has two separate cross-attention blocks that attend to the vision and text
representations"; pre-training is a T5-style language-modeling objective ("mask 15% of input text tokens
and replace contiguous text span with sentinel tokens, and the decoder is trained to reconstruct the
masked tokens", after VL-T5) and image-text matching with "a special class token" fed to the decoder; for
classification "we feed the text inputs into its encoder and feed a classification token into the decoder".
Where it is silent we read VL-T5 / T5, which it cites, and keep METER's own conventions:

* The decoder: ``dual_cross_attention_decoder`` (``unimm/models/decoders``), post-LN BERT-style layers
  (causal self-attention, vision cross-attention, text cross-attention, FFN) with learned positions.
  In the model it is ``cross_modal_decoder``: a new top part, so METER's name rule trains it at the top
  learning rate, as the fusion.
* Added tokens (``unimm.modules.span_corruption.ExtraTokens``): 100 sentinels (T5's ``extra_ids``), an
  end token, the decoder's start token and its class token get ids past the tokenizer's vocabulary and
  rows appended to the text encoder's word-embedding table (``append_word_embeddings``; a pretrained
  RoBERTa keeps its rows, the new ones start N(0, 0.02) as METER's other new weights). The table is
  shared: the encoder reads the sentinels in the corrupted caption through it, the decoder embeds its
  input ids with it (T5 shares one table between encoder and decoder), so the decoder is as wide as the
  text encoder. The appended rows sit in the text encoder, so they train at the bottom's rate, as METER's
  new ``token_type_embeddings`` do (REFERENCE_NOTES 1.5 item 2). T5 ends its targets with ``</s>``; ours
  is an added end token, since BERT's and RoBERTa's end tokens differ and the model is not told their ids.
* Span LM: which tokens are corrupted is the dataset's MLM choice (``image_text_pretraining``, 15% of
  the caption's non-special tokens, Bernoulli as METER's MLM, at least one, fixed per sample in
  evaluation); ``mlm_input_ids`` (BERT's 80/10/10 corruption) is not read. Each span becomes one
  sentinel (``corrupt_spans``) and the decoder is teacher-forced on ``<start> + target[:-1]`` towards
  ``sentinel_0 span_0 sentinel_1 span_1 ... end`` (cross-entropy averaged over the target tokens of the
  batch, padding ignored), through ``heads.mlm_score``: BERT's LM head over the vocabulary, the sentinels
  and the end, untied as METER's MLM head. Loss key ``<dataset>/span_mlm``; outputs ``span_logits``
  ``[B, L, V + 101]`` and ``span_labels`` ``[B, L]``.
* ITM, VQA, SNLI-VE, NLVR2, retrieval: the decoder reads the class token alone; its output ``[B, D]``
  takes the place of encoder-only METER's ``cls_feats`` (two poolers, ``[B, 2D]``, not built here): the
  ITM head, ``Linear(D, 2)``, on it (a binary head, where VL-T5 generates the words "true" / "false");
  the classifiers with their hidden width equal to their input, as METER's (D; 2D for NLVR2's pair);
  zero-shot retrieval scores with the ITM "match" logit, as encoder-only METER.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from unimm.config.errors import ConfigError
from unimm.models.encoders.hf_text_encoder import HFTextEncoder

def encoder_decoder_layers(fusion_layers: int) -> int:
    """Layers per stream of the encoder, and of the decoder, for a preset with ``fusion_layers`` per stream
    encoder-only: half, rounded up (paper: 6 -> "3 for both the encoder and decoder")."""
    return math.ceil(fusion_layers / 2)


def word_embeddings(text_encoder: nn.Module) -> nn.Embedding:
    """The word-embedding table of an ``hf_text_encoder`` (the HF model's input embeddings, or the lookup
    of ``layers: word_embeddings``)."""
    if not isinstance(text_encoder, HFTextEncoder):
        raise ConfigError(f"the encoder-decoder model shares the text encoder's word embeddings with its decoder, "
                          f"and {type(text_encoder).__name__} does not expose them; use hf_text_encoder",
                          key="text_encoder")
    if text_encoder.model is None:
        return text_encoder.word_embeddings
    return text_encoder.model.get_input_embeddings()


def append_word_embeddings(text_encoder: nn.Module, count: int) -> nn.Embedding:
    """Give the text encoder's word-embedding table ``count`` more rows, N(0, 0.02), after its own (kept as
    loaded, e.g. RoBERTa's); returns the new table, which the encoder now uses."""
    old = word_embeddings(text_encoder)
    rows, width = old.weight.shape
    table = nn.Embedding(rows + count, width, padding_idx=old.padding_idx, device=old.weight.device,
                         dtype=old.weight.dtype)
    with torch.no_grad():
        nn.init.normal_(table.weight[rows:], mean=0.0, std=0.02)
        table.weight[:rows] = old.weight
    if text_encoder.model is None:
        text_encoder.word_embeddings = table
    else:
        text_encoder.model.set_input_embeddings(table)
    text_encoder.config.vocab_size = rows + count  # as transformers' resize_token_embeddings records it
    return table


def padding_id(text_encoder: nn.Module) -> int:
    """The id a corrupted caption is padded with: the text encoder's own (RoBERTa numbers its positions
    by it)."""
    word_embeddings(text_encoder)  # an hf_text_encoder, or a clear error
    return int(text_encoder.config.pad_token_id)
