"""UniT: a unified transformer for multimodal multitask learning (Hu & Singh, 2021).

Image and text encoders (Sec. 3.1-3.2), a decoder over one modality or their concatenation
with per-dataset queries, shared by all tasks or one per task (Sec. 3.3), and a head per
dataset (Sec. 3.4). One batch comes from one dataset; ``batch["dataset_name"]`` picks the task
token, the queries, the decoder and the head.
"""
from __future__ import annotations

from typing import Annotated, Any, Mapping

from torch import nn

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.interfaces import QueryDecoder
from unimm.models.encoded_sequence import EncodedSequence
from unimm.registry import DECODERS, ENCODERS, HEADS, MODELS, Part

from .tasks import TaskSpec, TaskTable, head_arguments, resolve_tasks
from .text_encoder import datasets_vocab_size

# What the model passes to the parts it builds (validation does not ask the config for them).
ENCODER = Part(ENCODERS, supplied=("task_names", "vocab_size"), deferred=True)
DECODER = Part(DECODERS, supplied=("num_queries",), deferred=True)
HEAD = Part(HEADS, supplied=("hidden_size", "num_classes", "num_attributes", "loss"), deferred=True,
            default_type=True)


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
                 decoders: Mapping[str, QueryDecoder], image_encoder: nn.Module | None = None,
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

    def decoder_for(self, name: str) -> QueryDecoder:
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


@MODELS.register(parts={"image_encoder": ENCODER, "text_encoder": ENCODER, "decoder": DECODER,
                        "tasks.*.head": HEAD})
def unit(
    dataset_info: dict[str, dict[str, Any]],
    decoder: Any,
    image_encoder: Any = None,
    text_encoder: Any = None,
    shared_decoder: bool = True,
    use_task_embedding: bool = True,
    tasks: TaskTable | None = None,
    detection_queries: Annotated[int, Range(ge=1)] = 100,
    other_queries: Annotated[int, Range(ge=1)] = 25,
) -> UniT:
    """UniT composed from encoder, decoder and head nodes; it sizes them from the datasets.

    The builder decides once, from ``tasks`` and each dataset's ``task_type``, how every dataset
    is run (``tasks.TaskSpec``), and passes the parts what they need: the encoders their task
    names (and the text encoder the tokenizer's ``vocab_size``), the decoder its per-dataset
    query counts, each head its width, classes and loss.

    Args:
        dataset_info: per dataset config key, its ``info()`` and ``task_type`` (run time).
        decoder: a decoders node with per-dataset query sets (``detr_decoder``).
        image_encoder: an encoders node (e.g. ``detr_image_encoder``); needed by image and
            image+text tasks.
        text_encoder: an encoders node (e.g. ``unit_text_encoder``); needed by text and
            image+text tasks.
        shared_decoder: one decoder for all datasets (``D^shared``), or one per dataset
            (``D_t^sep``, Sec. 3.3), each built from the same node with its own initialisation.
        use_task_embedding: task tokens in both encoders (Eq. 2-3; Table 4 line 7 turns them off).
        tasks: per dataset, optional overrides (``tasks.TaskOverrides``: task, modality,
            num_queries, head).
        detection_queries: queries of detection datasets (paper: 100, as DETR).
        other_queries: queries of every other dataset (paper: 25; Table C.1 tries 1 and 100).
    """
    if not dataset_info:
        raise ConfigError("dataset_info is empty; configure at least one dataset")
    specs = resolve_tasks(dataset_info, tasks, detection_queries, other_queries)
    return compose(specs, dataset_info, decoder, image_encoder, text_encoder, shared_decoder=shared_decoder,
                   use_task_embedding=use_task_embedding)


def compose(specs: Mapping[str, TaskSpec], dataset_info: Mapping[str, Mapping[str, Any]], decoder: Any,
            image_encoder: Any, text_encoder: Any, *, shared_decoder: bool, use_task_embedding: bool) -> UniT:
    """Build the parts from their nodes, in a fixed order (encoders, decoders, heads), and join them.

    Args:
        specs: each dataset's resolved ``TaskSpec``.
        dataset_info: per dataset, its info (sizes the heads, the text encoder's vocabulary).
        decoder, image_encoder, text_encoder: part nodes (None: no such encoder).
        shared_decoder, use_task_embedding: see ``unit``.
    """
    missing = [(what, f"dataset '{name}' ({spec.task}) reads {reads}; set model.{what}")
               for name, spec in specs.items()
               for what, reads, node in (("image_encoder", "images", image_encoder), ("text_encoder", "text", text_encoder))
               if reads[:4] in spec.modality and node is None]
    if missing:
        raise ConfigError(missing)
    names = list(specs) if use_task_embedding else None
    image = None if image_encoder is None else ENCODERS.build_part(image_encoder, "image_encoder", task_names=names)
    text = None if text_encoder is None else ENCODERS.build_part(
        text_encoder, "text_encoder", task_names=names, vocab_size=datasets_vocab_size(dataset_info))
    queries = {name: spec.num_queries for name, spec in specs.items()}
    if shared_decoder:
        built = DECODERS.build_part(decoder, "decoder", num_queries=queries)
        decoders = {name: built for name in specs}
    else:
        decoders = {name: DECODERS.build_part(decoder, "decoder", num_queries={name: count})
                    for name, count in queries.items()}
    width = next(iter(decoders.values())).hidden_size
    heads = {name: build_head(name, spec, dataset_info[name], width) for name, spec in specs.items()}
    return UniT(specs, heads, decoders, image, text)


def build_head(name: str, spec: TaskSpec, info: Mapping[str, Any], hidden_size: int) -> nn.Module:
    """Dataset ``name``'s head from its node, given its sizes and loss (the node's own values win)."""
    return HEADS.build_part(spec.head, f"tasks.{name}.head", **head_arguments(name, spec, info, hidden_size))
