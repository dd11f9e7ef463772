"""VQAv2 as distributed (tests/assets/official/vqa2, written to the official formats by hand): pictures
where the VQA download unpacks them, test splits without answers, the results file of the server."""
import json
import shutil
from pathlib import Path

import pytest

from unimm.config import ConfigError
from unimm.data.vg_splits import write_vg_splits
from unimm.data.visual_genome_qa import visual_genome_qa
from unimm.data.vqa2 import vqa2

REPO = Path(__file__).resolve().parents[2]
OFFICIAL = REPO / "tests" / "assets" / "official"
SINGLE_TASK = REPO / "projects" / "unit" / "single_task" / "vqa2.yaml"


@pytest.fixture
def tokenizer(tiny_benchmark: Path):
    from unimm.data.tokenizers import bert_tokenizer

    return bert_tokenizer(path=str(tiny_benchmark / "shapes" / "vocab"), max_length=16)


def build(tokenizer, split: str, **kwargs):
    return vqa2(data_dir=str(OFFICIAL / "vqa2"), split=split, name="vqa2", tokenizer=tokenizer, **kwargs)


def test_pictures_are_found_beside_the_questions_when_the_coco_folder_lacks_them(tokenizer, tmp_path):
    ds = build(tokenizer, "train", image_dir=str(tmp_path / "coco"))  # the UniT configs' COCO root, empty
    assert [q.question_id for q in ds.questions] == [90000, 90001, 250000, 250001]
    assert ds.questions[0].image_path == OFFICIAL / "vqa2" / "train2014" / "COCO_train2014_000000000009.jpg"
    assert ds.has_labels
    assert ds.label_counts() == {"other": 2, "number": 1, "yes/no": 1}
    assert [p.name for p, size in ds.image_files()] == ["COCO_train2014_000000000009.jpg",
                                                        "COCO_train2014_000000000025.jpg"]
    assert ds[0]["image"].shape[0] == 3


def test_missing_pictures_name_both_places_and_where_they_come_from(tokenizer, tmp_path):
    data = tmp_path / "vqa2"
    shutil.copytree(OFFICIAL / "vqa2", data, ignore=shutil.ignore_patterns("val2014"))
    with pytest.raises(ConfigError) as err:
        vqa2(data_dir=str(data), split="val", name="vqa2", tokenizer=tokenizer, image_dir=str(tmp_path / "coco"))
    text = str(err.value)
    assert f"missing folder: {tmp_path / 'coco' / 'val2014'}" in text and f"missing folder: {data / 'val2014'}" in text
    assert "cocodataset.org" in text


def test_test_splits_have_no_labels_and_test_dev_reads_the_test2015_pictures(tokenizer):
    test = build(tokenizer, "test")
    assert len(test) == 4 and not test.has_labels and test.label_counts() == {}
    dev = build(tokenizer, "test", split_names={"train": "train2014", "test": "test-dev2015"})
    assert [q.image_path.name for q in dev.questions] == ["COCO_test2015_000000000001.jpg"] * 2
    assert dev.results_name == "mscoco_test-dev2015"


def test_answer_types_are_reported_under_their_official_names(tokenizer):
    import torch

    from unimm.metrics.vqa_accuracy import vqa_accuracy

    ds = build(tokenizer, "val", max_samples=4)  # the questions on pictures 42 and 73
    metric = vqa_accuracy(ds, name="vqa2", per_answer_type=True)
    batch = ds.collate([ds[i] for i in range(len(ds))])
    logits = torch.full((4, len(ds.vocab)), -1.0)
    # the vocabulary is train's answers; the leave-one-out official accuracy of each choice:
    # "white" (4 of 10 said it) 1.0, "yes" (3 of 10) 0.9, "2" (10 of 10) 1.0, "white" for a ride 0.0
    for row, answer in enumerate(["white", "yes", "2", "white"]):
        logits[row, ds.vocab.answers.index(answer)] = 1.0
    metric.update(batch, {"logits": logits})
    result = metric.compute()
    assert result == pytest.approx({"vqa_accuracy": 0.725, "vqa_accuracy/yes/no": 0.9, "vqa_accuracy/number": 1.0,
                                    "vqa_accuracy/other": 0.5})


