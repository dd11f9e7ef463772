"""ViT-BERT: modality tokenizers, one shared transformer encoder, task-specific heads (Li et al., Sec. 3.1).

One batch comes from one dataset: an image dataset's batch runs the image tokenizer, a text
dataset's the text tokenizer; both then run the same encoder and the dataset's heads. What each
dataset is follows from its ``task_type`` (decided once, ``resolve_tasks``):

===================== ========= ============================================================
task_type             tokenizer heads (two-layer GeLU MLP, Eq. 5) and their losses
===================== ========= ============================================================
classification        image     ``classification`` on [CLS] vs ``label`` (ImageNet, Sec. 4.1.1)
text_classification   text      ``classification`` on [CLS] vs ``label`` (GLUE, Sec. 4.1.2)
text_pretraining      text      ``mlm`` on the masked positions vs ``mlm_labels``, ``nsp`` on
                                [CLS] vs ``is_next`` (BERT's pre-training, Sec. 4.1.2)
===================== ========= ============================================================

Losses are keyed ``<dataset>/<loss>``: ``<dataset>/mlm``, ``<dataset>/nsp``, and for classification
the loss's name, ``<dataset>/cross_entropy`` (or ``<dataset>/distillation`` with a teacher). With
``distillation`` and a teacher for the dataset, every head of the dataset takes Eq. 7 against the
teacher's logits of the same rows instead of the cross-entropy (Sec. 3.2.1); see ``teachers.py``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.losses.classification import CrossEntropy
from unimm.losses.distillation import Distillation
from unimm.models.encoders.key_maps import PretrainedFormat, load_pretrained
from unimm.models.encoders.shared_transformer import init_linear
from unimm.modules.keys import check_module_key
from unimm.modules.mlp import GeluClassifier
from unimm.registry import ENCODERS, LOSSES, MODELS, Part, current_path

from .teachers import FrozenTeacher, TeacherSpec, build_teachers

logger = logging.getLogger("unimm")

# What the model passes to the parts it builds (validation does not ask the config for them).
IMAGE_TOKENIZER = Part(ENCODERS, supplied=("hidden_size",), deferred=True)
TEXT_TOKENIZER = Part(ENCODERS, supplied=("hidden_size", "vocab_size"), deferred=True)
ENCODER = Part(ENCODERS, deferred=True)
TEACHER = Part(MODELS, deferred=True)
PARTS = {"image_tokenizer": IMAGE_TOKENIZER, "text_tokenizer": TEXT_TOKENIZER, "encoder": ENCODER,
         "distillation": LOSSES, "teachers.*.model": TEACHER}
NSP_CLASSES = 2


@dataclass(frozen=True)
class Objective:
    """One head of a dataset and what its loss reads.

    Attributes:
        name: ``classification``, ``mlm`` or ``nsp``.
        num_classes: outputs of the head.
        target_key: the batch entry of its labels (negative: no label).
        output_key: the outputs entry of its logits (the teacher's hold the same).
        masked: on the masked positions (MLM: where ``target_key`` is a label), else on [CLS].
    """

    name: str
    num_classes: int
    target_key: str
    output_key: str
    masked: bool = False


@dataclass(frozen=True)
class TaskSpec:
    """How one dataset runs: its tokenizer and its heads."""

    modality: Literal["image", "text"]
    objectives: tuple[Objective, ...]


def resolve_tasks(dataset_info: Mapping[str, Mapping[str, Any]]) -> dict[str, TaskSpec]:
    """Each dataset's ``TaskSpec`` from its ``task_type`` and ``info()`` (table in the module docstring)."""
    specs, problems = {}, []
    for name, info in dataset_info.items():
        check_module_key(name, "dataset name")
        kind = info.get("task_type")
        if kind in ("classification", "text_classification"):
            classify = Objective("classification", int(info["num_classes"]), "label", "logits")
            specs[name] = TaskSpec("image" if kind == "classification" else "text", (classify,))
        elif kind == "text_pretraining":
            specs[name] = TaskSpec("text", (Objective("mlm", int(info["vocab_size"]), "mlm_labels", "mlm_logits", True),
                                            Objective("nsp", NSP_CLASSES, "is_next", "nsp_logits")))
        else:
            problems.append(f"dataset '{name}' has task_type {kind!r}; ViT-BERT runs classification (images), "
                            "text_classification (GLUE) and text_pretraining (MLM + NSP)")
    if problems or not specs:
        raise ConfigError(problems or ["dataset_info is empty; configure at least one dataset"])
    return specs


def vocab_size_of(dataset_info: Mapping[str, Mapping[str, Any]], specs: Mapping[str, TaskSpec]) -> int | None:
    """The vocabulary of the text datasets' data tokenizer (all must agree), or None without text."""
    sizes = {name: int(dataset_info[name]["vocab_size"]) for name, spec in specs.items()
             if spec.modality == "text" and "vocab_size" in dataset_info[name]}
    if len(set(sizes.values())) > 1:
        raise ConfigError(f"text datasets report different vocab_size values {sizes}; one text tokenizer needs one "
                          "data tokenizer")
    return next(iter(sizes.values()), None)


class ViTBERT(nn.Module):
    """Tokenizer of the batch's modality -> shared encoder -> the dataset's heads (Fig. 1).

    Args:
        tasks: dataset name -> its ``TaskSpec``.
        encoder: the shared transformer, ``tokens [B, T, D], padding_mask [B, T] -> [B, T, D]``.
        heads: dataset name -> objective name -> its two-layer GeLU MLP (Eq. 5).
        image_tokenizer: ``image [B, 3, H, W] -> [B, 1 + N, D]``; None when no dataset reads images.
        text_tokenizer: ``input_ids, token_type_ids [B, T] -> [B, T, D]``; None when no dataset reads text.
        distillation: Eq. 7, for the heads of datasets that have a teacher; None: cross-entropy everywhere.
        teachers: dataset name -> its frozen teacher (held outside the module tree, see ``teachers.py``).
    """

    def __init__(self, tasks: Mapping[str, TaskSpec], encoder: nn.Module, heads: Mapping[str, Mapping[str, nn.Module]],
                 image_tokenizer: nn.Module | None = None, text_tokenizer: nn.Module | None = None,
                 distillation: Distillation | None = None, teachers: Mapping[str, FrozenTeacher] | None = None) -> None:
        super().__init__()
        self.tasks = dict(tasks)
        self.image_tokenizer = image_tokenizer
        self.text_tokenizer = text_tokenizer
        self.encoder = encoder
        self.heads = nn.ModuleDict({name: nn.ModuleDict(dict(by_objective)) for name, by_objective in heads.items()})
        self.cross_entropy = CrossEntropy()  # losses hold no weights: nothing of them in the state dict
        self.distillation = distillation
        self.teachers: dict[str, FrozenTeacher] = dict(teachers or {})

    def _apply(self, fn: Any, recurse: bool = True) -> "ViTBERT":
        """``.to()`` / ``.cuda()`` / ``.half()`` reach the teachers too, which are not sub-modules."""
        super()._apply(fn, recurse)
        for teacher in {id(t): t for t in self.teachers.values()}.values():
            teacher.model._apply(fn, recurse)
        return self

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Run one dataset's batch.

        Args:
            batch: ``dataset_name``; ``image`` ``[B, 3, H, W]`` (image datasets) or ``input_ids`` /
                ``attention_mask`` / ``token_type_ids`` ``[B, T]`` (text datasets); targets ``label``
                ``[B]``, or ``mlm_labels`` ``[B, T]`` and ``is_next`` ``[B]``.

        Returns:
            Logits: ``logits`` ``[B, C]`` (classification), ``mlm_logits`` ``[n, V]`` over the ``n``
            masked positions in row-major order (``[B, T, V]`` without ``mlm_labels``) and
            ``nsp_logits`` ``[B, 2]``, ``mlm_targets`` ``[n]`` (the masked ids, for MLM accuracy); ``losses`` ``{"<dataset>/<loss>": scalar}`` for the targets
            the batch has.
        """
        name = batch.get("dataset_name")
        if name not in self.tasks:
            raise KeyError(f"batch dataset_name {name!r} is not one of the model's datasets ({', '.join(self.tasks)})")
        task = self.tasks[name]
        hidden = self.encode(batch, task.modality)  # [B, T, D]
        teacher = self.teachers.get(name)
        taught = teacher(batch) if teacher is not None and self.distillation is not None else None
        outputs: dict[str, Any] = {}
        losses: dict[str, Tensor] = {}
        for objective in task.objectives:
            target = batch.get(objective.target_key)
            logits, labels = self.predict(self.heads[name][objective.name], objective, hidden, target)
            outputs[objective.output_key] = logits
            if objective.masked and labels is not None:
                outputs["mlm_targets"] = labels  # [n]: the ids of the rows of mlm_logits (MLM accuracy)
            if labels is None:
                continue
            if taught is not None:
                losses[objective_key(objective, self.distillation)] = self.distillation(
                    logits, taught[objective.output_key], labels)
            else:
                losses[objective_key(objective, self.cross_entropy)] = self.cross_entropy(logits, labels)
        return {**outputs, "losses": {f"{name}/{key}": value for key, value in losses.items()}}

    def encode(self, batch: Mapping[str, Any], modality: str) -> Tensor:
        """The batch's modality through its tokenizer and the shared encoder: ``[B, T, D]``."""
        if modality == "image":
            assert self.image_tokenizer is not None
            mask = batch.get("pixel_mask")
            if mask is not None and not bool(mask.all()):
                raise ValueError(f"dataset '{batch['dataset_name']}' has pictures of different sizes in one batch "
                                 "(padded); ViT-BERT needs them all at the model's image_size: resize them to it "
                                 "in the dataset's transforms")
            return self.encoder(self.image_tokenizer(batch["image"]))  # no padding among patches
        assert self.text_tokenizer is not None
        tokens = self.text_tokenizer(batch["input_ids"], batch.get("token_type_ids"))  # [B, T, D]
        attention = batch.get("attention_mask")
        return self.encoder(tokens, None if attention is None else attention == 0)

    @staticmethod
    def predict(head: nn.Module, objective: Objective, hidden: Tensor, target: Tensor | None
                ) -> tuple[Tensor, Tensor | None]:
        """(logits, the labels of their rows or None) of one head."""
        if not objective.masked:
            return head(hidden[:, 0]), target  # [B, C] on [CLS] (Eq. 5: z_0^L)
        if target is None:
            return head(hidden), None  # [B, T, V]: every position
        picked = target >= 0  # [B, T] the masked positions
        return head(hidden[picked]), target[picked]  # [n, V], [n]


def objective_key(objective: Objective, loss: nn.Module) -> str:
    """The loss key of a head: ``mlm`` / ``nsp``, or the loss's name for classification."""
    return objective.name if objective.name != "classification" else str(getattr(loss, "name"))


def build_heads(tasks: Mapping[str, TaskSpec], hidden_size: int, dropout: float, init_std: float
                ) -> dict[str, dict[str, nn.Module]]:
    """Eq. 5's ``W2 GeLU(W1 h + b1) + b2`` per dataset and objective, the hidden width ``D`` (Sec. 3.1.3)."""
    heads = {}
    for name, spec in tasks.items():
        heads[name] = {o.name: GeluClassifier(hidden_size, o.num_classes, dropout) for o in spec.objectives}
        for head in heads[name].values():
            head.apply(lambda module: init_linear(module, init_std))
    return heads


def compose(dataset_info: Mapping[str, Mapping[str, Any]], encoder: Any, image_tokenizer: Any, text_tokenizer: Any,
            *, head_dropout: float, head_init_std: float, distillation: Any = None,
            teachers: Mapping[str, TeacherSpec] | None = None, pretrained_path: str | None = None,
            pretrained_format: PretrainedFormat = "bert") -> ViTBERT:
    """Build the parts from their nodes (encoder first: it sets the width), load weights, join them."""
    tasks = resolve_tasks(dataset_info)
    modalities = {spec.modality for spec in tasks.values()}
    missing = [(f"{what}_tokenizer", f"datasets {[n for n, s in tasks.items() if s.modality == what]} read "
                                     f"{what}s; set model.{what}_tokenizer")
               for what, node in (("image", image_tokenizer), ("text", text_tokenizer))
               if what in modalities and node is None]
    if missing:
        raise ConfigError(missing)
    shared = ENCODERS.build_part(encoder, "encoder")
    width = shared.hidden_size
    image = ENCODERS.build_part(image_tokenizer, "image_tokenizer", hidden_size=width) if "image" in modalities else None
    text = ENCODERS.build_part(text_tokenizer, "text_tokenizer", hidden_size=width,
                               vocab_size=vocab_size_of(dataset_info, tasks)) if "text" in modalities else None
    heads = build_heads(tasks, width, head_dropout, head_init_std)
    distillation = distillation_loss(distillation)
    if (distillation is None) != (not teachers):
        raise ConfigError("distillation needs teachers (model.teachers), and teachers need the distillation loss "
                          "(model.distillation); set both or neither", key="distillation" if distillation else "teachers")
    if pretrained_path:
        load_pretrained({"image_tokenizer": image, "text_tokenizer": text, "encoder": shared}, pretrained_path,
                        pretrained_format)
    taught = build_teachers(teachers, dataset_info)
    model = ViTBERT(tasks, shared, heads, image, text, distillation, taught)
    log_sizes(model)
    return model


def distillation_loss(node: Any) -> Distillation | None:
    """Eq. 7's loss from its node (already built when a config gave it), or None."""
    if isinstance(node, (str, Mapping)):
        node = LOSSES.build(node, path=current_path("distillation"))
    if node is not None and not isinstance(node, Distillation):
        raise ConfigError("give a distillation loss node, e.g. {type: distillation, alpha: 1.0, temperature: 1.0}",
                          key="distillation")
    return node


def log_sizes(model: ViTBERT) -> None:
    """The parameter count of each part (the paper's: encoder 85.06M, tokenizers 0.74M / 23.43M)."""
    parts = {"shared encoder": model.encoder, "image tokenizer": model.image_tokenizer,
             "text tokenizer": model.text_tokenizer, "heads": model.heads}
    counts = {what: sum(p.numel() for p in part.parameters()) for what, part in parts.items() if part is not None}
    logger.info("ViT-BERT: %s parameters (%s)%s", f"{sum(counts.values()):,}",
                ", ".join(f"{what} {n:,}" for what, n in counts.items()),
                f"; teachers of {', '.join(sorted(model.teachers))} outside the model" if model.teachers else "")


@MODELS.register(parts=PARTS)
def vit_bert(
    dataset_info: dict[str, dict[str, Any]],
    encoder: Any,
    image_tokenizer: Any = None,
    text_tokenizer: Any = None,
    head_dropout: float = 0.1,
    head_init_std: float = 0.02,
    distillation: Any = None,
    teachers: dict[str, TeacherSpec] | None = None,
    pretrained_path: str | None = None,
    pretrained_format: PretrainedFormat = "bert",
) -> ViTBERT:
    """ViT-BERT composed from tokenizer and encoder nodes; heads per dataset from its task type.

    Args:
        dataset_info: per dataset, its ``task_type`` and ``info()`` (run time).
        encoder: an encoders node (``shared_transformer``); its width sizes everything else.
        image_tokenizer: an encoders node (``image_tokenizer``); needed when a dataset reads images.
        text_tokenizer: an encoders node (``text_tokenizer``); needed when a dataset reads text. Its
            ``vocab_size`` comes from the datasets' data tokenizer.
        head_dropout: dropout after each head's GeLU.
        head_init_std: init std of the heads' linear weights.
        distillation: a losses node (``distillation``, Eq. 7) for the heads of datasets with a teacher.
        teachers: name -> ``{model, checkpoint, datasets}``: frozen, separately trained models whose
            logits the distillation follows (``teachers.py``).
        pretrained_path: a local BERT folder or timm ViT weights file loaded into the tokenizer of its
            modality and the shared encoder (``unimm.models.encoders.key_maps``); None: random init.
        pretrained_format: ``bert`` or ``timm_vit``.
    """
    return compose(dataset_info, encoder, image_tokenizer, text_tokenizer, head_dropout=head_dropout,
                   head_init_std=head_init_std, distillation=distillation, teachers=teachers,
                   pretrained_path=pretrained_path, pretrained_format=pretrained_format)
