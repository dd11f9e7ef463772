"""UniT: a unified transformer for multimodal multitask learning (Hu & Singh, 2021).

Image and text encoders (Sec. 3.1-3.2), a decoder over one modality or their concatenation
with per-dataset queries, shared by all tasks or one per task (Sec. 3.3), and a head per
dataset (Sec. 3.4). One batch comes from one dataset; ``batch["dataset_name"]`` picks the task
token, the queries, the decoder and the head.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from torch import nn

from unimm.config.errors import ConfigError
from unimm.models.dataset_info import TASKS, check_dataset_name, infer_task
from unimm.models.detr_decoder import DetrDecoder
from unimm.models.encoded_sequence import EncodedSequence
from unimm.registry import DECODERS, ENCODERS, HEADS, MODELS, RegistryError

MODALITIES = ("auto", "image", "text", "image_text")
TASK_KEYS = ("task", "modality", "num_queries", "head")
HEAD_OF_TASK = {"detection": "detection_head", "vqa": "mlp_classifier_head", "classification": "mlp_classifier_head"}
# Inputs each task reads in the paper; classification covers image+text (SNLI-VE) and text
# (GLUE) tasks alike, so it follows what the batch carries.
DEFAULT_MODALITY = {"detection": "image", "vqa": "image_text", "classification": "auto"}


@dataclass(frozen=True)
class TaskSpec:
    """How one dataset is run.

    Attributes:
        task: ``detection``, ``vqa`` or ``classification``.
        modality: ``image``, ``text``, ``image_text``, or ``auto`` (whichever of ``image`` and
            ``input_ids`` the batch carries).
    """

    task: str
    modality: str


class UniT(nn.Module):
    """Encoders -> (concatenated) memory -> decoder with the dataset's queries -> the dataset's head.

    Encoder outputs are projected to the decoder width: the image memory and its positions only
    when the widths differ (MMF's ``enc2dec_proj`` / ``pos_embed_proj``), the text memory and its
    positions always (MMF's ``bert_projection`` / ``bert_pos_projection``).

    Args:
        tasks: dataset name -> its ``TaskSpec``.
        heads: dataset name -> head module (``head(hidden_states, batch) -> (outputs, losses)``).
        decoders: dataset name -> decoder; the same object for every dataset means a shared
            decoder ``D^shared``, distinct objects separate decoders ``D_t^sep``.
        image_encoder: ``image, pixel_mask, dataset_name -> EncodedSequence``, or None.
        text_encoder: ``input_ids, attention_mask, token_type_ids, dataset_name -> EncodedSequence``, or None.
    """

    def __init__(self, tasks: Mapping[str, TaskSpec], heads: Mapping[str, nn.Module],
                 decoders: Mapping[str, DetrDecoder], image_encoder: nn.Module | None = None,
                 text_encoder: nn.Module | None = None) -> None:
        super().__init__()
        assert set(tasks) == set(heads) == set(decoders), "tasks, heads and decoders cover the same datasets"
        self.tasks = dict(tasks)
        self.shared_decoder = len({id(d) for d in decoders.values()}) == 1
        if self.shared_decoder:
            self.decoder = next(iter(decoders.values()))
        else:
            self.decoders = nn.ModuleDict(decoders)
        width = next(iter(decoders.values())).hidden_size
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        if image_encoder is not None:
            same = image_encoder.hidden_size == width
            self.image_proj = nn.Identity() if same else nn.Linear(image_encoder.hidden_size, width)
            self.image_pos_proj = nn.Identity() if same else nn.Linear(image_encoder.hidden_size, width)
        if text_encoder is not None:
            self.text_proj = nn.Linear(text_encoder.hidden_size, width)
            self.text_pos_proj = nn.Linear(text_encoder.hidden_size, width)
        self.heads = nn.ModuleDict(heads)

    def decoder_for(self, name: str) -> DetrDecoder:
        """The decoder that runs dataset ``name``."""
        return self.decoder if self.shared_decoder else self.decoders[name]

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Run one dataset's batch.

        Args:
            batch: ``dataset_name``; ``image`` ``[B, 3, H, W]`` and ``pixel_mask`` ``[B, H, W]``
                and / or ``input_ids`` / ``attention_mask`` / ``token_type_ids`` ``[B, T]``;
                targets as the dataset's head reads them (``targets``, ``label``, ``answer_scores``).

        Returns:
            The head's outputs (detection: ``pred_logits`` ``[B, Q, C + 1]``, ``pred_boxes``
            ``[B, Q, 4]``, ``aux_outputs``, maybe ``pred_attributes``; classification and VQA:
            ``logits`` ``[B, C]``) and ``losses``: ``{"<dataset>/<loss>": scalar}``, empty when
            the batch has no targets.
        """
        name = batch.get("dataset_name")
        if name not in self.tasks:
            raise KeyError(f"batch dataset_name {name!r} is not one of the model's datasets "
                           f"({', '.join(self.tasks)}); the model is built from the configured datasets")
        memory = self.encode(batch, name)
        hidden_states = self.decoder_for(name)(memory, name)  # [L, B, Q, D]
        outputs, losses = self.heads[name](hidden_states, batch)
        return {**outputs, "losses": {f"{name}/{key}": value for key, value in losses.items()}}

    def encode(self, batch: Mapping[str, Any], name: str) -> EncodedSequence:
        """The decoder memory ``h^enc``: ``h^v``, ``h^t`` or ``concat(h^v, h^t)`` (Sec. 3.3)."""
        use_image, use_text = self.modalities(batch, name)
        parts = []
        if use_image:
            assert self.image_encoder is not None
            encoded = self.image_encoder(batch["image"], batch.get("pixel_mask"), name)
            parts.append(encoded.project(self.image_proj, self.image_pos_proj))
        if use_text:
            assert self.text_encoder is not None
            encoded = self.text_encoder(batch["input_ids"], batch.get("attention_mask"),
                                        batch.get("token_type_ids"), name)
            parts.append(encoded.project(self.text_proj, self.text_pos_proj))
        return EncodedSequence.concat(parts)

    def modalities(self, batch: Mapping[str, Any], name: str) -> tuple[bool, bool]:
        """Whether dataset ``name`` encodes the image and / or the text of this batch."""
        modality = self.tasks[name].modality
        if modality == "auto":
            use_image, use_text = "image" in batch, "input_ids" in batch
        else:
            use_image, use_text = "image" in modality, "text" in modality
        for used, key, encoder, what in ((use_image, "image", self.image_encoder, "image_encoder"),
                                         (use_text, "input_ids", self.text_encoder, "text_encoder")):
            if used and key not in batch:
                raise KeyError(f"dataset '{name}' ({modality}) needs batch['{key}'], which its batch lacks")
            if used and encoder is None:
                raise ConfigError(f"dataset '{name}' needs the {what}, but the model has none; set model.{what}")
        if not (use_image or use_text):
            raise KeyError(f"batch of dataset '{name}' has neither 'image' nor 'input_ids'")
        return use_image, use_text


@MODELS.register(parts={"image_encoder": ENCODERS, "text_encoder": ENCODERS, "decoder": DECODERS})
def unit(
    dataset_info: dict[str, dict[str, Any]],
    decoder: nn.Module,
    image_encoder: nn.Module | None = None,
    text_encoder: nn.Module | None = None,
    shared_decoder: bool = True,
    tasks: dict[str, dict[str, Any]] | None = None,
) -> UniT:
    """UniT from built encoders and decoder; heads are made per dataset from its task.

    Args:
        dataset_info: per dataset config key, its ``info()`` (run time): sizes every head.
        decoder: a ``detr_decoder`` (it holds each dataset's queries).
        image_encoder: e.g. ``detr_image_encoder``; needed by image and image+text tasks.
        text_encoder: e.g. ``bert_text_encoder``; needed by text and image+text tasks.
        shared_decoder: one decoder for all datasets (True), or an independently initialised
            copy of ``decoder`` per dataset.
        tasks: per dataset, optional overrides: ``task`` (detection / vqa / classification;
            default told from its info), ``modality`` (image / text / image_text / auto),
            ``num_queries`` (default: the decoder's), ``head`` (a head node; default
            ``detection_head`` or ``mlp_classifier_head``, given ``dataset``, ``hidden_size``
            and ``dataset_info``).
    """
    if not dataset_info:
        raise ConfigError("unit: dataset_info is empty; configure at least one dataset")
    specs = resolve_tasks(dataset_info, tasks or {})
    for name, spec in specs.items():
        if "image" in spec.modality and image_encoder is None:
            raise ConfigError(f"dataset '{name}' ({spec.task}) reads images; set model.image_encoder")
        if "text" in spec.modality and text_encoder is None:
            raise ConfigError(f"dataset '{name}' ({spec.task}) reads text; set model.text_encoder")
    if not all(hasattr(decoder, attr) for attr in ("num_queries", "set_num_queries", "replicate", "hidden_size")):
        raise ConfigError(f"model.decoder must build a decoder with per-dataset queries (detr_decoder), "
                          f"got {type(decoder).__name__}")
    for name, entry in (tasks or {}).items():
        if "num_queries" in entry and decoder.num_queries().get(name) != int(entry["num_queries"]):
            decoder.set_num_queries(name, int(entry["num_queries"]))
    missing = [name for name in specs if name not in decoder.num_queries()]
    if missing:
        raise ConfigError(f"model.decoder has no queries for {', '.join(missing)}; build it with the same datasets")
    decoders = {name: decoder if shared_decoder else decoder.replicate([name]) for name in specs}
    heads = {name: build_head(name, spec, (tasks or {}).get(name, {}).get("head"), decoder.hidden_size,
                              dataset_info) for name, spec in specs.items()}
    return UniT(specs, heads, decoders, image_encoder, text_encoder)


def resolve_tasks(dataset_info: Mapping[str, Mapping[str, Any]], tasks: Mapping[str, Mapping[str, Any]],
                  ) -> dict[str, TaskSpec]:
    """Each dataset's task and modality, from ``model.tasks`` overrides or its info."""
    unknown = [name for name in tasks if name not in dataset_info]
    if unknown:
        raise ConfigError(f"model.tasks.{unknown[0]}: no such dataset (configured: {', '.join(dataset_info)})")
    specs = {}
    for name, info in dataset_info.items():
        check_dataset_name(name)
        entry = dict(tasks.get(name) or {})
        extra = [k for k in entry if k not in TASK_KEYS]
        if extra:
            raise ConfigError(f"model.tasks.{name}.{extra[0]}: unknown key; use {', '.join(TASK_KEYS)}")
        task = entry.get("task") or infer_task(info, name)
        if task not in TASKS:
            raise ConfigError(f"model.tasks.{name}.task: {task!r} is not one of {', '.join(TASKS)}")
        modality = entry.get("modality") or DEFAULT_MODALITY[task]
        if modality not in MODALITIES:
            raise ConfigError(f"model.tasks.{name}.modality: {modality!r} is not one of {', '.join(MODALITIES)}")
        specs[name] = TaskSpec(task, modality)
    return specs


def build_head(name: str, spec: TaskSpec, node: Any, hidden_size: int,
               dataset_info: Mapping[str, Mapping[str, Any]]) -> nn.Module:
    """Build dataset ``name``'s head from its node (or the task's default head)."""
    if isinstance(node, str):
        node = {"type": node}
    node = dict(node or {})
    node.setdefault("type", HEAD_OF_TASK[spec.task])
    node.setdefault("dataset", name)
    node.setdefault("hidden_size", hidden_size)
    if node["type"] == "mlp_classifier_head" and spec.task != "detection":
        node.setdefault("task", spec.task)
    try:
        return HEADS.build(node, dataset_info=dict(dataset_info))
    except (RegistryError, TypeError) as err:
        raise ConfigError(f"model.tasks.{name}.head: {err}") from err
