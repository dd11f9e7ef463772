"""Frozen teachers for ViT-BERT's knowledge distillation (Sec. 3.2.1, Eq. 7).

A teacher is a separately trained model (its own run: ``image_teacher.yaml``, ``text_teacher.yaml``)
whose logits label the student's batches. The student's config names it: the models node it was
built from (its architecture, as its run built it) and its checkpoint, and the student's datasets
whose batches it labels::

    teachers:
      image: {model: {type: vit_bert_small}, checkpoint: save/vit_bert_shapes_image_teacher/checkpoints/last,
              datasets: [images]}

The teacher is built with the student's ``dataset_info`` of those datasets (so its heads have the
student's class counts) and every one of its weights must come from the checkpoint. Its outputs
must hold the logits the student's heads produce, under the same keys (``logits``, ``mlm_logits``,
``nsp_logits``; a ViT-BERT model trained on those datasets does).

The paper's teachers are the published BERT and ViT: ``published_bert_teacher`` and
``published_vit_teacher`` (``published_teachers.py``) wrap them from local files; their node names
their weights (``path``), so their spec has no ``checkpoint``.

Why ``FrozenTeacher`` is not an ``nn.Module`` registered under the student: a registered sub-module
would put the teacher's weights in the student's ``state_dict`` (every checkpoint of the student, and
``checkpoint.init_from`` of a run that fine-tunes it), in ``model.parameters()`` (the optimizer,
weight decay, clipping, DDP's gradient all-reduce, the gradient mask) and under ``model.train()``
(dropout on in the teacher). Held as a plain attribute it is none of these; the student forwards
``.to(device)`` / ``.half()`` to it (``ViTBERT._apply``) so it still lives on the run's device.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence, TypedDict

import torch
from torch import nn

from unimm.config.errors import ConfigError
from unimm.config.refs import DatasetName
from unimm.registry import MODELS, current_path

from .published_teachers import PublishedTeacher

logger = logging.getLogger("unimm")


class _TeacherSource(TypedDict):
    model: Any  # a models node: the teacher's architecture, as its own run built it, or a published teacher
    datasets: list[DatasetName]  # the student's datasets whose batches it labels


class TeacherSpec(_TeacherSource, total=False):
    """One teacher in a student's ``teachers`` argument: ``model`` and ``datasets``, and ``checkpoint``.

    ``checkpoint`` is optional here only because a published teacher (``published_bert_teacher``,
    ``published_vit_teacher``) names its files in its node; any other teacher must give it
    (``build_teachers`` says so). A ``total=False`` subclass, not ``NotRequired``: with postponed
    annotations Python 3.11 would count a ``NotRequired`` key as required.
    """

    checkpoint: str  # its weights: an unimm checkpoint (e.g. <its run>/checkpoints/last) or a weights file


class FrozenTeacher:
    """A trained model that gives logits without gradients, always in eval mode.

    Args:
        model: the teacher, its weights loaded.
        datasets: the student's datasets it labels.
        source: where its weights came from (for messages).
    """

    def __init__(self, model: nn.Module, datasets: Sequence[str], source: str) -> None:
        self.model = model.requires_grad_(False).eval()
        self.datasets = tuple(datasets)
        self.source = source

    @torch.no_grad()
    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """The teacher's outputs on the student's batch (its ``losses`` included, unused)."""
        if self.model.training:  # nobody may turn its dropout on: eval whatever was called on it
            self.model.eval()
        return self.model(batch)

    def __repr__(self) -> str:
        return f"FrozenTeacher({type(self.model).__name__}, datasets={list(self.datasets)}, from {self.source})"


def build_teachers(specs: Mapping[str, TeacherSpec] | None, dataset_info: Mapping[str, Mapping[str, Any]]
                   ) -> dict[str, FrozenTeacher]:
    """Each dataset's teacher, built and loaded from the student's ``teachers`` argument.

    Args:
        specs: teacher name -> ``TeacherSpec``.
        dataset_info: the student's, per dataset.

    Returns:
        Dataset name -> its teacher (one teacher may label several datasets).

    Raises:
        ConfigError: a dataset that is not the student's or has two teachers, a checkpoint that is
            absent or does not hold exactly the teacher's weights.
    """
    by_dataset: dict[str, FrozenTeacher] = {}
    for name, spec in (specs or {}).items():
        datasets = list(spec["datasets"])
        unknown = [d for d in datasets if d not in dataset_info]
        if unknown or not datasets:
            raise ConfigError(f"{unknown or 'an empty list'}: name the student's datasets this teacher labels "
                              f"({', '.join(dataset_info)})", key=f"teachers.{name}.datasets")
        twice = [d for d in datasets if d in by_dataset]
        if twice:
            raise ConfigError(f"{twice} already have a teacher; give each dataset one", key=f"teachers.{name}.datasets")
        model = MODELS.build(spec["model"], path=current_path(f"teachers.{name}.model"),
                             dataset_info={d: dict(dataset_info[d]) for d in datasets})
        source = teacher_weights(model, spec.get("checkpoint"), key=f"teachers.{name}.checkpoint")
        teacher = FrozenTeacher(model, datasets, source)
        logger.info("teacher %s: %s parameters from %s, frozen, labels %s", name,
                    f"{sum(p.numel() for p in model.parameters()):,}", source, ", ".join(datasets))
        by_dataset.update({d: teacher for d in datasets})
    return by_dataset


def teacher_weights(model: nn.Module, checkpoint: str | None, key: str) -> str:
    """Where the teacher's weights come from: its published files, or ``checkpoint`` loaded into it."""
    if isinstance(model, PublishedTeacher):
        if checkpoint is not None:
            raise ConfigError(f"{type(model).__name__} reads its weights from its model node's path ({model.source}); "
                              "remove checkpoint", key=key)
        return model.source
    if checkpoint is None:
        raise ConfigError("required: the teacher's weights (e.g. <its run>/checkpoints/last); only a published "
                          "teacher (published_bert_teacher, published_vit_teacher) goes without", key=key)
    return load_teacher_weights(model, checkpoint, key)


def load_teacher_weights(model: nn.Module, checkpoint: str, key: str) -> str:
    """Load every weight of ``model`` from ``checkpoint``; returns the file read."""
    from unimm.training.checkpoint import read_weights, state_problems

    if not Path(checkpoint).exists():
        raise ConfigError(f"{checkpoint} does not exist; train the teacher first (its config, e.g. "
                          "projects/vit_bert/image_teacher.yaml, or list it in checkpoint.needs so that this run "
                          "trains it first)", key=key)
    source, weights = read_weights(checkpoint)
    problems = state_problems(model.state_dict(), weights)
    if problems:
        raise ConfigError(f"{source} is not this teacher's checkpoint: {'; '.join(problems[:5])}"
                          f"{' ...' if len(problems) > 5 else ''}; the teacher's model node must be the one its "
                          "run was built from, on datasets with the same classes", key=key)
    model.load_state_dict(weights, strict=True)
    return str(source)
