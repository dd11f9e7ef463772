"""A run folder's life: whether a run resumes, and an earlier run set aside before a new one starts.

A training run with ``checkpoint.resume=false`` in a folder that holds an earlier run's records
moves them to ``<save_dir>/earlier_runs/<time>/`` first, so the new run's ``metrics.jsonl``,
``train.log`` and checkpoints are its own and nothing of the earlier run is lost (the README's
command run twice in a row just works). ``resume=true`` needs ``checkpoints/last``;
``resume=if_exists`` continues when there is one and starts fresh otherwise.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from unimm.config.errors import ConfigError

logger = logging.getLogger("unimm")
EARLIER = "earlier_runs"
# What a run writes into its folder (besides files a config names elsewhere).
RUN_RECORDS = ("config.yaml", "train.log", "metrics.jsonl", "tensorboard", "checkpoints", "curves.png",
               "predictions", "results.md", "results.json",
               *(f"config_{kind}.yaml" for kind in ("val", "test", "predict")),
               *(f"{kind}.log" for kind in ("val", "test", "predict")))


def last_checkpoint(cfg: dict[str, Any]) -> Path:
    return Path(cfg["env"]["save_dir"]) / "checkpoints" / "last"


def resumes(cfg: dict[str, Any]) -> bool:
    """Whether this run continues from (or, for val / test / predict, evaluates) its folder's last checkpoint.

    Raises:
        ConfigError: ``checkpoint.resume=true`` and there is no checkpoint to continue from.
    """
    wanted = cfg["checkpoint"]["resume"]
    exists = last_checkpoint(cfg).exists()
    if wanted is True and not exists:
        raise ConfigError(f"checkpoint.resume: true, but {last_checkpoint(cfg)} does not exist (no earlier run "
                          "saved a checkpoint in env.save_dir); check env.save_dir, or set checkpoint.resume="
                          "if_exists to start fresh when there is none", rooted=True)
    return bool(exists and wanted in (True, "if_exists"))


def set_aside_earlier_run(folder: Path) -> Path | None:
    """Move an earlier run's records out of ``folder`` into ``folder/earlier_runs/<time>``; return that place."""
    present = [folder / name for name in RUN_RECORDS if (folder / name).exists()]
    if not any(p.name in ("metrics.jsonl", "checkpoints", "train.log") for p in present):
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
    target = folder / EARLIER / stamp
    suffix = 1
    while target.exists():
        suffix += 1
        target = folder / EARLIER / f"{stamp}-{suffix}"
    target.mkdir(parents=True)
    for path in present:
        path.rename(target / path.name)
    logger.info("run folder %s held an earlier run: moved its records to %s (checkpoint.resume=true continues "
                "a run instead)", folder, target)
    return target
