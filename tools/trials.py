"""Bad input and faults, tried against ``unimm_run`` as a user would: one line per trial.

    python tools/trials.py              # every trial (about three minutes on 2 CPU cores)
    python tools/trials.py -k resume    # the trials whose name holds "resume"

Each trial runs ``python -m unimm.cli.run`` in a fresh process (on the quickstart project, or on
the embedded benchmark at its tiny size, with a file broken on purpose) and is ``clean`` when the
outcome is the expected one: a single error message that matches what it must name, with no
traceback, or a run that succeeds where the input is fine. The last line counts them.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "projects" / "quickstart" / "configs" / "blobs_mlp.yaml"
SST2 = REPO / "projects" / "unit" / "single_task" / "sst2.yaml"
COCO = REPO / "projects" / "unit" / "single_task" / "coco.yaml"
VQA2 = REPO / "projects" / "unit" / "single_task" / "vqa2.yaml"
SNLI_VE = REPO / "projects" / "unit" / "single_task" / "snli_ve.yaml"
# a tiny UniT on the tiny benchmark, trained for one update and evaluated on two batches
TINY_RUN = ["variant=shapes", "env.benchmark.size=tiny", "model.type=unit_tiny", "training.max_updates=1",
            "scheduler.warmup_steps=0", "evaluation.max_batches=2", "checkpoint.init_from=null",
            "training.param_groups=[]", "env.device=cpu"]


@dataclass
class Trial:
    """One input a user might give.

    Attributes:
        name: what is tried.
        args: ``unimm_run`` arguments (``{tmp}`` and ``{data}`` are filled in).
        expect: a regex the single error message must match; None: the run must succeed.
        prepare: changes files under ``(tmp, data)`` before the run.
        check: after a successful run, returns a problem or None.
    """

    name: str
    args: list[str]
    expect: str | None
    prepare: Callable[[Path, Path], None] | None = None
    check: Callable[[Path], str | None] | None = None
    needs_data: bool = False
    extra: dict = field(default_factory=dict)


def quick(name: str, *overrides: str, expect: str | None) -> Trial:
    return Trial(name, [f"config={QUICKSTART}", "env.save_dir={tmp}/run", *overrides, "--dry-run"], expect)


def on_data(name: str, config: Path, *overrides: str, expect: str | None,
            prepare: Callable[[Path, Path], None] | None = None) -> Trial:
    return Trial(name, [f"config={config}", "env.data_dir={data}", "env.save_dir={tmp}/run", *TINY_RUN, *overrides],
                 expect, prepare, needs_data=True)


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def train_then(tmp: Path, *extra: str) -> None:
    """A finished quickstart run in ``tmp/run`` (for the checkpoint trials)."""
    run([f"config={QUICKSTART}", f"env.save_dir={tmp}/run", "training.max_updates=4", "training.eval_every=0",
         *extra], tmp)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unimm.cli.run", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def catalogue() -> list[Trial]:
    shapes = "{data}/shapes"
    trials = [
        quick("clip_grad_norm=-1", "training.clip_grad_norm=-1", expect=r"training\.clip_grad_norm: -1 must be greater than 0"),
        quick("grad_accum_steps=0", "training.grad_accum_steps=0", expect=r"training\.grad_accum_steps: 0 must be at least 1"),
        quick("evaluation.max_batches=-1", "evaluation.max_batches=-1", expect=r"evaluation\.max_batches: -1 must be at least 1"),
        quick("evaluation.batch_size=0", "evaluation.batch_size=0", expect=r"evaluation\.batch_size: 0 must be at least 1"),
        quick("batch_size=0", "training.batch_size=0", expect=r"training\.batch_size: 0 must be at least 1"),
        quick("batch_size=-4", "training.batch_size=-4", expect=r"training\.batch_size: -4 must be at least 1"),
        quick("log_every=0", "training.log_every=0", expect=r"training\.log_every: 0 must be at least 1"),
        quick("weight_decay=-1", "optimizer.weight_decay=-1", expect=r"optimizer\.weight_decay: -1 must be at least 0"),
        quick("num_workers=-1", "training.num_workers=-1", expect=r"training\.num_workers: -1 must be at least 0"),
        quick("datasets as a list", "datasets=[blobs]", expect=r"datasets: expected a mapping of dataset names"),
        quick("max_epochs=0", "training.max_epochs=0", expect=r"training\.max_epochs: 0 must be greater than 0"),
        quick("max_updates and max_epochs null", "training.max_updates=null", expect=r"set at least one of them"),
        quick("misspelled early_stop.metric", "training.early_stop.metric=blobs/acuracy",
              expect=r"training\.early_stop\.metric: 'blobs/acuracy' is not a result of the metrics"),
        Trial("empty YAML file", ["config={tmp}/empty.yaml", "--dry-run"], r"in .*empty\.yaml.*model: no value given",
              prepare=lambda tmp, data: write(tmp / "empty.yaml", "")),
        Trial("YAML holding a bare scalar", ["config={tmp}/scalar.yaml", "--dry-run"],
              r"in .*scalar\.yaml: the top level must be a mapping of keys, not a single value",
              prepare=lambda tmp, data: write(tmp / "scalar.yaml", "42\n")),
        Trial("YAML that is not UTF-8", ["config={tmp}/latin.yaml", "--dry-run"], r"latin\.yaml: not UTF-8 text",
              prepare=lambda tmp, data: write(tmp / "latin.yaml", b"model: caf\xe9\n")),
        Trial("plugin calling sys.exit(0)", [f"config={QUICKSTART}", "env.user_dir=[{tmp}/exits]", "--dry-run"],
              r"called sys\.exit\(0\)", prepare=lambda tmp, data: write(tmp / "exits" / "__init__.py", "import sys\nsys.exit(0)\n")),
        # data
        on_data("header-only evaluation TSV", SST2, expect=r"datasets\.sst2: its 'val' split has no samples",
                prepare=lambda tmp, data: write(data / "shapes" / "glue" / "SST-2" / "dev.tsv", "sentence\tlabel\n")),
        on_data("empty train TSV", SST2, expect=r"datasets\.sst2: its 'train' split has no samples",
                prepare=lambda tmp, data: write(data / "shapes" / "glue" / "SST-2" / "train.tsv", "")),
        on_data("GLUE TSV not UTF-8", SST2, expect=r"dev\.tsv, line 2: byte b'\\xff' is not UTF-8",
                prepare=lambda tmp, data: write(data / "shapes" / "glue" / "SST-2" / "dev.tsv",
                                                b"sentence\tlabel\nbad \xff line\t1\n")),
        on_data("COCO JSON not UTF-8", COCO, expect=r"instances_val2017\.json, line 1: byte b'\\xff' is not UTF-8",
                prepare=lambda tmp, data: write(data / "shapes" / "coco" / "annotations" / "instances_val2017.json",
                                                b'{"images": "\xff"}')),
        on_data("COCO image id twice", COCO, expect=r"image id \d+ is given twice",
                prepare=lambda tmp, data: edit_json(data / "shapes" / "coco" / "annotations" / "instances_val2017.json",
                                                    lambda d: d["images"].append(d["images"][0]))),
        on_data("COCO box with negative width, strict", COCO, "datasets.coco.strict=true",
                expect=r"boxes whose width or height is not positive",
                prepare=lambda tmp, data: edit_json(data / "shapes" / "coco" / "annotations" / "instances_val2017.json",
                                                    lambda d: d["annotations"][0].update(bbox=[1, 1, -3, 4]))),
        on_data("SNLI-VE jsonl not UTF-8", SNLI_VE, expect=r"snli_ve_dev\.jsonl, line 1: byte b'\\xff' is not UTF-8",
                prepare=lambda tmp, data: write(data / "shapes" / "snli_ve" / "snli_ve_dev.jsonl", b'{"x": "\xff"}\n')),
        on_data("VQA questions not UTF-8", VQA2, "datasets.vqa2.extra=[]",
                expect=r"questions\.json, line 1: byte b'\\xff' is not UTF-8",
                prepare=lambda tmp, data: write(data / "shapes" / "vqa2" / "v2_OpenEnded_mscoco_val2014_questions.json",
                                                b'{"questions": "\xff"}')),
        on_data("VQA annotation with 3 answers, strict", VQA2, "datasets.vqa2.extra=[]", "datasets.vqa2.base.strict=true",
                expect=r"another number of answers than VQAv2's 10",
                prepare=lambda tmp, data: edit_json(data / "shapes" / "vqa2" / "v2_mscoco_val2014_annotations.json",
                                                    lambda d: d["annotations"][0].update(answers=d["annotations"][0]["answers"][:3]))),
        # checkpoints
        Trial("resume with no checkpoint", [f"config={QUICKSTART}", "env.save_dir={tmp}/run", "checkpoint.resume=true"],
              r"checkpoint\.resume: true, but .* does not exist"),
        Trial("a new run into a used folder", [f"config={QUICKSTART}", "env.save_dir={tmp}/run", "training.max_updates=6"],
              None, prepare=lambda tmp, data: train_then(tmp),
              check=lambda tmp: None if len(list((tmp / "run" / "earlier_runs").iterdir())) == 1
              and max(json.loads(l)["update"] for l in (tmp / "run" / "metrics.jsonl").read_text().splitlines()) == 6
              else "the earlier run was not set aside"),
        Trial("init_from another model", [f"config={QUICKSTART}", "env.save_dir={tmp}/other", "model.hidden=32",
                                          "checkpoint.init_from={tmp}/run/checkpoints/last"],
              r"weights have another shape", prepare=lambda tmp, data: train_then(tmp)),
        Trial("key_map matching nothing", [f"config={QUICKSTART}", "env.save_dir={tmp}/other",
                                           "checkpoint.init_from={tmp}/run/checkpoints/last", "checkpoint.key_map={nets.: net.}"],
              r"checkpoint\.key_map\.nets\.: matches no key", prepare=lambda tmp, data: train_then(tmp)),
        Trial("no manifest, a flipped byte", [f"config={QUICKSTART}", "env.save_dir={tmp}/run", "checkpoint.resume=true",
                                              "training.max_updates=8"],
              r"no manifest\.json, so its files cannot be checked", prepare=lambda tmp, data: flip_without_manifest(tmp)),
    ]
    return trials


def flip_without_manifest(tmp: Path) -> None:
    train_then(tmp)
    folder = next((tmp / "run" / "checkpoints").glob("update_*"))
    (folder / "manifest.json").unlink()
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-20] + bytes([data[-20] ^ 0xFF]) + data[-19:])


def outcome(trial: Trial, result: subprocess.CompletedProcess, tmp: Path) -> tuple[bool, str]:
    text = result.stderr + result.stdout
    if "Traceback" in text:
        return False, "a traceback"
    if trial.expect is None:
        if result.returncode != 0:
            return False, f"exit {result.returncode}: {last_line(text)}"
        problem = trial.check(tmp) if trial.check else None
        return problem is None, problem or "ran"
    if result.returncode == 0:
        return False, "exit 0 (accepted)"
    errors = [line for line in text.splitlines() if line.startswith("unimm_run:")]
    message = "\n".join(text.splitlines()[text.splitlines().index(errors[0]):]) if errors else text
    if re.search(trial.expect, message, re.S):
        return True, last_line(errors[0] if errors else message)
    return False, f"unexpected message: {last_line(message)}"


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[0] if lines else "")[:150]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", default="", help="run only the trials whose name holds this text")
    args = parser.parse_args(argv)
    trials = [t for t in catalogue() if args.k in t.name]
    root = Path(tempfile.mkdtemp(prefix="unimm-trials-"))
    pristine = root / "pristine"
    if any(t.needs_data for t in trials):
        sys.path.insert(0, str(REPO))
        from unimm.benchmark.shapes import generate_shapes

        generate_shapes(pristine, size="tiny")
    clean = 0
    for i, trial in enumerate(trials):
        tmp, data = root / f"t{i}", root / f"t{i}" / "data"
        tmp.mkdir()
        if trial.needs_data:
            shutil.copytree(pristine, data)
        if trial.prepare:
            trial.prepare(tmp, data)
        started = time.perf_counter()
        result = run([a.replace("{tmp}", str(tmp)).replace("{data}", str(data)) for a in trial.args], tmp)
        ok, what = outcome(trial, result, tmp)
        clean += ok
        print(f"{'clean' if ok else 'NOT CLEAN':9} {time.perf_counter() - started:5.1f}s  {trial.name}: {what}",
              flush=True)
    print(f"{clean} of {len(trials)} trials clean")
    shutil.rmtree(root, ignore_errors=True)
    return 0 if clean == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
