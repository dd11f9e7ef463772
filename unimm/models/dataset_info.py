"""Reading what a model needs from ``dataset_info`` (``dataset.info()`` per dataset config key),
with errors that name the dataset, the missing key and the fix."""
from __future__ import annotations

from typing import Any, Mapping

from unimm.config.errors import ConfigError

TASKS = ("detection", "vqa", "classification")
# ``task_type`` values datasets may report, and the UniT task each one is trained as.
_TASK_OF_TYPE = {
    "detection": "detection", "vqa": "vqa", "classification": "classification",
    "text_classification": "classification", "image_classification": "classification",
    "visual_entailment": "classification", "entailment": "classification",
}


def info_of(dataset_info: Mapping[str, Mapping[str, Any]], dataset: str) -> Mapping[str, Any]:
    """The info of one dataset; a clear error when the dataset is not configured."""
    if dataset not in dataset_info:
        known = ", ".join(dataset_info) or "none"
        raise ConfigError(f"no dataset '{dataset}' in dataset_info (configured: {known}); "
                          f"add datasets.{dataset} to the config or fix the name")
    return dataset_info[dataset]


def require(info: Mapping[str, Any], dataset: str, key: str, needed_by: str) -> Any:
    """``info[key]``, or an error naming the dataset, the key and what needs it."""
    if key not in info:
        raise ConfigError(f"dataset '{dataset}': its info() has no '{key}' (it has: "
                          f"{', '.join(sorted(info)) or 'nothing'}), which {needed_by} needs; "
                          f"make the dataset report it")
    return info[key]


def guess_task(info: Mapping[str, Any]) -> str | None:
    """The UniT task of a dataset from its info, or None when it cannot be told.

    ``task_type`` wins when it is known; otherwise ``categories`` means detection,
    ``answer_vocab`` / ``num_answers`` VQA, and ``num_classes`` classification.
    """
    reported = info.get("task_type")
    if reported in _TASK_OF_TYPE:
        return _TASK_OF_TYPE[reported]
    if "categories" in info:
        return "detection"
    if "answer_vocab" in info or "num_answers" in info:
        return "vqa"
    if "num_classes" in info:
        return "classification"
    return None


def infer_task(info: Mapping[str, Any], dataset: str) -> str:
    """``guess_task`` or an error telling how to set the task explicitly."""
    task = guess_task(info)
    if task is None:
        raise ConfigError(f"dataset '{dataset}': cannot tell its task from its info() keys "
                          f"({', '.join(sorted(info)) or 'none'}); set model.tasks.{dataset}.task "
                          f"to one of {', '.join(TASKS)}")
    return task


def num_classes_of(info: Mapping[str, Any], dataset: str, task: str, needed_by: str) -> int:
    """Output size of a dataset's head: object classes, answers, or classes."""
    if task == "detection":
        return len(require(info, dataset, "categories", needed_by))
    if task == "vqa":
        if "num_answers" in info:
            return int(info["num_answers"])
        return len(require(info, dataset, "answer_vocab", needed_by))
    return int(require(info, dataset, "num_classes", needed_by))


def check_dataset_name(name: str) -> None:
    """Dataset names key per-dataset parameters (``heads.<name>``), so they may not hold a "."."""
    if not name or "." in name:
        raise ConfigError(f"dataset name {name!r} cannot key model parameters (empty or with a '.'); "
                          "rename it in the datasets section")