def test_coco2017_split_follows_unit_and_visual_genome_questions_share_its_vocabulary(tokenizer, tmp_path):
    """UniT Sec. 4.1: VQAv2 trains on train2014 + val2014 outside COCO val2017, evaluates on val2017."""
    coco_val = str(OFFICIAL / "coco" / "annotations" / "instances_val2017.json")  # images 139, 285, 632
    train = build(tokenizer, "train", coco2017_split=coco_val)
    val = build(tokenizer, "val", coco2017_split=coco_val)
    assert [q.question_id for q in val.questions] == [1390000, 1390001]
    assert [q.question_id for q in train.questions] == [90000, 90001, 250000, 250001, 420000, 420001, 730000, 730001]
    assert val.questions[0].image_path.name == "COCO_val2014_000000000139.jpg"
    assert train.vocab.answers == val.vocab.answers  # both from the train side's answers
    assert "white" in train.vocab.answers and "brown" in train.vocab.answers  # val2014's 42 and 73 train now
    official = build(tokenizer, "train")
    assert "brown" not in official.vocab.answers
    # the VG questions added to training build the same vocabulary when given the same file
    vg = tmp_path / "vg"
    shutil.copytree(OFFICIAL / "vg", vg)
    write_vg_splits(vg, coco_val)
    extra = visual_genome_qa(data_dir=str(vg), split="train", name="vqa2", tokenizer=tokenizer,
                             vqa2_data_dir=str(OFFICIAL / "vqa2"), vqa2_coco2017_split=coco_val)
    assert extra.vocab.answers == train.vocab.answers
    apart = visual_genome_qa(data_dir=str(vg), split="train", name="vqa2", tokenizer=tokenizer,
                             vqa2_data_dir=str(OFFICIAL / "vqa2"))
    assert apart.vocab.answers == official.vocab.answers


def overrides(tiny_benchmark: Path, folder: Path, *extra: str) -> list[str]:
    return [f"vars.data={OFFICIAL}", f"vars.tokenizer.path={tiny_benchmark / 'shapes' / 'vocab'}",
            f"env.data_dir={tiny_benchmark}", "env.benchmark.size=tiny", "model.type=unit_tiny", "env.device=cpu",
            f"env.save_dir={folder}", "training.batch_size=2", "evaluation.batch_size=2", "checkpoint.init_from=null", "scheduler.warmup_steps=0",
            *extra]


def run(config: Path, args: list[str]) -> dict:
    from unimm import session

    cfg, text = session.prepare(config, args, variant="shapes")
    return session.execute(cfg, text)


def test_single_task_vqa2_trains_then_writes_the_server_results_file_for_test(tiny_benchmark, tmp_path):
    folder = tmp_path / "run"
    # the Visual Genome questions are extra training data: without their files the error says how to go on
    with pytest.raises(ConfigError, match=r"datasets\.vqa2\.extra=\[\]"):
        run(SINGLE_TASK, overrides(tiny_benchmark, folder, "training.max_updates=2", "run_type=train_val"))
    results = run(SINGLE_TASK, overrides(tiny_benchmark, folder, "training.max_updates=2", "run_type=train_val",
                                         "datasets.vqa2.extra=[]"))
    assert 0.0 <= results["vqa2/vqa_accuracy"] <= 1.0 and "vqa2/vqa_accuracy/yes/no" in results
    # test2015 has no answers: metrics refuse it, predict writes what the server reads (no VG files needed)
    with pytest.raises(ConfigError, match=r"has no labels.*\n.*run_type=predict evaluation.split=test"):
        run(SINGLE_TASK, overrides(tiny_benchmark, folder, "run_type=test", "checkpoint.resume=true"))
    run(SINGLE_TASK, overrides(tiny_benchmark, folder, "run_type=predict", "evaluation.split=test",
                               "checkpoint.resume=true"))
    written = folder / "predictions" / "vqa_OpenEnded_mscoco_test2015_unimm_results.json"
    rows = json.loads(written.read_text())
    assert sorted(r["question_id"] for r in rows) == [10000, 10001, 160000, 160001]
    assert all(isinstance(r["answer"], str) and r["answer"] for r in rows)
    assert json.loads((folder / "predictions" / "vqa2_test.json").read_text()) == rows
