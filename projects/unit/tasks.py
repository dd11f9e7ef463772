"""UniT's task wiring: how each dataset is run (task, inputs, queries, head), decided once by the
model builder from ``model.tasks`` and the datasets' ``info()``, then passed to the parts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping, TypedDict

from unimm.config.errors import ConfigError
from unimm.config.refs import DatasetName

Task = Literal["detection", "vqa", "classification"]
Modality = Literal["auto", "image", "text", "image_text"]
TASKS: tuple[str, ...] = ("detection", "vqa", "classification")
# The datasets' ``task_type`` (unimm.interfaces.Dataset) and the UniT task each is trained as.
TASK_OF_TYPE = {
    "detection": "detection", "vqa": "vqa", "classification": "classification",
    "text_classification": "classification", "image_classification": "classification",
    "visual_entailment": "classification",
}
HEAD_OF_TASK = {"detection": "detection_head", "vqa": "mlp_classifier_head", "classification": "mlp_classifier_head"}
LOSS_OF_TASK = {"vqa": "soft_bce", "classification": "cross_entropy"}
# Inputs each task reads in the paper; classification covers image+text (SNLI-VE) and text
# (GLUE) tasks alike, so it follows what the batch carries.
DEFAULT_MODALITY = {"detection": "image", "vqa": "image_text", "classification": "auto"}


class TaskOverrides(TypedDict, total=False):
    """``model.tasks.<dataset>``: how one dataset is run, where the defaults do not fit.

    Keys:
        task: ``detection``, ``vqa`` or ``classification`` (default: from the dataset's
            ``task_type``).
        modality: ``image``, ``text``, ``image_text``, or ``auto`` (whichever of ``image`` and
            ``input_ids`` the batch carries); default: the task's inputs in the paper.
        num_queries: decoder queries of this dataset (default: the model's
            ``detection_queries`` or ``other_queries``).
        head: a heads node (default ``detection_head`` or ``mlp_classifier_head``); the model
            passes the sizes (``hidden_size``, ``num_classes``, ...) and the task's loss.
    """

    task: Task
    modality: Modality
    num_queries: int
    head: Any


TaskTable = dict[DatasetName, TaskOverrides]


@dataclass(frozen=True)
class TaskSpec:
    """How one dataset is run, resolved.

    Attributes:
        task: ``detection``, ``vqa`` or ``classification``.
        modality: ``image``, ``text``, ``image_text``, or ``auto``.
        num_queries: its decoder queries.
        head: its head node (a mapping with ``type``).
    """

    task: str
    modality: str
    num_queries: int
    head: Mapping[str, Any]


def resolve_tasks(dataset_info: Mapping[str, Mapping[str, Any]], tasks: Mapping[str, Mapping[str, Any]] | None,
                  detection_queries: int, other_queries: int) -> dict[str, TaskSpec]:
    """Each dataset's ``TaskSpec``, from ``model.tasks`` overrides and its info's ``task_type``.

    Errors name the key relative to the model node (``tasks.<dataset>.task``); the registry
    roots them at the model's place in the config.
    """
    tasks = dict(tasks or {})
    problems = [(f"tasks.{name}", f"no such dataset (configured: {', '.join(dataset_info)})")
                for name in tasks if name not in dataset_info]
    specs = {}
    for name, info in dataset_info.items():
        entry = dict(tasks.get(name) or {})
        task = entry.get("task") or TASK_OF_TYPE.get(str(info.get("task_type")))
        if task not in TASKS:
            problems.append((f"tasks.{name}.task", f"dataset '{name}' has task_type {info.get('task_type')!r}, "
                             f"which UniT does not train; set model.tasks.{name}.task to one of {', '.join(TASKS)}"))
            continue
        modality = entry.get("modality") or DEFAULT_MODALITY[task]
        default_queries = detection_queries if task == "detection" else other_queries
        head = entry.get("head") or {}
        head = {"type": head} if isinstance(head, str) else {"type": HEAD_OF_TASK[task], **head}
        specs[name] = TaskSpec(task, modality, int(entry.get("num_queries", default_queries)), head)
    if problems:
        raise ConfigError(problems)
    return specs


def require(info: Mapping[str, Any], dataset: str, key: str, needed_by: str) -> Any:
    """``info[key]``, or an error naming the dataset, the key and what needs it."""
    if key not in info:
        raise ConfigError(f"dataset '{dataset}': its info() has no '{key}' (it has: "
                          f"{', '.join(sorted(info)) or 'nothing'}), which {needed_by} needs; "
                          f"make the dataset report it")
    return info[key]


def num_classes_of(info: Mapping[str, Any], dataset: str, task: str, needed_by: str) -> int:
    """Output size of a dataset's head: object classes, answers, or classes."""
    if task == "detection":
        return len(require(info, dataset, "categories", needed_by))
    if task == "vqa":
        if "num_answers" in info:
            return int(info["num_answers"])
        return len(require(info, dataset, "answer_vocab", needed_by))
    return int(require(info, dataset, "num_classes", needed_by))


def head_arguments(name: str, spec: TaskSpec, info: Mapping[str, Any], hidden_size: int) -> dict[str, Any]:
    """What the model passes to dataset ``name``'s head: its width, classes and, per task, its loss or attributes."""
    args: dict[str, Any] = {"hidden_size": hidden_size,
                            "num_classes": num_classes_of(info, name, spec.task, spec.head["type"])}
    if spec.task == "detection":
        args["num_attributes"] = int(info.get("num_attributes") or 0)
    else:
        args["loss"] = LOSS_OF_TASK[spec.task]
    return args
