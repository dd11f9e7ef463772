"""MoMo: one transformer encoder for image, text and image + text (Chada et al., Sec. 3).

Image patches and text tokens are embedded (``image_tokenizer`` with MAE's fixed sin-cos positions,
``text_tokenizer`` with learned positions; a [CLS] token first in both) and every pass runs the same
``shared_transformer`` encoder. Following MAE, the encoder only ever sees the *visible* tokens of a
masked input (Sec. 3.3); per-stage, per-modality shallow decoders (``mae_decoder``) reconstruct the
hidden ones and are dropped for fine-tuning.

What a dataset trains is set per dataset in ``pretraining`` (the pre-training stages) or follows from
its ``task_type`` (downstream):

============== =================================================================================
objective      what it computes (losses keyed ``<dataset>/<loss>``)
============== =================================================================================
``mim``        image MIM, Eq. 1: ``image_mask_ratio`` (75%) of the patches hidden, pixels of the
               hidden ones regressed, ``norm_pix`` targets (MAE's norm_pix_loss): ``mim``
``mlm``        text MLM through the masked encoder / decoder, Eq. 2: ``text_mask_ratio`` (15%) of the
               non-special tokens *removed* (no [MASK] token in the encoder input, so no 80/10/10),
               mean cross-entropy over them: ``mlm``
``cmm``        cross-modal masking, Eq. 3, on [image tokens ; text tokens]: ``cross_mask_ratio`` (75%)
               of each modality hidden, both reconstructed by one decoder: ``cmm_image`` + ``cmm_text``
               (the update sums them, Eq. 3's sum)
``contrastive`` global image-text InfoNCE, Eq. 4 (``unimm.losses.contrastive``): unmasked image-only
               and text-only passes, [CLS] projected (FLAVA's projections) and L2-normalised,
               gathered from every rank: ``contrastive``
``itm``        image-text matching on the unmasked joint sequence's [CLS] (Sec. 3.1; the paper's
               "[MASK] token" read as the joint [CLS], REFERENCE_NOTES 2.2), one hard negative text per
               image and one hard negative image per text drawn from the contrastive similarities of
               the local batch (ALBEF ``model_pretrain.py``; duplicate images never negatives,
               ``unimm.modules.hard_negatives``): ``itm``
============== =================================================================================

================== ==================================================================================
task_type          downstream head on the [CLS] of the inputs the batch holds (image, text or both)
================== ==================================================================================
text_classification GLUE: ``Linear -> GeLU -> Dropout -> Linear``, cross-entropy
text_regression    GLUE STS-B: the same head with one output, mean squared error: ``mse``
classification     images (linear evaluation with ``linear_probe``: frozen encoder, MAE's
                   ``BatchNorm1d(affine=False) + Linear``), or image + text pairs: cross-entropy
vqa                VQAv2 on the joint sequence: the same MLP over the answers, soft BCE
retrieval          zero-shot retrieval: ``image_embeds`` / ``text_embeds`` from the contrastive
                   projections, the encoder serving as image and as text encoder (Sec. 4.1), no loss
================== ==================================================================================

A joint sequence is ``[image [CLS], patches, text [CLS], words, [SEP]]`` with a learned
modality-type vector on every token of each modality (``modality_embedding``; REFERENCE_NOTES 2.1's
recommendation, the paper describes none); its first token is the joint [CLS].

During evaluation the masks come from a generator seeded with 0 at every batch, so validation losses
of two checkpoints are measured on the same masks.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.losses.classification import CrossEntropy, SoftBCE
from unimm.losses.contrastive import ContrastiveLoss
from unimm.losses.reconstruction import masked_pixel_loss
from unimm.models.decoders.mae_decoder import MaskedDecoder
from unimm.models.encoders.key_maps import load_pretrained
from unimm.models.heads.itm_head import ITMHead
from unimm.modules.hard_negatives import itm_negatives
from unimm.modules.keys import check_module_key
from unimm.modules.mlp import GeluClassifier
from unimm.modules.token_masking import VisibleTokens, choose_hidden, drop_hidden
from unimm.registry import ENCODERS, LOSSES, Part

logger = logging.getLogger("unimm")

IMAGE_TOKENIZER = Part(ENCODERS, supplied=("hidden_size",), deferred=True)
TEXT_TOKENIZER = Part(ENCODERS, supplied=("hidden_size", "vocab_size"), deferred=True)
ENCODER = Part(ENCODERS, deferred=True)
PARTS = {"image_tokenizer": IMAGE_TOKENIZER, "text_tokenizer": TEXT_TOKENIZER, "encoder": ENCODER,
         "contrastive": LOSSES}

OBJECTIVES = ("mim", "mlm", "cmm", "contrastive", "itm")
RECONSTRUCTIONS = {"mim": ("image",), "mlm": ("text",), "cmm": ("image", "text")}
DEFAULT_DECODERS = {"mim": "image", "mlm": "text", "cmm": "multimodal"}
DOWNSTREAM = ("text_classification", "text_regression", "classification", "vqa", "retrieval")
EVAL_SEED = 0


@dataclass(frozen=True)
class TaskSpec:
    """How one dataset runs.

    Attributes:
        kind: ``pretraining`` or a downstream ``task_type`` (module docstring).
        objectives: the pre-training objectives (empty downstream).
        decoder: the name of the decoder that reconstructs for it (None: no reconstruction).
        num_classes: the head's outputs (downstream classifiers).
    """

    kind: str
    objectives: tuple[str, ...] = ()
    decoder: str | None = None
    num_classes: int = 0


@dataclass(frozen=True)
class MaskRatios:
    """Shares hidden from the encoder (Sec. 3.1-3.2): image MIM, text MLM, each modality in CMM."""

    image: float = 0.75
    text: float = 0.15
    cross: float = 0.75


def resolve_tasks(dataset_info: Mapping[str, Mapping[str, Any]],
                  pretraining: Mapping[str, Mapping[str, Any]] | None) -> dict[str, TaskSpec]:
    """Each dataset's ``TaskSpec``: from ``pretraining`` when listed there, else from its task type."""
    pretraining = dict(pretraining or {})
    problems: list[tuple[str, str]] = []
    for name in pretraining:
        if name not in dataset_info:
            problems.append((f"pretraining.{name}", f"names no dataset of this run ({', '.join(dataset_info)})"))
    specs = {}
    for name, info in dataset_info.items():
        check_module_key(name, "dataset name")
        if name in pretraining:
            spec, issues = pretraining_spec(name, pretraining[name])
            problems += issues
            if spec is not None:
                specs[name] = spec
            continue
        kind = info.get("task_type")
        if kind not in DOWNSTREAM:
            problems.append((f"pretraining.{name}", f"dataset '{name}' has task_type {kind!r}, which MoMo fine-tunes "
                             f"only as one of {', '.join(DOWNSTREAM)}; to pre-train on it, list it here with "
                             "its objectives, e.g. {objectives: [mim]}"))
            continue
        classes = 1 if kind == "text_regression" else int(info.get("num_answers", info.get("num_classes", 0)) or 0)
        if kind != "retrieval" and classes < 1:
            problems.append((f"pretraining.{name}", f"dataset '{name}' reports no num_classes"))
        specs[name] = TaskSpec(kind, num_classes=classes)
    if problems or not specs:
        raise ConfigError(problems or ["dataset_info is empty; configure at least one dataset"])
    return specs


