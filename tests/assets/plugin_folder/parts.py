"""Linear regression on points y = 3x - 1: a model and a dataset from outside unimm."""
from __future__ import annotations

import torch
from torch import nn

from unimm.registry import DATASETS, MODELS


class Points(torch.utils.data.Dataset):
    task_type = "regression"

    def __init__(self, name: str, split: str, count: int) -> None:
        self.name = name
        gen = torch.Generator().manual_seed(0 if split == "train" else 1)
        self.x = torch.rand(count, 1, generator=gen)
        self.y = 3 * self.x - 1

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i]}

    def collate(self, samples: list[dict]) -> dict:
        return {"x": torch.stack([s["x"] for s in samples]), "y": torch.stack([s["y"] for s in samples]),
                "dataset_name": self.name, "task_type": self.task_type}

    def info(self) -> dict:
        return {}


@DATASETS.register()
def folder_points(name: str, split: str, count: int = 64) -> Points:
    """Points on the line y = 3x - 1."""
    return Points(name, split, count)


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
