"""An exception inside a part's code says where it happened and keeps its own message."""
from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from unimm.cli.errors import add_where, describe
from unimm.registry import RegistryError
from unimm.training.evaluation import evaluate
from unimm.training.streams import BatchStream

CFG = {"model": {"type": "two_stage"}, "datasets": {"scores": {"type": "csv_scores"}},
       "evaluation": {"metrics": {"scores": ["accuracy", {"type": "picky"}]}}}


class Scores(torch.utils.data.Dataset):
    """Row 3 holds a value that is not a number, as a CSV file with a typo would."""

    task_type = "regression"

    def __init__(self, name: str = "scores") -> None:
        self.name = name
        self.values = ["0.5", "1.5", "2.0", "n/a", "1.0", "0.0"]

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: int) -> dict:
        return {"x": torch.tensor([float(self.values[index])])}

    def collate(self, samples: list[dict]) -> dict:
        return {"x": torch.stack([s["x"] for s in samples]), "dataset_name": self.name, "task_type": self.task_type}

    def info(self) -> dict:
        return {}


class Head(nn.Module):
    def forward(self, states: torch.Tensor, batch: dict) -> torch.Tensor:
        return states * batch["weights"]  # the batch has no "weights": KeyError


class TwoStage(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Linear(1, 1)
        self.heads = nn.ModuleDict({"scores": Head()})

    def forward(self, batch: dict) -> dict:
        return {"y": self.heads[batch["dataset_name"]](self.trunk(batch["x"]), batch), "losses": {}}


class NoLoss(nn.Module):
    def forward(self, batch: dict) -> dict:
        return {"losses": {}}


def raised(fn) -> BaseException:
    with pytest.raises(Exception) as info:
        fn()
    return info.value


def test_a_bad_sample_names_the_dataset_its_index_and_the_line():
    dataset = Scores()
    dataset.values[3] = "n/a"
    stream = BatchStream(dataset, batch_size=6, seed=0)  # the trainer's path: one batch of every sample
    text = describe(raised(lambda: next(stream)), CFG)
    assert text.startswith("ValueError in datasets.scores (type csv_scores), sample 3, at ")
    assert "tests/cli/test_errors.py:" in text and "in __getitem__" in text
    assert text.endswith("could not convert string to float: 'n/a' (run with --debug for the traceback)")


def test_a_missing_batch_key_names_the_model_and_the_submodule():
    batch = Scores().collate([{"x": torch.ones(1)}])
    text = describe(raised(lambda: TwoStage()(batch)), CFG)
    assert text.startswith("KeyError in model (type two_stage), submodule 'heads.scores' (Head.forward), at ")
    assert text.endswith(": 'weights' (run with --debug for the traceback)")


def test_a_failing_metric_names_its_config_path():
    class Picky:
        def reset(self) -> None:
            pass

        def update(self, batch: dict, output: dict) -> None:
            raise ValueError("needs labels")

        def compute(self) -> dict:
            return {}

    dataset = Scores()
    dataset.values[3] = "3.0"

    def run() -> None:
        evaluate(NoLoss(), {"scores": dataset},
                 {"scores": [Picky(), Picky()]}, batch_size=2, to_device=lambda b: b, autocast=contextlib.nullcontext)

    err = raised(run)
    assert describe(err).startswith("ValueError in evaluation.metrics.scores[0], its update, at ")
    assert describe(err, CFG).startswith("ValueError in evaluation.metrics.scores[0] (type accuracy), its update")
    assert describe(err).endswith("in update: needs labels (run with --debug for the traceback)")


def test_errors_outside_parts_keep_their_short_form():
    assert describe(ValueError("plain")) == "ValueError: plain (run with --debug for the traceback)"


def test_an_unknown_name_hints_at_the_plugin_imports_once_plugins_are_loaded(monkeypatch):
    from unimm import plugins

    err = RegistryError("unknown metrics name 'macro_f1'; registered: accuracy")
    monkeypatch.setattr(plugins, "_entry_point_packages", {})
    monkeypatch.setattr(plugins, "_loaded_dirs", {})
    assert describe(err) == "unknown metrics name 'macro_f1'; registered: accuracy"
    monkeypatch.setattr(plugins, "_entry_point_packages", {"my_plugin": "entry point 'my_plugin'"})
    assert describe(err).endswith("if the part comes from a plugin (my_plugin), its __init__.py must import the "
                                  "module that registers it (e.g. `from . import metrics`)")


def test_a_bad_sample_in_a_loader_worker_names_the_dataset_or_the_note_made_there():
    dataset = Scores()
    stream = BatchStream(dataset, batch_size=6, seed=0, num_workers=1)  # the error crosses a process boundary
    text = describe(raised(lambda: next(stream)), CFG)
    # the stream notes the sample in the worker (NamedSamples), so the index survives the process boundary
    assert text.startswith("ValueError in datasets.scores (type csv_scores), sample 3, at ")
    assert text.endswith("in __getitem__: could not convert string to float: 'n/a' (run with --debug for the "
                         "traceback)")

    class Noted(Scores):  # what a loader that notes the index in the worker (add_where) gives
        def __getitem__(self, index: int) -> dict:
            try:
                return super().__getitem__(index)
            except ValueError as err:
                add_where(err, f"datasets.{self.name}, sample {index}")
                raise

    stream = BatchStream(Noted(), batch_size=6, seed=0, num_workers=1)
    text = describe(raised(lambda: next(stream)), CFG)
    assert text.startswith("ValueError in datasets.scores (type csv_scores), sample 3, at ")