def pretraining_spec(name: str, node: Mapping[str, Any]) -> tuple[TaskSpec | None, list[tuple[str, str]]]:
    """One ``pretraining.<dataset>`` entry: ``{objectives: [...], decoder: <name>}``."""
    where = f"pretraining.{name}"
    if not isinstance(node, Mapping) or set(node) - {"objectives", "decoder"}:
        return None, [(where, "give {objectives: [mim | mlm | cmm | contrastive | itm, ...], decoder: <name>}")]
    objectives = tuple(node.get("objectives") or ())
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown or not objectives:
        return None, [(f"{where}.objectives", f"{unknown or 'an empty list'}: choose among {', '.join(OBJECTIVES)}")]
    reconstructions = [o for o in objectives if o in RECONSTRUCTIONS]
    if len(reconstructions) > 1:
        return None, [(f"{where}.objectives", f"{reconstructions}: one reconstruction per dataset (its batch is "
                       "image, text or a pair); give each modality its own dataset")]
    if "itm" in objectives and "contrastive" not in objectives:
        return None, [(f"{where}.objectives", "itm draws its hard negatives from the contrastive similarities; "
                       "add contrastive")]
    decoder = node.get("decoder")
    if reconstructions:
        decoder = str(decoder or DEFAULT_DECODERS[reconstructions[0]])
        check_module_key(decoder, f"{where}.decoder")
    elif decoder is not None:
        return None, [(f"{where}.decoder", f"objectives {list(objectives)} reconstruct nothing; leave decoder out")]
    return TaskSpec("pretraining", objectives, decoder), []


