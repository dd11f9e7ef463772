"""Linear regression on points y = 3x - 1: a model and a dataset from outside unimm."""
from __future__ import annotations

import os
import signal

import torch
from torch import nn

from unimm.registry import CALLBACKS, DATASETS, MODELS


class Points(torch.utils.data.Dataset):
    task_type = "regression"

    def __init__(self, name: str, split: str, count: int, nan_index: int | None = None, jitter: float = 0.0) -> None:
        self.name = name
        self.jitter = jitter
        gen = torch.Generator().manual_seed(0 if split == "train" else 1)
        self.x = torch.rand(count, 1, generator=gen)
        self.y = 3 * self.x - 1
        if nan_index is not None:
            self.y[nan_index] = float("nan")

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        x = self.x[i] + self.jitter * torch.randn(1) if self.jitter else self.x[i]  # an augmentation: the global RNG
        return {"x": x, "y": self.y[i]}

    def collate(self, samples: list[dict]) -> dict:
        return {"x": torch.stack([s["x"] for s in samples]), "y": torch.stack([s["y"] for s in samples]),
                "dataset_name": self.name, "task_type": self.task_type}

    def info(self) -> dict:
        return {}


@DATASETS.register()
def folder_points(name: str, split: str, count: int = 64, nan_index: int | None = None, jitter: float = 0.0) -> Points:
    """Points on the line y = 3x - 1 (optionally one NaN target; ``jitter``: Gaussian noise on x, drawn per read)."""
    return Points(name, split, count, nan_index, jitter)


class Line(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(1, 1)

    def forward(self, batch: dict) -> dict:
        pred = self.fc(batch["x"])
        return {"pred": pred, "losses": {f"{batch['dataset_name']}/mse": ((pred - batch["y"]) ** 2).mean()}}


@MODELS.register()
def folder_line() -> Line:
    """A 1-d linear regressor."""
    return Line()


@CALLBACKS.register()
class kill_at:  # noqa: N801
    """Kills its own process (SIGKILL, no clean-up) right after the given update."""

    def __init__(self, update: int) -> None:
        self.update = update

    def on_log(self, update: int, losses: dict) -> None:
        if update == self.update:
            os.kill(os.getpid(), signal.SIGKILL)


class NoisyLine(Line):
    """As Line, with dropout, so a resumed run must restore the RNG to match."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, batch: dict) -> dict:
        pred = self.fc(self.drop(batch["x"].expand(-1, 1)))
        return {"pred": pred, "losses": {f"{batch['dataset_name']}/mse": ((pred - batch["y"]) ** 2).mean()}}


@MODELS.register()
def folder_noisy_line() -> NoisyLine:
    """A 1-d linear regressor with input dropout."""
    return NoisyLine()
