"""``unimm_run config=<file.yaml> [key.sub=value ...]``: validate a config, then run it."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Sequence

HELP = """\
usage: unimm_run config=<file.yaml> [variant=<name>] [key.sub=value ...] [--dry-run] [--debug]

Run types (set with run_type=...):
  train       train on the train split of every dataset
  train_val   train, evaluating on evaluation.split every training.eval_every updates
  val         evaluate on the val split (checkpoint.init_from=... or checkpoint.resume=true)
  test        evaluate on the test split
  predict     write predictions of the val split to <save_dir>/predictions/

Most used keys:
  config=path.yaml               the config; its includes: are composed in order
  variant=<name>                 one of the config's variants: (e.g. variant=shapes: the
                                 embedded benchmark at CPU size)
  env.save_dir=save/run1         run folder: config.yaml, checkpoints/, metrics.jsonl
  env.data_dir=data              root of all datasets ($UNIMM_DATA_DIR)
  env.user_dir=path/to/plugin    a folder of your own registered parts
  training.max_updates=1000      training.batch_size=8   optimizer.lr=5e-5
  training.sampler=round_robin   scheduler.type=warmup_cosine scheduler.warmup_steps=2000
  checkpoint.resume=true         checkpoint.init_from=path/to/checkpoint
  a.b[0]=x                       set one element of a list

Flags:
  --dry-run   validate and print the resolved config, run nothing
  --debug     show the full traceback on errors
  -h, --help  this text

unimm_registry lists every registered part (models, datasets, metrics, ...).
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or "-h" in args or "--help" in args:
        print(HELP, end="")
        return 0 if args else 2
    debug = "--debug" in args
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("unimm_run: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # every error reaches the user as one message
        if debug:
            raise
        from unimm.cli.errors import describe

        print(f"unimm_run: {describe(err)}", file=sys.stderr)
        return 1


def _run(args: list[str]) -> int:
    flags = {a for a in args if a.startswith("--")}
    unknown = flags - {"--debug", "--dry-run"}
    if unknown:
        from unimm.config.errors import ConfigError

        raise ConfigError(f"unknown flag {', '.join(sorted(unknown))}; see unimm_run --help",
                          source="command line")
    pairs = [a for a in args if not a.startswith("--")]
    config_path = next((a.split("=", 1)[1] for a in pairs if a.startswith("config=")), None)
    variant = next((a.split("=", 1)[1] for a in pairs if a.startswith("variant=")), None)
    overrides = [a for a in pairs if not a.startswith(("config=", "variant="))]
    if config_path is None:
        from unimm.config.errors import ConfigError

        raise ConfigError("no config given; write unimm_run config=path/to/file.yaml", source="command line")

    from unimm.session import prepare

    cfg, text = prepare(config_path, overrides, variant=variant)
    if "--dry-run" in flags:
        print(text, end="")
        return 0
    from unimm.session import execute

    execute(cfg, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
