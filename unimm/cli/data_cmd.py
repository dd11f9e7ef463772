"""``unimm_data``: tools for the data a config reads, before any training starts.

``unimm_data check config=<file.yaml> [variant=...] [key=value ...]`` builds every dataset of the
config for the splits the run reads and prints one report of everything wrong (``unimm.data.check``);
the exit status is 1 when it found a problem. ``unimm_data vg-splits`` writes the Visual Genome split
lists UniT's configs read, from the release's ``image_data.json`` and COCO's val2017 annotations.
"""
from __future__ import annotations

import sys
from typing import Sequence

USAGE = """\
usage: unimm_data check config=<file.yaml> [variant=<name>] [key.sub=value ...] [--splits=train,val] [--decode]
       unimm_data vg-splits --vg <Visual Genome folder> --coco-val <instances_val2017.json> [--out <folder>]

check      build every dataset of the config for each split the run reads (run_type decides:
           train_val reads train and evaluation.split) and print one report: files missing or
           malformed, records dropped, samples and labels per split, pictures missing, unreadable,
           cut short or of another size than annotated, pictures an evaluated split shares with
           train. Nothing is written. Exit status 1 when a problem was found.
  --splits=a,b   inspect these splits instead of those the run reads (e.g. --splits=train,val,test)
  --decode       decode every picture in full (slow; finds damage inside a file)
vg-splits  write train_image_ids.json and val_image_ids.json (JSON lists of Visual Genome image
           ids) as UniT Sec. 4.1 splits Visual Genome: val = the pictures that are in COCO
           val2017 (through image_data.json's coco_id), train = all others
  --vg DIR        the Visual Genome folder holding image_data.json
  --coco-val FILE COCO's annotations/instances_val2017.json
  --out DIR       where to write the lists (default: the Visual Genome folder)
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in ("check", "vg-splits"):
        print(USAGE, end="", file=sys.stdout if args and args[0] in ("-h", "--help") else sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    command, rest = args[0], [a for a in args[1:] if a != "--debug"]
    debug = "--debug" in args
    try:
        if command == "check":
            return check(rest)
        return vg_splits(rest)
    except Exception as err:
        if debug:
            raise
        from unimm.cli.errors import describe

        print(f"unimm_data {command}: {describe(err, None)}", file=sys.stderr)
        return 1


def check(args: list[str]) -> int:
    from unimm.cli import split_config_args
    from unimm.config.errors import ConfigError
    from unimm.data.check import check_config
    from unimm.session import prepare

    flags = [a for a in args if a.startswith("--")]
    unknown = [f for f in flags if f.split("=", 1)[0] not in ("--splits", "--decode", "--debug")]
    if unknown:
        raise ConfigError(f"unknown flag {', '.join(unknown)}; see unimm_data --help", source="command line")
    pairs = [a for a in args if not a.startswith("--")]
    config, variant, overrides = split_config_args(pairs)
    if config is None:
        raise ConfigError("no config given; write unimm_data check config=path/to/file.yaml", source="command line")
    splits = next((f.split("=", 1)[1].split(",") for f in flags if f.startswith("--splits=")), None)
    cfg, _ = prepare(config, overrides, variant=variant)
    where = f" (variant {variant})" if variant else ""
    title = f"unimm_data check: {config}{where}, run_type={cfg['run_type']}, data root {cfg['env']['data_dir']}"
    report = check_config(cfg, splits=splits, decode="--decode" in flags, title=title)
    print(report.text(), end="")
    return 1 if report.problem_count else 0


def vg_splits(args: list[str]) -> int:
    from pathlib import Path

    from unimm.config.errors import ConfigError
    from unimm.data.vg_splits import vg_splits_summary, write_vg_splits

    values: dict[str, str] = {}
    it = iter(args)
    for arg in it:
        key, _, value = arg.partition("=")
        if key not in ("--vg", "--coco-val", "--out"):
            raise ConfigError(f"unknown argument {arg}; see unimm_data --help", source="command line")
        values[key] = value or next(it, "")
    missing = [k for k in ("--vg", "--coco-val") if not values.get(k)]
    if missing:
        raise ConfigError(f"give {' and '.join(missing)}; see unimm_data --help", source="command line")
    written = write_vg_splits(Path(values["--vg"]), Path(values["--coco-val"]),
                              Path(values["--out"]) if values.get("--out") else None)
    print(vg_splits_summary(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
