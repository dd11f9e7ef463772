"""MNLI matched and mismatched (Table 1: "for MNLI, we show accuracy averaged over the matched and mismatched sets")."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import REPO

VIT_BERT = REPO / "projects" / "vit_bert"


def documented_evaluation() -> list[str]:
    """The overrides of finetune_mnli.yaml's second command (dev mismatched), as its header gives them."""
    lines = [line for line in (VIT_BERT / "finetune_mnli.yaml").read_text().splitlines()
             if line.startswith("# unimm_run") and "mnli_dev=mismatched" in line]
    assert len(lines) == 1, "finetune_mnli.yaml's header gives the dev mismatched command once"
    words = lines[0].split()
    assert words[2:4] == ["config=projects/vit_bert/finetune_mnli.yaml", "variant=shapes"]
    return words[4:]


def test_the_mismatched_command_evaluates_the_fine_tuned_weights_on_dev_mismatched(tiny_benchmark: Path, tmp_path):
    from unimm import session

    tiny = [f"env.data_dir={tiny_benchmark}", "env.benchmark.size=tiny", "env.device=cpu",
            "vars.model_type=vit_bert_tiny", f"vars.finetune_run={tmp_path / 'ft'}",
            "checkpoint.init_from=null", "checkpoint.init_run.config=null",  # random init: no pre-training stage
            "training.max_epochs=null", "training.max_updates=2", "training.batch_size=4",
            "scheduler.warmup_steps=1", "evaluation.batch_size=8"]
    second = documented_evaluation()
    assert second == ["run_type=val", "checkpoint.resume=true", "datasets.mnli.mnli_dev=mismatched"]
    matched = session.execute(*session.prepare(VIT_BERT / "finetune_mnli.yaml", tiny, variant="shapes"))
    folder = tmp_path / "ft_mnli"
    again = session.execute(*session.prepare(VIT_BERT / "finetune_mnli.yaml", [*tiny, *second[:2]], variant="shapes"))
    assert again["mnli/accuracy"] == matched["mnli/accuracy"]  # every weight, the head included, from the run
    mismatched = session.execute(*session.prepare(VIT_BERT / "finetune_mnli.yaml", [*tiny, *second], variant="shapes"))
    saved = yaml.safe_load((folder / "config_val.yaml").read_text())
    assert saved["datasets"]["mnli"]["mnli_dev"] == "mismatched"
    assert 0 <= mismatched["mnli/accuracy"] <= 1 and mismatched["mnli/accuracy"] != matched["mnli/accuracy"]
    n = len((tiny_benchmark / "shapes" / "glue" / "MNLI" / "dev_mismatched.tsv").read_text().splitlines()) - 1
    assert abs(mismatched["mnli/accuracy"] * n - round(mismatched["mnli/accuracy"] * n)) < 1e-6  # a count of n
    trained = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert max(r["update"] for r in trained) == 2  # the evaluations trained nothing and kept the run's records
    assert (folder / "train.log").is_file() and (folder / "val.log").is_file()