class MoMo(nn.Module):
    """Shared encoder + per-stage decoders + heads (module docstring).

    Args:
        tasks: dataset name -> ``TaskSpec``.
        encoder: ``shared_transformer``.
        image_tokenizer: ``image_tokenizer`` (sin-cos positions), or None without images.
        text_tokenizer: ``text_tokenizer``, or None without text.
        decoders: decoder name -> ``MaskedDecoder``.
        heads: dataset name -> its downstream head.
        image_projection / text_projection: the contrastive projections (None without contrastive
            or retrieval).
        contrastive: the contrastive loss (holds the learnable logit scale).
        itm_head: ``Linear(D, 2)`` on the joint [CLS].
        ratios: the masking ratios.
        norm_pix: MAE's per-patch normalised pixel targets.
        linear_probe: freeze the tokenizers and the encoder (linear evaluation).
        itm_masked: the matching pass sees masked pairs (FLAVA) instead of whole ones (ALBEF).
    """

    def __init__(self, tasks: Mapping[str, TaskSpec], encoder: nn.Module, image_tokenizer: nn.Module | None,
                 text_tokenizer: nn.Module | None, decoders: Mapping[str, MaskedDecoder],
                 heads: Mapping[str, nn.Module], image_projection: nn.Module | None = None,
                 text_projection: nn.Module | None = None, contrastive: ContrastiveLoss | None = None,
                 itm_head: nn.Module | None = None, ratios: MaskRatios = MaskRatios(), norm_pix: bool = True,
                 linear_probe: bool = False, itm_masked: bool = False) -> None:
        super().__init__()
        self.tasks = dict(tasks)
        self.image_tokenizer = image_tokenizer
        self.text_tokenizer = text_tokenizer
        self.encoder = encoder
        self.decoders = nn.ModuleDict(dict(decoders))
        self.heads = nn.ModuleDict(dict(heads))
        self.image_projection = image_projection
        self.text_projection = text_projection
        self.contrastive = contrastive
        self.itm_head = itm_head
        self.ratios = ratios
        self.norm_pix = norm_pix
        self.linear_probe = linear_probe
        self.itm_masked = itm_masked
        self.cross_entropy = CrossEntropy()
        self.soft_bce = SoftBCE()
        if linear_probe:
            for part in (image_tokenizer, text_tokenizer, encoder):
                if part is not None:
                    part.requires_grad_(False)

    # ----- inputs -----------------------------------------------------------------------------
    def image_tokens(self, batch: Mapping[str, Any]) -> Tensor:
        """``[B, 1 + N, D]``: [CLS] + patch tokens, positions and the image type vector added."""
        if self.image_tokenizer is None:
            raise ValueError(f"dataset '{batch.get('dataset_name')}' gives images but the model has no image tokenizer")
        mask = batch.get("pixel_mask")
        if mask is not None and not bool(mask.all()):
            raise ValueError(f"dataset '{batch.get('dataset_name')}' has pictures of different sizes in one batch "
                             "(padded); MoMo needs them all at the model's image_size: resize them to it in the "
                             "dataset's transforms")
        return self.image_tokenizer(batch["image"])

    def text_tokens(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        """``[B, T, D]`` text tokens and bool ``[B, T]`` (True: a real token, False: padding)."""
        if self.text_tokenizer is None:
            raise ValueError(f"dataset '{batch.get('dataset_name')}' gives text but the model has no text tokenizer")
        ids = batch["input_ids"]
        valid = batch["attention_mask"].bool() if "attention_mask" in batch else torch.ones_like(ids, dtype=torch.bool)
        return self.text_tokenizer(ids, batch.get("token_type_ids")), valid

    @staticmethod
    def text_candidates(batch: Mapping[str, Any], valid: Tensor) -> Tensor:
        """The text tokens that may be hidden: real and not special ([CLS], [SEP])."""
        special = batch.get("special_tokens_mask")
        if special is None:
            raise ValueError(f"dataset '{batch.get('dataset_name')}' gives no special_tokens_mask, which MoMo's text "
                             "masking needs to keep [CLS] and [SEP] visible; use a dataset that returns it "
                             "(text_corpus, coco_captions)")
        return valid & ~special.bool()

    def generator(self, device: torch.device) -> torch.Generator | None:
        """None in training (torch's global generator); a fresh one seeded with 0 in evaluation."""
        if self.training:
            return None
        return torch.Generator(device=device).manual_seed(EVAL_SEED)

    def encode_visible(self, tokens: Tensor, visible: Tensor) -> tuple[Tensor, VisibleTokens]:
        """Run the encoder on the ``visible`` tokens only (bool ``[B, L]``): ``[B, K, D]`` and the layout."""
        kept = drop_hidden(tokens, visible)
        return self.encoder(kept.tokens, kept.padding), kept

    # ----- pre-training objectives ---------------------------------------------------------------
    def masked_image_loss(self, batch: Mapping[str, Any], decoder: MaskedDecoder, ratio: float,
                          noise: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Eq. 1 on an image batch: (per-patch pixel predictions ``[B, N, p*p*C]``, ``{"mim": loss}``)."""
        tokens = self.image_tokens(batch)  # [B, 1+N, D]
        candidates = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        candidates[:, 0] = False  # [CLS] always visible
        hidden = choose_hidden(candidates, ratio, noise, self.generator(tokens.device))
        encoded, kept = self.encode_visible(tokens, ~hidden)
        (states,) = decoder(encoded, kept, [("image", tokens.shape[1])])
        pred = decoder.pixel_head(states[:, 1:])  # [B, N, p*p*C]
        loss = masked_pixel_loss(pred, batch["image"], hidden[:, 1:], self.patch_size, self.norm_pix)
        return pred, {"mim": loss}

    def masked_text_loss(self, batch: Mapping[str, Any], decoder: MaskedDecoder, ratio: float,
                         noise: Tensor | None = None) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Eq. 2 on a text batch: hidden tokens removed from the encoder, predicted by the decoder.

        Returns ``mlm_logits`` ``[n, V]`` and ``mlm_targets`` ``[n]`` (the hidden ids, row-major: named
        apart from a dataset's own ``mlm_labels``) and ``{"mlm": loss}``.
        """
        tokens, valid = self.text_tokens(batch)
        hidden = choose_hidden(self.text_candidates(batch, valid), ratio, noise, self.generator(tokens.device))
        encoded, kept = self.encode_visible(tokens, valid & ~hidden)
        (states,) = decoder(encoded, kept, [("text", tokens.shape[1])], padding=~valid)
        labels = batch["input_ids"][hidden]  # [n]
        logits, loss = decoder.text_head(states[hidden], labels)  # [n, V]
        return {"mlm_logits": logits, "mlm_targets": labels}, {"mlm": loss["mlm"]}

    def cross_modal_loss(self, batch: Mapping[str, Any], decoder: MaskedDecoder, image: Tensor, text: Tensor,
                         valid: Tensor) -> dict[str, Tensor]:
        """Eq. 3: ``ratios.cross`` of the patches and of the words hidden, both reconstructed."""
        generator = self.generator(image.device)
        patches = torch.ones(image.shape[:2], dtype=torch.bool, device=image.device)
        patches[:, 0] = False
        hidden_image = choose_hidden(patches, self.ratios.cross, generator=generator)  # [B, 1+N]
        hidden_text = choose_hidden(self.text_candidates(batch, valid), self.ratios.cross, generator=generator)
        joint = torch.cat([image, text], dim=1)  # [B, 1+N+T, D]
        joint_valid = torch.cat([torch.ones_like(hidden_image), valid], dim=1)
        hidden = torch.cat([hidden_image, hidden_text], dim=1)
        encoded, kept = self.encode_visible(joint, joint_valid & ~hidden)
        image_states, text_states = decoder(encoded, kept, [("image", image.shape[1]), ("text", text.shape[1])],
                                            padding=~joint_valid)
        pred = decoder.pixel_head(image_states[:, 1:])
        pixel = masked_pixel_loss(pred, batch["image"], hidden_image[:, 1:], self.patch_size, self.norm_pix)
        _, words = decoder.text_head(text_states[hidden_text], batch["input_ids"][hidden_text])
        return {"cmm_image": pixel, "cmm_text": words["mlm"]}

    def embeddings(self, image: Tensor | None, text: Tensor | None, valid: Tensor | None
                   ) -> tuple[Tensor | None, Tensor | None]:
        """Unmasked image-only and text-only passes, [CLS] through the projections (contrastive, retrieval)."""
        if self.image_projection is None or self.text_projection is None:
            raise ValueError("the model has no contrastive projections; add contrastive to a pre-training dataset or "
                             "a retrieval dataset to the run")
        image_embeds = None if image is None else self.image_projection(self.encoder(image)[:, 0])
        text_embeds = None if text is None else self.text_projection(self.encoder(text, ~valid)[:, 0])
        return image_embeds, text_embeds

    def matching_loss(self, batch: Mapping[str, Any], image: Tensor, text: Tensor, valid: Tensor,
                      image_embeds: Tensor, text_embeds: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """ITM on [pairs; image with a hard negative text; text with a hard negative image] (ALBEF).

        The pairs go to the encoder whole (ALBEF), or with ``itm_masked`` hidden as in cross-modal
        masking (FLAVA computes ITM on its masked multimodal pass; REFERENCE_NOTES 2.2 leaves it open):
        about a quarter of the tokens, so the matching pass costs a fraction of the whole pairs'.

        Returns:
            ``itm_logits`` ``[P, 2]``, ``itm_targets`` ``[P]`` (1: matched) and ``{"itm": CE}``; rows whose
            batch holds no other image get no negative (``hard_negatives``).
        """
        assert self.itm_head is not None and self.contrastive is not None
        b = image.shape[0]
        with torch.no_grad():
            scale = self.contrastive.logit_scale.exp()
            image_n, text_n = F.normalize(image_embeds.float(), dim=-1), F.normalize(text_embeds.float(), dim=-1)
            sim_i2t = scale * image_n @ text_n.T  # [B, B]
        ids = batch.get("image_index")
        ids = torch.arange(b, device=image.device) if ids is None else torch.as_tensor(ids, device=image.device)
        generator = self.generator(image.device)
        neg_text, neg_image = itm_negatives(sim_i2t, sim_i2t.T, ids.long(), generator=generator)
        rows = torch.arange(b, device=image.device)
        with_text, with_image = neg_text >= 0, neg_image >= 0
        image_rows = torch.cat([rows, rows[with_text], neg_image[with_image]])
        text_rows = torch.cat([rows, neg_text[with_text], rows[with_image]])
        labels = torch.cat([torch.ones(b, dtype=torch.long, device=image.device),
                            torch.zeros(int(with_text.sum() + with_image.sum()), dtype=torch.long, device=image.device)])
        joint = torch.cat([image[image_rows], text[text_rows]], dim=1)
        joint_valid = torch.cat([torch.ones(joint.shape[0], image.shape[1], dtype=torch.bool, device=image.device),
                                 valid[text_rows]], dim=1)
        if self.itm_masked:  # FLAVA: the matching pass sees the masked pairs (cross_mask_ratio of each modality)
            patches = joint_valid[:, :image.shape[1]].clone()
            patches[:, 0] = False
            words = self.text_candidates(batch, valid)[text_rows]
            hidden = torch.cat([choose_hidden(patches, self.ratios.cross, generator=generator),
                                choose_hidden(words, self.ratios.cross, generator=generator)], dim=1)
            encoded, _ = self.encode_visible(joint, joint_valid & ~hidden)  # [CLS] stays visible and first
        else:  # ALBEF: the whole pairs
            encoded = self.encoder(joint, ~joint_valid)
        logits, loss = self.itm_head(encoded[:, 0], labels)
        return logits, labels, loss

    def pretrain(self, batch: Mapping[str, Any], task: TaskSpec) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """The objectives of one pre-training dataset's batch."""
        outputs: dict[str, Any] = {}
        losses: dict[str, Tensor] = {}
        decoder = self.decoders[task.decoder] if task.decoder else None
        objectives = set(task.objectives)
        if "mim" in objectives:
            outputs["pixel_pred"], found = self.masked_image_loss(batch, decoder, self.ratios.image)
            losses.update(found)
        if "mlm" in objectives:
            found_outputs, found = self.masked_text_loss(batch, decoder, self.ratios.text)
            outputs.update(found_outputs)
            losses.update(found)
        if objectives & {"cmm", "contrastive", "itm"}:
            image = self.image_tokens(batch)
            text, valid = self.text_tokens(batch)
            if "cmm" in objectives:
                losses.update(self.cross_modal_loss(batch, decoder, image, text, valid))
            if "contrastive" in objectives:
                image_embeds, text_embeds = self.embeddings(image, text, valid)
                losses["contrastive"] = self.contrastive(image_embeds, text_embeds)
                outputs.update(image_embeds=image_embeds, text_embeds=text_embeds)
                if "itm" in objectives:
                    logits, labels, found = self.matching_loss(batch, image, text, valid, image_embeds, text_embeds)
                    outputs.update(itm_logits=logits, itm_targets=labels)
                    losses.update(found)
        return outputs, losses

    # ----- downstream --------------------------------------------------------------------------
    def features(self, batch: Mapping[str, Any]) -> Tensor:
        """The [CLS] state ``[B, D]`` of the unmasked inputs the batch holds: image, text or both."""
        has_image, has_text = "image" in batch, "input_ids" in batch
        if has_image and has_text:
            image = self.image_tokens(batch)
            text, valid = self.text_tokens(batch)
            padding = torch.cat([torch.zeros(image.shape[:2], dtype=torch.bool, device=image.device), ~valid], dim=1)
            return self.encoder(torch.cat([image, text], dim=1), padding)[:, 0]
        if has_image:
            return self.encoder(self.image_tokens(batch))[:, 0]
        text, valid = self.text_tokens(batch)
        return self.encoder(text, ~valid)[:, 0]

    def downstream(self, batch: Mapping[str, Any], name: str, task: TaskSpec
                   ) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """A fine-tuning / evaluation dataset's outputs and losses (module docstring's second table)."""
        if task.kind == "retrieval":
            image = self.image_tokens(batch)
            text, valid = self.text_tokens(batch)
            image_embeds, text_embeds = self.embeddings(image, text, valid)
            return {"image_embeds": image_embeds, "text_embeds": text_embeds}, {}
        if self.linear_probe:
            with torch.no_grad():
                features = self.features(batch)
        else:
            features = self.features(batch)
        logits = self.heads[name](features)
        losses: dict[str, Tensor] = {}
        if task.kind == "text_regression":
            logits = logits.squeeze(-1)  # [B]
            if "label" in batch:
                losses["mse"] = F.mse_loss(logits.float(), batch["label"].float())
        elif task.kind == "vqa":
            if "answer_scores" in batch:
                losses["soft_bce"] = self.soft_bce(logits, batch["answer_scores"])
        elif "label" in batch:
            losses["cross_entropy"] = self.cross_entropy(logits, batch["label"])
        return {"logits": logits}, losses

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Run one dataset's batch: ``{<outputs>, "losses": {"<dataset>/<loss>": scalar}}``."""
        name = batch.get("dataset_name")
        if name not in self.tasks:
            raise KeyError(f"batch dataset_name {name!r} is not one of the model's datasets ({', '.join(self.tasks)})")
        task = self.tasks[name]
        if task.kind == "pretraining":
            outputs, losses = self.pretrain(batch, task)
        else:
            outputs, losses = self.downstream(batch, name, task)
        return {**outputs, "losses": {f"{name}/{key}": value for key, value in losses.items()}}

    @property
    def patch_size(self) -> int:
        assert self.image_tokenizer is not None
        return self.image_tokenizer.patch_embed.patch_size[0]


@dataclass(frozen=True)
class DecoderSize:
    """The shallow decoders' shape (Sec. 3.3: 8 layers, width 512; 16 heads as MAE)."""

    hidden_size: int = 512
    num_layers: int = 8
    num_heads: int = 16
    mlp_size: int = 2048


def decoder_modalities(tasks: Mapping[str, TaskSpec]) -> dict[str, tuple[str, ...]]:
    """Decoder name -> the modalities its datasets reconstruct (a shared decoder serves several)."""
    found: dict[str, set[str]] = {}
    for spec in tasks.values():
        for objective in spec.objectives:
            if objective in RECONSTRUCTIONS and spec.decoder:
                found.setdefault(spec.decoder, set()).update(RECONSTRUCTIONS[objective])
    return {name: tuple(sorted(kinds)) for name, kinds in found.items()}


def inputs_of(spec: TaskSpec, info: Mapping[str, Any]) -> set[str]:
    """The modalities a dataset's batches give the model."""
    if spec.kind == "pretraining":
        objectives = set(spec.objectives)
        return ({"image"} if objectives & {"mim", "cmm", "contrastive", "itm"} else set()) | (
            {"text"} if objectives & {"mlm", "cmm", "contrastive", "itm"} else set())
    if spec.kind.startswith("text_"):
        return {"text"}
    if spec.kind in ("vqa", "retrieval"):
        return {"image", "text"}
    return {"image", "text"} if "vocab_size" in info else {"image"}  # image classification, or image + text pairs


def compose(dataset_info: Mapping[str, Mapping[str, Any]], encoder: Any, image_tokenizer: Any, text_tokenizer: Any,
            *, pretraining: Mapping[str, Mapping[str, Any]] | None, decoder: DecoderSize, embed_size: int | None,
            contrastive: Any, ratios: MaskRatios, norm_pix: bool, tie_word_embeddings: bool, head_dropout: float,
            linear_probe: bool, pretrained_path: str | None, itm_masked: bool = False) -> MoMo:
    """Build the parts from their nodes and join them (see ``momo`` for the arguments)."""
    tasks = resolve_tasks(dataset_info, pretraining)
    read = set().union(*(inputs_of(spec, dataset_info[name]) for name, spec in tasks.items()))
    reads_image, reads_text = "image" in read, "text" in read
    shared = ENCODERS.build_part(encoder, "encoder")
    width = shared.hidden_size
    image = ENCODERS.build_part(image_tokenizer, "image_tokenizer", hidden_size=width) if reads_image else None
    text = None
    if reads_text:
        sizes = {int(info["vocab_size"]) for info in dataset_info.values() if "vocab_size" in info}
        if len(sizes) != 1:
            raise ConfigError(f"the text datasets report vocab_size {sorted(sizes) or 'none'}; one text tokenizer "
                              "needs exactly one data tokenizer")
        text = ENCODERS.build_part(text_tokenizer, "text_tokenizer", hidden_size=width, vocab_size=sizes.pop())
    decoders = {}
    for name, kinds in decoder_modalities(tasks).items():
        grid = patch_dim = None
        if "image" in kinds:
            grid = image.grid
            patch_dim = image.patch_embed.patch_size[0] * image.patch_embed.patch_size[1] * image.patch_embed.proj.in_channels
        decoders[name] = MaskedDecoder(
            width, decoder.hidden_size, decoder.num_layers, decoder.num_heads, decoder.mlp_size, kinds, grid, patch_dim,
            text.word_embeddings.num_embeddings if "text" in kinds else None,
            text.max_positions if "text" in kinds else None,
            text.word_embeddings if "text" in kinds and tie_word_embeddings else None)
    heads = {}
    for name, spec in tasks.items():
        if spec.kind in ("pretraining", "retrieval"):
            continue
        if linear_probe:  # MAE's linear probe: BatchNorm without affine, then the linear classifier
            heads[name] = nn.Sequential(nn.BatchNorm1d(width, affine=False, eps=1e-6), nn.Linear(width, spec.num_classes))
        else:
            heads[name] = GeluClassifier(width, spec.num_classes, head_dropout)
    objectives = {o for s in tasks.values() for o in s.objectives}
    contrastive_used = "contrastive" in objectives or any(s.kind == "retrieval" for s in tasks.values())
    size = embed_size or width
    image_projection = nn.Linear(width, size) if contrastive_used else None
    text_projection = nn.Linear(width, size) if contrastive_used else None
    loss = contrastive_loss(contrastive) if contrastive_used else None
    itm = ITMHead(width) if "itm" in objectives else None
    if pretrained_path:
        load_pretrained({"image_tokenizer": image, "text_tokenizer": None, "encoder": shared}, pretrained_path, "mae")
    model = MoMo(tasks, shared, image, text, decoders, heads, image_projection, text_projection, loss, itm, ratios,
                 norm_pix, linear_probe, itm_masked)
    log_sizes(model)
    return model


def contrastive_loss(node: Any) -> ContrastiveLoss:
    """The contrastive loss from its node (FLAVA's defaults when None)."""
    if node is None:
        return ContrastiveLoss()
    if isinstance(node, ContrastiveLoss):
        return node
    return LOSSES.build_part(node, "contrastive")


def encoder_side_parameters(model: MoMo) -> int:
    """What fine-tuning keeps: tokenizers + encoder (the paper's 110M / 335M; decoders and heads aside)."""
    parts = (model.image_tokenizer, model.text_tokenizer, model.encoder)
    return sum(p.numel() for part in parts if part is not None for p in part.parameters())


def log_sizes(model: MoMo) -> None:
    """Parameter counts per part; the encoder side is the paper's "110M" (base) / "335M" (large)."""
    parts = {"encoder": model.encoder, "image tokenizer": model.image_tokenizer, "text tokenizer": model.text_tokenizer,
             "decoders": model.decoders, "heads": model.heads}
    counts = {what: sum(p.numel() for p in part.parameters()) for what, part in parts.items() if part is not None}
    logger.info("MoMo: %s parameters on the encoder side, kept for fine-tuning (%s)",
                f"{encoder_side_parameters(model):,}", ", ".join(f"{what} {n:,}" for what, n in counts.items()))
