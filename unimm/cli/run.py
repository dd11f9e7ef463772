"""``unimm_run config=<file.yaml> [key.sub=value ...]``: validate a config, then run it."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Sequence

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
  env.user_dir=path/to/plugin    a folder of your own registered parts (a path or a list)
  env.plugins=all                installed plugins to import: all | none | [entry-point names]
  training.max_updates=1000      training.batch_size=8   optimizer.lr=5e-5
  training.sampler=round_robin   scheduler.type=warmup_cosine scheduler.warmup_steps=2000
  checkpoint.resume=true         checkpoint.init_from=path/to/checkpoint
  a.b[0]=x                       set one element of a list
  ~a.b                           delete a key (a key of the defaults goes back to its default);
                                 left to right: ~scheduler.warmup_ratio scheduler.warmup_steps=100
  'a={type: x, k: 1}'            replace a whole section (a mapping replaces, a.k=1 merges)

Paths: env.user_dir in a YAML file is relative to that file (a project's configs find its code
from anywhere); every other path (env.save_dir, env.data_dir, dataset paths), and env.user_dir
given on the command line, is relative to the working directory.

Flags:
  --dry-run   validate, build the parts that need no data (scheduler, sampler, step strategy,
              callbacks) and print the resolved config, then the optimizer's parameter groups: each
              group's learning rate and weight decay and every parameter in it (the model built on
              the meta device from the train datasets' info); run and write nothing
  --debug     show the full traceback on errors
  -h, --help  this text

unimm_registry lists every registered part (models, datasets, metrics, ...);
unimm_registry NAME shows one part's arguments; add --user-dir path/to/plugin for a plugin's parts.
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or "-h" in args or "--help" in args:
        print(HELP, end="")
        return 0 if args else 2
    debug = "--debug" in args
    known: dict[str, Any] = {}  # the validated config, once there is one (errors then name its parts' types)
    try:
        return _run(args, known)
    except KeyboardInterrupt:
        print("unimm_run: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # every error reaches the user as one message
        if debug:
            raise
        from unimm.cli.errors import describe

        print(f"unimm_run: {describe(err, known.get('cfg'))}", file=sys.stderr)
        return 1


def _run(args: list[str], known: dict[str, Any]) -> int:
    from unimm.cli import split_config_args

    flags = {a for a in args if a.startswith("--")}
    unknown = flags - {"--debug", "--dry-run"}
    if unknown:
        from unimm.config.errors import ConfigError

        raise ConfigError(f"unknown flag {', '.join(sorted(unknown))}; see unimm_run --help",
                          source="command line")
    pairs = [a for a in args if not a.startswith("--")]
    config_path, variant, overrides = split_config_args(pairs)
    if config_path is None:
        from unimm.config.errors import ConfigError

        raise ConfigError("no config given; write unimm_run config=path/to/file.yaml", source="command line")

    from unimm.session import prepare

    cfg, text = prepare(config_path, overrides, variant=variant)
    known["cfg"] = cfg
    if "--dry-run" in flags:
        from unimm.training.trainer import parameter_group_report

        print(text, end="")
        print(parameter_group_report(cfg), end="")
        return 0
    from unimm.session import execute

    execute(cfg, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
