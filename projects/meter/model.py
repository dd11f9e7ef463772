"""METER: Multimodal End-to-end TransformER (Dou et al.), encoder-only (Sec. 3.1, 3.3; Fig. 2) or
encoder-decoder (Sec. 4.3, Fig. 3; ``encoder_decoder.py``).

A vision encoder and a text encoder, linear cross-modal projections, token-type (modality) embeddings,
a fusion module, one pooler per stream, and heads on the text states (MLM) or on ``cls_feats``, the two
pooled vectors concatenated (ITM, VQA). With a decoder, the decoder's output on a class token replaces
the poolers' ``cls_feats`` and span language modeling through the decoder replaces MLM. Where the paper
is silent the reference code is followed (REFERENCE_NOTES 1.1-1.2): the names of the parts
(``cross_modal_*``, ``token_type_embeddings``, the heads ``mlm_score`` / ``itm_score`` /
``vqa_classifier``) are METER's, so that its name-substring rule for learning rates and weight decay
applies as written (``includes/optimization.yaml``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.interfaces import Fusion, ImageTokenEncoder
from unimm.modules.bert_layer import init_bert_weights
from unimm.modules.span_corruption import IGNORE_INDEX, ExtraTokens, corrupt_spans, shift_right
from unimm.modules.token_masking import choose_hidden
from unimm.registry import DECODERS, ENCODERS, FUSIONS, HEADS, MODELS, Part

from .encoder_decoder import append_word_embeddings, padding_id, word_embeddings

logger = logging.getLogger("unimm")

PRETRAINING = "image_text_pretraining"  # unimm.data.image_text_pretraining's task type
TASK_OF_TYPE = {PRETRAINING: "pretraining", "vqa": "vqa", "classification": "classification",
                "retrieval_pairs": "retrieval"}
TEXT_TYPE, IMAGE_TYPE, SECOND_IMAGE_TYPE = 0, 1, 2  # token types (METER: text 0, image 1; NLVR2's 2nd image 2)
VISION = Part(ENCODERS, deferred=True)
TEXT = Part(ENCODERS, supplied=("vocab_size",), deferred=True)
FUSION = Part(FUSIONS, supplied=("hidden_size",), deferred=True)
MIM = Part(HEADS, supplied=("input_size", "vision_size"), deferred=True)
DECODER = Part(DECODERS, supplied=("hidden_size",), deferred=True)
MIM_PROBABILITY = 0.15  # "we randomly mask 15% of the patches" (Sec. 3.2)
SENTINELS = 100  # the encoder-decoder's sentinel tokens: T5's (and VL-T5's) extra_ids


@dataclass
class Features:
    """The fused states of one forward pass.

    Attributes:
        text: ``[B, T, D]`` text stream after fusion.
        image: ``[B, N, D]`` image stream after fusion.
        cls_feats: ``[B, 2D]``, the text and image poolers' outputs concatenated; with a decoder ``[B, D]``,
            the decoder's state of its class token.
        text_padding: bool ``[B, T]``, True on padding (None: none); image_padding likewise ``[B, N]``.
    """

    text: Tensor
    image: Tensor
    cls_feats: Tensor
    text_padding: Tensor | None = None
    image_padding: Tensor | None = None


class Pooler(nn.Module):
    """BERT's pooler: ``tanh(W h_0 + b)`` on the first token (METER's ``heads.Pooler``)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, first: Tensor) -> Tensor:
        """``[B, D]`` -> ``[B, D]``."""
        return torch.tanh(self.dense(first))


