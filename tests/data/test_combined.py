"""train_extended: the extras join the train split only and must share the base's targets."""
import pytest

from unimm.config import ConfigError
from unimm.data.combined import train_extended


class Part:
    def __init__(self, name: str, size: int, vocab: list[str], task_type: str = "vqa") -> None:
        self.name, self.size, self.vocab, self.task_type = name, size, vocab, task_type
        self.label = name  # stays when the combinator renames the part

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict:
        return {"source": self.label, "i": i}

    def collate(self, samples: list) -> dict:
        return {"samples": samples, "dataset_name": self.name}

    def info(self) -> dict:
        return {"answer_vocab": self.vocab}


def test_extras_join_the_train_split_only():
    base, extra = Part("vqa2", 3, ["yes", "no"]), Part("vg_qa", 2, ["yes", "no"])
    train = train_extended(base=base, extra=[extra], split="train", name="vqa2")
    assert len(train) == 5 and train[4] == {"source": "vg_qa", "i": 1}
    assert train.info() == base.info() and train.collate([train[0]])["dataset_name"] == "vqa2"
    assert extra.name == "vqa2"  # its batches carry the configured name
    val = train_extended(base=base, extra=[Part("vg_qa", 2, ["yes", "no"])], split="val", name="vqa2")
    assert val is base


def test_a_different_answer_vocabulary_or_task_is_refused():
    base = Part("vqa2", 3, ["yes", "no"])
    with pytest.raises(ConfigError, match=r"extra\[0\]: its answer vocabulary differs"):
        train_extended(base=base, extra=[Part("vg_qa", 2, ["no", "yes"])], split="train", name="vqa2")
    with pytest.raises(ConfigError, match=r"extra\[0\]: task type 'classification' differs"):
        train_extended(base=base, extra=[Part("x", 2, ["yes", "no"], "classification")], split="train", name="vqa2")


def test_by_split_builds_the_train_node_for_train_and_the_eval_node_otherwise(tiny_benchmark, tmp_path):
    """Only the node the split needs is built: the other one's files are never read."""
    from unimm.registry import DATASETS

    tokenizer = {"type": "bert_tokenizer", "path": str(tiny_benchmark / "shapes" / "vocab"), "max_length": 40}
    karpathy = {"type": "karpathy_retrieval", "data_dir": str(tiny_benchmark / "shapes" / "karpathy"),
                "annotation_file": "dataset_flickr30k.json", "tokenizer": tokenizer,
                "image_dir": str(tiny_benchmark / "shapes" / "flickr30k" / "flickr30k_images")}
    missing = {**karpathy, "data_dir": str(tmp_path / "absent")}
    node = {"type": "by_split", "train": {**karpathy, "sample_per": "caption"}, "eval": missing}
    train = DATASETS.build(node, path="datasets.f30k", split="train", name="f30k")
    assert train.task_type == "retrieval" and train.name == "f30k"
    with pytest.raises(ConfigError, match="absent"):
        DATASETS.build(node, path="datasets.f30k", split="val", name="f30k")
    pairs = DATASETS.build({**node, "eval": {**karpathy, "sample_per": "pair"}, "train": missing},
                           path="datasets.f30k", split="test", name="f30k")
    assert pairs.task_type == "retrieval_pairs" and len(pairs) == pairs.info()["num_images"] * \
        pairs.info()["num_captions"]
