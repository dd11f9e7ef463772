"""A Gaussian-blobs classification dataset and an MLP classifier for it."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from unimm.registry import DATASETS, MODELS


class BlobsDataset(torch.utils.data.Dataset):
    """``num_classes`` Gaussian clusters in ``dim`` dimensions; the split decides the draw."""

    task_type = "classification"

    def __init__(self, name: str, split: str, num_samples: int, num_classes: int, dim: int,
                 noise: float, seed: int) -> None:
        self.name = name
        centers = torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(seed)) * 2
        offset = {"train": 1, "val": 2, "test": 3}.get(split, 4)
        gen = torch.Generator().manual_seed(seed * 10 + offset)
        self.labels = torch.randint(num_classes, (num_samples,), generator=gen)
        self.features = centers[self.labels] + noise * torch.randn(num_samples, dim, generator=gen)
        self.num_classes = num_classes

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"features": self.features[index], "label": self.labels[index]}

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {
            "features": torch.stack([s["features"] for s in samples]),  # [B, dim]
            "label": torch.stack([s["label"] for s in samples]),  # [B]
            "dataset_name": self.name,
            "task_type": self.task_type,
        }

    def info(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "dim": self.features.shape[1]}


@DATASETS.register()
def blobs(name: str, split: str, num_samples: int = 512, num_classes: int = 4, dim: int = 16,
          noise: float = 1.0, seed: int = 0) -> BlobsDataset:
    """Gaussian clusters for classification, generated in memory (no files)."""
    return BlobsDataset(name, split, num_samples, num_classes, dim, noise, seed)


class MLPClassifier(nn.Module):
    """features ``[B, dim]`` -> logits ``[B, num_classes]`` with a cross-entropy loss."""

    def __init__(self, dim: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, num_classes))

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        logits = self.net(batch["features"])
        loss = nn.functional.cross_entropy(logits, batch["label"])
        return {"logits": logits, "losses": {f"{batch['dataset_name']}/cross_entropy": loss}}


@MODELS.register()
def mlp_classifier(dataset_info: dict[str, dict[str, Any]], hidden: int = 64) -> MLPClassifier:
    """A 2-layer GeLU MLP sized from the (single) dataset's ``dim`` and ``num_classes``."""
    (info,) = dataset_info.values()
    return MLPClassifier(info["dim"], hidden, info["num_classes"])
