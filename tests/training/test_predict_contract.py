"""run_type=predict writes what datasets format, and says so when one cannot (FormatsPredictions)."""
from __future__ import annotations

import contextlib
import json
import logging

import pytest
import torch
from torch import nn

from unimm.config import ConfigError
from unimm.training.evaluation import predict


class Plain(torch.utils.data.Dataset):
    task_type = "regression"

    def __init__(self, name: str) -> None:
        self.name = name

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict:
        return {"x": torch.tensor([float(index)])}

    def collate(self, samples: list[dict]) -> dict:
        return {"x": torch.stack([s["x"] for s in samples]), "dataset_name": self.name, "task_type": self.task_type}

    def info(self) -> dict:
        return {}


class Formatting(Plain):
    def format_predictions(self, batch: dict, output: dict) -> list[dict]:
        return [{"y": float(y)} for y in output["y"]]


class Double(nn.Module):
    def forward(self, batch: dict) -> dict:
        return {"y": batch["x"][:, 0] * 2, "losses": {}}


def run_predict(datasets: dict, folder) -> list:
    return predict(Double(), datasets, folder=folder, split="val", batch_size=2, to_device=lambda b: b,
                   autocast=contextlib.nullcontext)


def test_predict_without_a_formatting_dataset_is_an_error_naming_it_and_the_contract(tmp_path):
    with pytest.raises(ConfigError) as err:
        run_predict({"points": Plain("points")}, tmp_path)
    text = str(err.value)
    assert "datasets.points (Plain) has no format_predictions(batch, output)" in text
    assert "FormatsPredictions contract in unimm/interfaces.py" in text
    assert not (tmp_path / "predictions").exists()


def test_predict_skips_the_datasets_that_do_not_format_with_a_warning(tmp_path, caplog):
    log = logging.getLogger("unimm")
    log.addHandler(caplog.handler)
    try:
        written = run_predict({"points": Plain("points"), "scored": Formatting("scored")}, tmp_path)
    finally:
        log.removeHandler(caplog.handler)
    assert written == [tmp_path / "predictions" / "scored_val.json"]
    assert json.loads(written[0].read_text()) == [{"y": 0.0}, {"y": 2.0}, {"y": 4.0}, {"y": 6.0}]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert set(warnings) == {"run_type=predict: no predictions for datasets.points: it has no format_predictions "
                        "(the FormatsPredictions contract in unimm/interfaces.py)"}  # (caplog may see it twice, via unimm's and the root handler)
