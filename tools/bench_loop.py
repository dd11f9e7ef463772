"""Per-update overhead of unimm's training loop against a raw PyTorch loop.

Both train the same tiny MLP on the same in-memory data (projects/quickstart's blobs).
The loop's time per update is measured as (T(2N) - T(N)) / N, which cancels set-up
(building parts, the final checkpoint); each T is the best of several repeats, since
other processes on the machine only ever make a timing longer.

    python tools/bench_loop.py --updates 500
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def unimm_seconds(updates: int, hidden: int, batch: int) -> float:
    from unimm.session import execute, prepare

    with tempfile.TemporaryDirectory() as tmp:
        cfg, text = prepare(REPO / "projects/quickstart/configs/blobs_mlp.yaml", [
            "run_type=train", f"env.save_dir={tmp}", f"training.max_updates={updates}",
            f"training.batch_size={batch}", f"model.hidden={hidden}", "training.log_every=1000000",
            "checkpoint.every=0", "checkpoint.keep_last=1", "env.log_level=warning"])
        start = time.perf_counter()
        execute(cfg, text)
        return time.perf_counter() - start


def raw_seconds(updates: int, hidden: int, batch: int) -> float:
    from unimm.plugins import load_user_dirs
    from unimm.registry import DATASETS, MODELS

    load_user_dirs([str(REPO / "projects" / "quickstart")])
    start = time.perf_counter()
    data = DATASETS.build({"type": "blobs", "num_samples": 1024}, name="blobs", split="train")
    model = MODELS.build({"type": "mlp_classifier", "hidden": hidden}, dataset_info={"blobs": data.info()})
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, collate_fn=data.collate,
                                         drop_last=True)
    done = 0
    while done < updates:
        for b in loader:
            loss = sum(model(b)["losses"].values())
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            done += 1
            if done == updates:
                break
    return time.perf_counter() - start


def per_update(fn, n: int, repeats: int, **kw) -> float:
    """Seconds per update: the best of ``repeats`` timings of N and of 2N updates."""
    fn(max(n // 10, 5), **kw)  # warm-up: imports, allocator
    short = min(fn(n, **kw) for _ in range(repeats))
    long = min(fn(2 * n, **kw) for _ in range(repeats))
    return (long - short) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=500)
    parser.add_argument("--hidden", type=int, default=8, help="MLP width: small, so the loop dominates")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    kw = dict(hidden=args.hidden, batch=args.batch)
    raw = per_update(raw_seconds, args.updates, args.repeats, **kw)
    ours = per_update(unimm_seconds, args.updates, args.repeats, **kw)
    print(f"tiny MLP (hidden {args.hidden}, batch {args.batch}), {args.updates} updates, 1 thread")
    print(f"raw PyTorch loop : {1 / raw:8.1f} updates/s  ({raw * 1e3:.3f} ms/update)")
    print(f"unimm loop       : {1 / ours:8.1f} updates/s  ({ours * 1e3:.3f} ms/update)")
    print(f"loop overhead    : {(ours - raw) * 1e3:+.3f} ms/update")


if __name__ == "__main__":
    main()
