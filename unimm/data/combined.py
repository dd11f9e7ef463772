"""A dataset whose training split is extended by other datasets (e.g. VQAv2 + VG questions)."""
from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from torch.utils.data import ConcatDataset

from unimm.config.errors import ConfigError
from unimm.data.common import TRAIN_SPLIT
from unimm.registry import DATASETS, Part, PartNode, is_node


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

    # what ``unimm_data check`` reads, over every part (the base's own would hide the extras)
    @property
    def has_labels(self) -> bool:
        return all(getattr(part, "has_labels", True) for part in self.datasets)

    def image_files(self) -> list[tuple[Any, Any]]:
        seen: dict[Any, Any] = {}
        for part in self.datasets:
            seen.update((path, size) for path, size in (part.image_files() if hasattr(part, "image_files") else ()))
        return list(seen.items())

    def label_counts(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for part in self.datasets:
            total.update(part.label_counts() if hasattr(part, "label_counts") else {})
        return dict(total)

    def __getattr__(self, attr: str) -> Any:  # format_predictions, coco, ... of the base
        if attr == "base":
            raise AttributeError(attr)
        return getattr(self.base, attr)


@DATASETS.register(parts={"base": "datasets", "extra": Part("datasets", deferred=True)})
def train_extended(*, base: Any, extra: list[Any], split: str, name: str) -> Any:
    """The base dataset, with the extra datasets' samples added to its train split only.

    UniT Sec. 4.1: "We also use those questions from the Visual Genome VQA dataset ... as
    additional training data, added to the training split of VQAv2." Every part is built
    split; the extras are built for ``split == "train"`` only (so an evaluation or test split never
    needs their files: VQAv2's test2015 has no Visual Genome counterpart), and must share the base's
    targets (e.g. the same answer vocabulary).

    Args:
        base: the dataset node whose samples, collate and ``info()`` the result keeps.
        extra: dataset nodes of the same task whose samples join the train split.
        split: the split (runtime).
        name: the config key (runtime); the extras' batches carry it too.

    Returns:
        ``base`` itself for every split but train; for train, base then extras.
    """
    if split != "train" or not extra:
        return base
    extra = [build_extra(node, i, split, name) for i, node in enumerate(extra)]
    for i, other in enumerate(extra):
        if other.task_type != base.task_type:
            raise ConfigError(f"task type {other.task_type!r} differs from the base dataset's {base.task_type!r}; "
                              "only datasets of the same task can be added", key=f"extra[{i}]")
        ours, theirs = base.info().get("answer_vocab"), other.info().get("answer_vocab")
        if ours is not None and theirs is not None and list(ours) != list(theirs):
            raise ConfigError("its answer vocabulary differs from the base's; build both from the same vocabulary "
                              "(e.g. visual_genome_qa.vqa2_data_dir)", key=f"extra[{i}]")
        other.name = name  # batches of the extras carry the base's name
    return TrainExtended(base, extra)


def build_extra(node: Any, index: int, split: str, name: str) -> Any:
    """One extra dataset of the train split; its missing files say that it is optional."""
    if not isinstance(node, PartNode) and not is_node(node):
        return node  # built already (given in code)
    try:
        return DATASETS.build(node, path=getattr(node, "path", f"extra[{index}]"), split=split, name=name)
    except ConfigError as err:
        raise ConfigError([*err.problems, f"datasets.{name}.extra[{index}] is extra training data added to "
                           f"{name}'s train split (UniT Sec. 4.1: the Visual Genome questions); give its files, or "
                           f"train without it: datasets.{name}.extra=[]"], source=err.source, rooted=True) from None


@DATASETS.register(parts={"train": Part("datasets", deferred=True), "eval": Part("datasets", deferred=True)})
def by_split(*, train: Any, eval: Any, split: str, name: str) -> Any:  # noqa: A002 (the split's name)
    """One dataset node for the train split and another for every other split; only the one the split
    needs is built.

    For a task whose training samples differ in kind from its evaluation samples: METER's retrieval
    fine-tuning trains on captions with a drawn mismatched image and 15 drawn negative texts
    (``image_text_pretraining`` over ``karpathy_retrieval``) and is evaluated on every image-caption
    pair (``karpathy_retrieval`` with ``sample_per: pair``).

    Args:
        train: the dataset node of the train split.
        eval: the dataset node of the val and test splits.
        split: the split (runtime).
        name: the config key (runtime); both nodes are built under it.

    Returns:
        The ``train`` node's dataset for the train split, the ``eval`` node's for any other.
    """
    key = "train" if split == TRAIN_SPLIT else "eval"
    node = train if key == "train" else eval
    if not isinstance(node, PartNode) and not is_node(node):
        return node  # built already (given in code)
    return DATASETS.build(node, path=getattr(node, "path", key), split=split, name=name)
