"""A dataset whose training split is extended by other datasets (e.g. VQAv2 + VG questions)."""
from __future__ import annotations

from typing import Any, Sequence

from torch.utils.data import ConcatDataset

from unimm.config.errors import ConfigError
from unimm.registry import DATASETS


class TrainExtended(ConcatDataset):
    """``base`` followed by ``extra`` samples; ``collate``, ``info`` and the rest come from ``base``."""

    def __init__(self, base: Any, extra: Sequence[Any]) -> None:
        super().__init__([base, *extra])
        self.base = base
        self.name = base.name
        self.task_type = base.task_type

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return self.base.collate(samples)

    def info(self) -> dict[str, Any]:
        return self.base.info()

    def __getattr__(self, attr: str) -> Any:  # format_predictions, coco, ... of the base
        if attr == "base":
            raise AttributeError(attr)
        return getattr(self.base, attr)


@DATASETS.register(parts={"base": "datasets", "extra": "datasets"})
def train_extended(*, base: Any, extra: list[Any], split: str, name: str) -> Any:
    """The base dataset, with the extra datasets' samples added to its train split only.

    UniT Sec. 4.1: "We also use those questions from the Visual Genome VQA dataset ... as
    additional training data, added to the training split of VQAv2." Every part is built
    for the same split; the extras are used for ``split == "train"`` only, and must share
    the base's targets (e.g. the same answer vocabulary).

    Args:
        base: the dataset node whose samples, collate and ``info()`` the result keeps.
        extra: dataset nodes of the same task whose samples join the train split.
        split: the split (runtime).
        name: the config key (runtime); the extras' batches carry it too.

    Returns:
        ``base`` itself for every split but train; for train, base then extras.
    """
    for i, other in enumerate(extra):
        if other.task_type != base.task_type:
            raise ConfigError(f"task type {other.task_type!r} differs from the base dataset's {base.task_type!r}; "
                              "only datasets of the same task can be added", key=f"extra[{i}]")
        ours, theirs = base.info().get("answer_vocab"), other.info().get("answer_vocab")
        if ours is not None and theirs is not None and list(ours) != list(theirs):
            raise ConfigError("its answer vocabulary differs from the base's; build both from the same vocabulary "
                              "(e.g. visual_genome_qa.vqa2_data_dir)", key=f"extra[{i}]")
        other.name = name  # batches of the extras carry the base's name
    return TrainExtended(base, extra) if split == "train" and extra else base
