"""``unimm_data``: the data check over the official-format fixtures (tests/assets/official), clean and
deliberately broken, and the Visual Genome split tool."""
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from unimm.cli.data_cmd import main

REPO = Path(__file__).resolve().parents[2]
OFFICIAL = REPO / "tests" / "assets" / "official"
ALL8 = str(REPO / "projects" / "unit" / "all8.yaml")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the fixtures with the VG split lists written by the tool, as a user would."""
    data = tmp_path / "data"
    shutil.copytree(OFFICIAL, data)
    assert not list((data / "vg").glob("*_image_ids.json"))  # the VG release has no split lists
    assert main(["vg-splits", "--vg", str(data / "vg"),
                 "--coco-val", str(data / "coco" / "annotations" / "instances_val2017.json")]) == 0
    return data


def check(root: Path, tiny_benchmark: Path, *extra: str) -> list[str]:
    return ["check", f"config={ALL8}", f"vars.data={root}", f"env.data_dir={root}",
            f"vars.tokenizer.path={tiny_benchmark / 'shapes' / 'vocab'}", *extra]


def section(report: str, dataset: str) -> str:
    """The lines of one dataset in the report."""
    lines = report.splitlines()
    start = lines.index(f"datasets.{dataset}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("datasets.") or not lines[i]),
               len(lines))
    return "\n".join(lines[start:end])


def test_vg_splits_follow_coco_val2017(root: Path, tmp_path: Path, capsys):
    # image_data.json: VG 3 and 5 are COCO 139 and 285, both in instances_val2017.json
    assert json.loads((root / "vg" / "val_image_ids.json").read_text()) == [3, 5]
    assert json.loads((root / "vg" / "train_image_ids.json").read_text()) == [1, 2, 4, 107899]
    assert main(["vg-splits", "--vg", str(root / "vg"), "--out", str(tmp_path / "lists"),
                 "--coco-val", str(root / "coco" / "annotations" / "instances_val2017.json")]) == 0
    assert (tmp_path / "lists" / "val_image_ids.json").read_text() == "[3, 5]"
    assert capsys.readouterr().out == (f"Visual Genome splits in {tmp_path / 'lists'}: "
                                       "train_image_ids.json 4 images, val_image_ids.json 2 images\n")


def test_vg_splits_names_a_missing_argument(capsys):
    assert main(["vg-splits", "--vg", "somewhere"]) == 1
    assert "give --coco-val" in capsys.readouterr().err


def test_a_clean_root_reports_every_dataset_and_no_problem(root: Path, tiny_benchmark: Path, capsys):
    assert main(check(root, tiny_benchmark)) == 0
    report = capsys.readouterr().out
    assert report.rstrip().endswith("no problems found")
    for dataset in ("coco", "vg", "vqa2", "snli_ve", "qnli", "mnli", "qqp", "sst2"):
        assert f"datasets.{dataset}\n  train  ok       " in report and "\n  val    ok       " in section(report, dataset)
    assert "  train  ok       3 samples; labels: dog 2, bottle 1" in section(report, "coco")
    assert "  train  ok       6 samples; labels: contradiction 2, entailment 2, neutral 2; 2 pictures" in report
    # the QQP line of the wrong field count is neither a problem nor silent
    assert "1 lines whose field count differs from the header, skipped (skip_bad_lines) (ids line 5)" in \
        section(report, "qqp")


def test_a_broken_root_is_reported_completely_in_one_run(root: Path, tiny_benchmark: Path, capsys):
    (root / "coco" / "train2017" / "000000000025.jpg").unlink()  # a missing picture
    cut = root / "vqa2" / "val2014" / "COCO_val2014_000000000139.jpg"  # an interrupted download
    cut.write_bytes(cut.read_bytes()[:-40])
    resized = root / "vg" / "VG_100K_2" / "1.jpg"  # a picture re-saved at another size than annotated
    with Image.open(resized) as image:
        image.resize((64, 48)).save(resized)
    (root / "glue_data" / "SST-2" / "dev.tsv").unlink()  # a file missing
    (root / "vg" / "val_image_ids.json").write_text("[139, 285]")  # COCO ids where VG ids belong
    train = root / "snli_ve" / "snli_ve_train.jsonl"  # a dev picture in train
    lines = train.read_text().splitlines()
    first = json.loads(lines[0])
    first["Flickr30K_ID"] = "1000092795"
    train.write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")

    assert main(check(root, tiny_benchmark)) == 1
    report = capsys.readouterr().out
    assert report.rstrip().endswith("6 problem(s) in 5 dataset(s); fix them before training")
    coco = section(report, "coco")
    assert "train  PROBLEM" in coco and "val    ok" in coco
    assert f"missing pictures (1): {root / 'coco' / 'train2017' / '000000000025.jpg'}" in coco
    vqa2 = section(report, "vqa2")
    assert f"pictures cut short (no end marker: an interrupted download?) (1): {cut}" in vqa2
    vg = section(report, "vg")
    assert f"{resized}: 64x48, annotated 32x24" in vg
    assert "the list looks like COCO image ids" in vg and "unimm_data vg-splits" in vg
    assert "val    PROBLEM" in vg
    sst2 = section(report, "sst2")
    assert f"missing file: {root / 'glue_data' / 'SST-2' / 'dev.tsv'}" in sst2 and "train  ok" in sst2
    snli = section(report, "snli_ve")
    assert "1 of its 1 pictures are also pictures of the train split" in snli and "1000092795.jpg" in snli
    for fine in ("qnli", "mnli", "qqp"):
        assert "PROBLEM" not in section(report, fine)


def sst2(root: Path, tiny_benchmark: Path, *extra: str) -> list[str]:
    config = REPO / "projects" / "unit" / "single_task" / "sst2.yaml"
    return ["check", f"config={config}", f"vars.data={root}", f"env.data_dir={root}",
            f"vars.tokenizer.path={tiny_benchmark / 'shapes' / 'vocab'}", *extra]


def test_scoring_a_split_without_labels_is_a_problem(root: Path, tiny_benchmark: Path, capsys):
    assert main(sst2(root, tiny_benchmark, "run_type=test")) == 1
    report = capsys.readouterr().out
    assert "  test   PROBLEM  5 samples; no labels" in report
    assert "use run_type=predict evaluation.split=test for submission files" in report


def test_predict_needs_no_labels(root: Path, tiny_benchmark: Path, capsys):
    assert main(sst2(root, tiny_benchmark, "run_type=predict", "evaluation.split=test")) == 0
    assert "  test   ok       5 samples; no labels" in capsys.readouterr().out