class METER(nn.Module):
    """Encoders -> projections + token types -> fusion -> poolers -> heads.

    Args:
        tasks: dataset name -> ``pretraining`` (MLM and / or ITM, as its batches provide), ``vqa``,
            ``classification`` (an image and a text: SNLI-VE), ``pair_classification`` (two images and a
            text: NLVR2) or ``retrieval`` (image-text pairs scored for retrieval evaluation).
        vision_encoder: image ``[B, 3, H, W]`` -> tokens ``[B, N, D_v]`` (``ImageTokenEncoder``).
        text_encoder: ids ``[B, T]`` -> states ``[B, T, D_t]`` (``hf_text_encoder``).
        fusion: a ``Fusion`` of width ``D`` (co-attention or merged attention).
        heads: ``mlm_score`` (on the text stream), ``itm_score`` and ``vqa_classifier`` (on ``cls_feats``),
            ``<dataset>_classifier`` (on ``cls_feats``, or both passes' for a pair), those the tasks use.
        rank_output: add METER's retrieval head, ``Linear(2D, 1)`` on ``cls_feats``, which starts as the ITM
            head's "match" row; the ITM head is then frozen, as METER's retrieval fine-tuning does.
        mim_probability: with a ``mim_score`` head (Table 10's masked image modeling), the share of patches
            masked in its pass; the model masks them itself, with the head's ``mask_token`` embedding.
        decoder: the encoder-decoder variant's decoder (``dual_cross_attention_decoder`` of width ``D``, as
            wide as the text encoder, whose word embeddings it reads); None: encoder-only. With it the
            poolers are not built, ``cls_feats`` is the decoder's state of the class token (``[B, D]``) and
            pre-training's text objective is span language modeling (``encoder_decoder.py``).
        extra_tokens: with a decoder, the ids of its sentinels, end, start and class tokens; their rows
            are appended to the text encoder's word-embedding table here.

    With a ``pair_classification`` task the token-type table has a third row, the second image's type,
    which starts as a copy of the image row (METER's NLVR2 set-up; ``adapt_init_weights`` extends a
    two-row table of a pre-training checkpoint the same way).
    """

    def __init__(self, tasks: Mapping[str, str], vision_encoder: ImageTokenEncoder, text_encoder: nn.Module,
                 fusion: Fusion, heads: Mapping[str, nn.Module], rank_output: bool = False,
                 mim_probability: float = MIM_PROBABILITY, decoder: nn.Module | None = None,
                 extra_tokens: ExtraTokens | None = None) -> None:
        super().__init__()
        width = fusion.hidden_size
        if (decoder is None) != (extra_tokens is None):
            raise ValueError("give the decoder and its extra_tokens together (encoder-decoder) or neither")
        self.tasks = dict(tasks)
        self.vision_encoder = vision_encoder
        self.text_encoder = text_encoder
        self.cross_modal_text_transform = nn.Linear(text_encoder.hidden_size, width)
        self.cross_modal_image_transform = nn.Linear(vision_encoder.hidden_size, width)
        pairs = "pair_classification" in self.tasks.values()
        self.token_type_embeddings = nn.Embedding(3 if pairs else 2, width)  # the modality embedding (Sec. 4.2)
        self.cross_modal_fusion = fusion
        # encoder-only: one pooler per stream; encoder-decoder: the decoder (a top part: "cross_modal" in its
        # name puts it in METER's top learning-rate group, as the fusion) and its tokens' embedding rows
        self.cross_modal_text_pooler = Pooler(width) if decoder is None else None
        self.cross_modal_image_pooler = Pooler(width) if decoder is None else None
        self.cross_modal_decoder = decoder
        self.extra_tokens = extra_tokens
        self.pooled_size = 2 * width if decoder is None else width
        for module in (self.cross_modal_text_transform, self.cross_modal_image_transform, self.token_type_embeddings,
                       self.cross_modal_text_pooler, self.cross_modal_image_pooler):
            if module is not None:
                module.apply(init_bert_weights)  # METER: objectives.init_weights
        if extra_tokens is not None:
            append_word_embeddings(text_encoder, extra_tokens.count)
        if pairs:
            with torch.no_grad():
                self.token_type_embeddings.weight[SECOND_IMAGE_TYPE] = self.token_type_embeddings.weight[IMAGE_TYPE]
        self.heads = nn.ModuleDict(heads)
        # METER's rank_output sits beside the heads, not among them: its name holds no head's name, so its
        # learning rate is the bottom's (REFERENCE_NOTES 1.5 item 2), as here with the '^heads\.' rule.
        self.rank_output = nn.Linear(self.pooled_size, 1) if rank_output else None
        if self.rank_output is not None:
            if "itm_score" not in self.heads:
                raise ConfigError("the retrieval rank head starts from the ITM head, which this model lacks")
            with torch.no_grad():
                self.rank_output.weight.copy_(self.heads["itm_score"].fc.weight[1:])
                self.rank_output.bias.copy_(self.heads["itm_score"].fc.bias[1:])
            self.heads["itm_score"].requires_grad_(False)  # METER: frozen, its loss still trains the rest
        self.mim_probability = mim_probability

    def adapt_init_weights(self, weights: dict[str, Tensor]) -> dict[str, Tensor]:
        """A checkpoint's weights made to fit before ``checkpoint.init_from`` matches them: a two-row
        token-type table (pre-training) gains the second image's row as a copy of the image row, as
        METER's code does when it sets up NLVR2 after loading its pre-trained weights; a checkpoint without
        ``rank_output`` (pre-training) gives it the ITM head's "match" row, as METER's retrieval set-up does
        after loading."""
        key = "token_type_embeddings.weight"
        table = weights.get(key)
        if table is not None and table.shape[0] == 2 and self.token_type_embeddings.num_embeddings == 3:
            weights = {**weights, key: torch.cat([table, table[IMAGE_TYPE:IMAGE_TYPE + 1]], dim=0)}
            logger.info("init_from: %s extended to 3 rows, the second image's (type 2) a copy of the image row", key)
        itm = "heads.itm_score.fc"
        if self.rank_output is not None and "rank_output.weight" not in weights and f"{itm}.weight" in weights:
            weights = {**weights, "rank_output.weight": weights[f"{itm}.weight"][1:],
                       "rank_output.bias": weights[f"{itm}.bias"][1:]}
            logger.info("init_from: rank_output starts as %s's 'match' row (METER's retrieval fine-tuning)", itm)
        return weights

    def infer(self, input_ids: Tensor, attention_mask: Tensor | None, image: Tensor | None,
              pixel_mask: Tensor | None = None, image_type: int = IMAGE_TYPE, vision: Any = None) -> Features:
        """One pass through encoders, fusion and poolers (METER's ``infer``).

        Args:
            input_ids: long ``[B, T]`` (masked ids for MLM); attention_mask ``[B, T]``, 1 on tokens.
            image: ``[B, 3, H, W]``; pixel_mask ``[B, H, W]`` or None.
            image_type: the image tokens' token type (METER's ``image_token_type_idx``: 1, or 2 for
                NLVR2's second image).
            vision: the vision encoder's output for these rows, computed already (``image`` is then unused).

        Returns:
            ``Features``: text ``[B, T, D]``, image ``[B, N, D]``, cls_feats ``[B, 2D]`` (with a decoder
            ``[B, D]``), the two paddings.
        """
        text = self.text_encoder(input_ids, attention_mask)  # EncodedSequence [B, T, D_t]
        if vision is None:
            vision = self.vision_encoder(image, pixel_mask)  # EncodedSequence [B, N, D_v]
        x = self.cross_modal_text_transform(text.hidden)  # [B, T, D]
        y = self.cross_modal_image_transform(vision.hidden)  # [B, N, D]
        x = x + self.token_type_embeddings.weight[TEXT_TYPE]
        y = y + self.token_type_embeddings.weight[image_type]
        x, y = self.cross_modal_fusion(x, text.padding_mask, y, vision.padding_mask)
        cls_feats = self.pool(x, text.padding_mask, y, vision.padding_mask)
        return Features(x, y, cls_feats, text.padding_mask, vision.padding_mask)

    def pool(self, text: Tensor, text_padding: Tensor | None, image: Tensor, image_padding: Tensor | None) -> Tensor:
        """``cls_feats`` of the fused streams (``[B, T, D]``, ``[B, N, D]``, paddings bool or None): both
        poolers concatenated ``[B, 2D]`` (encoder-only), or the decoder's state of its class token, fed
        alone ``[B, D]`` (encoder-decoder, Sec. 3.1)."""
        if self.cross_modal_decoder is None:
            first = image.mean(dim=1) if self.vision_encoder.pooling == "mean" else image[:, 0]  # Swin: avgpool
            return torch.cat([self.cross_modal_text_pooler(text[:, 0]), self.cross_modal_image_pooler(first)], dim=-1)
        ids = torch.full((text.shape[0], 1), self.extra_tokens.cls, dtype=torch.long, device=text.device)
        return self.decode(ids, None, text, text_padding, image, image_padding)[:, 0]  # [B, D]

    def decode(self, ids: Tensor, padding: Tensor | None, text: Tensor, text_padding: Tensor | None, image: Tensor,
               image_padding: Tensor | None) -> Tensor:
        """The decoder's states ``[B, L, D]`` for its input ids ``[B, L]`` (padding bool ``[B, L]`` or None)
        over the fused streams, the ids embedded by the text encoder's (extended) word-embedding table."""
        tokens = word_embeddings(self.text_encoder)(ids)  # [B, L, D]
        return self.cross_modal_decoder(tokens, padding, image, image_padding, text, text_padding)

    def span_language_modeling(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        """The encoder-decoder's text objective (T5-style, Sec. 4.3): the tokens the dataset chose for MLM
        (``mlm_labels`` != -100), each contiguous span replaced by a sentinel in the encoder's input (with
        the true image), reconstructed by the teacher-forced decoder (``encoder_decoder.py``).

        Returns:
            logits ``[B, L, V + S + 1]``, targets ``[B, L]`` (-100 on padding) and the mean cross-entropy
            over the target tokens.
        """
        chosen = batch["mlm_labels"] != IGNORE_INDEX  # [B, T]
        spans = corrupt_spans(batch["input_ids"], batch["attention_mask"], chosen, self.extra_tokens,
                              pad_id=padding_id(self.text_encoder))
        feats = self.infer(spans.input_ids, spans.attention_mask, batch["image"], batch.get("pixel_mask"))
        ids, padding = shift_right(spans.targets, self.extra_tokens.start)  # [B, L] <start> + targets[:-1]
        states = self.decode(ids, padding, feats.text, feats.text_padding, feats.image, feats.image_padding)
        logits, found = self.heads["mlm_score"](states, spans.targets)  # [B, L, V + S + 1], mean CE
        return logits, spans.targets, found["mlm"]

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Run one dataset's batch; losses are summed by the trainer (METER sums, REFERENCE_NOTES 1.5 item 3).

        Args:
            batch: ``dataset_name``, ``image`` ``[B, 3, H, W]``, ``input_ids`` / ``attention_mask``
                ``[B, T]``. Pre-training batches (``image_text_pretraining``) also hold ``mlm_input_ids`` /
                ``mlm_labels`` ``[B, T]`` and / or ``itm_image`` ``[B, 3, H, W]`` / ``itm_label`` ``[B]``; VQA
                batches ``answer_scores`` ``[B, A]`` (when labelled).

        Returns:
            Pre-training: ``mlm_logits`` ``[B, T, V]`` (with a decoder ``span_logits`` ``[B, L, V + S + 1]``
            and ``span_labels`` ``[B, L]``, loss ``<dataset>/span_mlm``), ``itm_logits`` ``[B, 2]``; VQA:
            ``logits`` ``[B, A]``; classification: ``logits`` ``[B, C]``; and ``losses``
            ``{"<dataset>/mlm", "<dataset>/itm", "<dataset>/soft_bce", "<dataset>/cross_entropy"}``. MLM
            and ITM are two forward passes, as in METER: masked text with the true image, and the clean
            text with the matched or mismatched image. A pair (NLVR2: ``image2`` / ``pixel_mask2``) is two
            passes of the text, one with each image (token types 1 and 2), whose ``cls_feats`` are
            concatenated (``[B, 4D]``) for the head, as METER's ``compute_nlvr2``. Retrieval pairs
            (``RetrievalPairs``, evaluation only) give ``pair_score`` ``[B]``, the ITM head's "match"
            logit, which METER's ``rank_output`` starts from and its zero-shot retrieval scores with.
        """
        name = batch.get("dataset_name")
        if name not in self.tasks:
            raise KeyError(f"batch dataset_name {name!r} is not one of the model's datasets ({', '.join(self.tasks)})")
        # a dataset may train on one kind of sample and be evaluated on another (``by_split``: retrieval
        # fine-tuning trains on ranked captions and is scored on every image-text pair)
        task = TASK_OF_TYPE.get(str(batch.get("task_type")), self.tasks[name])
        outputs: dict[str, Any] = {}
        losses: dict[str, Tensor] = {}
        mask = batch.get("attention_mask")
        if task == "pretraining":
            if "mlm_labels" in batch and "mlm_score" in self.heads and self.cross_modal_decoder is not None:
                spans = self.span_language_modeling(batch)  # T5-style, through the decoder (Sec. 4.3)
                outputs["span_logits"], outputs["span_labels"], losses["span_mlm"] = spans
            elif "mlm_labels" in batch and "mlm_score" in self.heads:
                feats = self.infer(batch["mlm_input_ids"], mask, batch["image"], batch.get("pixel_mask"))
                outputs["mlm_logits"], found = self.heads["mlm_score"](feats.text, batch["mlm_labels"])
                losses.update(found)
            if "itm_label" in batch and "itm_score" in self.heads:
                feats = self.infer(batch["input_ids"], mask, batch["itm_image"], batch.get("itm_pixel_mask"))
                outputs["itm_logits"], found = self.heads["itm_score"](feats.cls_feats, batch["itm_label"])
                losses.update(found)
            if "rank_input_ids" in batch and self.rank_output is not None:
                outputs["rank_scores"], losses["irtr"] = self.rank(batch)
            if "mim_score" in self.heads:
                outputs["mim_logits"], losses["mim"] = self.masked_image_modeling(batch)
            if not outputs:
                raise KeyError(f"batch of '{name}' has neither mlm_labels, itm_label nor rank_input_ids (with a "
                               "rank head); build it with image_text_pretraining")
        elif task == "retrieval":
            feats = self.infer(batch["input_ids"], mask, batch["image"], batch.get("pixel_mask"))
            outputs["pair_score"] = self.pair_score(feats.cls_feats)
        else:
            feats = self.infer(batch["input_ids"], mask, batch["image"], batch.get("pixel_mask"))
            pooled = feats.cls_feats
            if self.tasks[name] == "pair_classification":
                if "image2" not in batch:
                    raise KeyError(f"batch of '{name}' has no image2; a pair dataset (NLVR2) collates both images")
                second = self.infer(batch["input_ids"], mask, batch["image2"], batch.get("pixel_mask2"),
                                    image_type=SECOND_IMAGE_TYPE)
                pooled = torch.cat([feats.cls_feats, second.cls_feats], dim=-1)  # [B, 4D] (decoder: [B, 2D])
            head = "vqa_classifier" if task == "vqa" else f"{name}_classifier"
            found_outputs, found = self.heads[head](pooled, batch)
            outputs.update(found_outputs)
            losses.update(found)
        return {**outputs, "losses": {f"{name}/{key}": value for key, value in losses.items()}}

    def masked_image_modeling(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        """Table 10's MIM pass: the clean caption with its picture, ``mim_probability`` of the patches masked
        (Eq. 2's ``[v^{k,mask}; l^k]``), each masked patch classified by the ``mim_score`` head from its
        fused image state. A third forward pass beside MLM's and ITM's, as METER runs each objective on
        its own inputs (the paper does not say whether MIM shares MLM's pass; no reference code exists).
        Training draws fresh masks; evaluation draws them from a generator seeded with 0 at every batch.

        Returns:
            the head's logits and its loss.
        """
        image = batch["image"]
        rows, cols = self.vision_encoder.grid
        candidates = torch.ones(image.shape[0], rows * cols, dtype=torch.bool, device=image.device)
        generator = None if self.training else torch.Generator(device=image.device).manual_seed(0)
        hidden = choose_hidden(candidates, self.mim_probability, generator=generator)  # [B, N]
        vision, patches = self.vision_encoder.masked_forward(image, hidden, self.heads["mim_score"].mask_token)
        feats = self.infer(batch["input_ids"], batch.get("attention_mask"), None, vision=vision)
        states = feats.image[:, self.vision_encoder.num_prefix_tokens:]  # [B, N, D], the patches' states
        logits, found = self.heads["mim_score"](states, patches, hidden, image)
        return logits, found["mim"]

    def pair_score(self, cls_feats: Tensor) -> Tensor:
        """``[B, 2D]`` (with a decoder ``[B, D]``) -> ``[B]``: the rank head's score when the model has one
        (fine-tuned retrieval), else the ITM head's "match" logit (METER's zero-shot retrieval; the rank head
        starts as that row)."""
        if self.rank_output is not None:
            return self.rank_output(cls_feats)[:, 0]
        return self.heads["itm_score"](cls_feats)[0][:, 1]

    def rank(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        """Each image's own caption ranked against its drawn negatives (METER's ``compute_irtr``).

        ``rank_input_ids`` / ``rank_attention_mask`` ``[B, C, T]`` (the own caption first) are scored with
        their image by ``rank_output`` and trained with cross-entropy towards candidate 0. The image is
        encoded once and its tokens repeated for its C candidates; METER repeats the picture and encodes
        every copy, which gives the same features and gradients at C times the vision encoder's cost
        (its CLIP encoder has no dropout).

        Returns:
            scores ``[B, C]`` and the loss.
        """
        ids, text_mask = batch["rank_input_ids"], batch["rank_attention_mask"]
        rows, candidates = ids.shape[:2]
        vision = self.vision_encoder(batch["image"], batch.get("pixel_mask")).repeat_rows(candidates)
        feats = self.infer(ids.flatten(0, 1), text_mask.flatten(0, 1), None, vision=vision)
        scores = self.pair_score(feats.cls_feats).view(rows, candidates)  # [B, C]
        target = torch.zeros(rows, dtype=torch.long, device=scores.device)
        return scores, F.cross_entropy(scores.float(), target)


def resolve_tasks(dataset_info: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Each dataset's task from its ``task_type``: ``pretraining``, ``vqa``, ``classification`` (an image
    and a text with a label: SNLI-VE), ``pair_classification`` (two images per example: NLVR2) or
    ``retrieval`` (every image with every text, ``retrieval_pairs``: scored with the ITM head)."""
    tasks, problems = {}, []
    for name, info in dataset_info.items():
        task = TASK_OF_TYPE.get(str(info.get("task_type")))
        if task is None or (task == "classification" and "vocab_size" not in info):
            problems.append((f"dataset_info.{name}", f"task type {info.get('task_type')!r}: METER here runs "
                             "image_text_pretraining, vqa, image + text classification and retrieval_pairs "
                             "datasets (karpathy_retrieval with sample_per: pair)"))
        elif task == "classification" and int(info.get("images_per_example", 1)) == 2:
            task = "pair_classification"
        elif task == "classification" and int(info.get("images_per_example", 1)) != 1:
            problems.append((f"dataset_info.{name}", f"{info['images_per_example']} images per example: METER "
                             "classifies one image (SNLI-VE) or a pair (NLVR2) with a text"))
        tasks[name] = task
    if problems:
        raise ConfigError(problems)
    return tasks


def datasets_vocab_size(dataset_info: Mapping[str, Mapping[str, Any]]) -> int | None:
    """The ``vocab_size`` the datasets' tokenizers report (all must agree), or None."""
    sizes = {name: int(info["vocab_size"]) for name, info in dataset_info.items() if "vocab_size" in info}
    if len(set(sizes.values())) > 1:
        raise ConfigError(f"datasets report different vocab_size values {sizes}; one text encoder needs one tokenizer")
    return next(iter(sizes.values()), None)


def wants_rank_output(dataset_info: Mapping[str, Mapping[str, Any]], rank_output: bool | None) -> bool:
    """Whether to build the rank head: as asked, or (None) when a dataset draws negative texts."""
    if rank_output is not None:
        return rank_output
    return any(int(info.get("negative_texts", 0)) > 0 for info in dataset_info.values())


def build_heads(tasks: Mapping[str, str], dataset_info: Mapping[str, Mapping[str, Any]], width: int,
                vocab_size: int | None, vqa_head: Any, rank_output: bool = False,
                pooled_size: int | None = None) -> dict[str, nn.Module]:
    """The heads the datasets use, named as METER's (REFERENCE_NOTES 1.1).

    ``vocab_size`` is the MLM head's output count (the encoder-decoder's: vocabulary, sentinels and end);
    ``pooled_size`` the width of ``cls_feats`` (None: ``2 * width``, both poolers; the encoder-decoder's
    class-token state: ``width``). The classifiers' hidden width equals their input's, as METER's.
    """
    heads: dict[str, nn.Module] = {}
    pooled = 2 * width if pooled_size is None else pooled_size
    pretraining = [dataset_info[n] for n, t in tasks.items() if t == "pretraining"]
    if any(info.get("mlm") for info in pretraining):
        if vocab_size is None:
            raise ConfigError("the MLM head needs the tokenizer's vocab_size; the pre-training dataset reports none")
        heads["mlm_score"] = HEADS.build({"type": "mlm_head", "vocab_size": vocab_size, "hidden_size": width},
                                         path="model.heads.mlm_score")
        heads["mlm_score"].apply(init_bert_weights)  # METER: objectives.init_weights (decoder bias stays 0)
    if any(info.get("itm") for info in pretraining) or "retrieval" in tasks.values() or rank_output:
        heads["itm_score"] = HEADS.build({"type": "itm_head", "input_size": pooled}, path="model.heads.itm_score")
    answers = {int(dataset_info[n]["num_answers"]) for n, t in tasks.items() if t == "vqa"}
    if len(answers) > 1:
        raise ConfigError(f"VQA datasets with different answer counts {sorted(answers)} would share one head")
    if answers:
        heads["vqa_classifier"] = HEADS.build_part(
            vqa_head, "vqa_head", num_classes=answers.pop(), input_size=pooled, loss="soft_bce")
    for name, task in tasks.items():
        if task not in ("classification", "pair_classification"):
            continue
        # METER's snli_classifier on cls_feats [2D]; its nlvr2_classifier on both passes' [4D], hidden 2D
        size = 2 * pooled if task == "pair_classification" else pooled
        heads[f"{name}_classifier"] = HEADS.build({"type": "vl_classifier_head", "input_size": size,
                                                   "hidden_size": pooled,
                                                   "num_classes": int(dataset_info[name]["num_classes"]),
                                                   "loss": "cross_entropy"}, path=f"model.heads.{name}_classifier")
    return heads


def count_parts(model: METER) -> dict[str, int]:
    """Parameters of the vision encoder, the text encoder (with a decoder: its appended token rows too), the
    fusion block (the poolers are absent with a decoder), the decoder and the heads."""
    def count(modules) -> int:
        return sum(p.numel() for m in modules if m is not None for p in m.parameters())

    top = [model.cross_modal_text_transform, model.cross_modal_image_transform, model.token_type_embeddings,
           model.cross_modal_fusion, model.cross_modal_text_pooler, model.cross_modal_image_pooler]
    parts = {"vision_encoder": count([model.vision_encoder]), "text_encoder": count([model.text_encoder]),
             "fusion_with_transforms_token_types_poolers": count(top)}
    if model.cross_modal_decoder is not None:
        parts["decoder"] = count([model.cross_modal_decoder])
    parts.update({f"heads.{name}": count([head]) for name, head in model.heads.items()})
    if model.rank_output is not None:
        parts["rank_output"] = count([model.rank_output])
    parts["total"] = count([model])
    return parts


def compose(dataset_info: Mapping[str, Mapping[str, Any]], vision_encoder: Any, text_encoder: Any, fusion: Any,
            hidden_size: int, vqa_head: Any = None, rank_output: bool | None = None, mim: Any = None,
            mim_probability: float = MIM_PROBABILITY, decoder: Any = None,
            num_sentinels: int = SENTINELS) -> METER:
    """Build the parts from their nodes, sized from the datasets, and join them; log the parameter counts.

    With a ``decoder`` node, the encoder-decoder variant (``encoder_decoder.py``): the decoder at the
    fusion's width, ``num_sentinels`` sentinels, the heads on the class token's state.
    """
    if not dataset_info:
        raise ConfigError("dataset_info is empty; configure at least one dataset")
    tasks = resolve_tasks(dataset_info)
    vocab = datasets_vocab_size(dataset_info)
    vision = ENCODERS.build_part(vision_encoder, "vision_encoder")
    if not isinstance(vision, ImageTokenEncoder):
        raise ConfigError(f"{type(vision).__name__} does not hand over image tokens; use clip_vit_encoder, "
                          "vit_encoder, swin_encoder, cait_encoder, volo_encoder or beit_encoder", key="vision_encoder")
    text = ENCODERS.build_part(text_encoder, "text_encoder", **({"vocab_size": vocab} if vocab else {}))
    fused = FUSIONS.build_part(fusion, "fusion", hidden_size=hidden_size)
    if vqa_head is None or (isinstance(vqa_head, Mapping) and "type" not in vqa_head):
        vqa_head = {"type": "vl_classifier_head", **(vqa_head or {})}  # METER's VQA classifier
    ranks = wants_rank_output(dataset_info, rank_output)
    decoded, extra = None, None
    if decoder is not None:
        decoded = DECODERS.build_part(decoder, "decoder", hidden_size=fused.hidden_size)
        widths = {"the text encoder's word embeddings": word_embeddings(text).embedding_dim,
                  "the fusion": fused.hidden_size, "the decoder": decoded.hidden_size}
        if len(set(widths.values())) > 1:
            raise ConfigError(f"the decoder embeds its tokens with the text encoder's word embeddings and reads the "
                              f"fused streams, so the widths must agree; got {widths}: set hidden_size (and the "
                              "decoder's) to the word embeddings' width, or pick a text encoder that embeds at "
                              "the fusion's width", key="decoder")
        if vocab is None:
            raise ConfigError("the decoder's sentinel and class tokens are numbered after the tokenizer's vocabulary; "
                              "the datasets report no vocab_size", key="decoder")
        extra = ExtraTokens(vocab, num_sentinels)
    heads = build_heads(tasks, dataset_info, fused.hidden_size, vocab if extra is None else extra.num_targets,
                        vqa_head, ranks, pooled_size=None if extra is None else fused.hidden_size)
    if mim is not None and "pretraining" in tasks.values():
        heads["mim_score"] = HEADS.build_part(mim, "mim", input_size=fused.hidden_size,
                                              vision_size=vision.hidden_size)
        heads["mim_score"].apply(init_bert_weights)
    model = METER(tasks, vision, text, fused, heads, ranks, mim_probability, decoded, extra)
    logger.info("METER parameters: %s", ", ".join(f"{k} {v:,}" for k, v in count_parts(model).items()))
    return model


@MODELS.register(parts={"vision_encoder": VISION, "text_encoder": TEXT, "fusion": FUSION, "mim": MIM,
                        "vqa_head": Part(HEADS, supplied=("num_classes", "input_size", "loss"), deferred=True,
                                         default_type=True),
                        "decoder": DECODER})
def meter(dataset_info: dict[str, dict[str, Any]], vision_encoder: Any, text_encoder: Any, fusion: Any = "co_attention",
          hidden_size: Annotated[int, Range(ge=1)] = 768, vqa_head: Any = None,
          rank_output: bool | None = None, mim: Any = None,
          mim_probability: Annotated[float, Range(gt=0, lt=1)] = MIM_PROBABILITY, decoder: Any = None,
          num_sentinels: Annotated[int, Range(ge=1)] = SENTINELS) -> METER:
    """METER composed from encoder and fusion nodes; its heads follow its datasets (Sec. 3.1-3.3).

    Datasets of task type ``image_text_pretraining`` get the MLM head (``mlm_head``, untied, on the text
    stream) and / or the ITM head (``itm_head`` on ``cls_feats``) as their batches provide; ``vqa``
    datasets the VQA classifier (``vl_classifier_head``, soft BCE over the answers); image + text
    ``classification`` datasets (SNLI-VE) a ``<dataset>_classifier`` of the same shape with
    cross-entropy (METER's ``snli_classifier``: 2,368,515 parameters at 1536, three classes); two-image
    datasets (NLVR2) a ``<dataset>_classifier`` on both passes' ``cls_feats`` (METER's
    ``nlvr2_classifier``: 3072 -> 1536 -> 2, 4,726,274 parameters, and the token-type row of the second
    image, 768 more).

    Args:
        dataset_info: per dataset, its ``task_type`` and ``info()`` (run time).
        vision_encoder: an encoders node handing over image tokens (``clip_vit_encoder``, ``vit_encoder``,
            ``swin_encoder``, ``cait_encoder``, ``volo_encoder``, ``beit_encoder``).
        text_encoder: an encoders node (``hf_text_encoder``); the model passes the tokenizer's
            ``vocab_size``.
        fusion: a fusions node (``co_attention``, M=6 per stream; ``merged_attention``, M=12); the model
            passes ``hidden_size``.
        hidden_size: the width of the fusion and the heads (METER: 768).
        vqa_head: the VQA head's node (default ``vl_classifier_head``); sizes and loss are passed.
        rank_output: METER's retrieval head (``Linear(2D, 1)`` from the ITM "match" row, 1,537 parameters at
            paper size; the ITM head frozen); None: built when a dataset draws negative texts (retrieval
            fine-tuning). Set true to evaluate a fine-tuned retrieval checkpoint with ``run_type=test``.
        mim: Table 10's masked image modeling, a heads node: ``mim_in_batch_head`` (Eq. 2) or
            ``mim_code_head`` (discrete codes of an image tokenizer); None: none. Pre-training only: a
            model without a pre-training dataset builds no MIM head.
        mim_probability: the share of patches masked for MIM (METER: 15%).
        decoder: the encoder-decoder variant (Sec. 4.3, ``encoder_decoder.py``), a decoders node
            (``dual_cross_attention_decoder``, 3 layers in the paper, with ``fusion`` at 3 layers per stream);
            the model passes ``hidden_size``. None: encoder-only. With it the heads read the decoder's state
            of a class token (``[D]``: ITM ``Linear(D, 2)``, the classifiers ``D -> D -> C``) and pre-training
            reconstructs sentinel-replaced spans through the decoder instead of MLM on the text stream.
        num_sentinels: with a decoder, the sentinel tokens added to the vocabulary (T5: 100).
    """
    return compose(dataset_info, vision_encoder, text_encoder, fusion, hidden_size, vqa_head, rank_output, mim,
                   mim_probability, decoder, num_sentinels)
