"""Generate the embedded "shapes" benchmark and print what was written.

    python tools/generate_shapes.py --out data --size default --seed 0

Writes ``<out>/shapes/`` in the official dataset layouts (see its README.md), then prints the
generation time, the disk size, the number of samples per dataset and the baselines.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from unimm.benchmark.shapes import SIZES, generate_shapes  # noqa: E402
from unimm.benchmark.shapes.writers.files import disk_usage  # noqa: E402


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data", help="data root; the benchmark goes to <out>/shapes (default: data)")
    parser.add_argument("--size", default="default", choices=sorted(SIZES), help="benchmark size (default: default)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same files (default: 0)")
    parser.add_argument("--image-size", type=int, default=None, help="short side of the pictures (default: 64)")
    parser.add_argument("--workers", type=int, default=None, help="processes drawing pictures (default: up to 2)")
    parser.add_argument("--overwrite", action="store_true", help="regenerate even if <out>/shapes exists")
    return parser.parse_args(argv)


def _flatten(counts: dict, prefix: str = "") -> list[tuple[str, int]]:
    rows = []
    for key, value in counts.items():
        name = f"{prefix}{key}"
        rows += _flatten(value, name + "/") if isinstance(value, dict) else [(name, value)]
    return rows


def _baseline_lines(baselines: dict) -> list[str]:
    lines = []
    for task, entry in baselines.items():
        shown = {k: v for k, v in entry.items() if k not in ("metric", "split", "note")}
        lines.append(f"  {task:<22} {entry['metric']} on {entry['split']}: {json.dumps(shown, sort_keys=True)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    started = time.perf_counter()
    try:
        summary = generate_shapes(args.out, args.size, args.seed, image_size=args.image_size,
                                  overwrite=args.overwrite, workers=args.workers)
    except (ValueError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    root = Path(summary["path"])
    stored, files = disk_usage(root)
    if summary["reused"]:
        print(f"{root} already holds this benchmark (size {summary['size']}, seed {summary['seed']}); nothing written")
    else:
        print(f"generated {root} in {seconds:.1f} s (size {summary['size']}, seed {summary['seed']})")
    print(f"disk: {stored / 2**20:.1f} MiB in {files} files (hard links counted once)")
    print("samples:")
    for name, count in _flatten(summary["counts"]):
        print(f"  {name:<36} {count}")
    print("baselines (fitted on train, measured on val/dev):")
    print("\n".join(_baseline_lines(json.loads((root / "baselines.json").read_text()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
