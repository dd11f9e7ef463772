"""Task samplers: which dataset each training update draws its batch from.

UniT (Sec. 3.5) trains on several datasets by drawing, at every iteration, one dataset
with fixed probabilities (supplementary Table A.2). A sampler's draws depend only on the
seed it was built with, through its own generator (never the global RNG), so every rank
draws the same dataset at every update without communicating, and ``state_dict``
captures the generator so a resumed run continues the exact sequence.

Registered builders (runtime arguments ``dataset_sizes`` and ``seed``):

* ``ratios``: given per-dataset probabilities (UniT Table A.2), normalised;
* ``size_proportional``: probability proportional to ``size ** (1 / temperature)``;
* ``round_robin``: datasets in turn, in a fixed order.
"""
from __future__ import annotations

import bisect
from typing import Annotated, Any, Sequence

import torch

from unimm.config.errors import ConfigError
from unimm.config.refs import DatasetName, EveryDataset, Range
from unimm.registry import TASK_SAMPLERS

PATH = "training.sampler"


class ProbabilitySampler:
    """Draws dataset names independently with fixed probabilities.

    Args:
        names: the datasets, in config order.
        probabilities: one non-negative weight per name, summing to 1.
        seed: seeds the private generator; equal seeds give equal sequences.
    """

    def __init__(self, names: Sequence[str], probabilities: Sequence[float], seed: int) -> None:
        assert len(names) == len(probabilities) and abs(sum(probabilities) - 1.0) < 1e-9
        self.names = list(names)
        self.probabilities = [float(p) for p in probabilities]
        self._cumulative = torch.tensor(self.probabilities, dtype=torch.float64).cumsum(0).tolist()
        self._last = max(i for i, p in enumerate(self.probabilities) if p > 0)
        self._generator = torch.Generator().manual_seed(int(seed))
        self.draws = 0

    def next(self) -> str:
        """The dataset of the next update."""
        u = torch.rand((), generator=self._generator, dtype=torch.float64).item()
        # the first index whose cumulative probability exceeds u; zero-probability
        # datasets share their predecessor's cumulative value and are never chosen
        index = min(bisect.bisect_right(self._cumulative, u), self._last)
        self.draws += 1
        return self.names[index]

    def state_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "generator": self._generator.get_state(), "draws": self.draws}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_same_datasets(state["names"], self.names)
        self._generator.set_state(state["generator"])
        self.draws = int(state["draws"])


class RoundRobinSampler:
    """Cycles through ``order`` (a name may repeat to draw it more often).

    Args:
        order: dataset names in the order they are drawn.
    """

    def __init__(self, order: Sequence[str]) -> None:
        self.order = list(order)
        self.position = 0

    @property
    def names(self) -> list[str]:
        return sorted(set(self.order))

    def next(self) -> str:
        name = self.order[self.position % len(self.order)]
        self.position += 1
        return name

    def state_dict(self) -> dict[str, Any]:
        return {"names": self.names, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_same_datasets(state["names"], self.names)
        self.position = int(state["position"])


def check_same_datasets(saved: Sequence[str], current: Sequence[str]) -> None:
    if sorted(saved) != sorted(current):
        raise ConfigError(
            f"{PATH}: the checkpoint's sampler draws from {sorted(saved)} but this config trains on "
            f"{sorted(current)}; resume with the same datasets, or start a new run with checkpoint.init_from")


def check_sizes(dataset_sizes: dict[str, int]) -> None:
    if not dataset_sizes:
        raise ConfigError("datasets: no training dataset is configured; add datasets.<name>.type=<builder>",
                          rooted=True)


@TASK_SAMPLERS.register()
def ratios(ratios: EveryDataset[dict[DatasetName, Annotated[float, Range(ge=0)]]], dataset_sizes: dict[str, int],
           seed: int) -> ProbabilitySampler:
    """Draws each dataset with a given probability (UniT supplementary Table A.2).

    Args:
        ratios: dataset name -> non-negative weight; every training dataset must appear
            (0 to never draw it); weights are normalised to sum to 1.
        dataset_sizes: training dataset name -> number of samples (runtime).
        seed: the run's seed, identical on every rank (runtime).
    """
    check_sizes(dataset_sizes)
    problems = [(f"ratios.{name}", f"no training dataset '{name}'; the datasets are {', '.join(dataset_sizes)}")
                for name in ratios if name not in dataset_sizes]
    problems += [(f"ratios.{name}", f"missing; give every training dataset a ratio (ratios.{name}=0 never draws it)")
                 for name in dataset_sizes if name not in ratios]
    if not problems and sum(ratios.values()) <= 0:
        problems.append(("ratios", "every ratio is 0; give at least one dataset a positive ratio"))
    if problems:
        raise ConfigError(problems)
    names = list(dataset_sizes)
    total = float(sum(ratios[n] for n in names))
    return ProbabilitySampler(names, [ratios[n] / total for n in names], seed)


@TASK_SAMPLERS.register()
def size_proportional(dataset_sizes: dict[str, int], seed: int,
                      temperature: Annotated[float, Range(gt=0)] = 1.0) -> ProbabilitySampler:
    """Draws each dataset with probability proportional to ``size ** (1 / temperature)``.

    Args:
        dataset_sizes: training dataset name -> number of samples (runtime).
        seed: the run's seed, identical on every rank (runtime).
        temperature: 1 is proportional to size; larger values flatten towards uniform.
    """
    check_sizes(dataset_sizes)
    weights = [max(int(s), 0) ** (1.0 / temperature) for s in dataset_sizes.values()]
    if sum(weights) <= 0:
        raise ConfigError(f"every training dataset is empty ({dataset_sizes}); check datasets.*")
    return ProbabilitySampler(list(dataset_sizes), [w / sum(weights) for w in weights], seed)


@TASK_SAMPLERS.register()
def round_robin(dataset_sizes: dict[str, int], seed: int,
                order: EveryDataset[list[DatasetName]] | None = None) -> RoundRobinSampler:
    """Draws the datasets in turn.

    Args:
        dataset_sizes: training dataset name -> number of samples (runtime).
        seed: unused (the order is fixed); accepted like every sampler's.
        order: the cycle of names (repeats allowed, every dataset at least once);
            None is the config order of the datasets.
    """
    check_sizes(dataset_sizes)
    order = list(dataset_sizes) if order is None else list(order)
    problems = [("order", f"no training dataset '{n}'; the datasets are {', '.join(dataset_sizes)}")
                for n in dict.fromkeys(order) if n not in dataset_sizes]
    problems += [("order", f"dataset '{n}' is never drawn; add it to the order") for n in dataset_sizes
                 if n not in order]
    if problems:
        raise ConfigError(problems)
    return RoundRobinSampler(order)
