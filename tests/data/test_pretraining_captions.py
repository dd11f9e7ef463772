"""METER's pre-training captions beyond COCO, read from their official files (tests/assets/official/vg_regions,
cc3m, sbu, written to the official formats by hand): Visual Genome region phrases, Conceptual Captions and SBU
Captions, whose pictures the user fetches (img2dataset's ``files`` output, written here by the tests)."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from tests.data.conftest import write_image, write_json
from unimm.config.errors import ConfigError
from unimm.data.vlp_captions import conceptual_captions, sbu_captions, vg_region_captions
from unimm.registry import DATASETS

OFFICIAL = Path(__file__).resolve().parents[1] / "assets" / "official"
TRANSFORM = {"type": "clip_transform", "size": 32}


@pytest.fixture(scope="module")
def tok(tiny_benchmark):
    from unimm.data.tokenizers import bert_tokenizer

    return bert_tokenizer(str(tiny_benchmark / "shapes" / "vocab"), max_length=40)


def vg_root(tmp_path: Path) -> Path:
    """The official VG fixture (image_data.json and its pictures) with the region descriptions beside it."""
    root = tmp_path / "vg"
    shutil.copytree(OFFICIAL / "vg", root)
    shutil.copy(OFFICIAL / "vg_regions" / "region_descriptions.json", root)
    return root


def fetch(folder: Path, urls: list[str], rows: list[int], *, shard_size: int = 10, sidecar: bool = True) -> None:
    """What img2dataset's ``files`` output leaves: ``<shard>/<key>.jpg`` (+ ``.json``) for the fetched rows."""
    for row in rows:
        shard, key = folder / f"{row // shard_size:05d}", f"{row:09d}"
        write_image(shard / f"{key}.jpg", color=(40 * row % 255, 90, 200))
        if sidecar:
            write_json(shard / f"{key}.json", {"url": urls[row], "key": key, "status": "success"})


def cc_urls(tsv: Path) -> list[str]:
    return [line.split("\t")[1] for line in tsv.read_text().splitlines()]


def test_vg_region_phrases_are_captions_of_the_whole_picture(tmp_path, tok, caplog):
    root = vg_root(tmp_path)
    with caplog.at_level(logging.WARNING, logger="unimm"):
        ds = vg_region_captions(data_dir=str(root), split="train", name="vg", tokenizer=tok)
    assert [c.caption_id for c in ds.captions] == [101, 102, 201, 301, 303, 501, 10789901]
    assert [c.image_id for c in ds.captions] == [1, 1, 2, 3, 3, 5, 107899]
    assert [c.image_index for c in ds.captions] == [0, 0, 1, 2, 2, 3, 4]
    assert ds.captions[1].text == "the blue square"  # spaces collapsed
    assert ds.captions[0].image_path == root / "VG_100K_2" / "1.jpg"  # the folder of image_data.json's url
    assert ds.captions[3].image_path == root / "VG_100K" / "3.jpg"
    assert ds.info()["empty_phrases"] == 1 and "empty phrase" in caplog.text  # region 302: counted, reported
    assert ds.image_files()[2] == (root / "VG_100K" / "3.jpg", (40, 30))  # the size image_data.json states
    sample = ds[0]
    assert sample["image"].shape[0] == 3 and sample["caption"] == "a red circle on the left"
    assert ds.task_type == "image_text" and ds.tokenizer is tok


def test_vg_images_of_coco_evaluation_pictures_are_left_out(tmp_path, tok):
    root = vg_root(tmp_path)
    karpathy = write_json(tmp_path / "dataset_coco.json", {"images": [
        {"cocoid": 139, "split": "test", "filename": "a.jpg", "imgid": 0, "sentences": []},
        {"cocoid": 25, "split": "val", "filename": "b.jpg", "imgid": 1, "sentences": []},
        {"cocoid": 9, "split": "restval", "filename": "c.jpg", "imgid": 2, "sentences": []}]})
    ds = vg_region_captions(data_dir=str(root), split="train", name="vg", tokenizer=tok,
                            exclude_coco_file=str(karpathy))
    assert sorted({c.image_id for c in ds.captions}) == [1, 5, 107899]  # VG 3 (COCO 139) and 2 (COCO 25) left out
    assert ds.info()["excluded_images"] == 2
    only_test = vg_region_captions(data_dir=str(root), split="train", name="vg", tokenizer=tok,
                                   exclude_coco_file=str(karpathy), exclude_karpathy_splits=["test"])
    assert sorted({c.image_id for c in only_test.captions}) == [1, 2, 5, 107899]
    coco_val = OFFICIAL / "coco" / "annotations" / "instances_val2017.json"  # COCO 139, 285, 632: VG 3 and 5
    by_coco = vg_region_captions(data_dir=str(root), split="train", name="vg", tokenizer=tok,
                                 exclude_coco_file=str(coco_val), exclude_image_ids=[1])
    assert sorted({c.image_id for c in by_coco.captions}) == [2, 107899]


def test_vg_errors_name_the_file_and_the_fix(tmp_path, tok):
    root = vg_root(tmp_path)
    (root / "region_descriptions.json").unlink()
    with pytest.raises(ConfigError, match=r"Visual Genome v1.2.*missing file: .*vg/region_descriptions.json"):
        vg_region_captions(data_dir=str(root), split="train", name="vg", tokenizer=tok)
    write_json(root / "region_descriptions.json", [{"id": 77, "regions": []}])
    with pytest.raises(ConfigError, match=r"region_descriptions.json, \[0\]: image 77 is not in image_data.json"):
        vg_region_captions(data_dir=str(root), split="train", name="vg", tokenizer=tok)
    write_json(root / "region_descriptions.json", [{"id": 1, "regions": [{"region_id": 5}]}])
    with pytest.raises(ConfigError, match=r"regions\[0\]: field 'phrase' is missing"):
        vg_region_captions(data_dir=str(root), split="train", name="vg", tokenizer=tok)
    with pytest.raises(ConfigError, match="only a 'train' split"):
        vg_region_captions(data_dir=str(root), split="val", name="vg", tokenizer=tok)


def test_conceptual_captions_skip_and_count_rows_without_a_picture(tmp_path, tok, caplog):
    root = tmp_path / "cc3m"
    shutil.copytree(OFFICIAL / "cc3m", root)
    urls = cc_urls(root / "Train_GCC-training.tsv")
    fetch(root / "train", urls, [0, 1, 3, 4], shard_size=2)  # row 2's link is dead
    with caplog.at_level(logging.WARNING, logger="unimm"):
        ds = conceptual_captions(data_dir=str(root), split="train", name="cc", tokenizer=tok)
    assert [c.caption_id for c in ds.captions] == [0, 1, 3, 4]
    assert ds.captions[1].text == "the man is riding a horse"
    assert ds.captions[2].image_path == root / "train" / "00001" / "000000003.jpg"
    assert ds.info()["missing_pictures"] == 1 and ds.info()["num_images"] == 4
    assert "1 of the 5 rows" in caplog.text and "Train_GCC-training.tsv" in caplog.text
    assert [p for p, _ in ds.image_files()] == [c.image_path for c in ds.captions]
    with pytest.raises(ConfigError, match=r"1 of the 5 rows .* have no picture \(rows 2\)"):
        conceptual_captions(data_dir=str(root), split="train", name="cc", tokenizer=tok, strict=True)
    # the val split: a flat folder of <row>.jpg, no sidecars
    for row in range(2):
        write_image(root / "val" / f"{row}.jpg")
    val = conceptual_captions(data_dir=str(root), split="val", name="cc", tokenizer=tok, strict=True)
    assert [c.text for c in val.captions] == ["a cat is sitting", "green triangle on the left"]


def test_conceptual_captions_with_img2dataset_header_line(tmp_path, tok):
    root = tmp_path / "cc3m"
    shutil.copytree(OFFICIAL / "cc3m", root)
    tsv = root / "Train_GCC-training.tsv"
    urls = cc_urls(tsv)
    tsv.write_text("caption\turl\n" + tsv.read_text())
    fetch(root / "train", urls, range(5))
    ds = conceptual_captions(data_dir=str(root), split="train", name="cc", tokenizer=tok, strict=True)
    assert len(ds) == 5 and ds.captions[0].text == "a dog sitting in the street"


def test_conceptual_captions_errors(tmp_path, tok):
    root = tmp_path / "cc3m"
    shutil.copytree(OFFICIAL / "cc3m", root)
    urls = cc_urls(root / "Train_GCC-training.tsv")
    with pytest.raises(ConfigError, match="picture folder not found: .*train.*img2dataset"):
        conceptual_captions(data_dir=str(root), split="train", name="cc", tokenizer=tok)
    (root / "train").mkdir()
    with pytest.raises(ConfigError, match="no pictures named <key>.jpg"):
        conceptual_captions(data_dir=str(root), split="train", name="cc", tokenizer=tok)
    # another shard size: keys are not rows, caught by the url of a shard's first picture
    write_image(root / "train" / "00000" / "000000000.jpg")
    write_image(root / "train" / "00001" / "000000003.jpg")
    write_json(root / "train" / "00001" / "000000003.json", {"url": urls[2]})
    with pytest.raises(ConfigError, match=r"000000003.json: the picture of key 3 has the url .* row 3"):
        conceptual_captions(data_dir=str(root), split="train", name="cc", tokenizer=tok)
    shutil.rmtree(root / "train")
    write_image(root / "train" / "7.jpg")
    with pytest.raises(ConfigError, match="picture key 7 .* past the 5 rows"):
        conceptual_captions(data_dir=str(root), split="train", name="cc", tokenizer=tok)
    (root / "Train_GCC-training.tsv").write_text("no tab here\n")
    with pytest.raises(ConfigError, match=r"Train_GCC-training.tsv, line 1: expected 'caption<TAB>url'"):
        conceptual_captions(data_dir=str(root), split="train", name="cc", tokenizer=tok)
    with pytest.raises(ConfigError, match="unknown split 'test'"):
        conceptual_captions(data_dir=str(root), split="test", name="cc", tokenizer=tok)
    (root / "Train_GCC-training.tsv").unlink()
    with pytest.raises(ConfigError, match="missing file: .*Train_GCC-training.tsv"):
        conceptual_captions(data_dir=str(root), split="train", name="cc", tokenizer=tok)


def test_sbu_captions_line_aligned_files(tmp_path, tok, caplog):
    root = tmp_path / "sbu"
    shutil.copytree(OFFICIAL / "sbu", root)
    urls = (root / "SBU_captioned_photo_dataset_urls.txt").read_text().splitlines()
    fetch(root / "images", urls, [0, 2, 3])
    with caplog.at_level(logging.WARNING, logger="unimm"):
        ds = sbu_captions(data_dir=str(root), split="train", name="sbu", tokenizer=tok)
    assert [(c.caption_id, c.text) for c in ds.captions] == [
        (0, "A man riding a horse on the street"), (2, "Good picture of a dog"), (3, "a small yellow circle")]
    assert ds.info()["missing_pictures"] == 1 and "1 of the 4 rows" in caplog.text
    with pytest.raises(ConfigError, match=r"have no picture \(rows 1\)"):
        sbu_captions(data_dir=str(root), split="train", name="sbu", tokenizer=tok, strict=True)
    captions = root / "SBU_captioned_photo_dataset_captions.txt"
    captions.write_text("\n".join(captions.read_text().splitlines()[:3]) + "\n")
    with pytest.raises(ConfigError, match="has 4 lines but .*captions.txt has 3; the two official files are line-aligned"):
        sbu_captions(data_dir=str(root), split="train", name="sbu", tokenizer=tok)


def test_meter_mix_one_pretraining_batch(tmp_path, tiny_benchmark):
    """COCO captions as the base, the three as train_extended extras, MLM + ITM over all (the METER include)."""
    vg = vg_root(tmp_path)
    cc = tmp_path / "cc3m"
    shutil.copytree(OFFICIAL / "cc3m", cc)
    fetch(cc / "train", cc_urls(cc / "Train_GCC-training.tsv"), [0, 1, 3])
    sbu = tmp_path / "sbu"
    shutil.copytree(OFFICIAL / "sbu", sbu)
    fetch(sbu / "images", (sbu / "SBU_captioned_photo_dataset_urls.txt").read_text().splitlines(), [0, 1])
    tok = {"type": "bert_tokenizer", "path": str(tiny_benchmark / "shapes" / "vocab"), "max_length": 40}
    common = {"tokenizer": tok, "train_transform": TRANSFORM, "eval_transform": TRANSFORM}
    node = {"type": "image_text_pretraining", "mlm_probability": 0.15, "itm": True, "base": {
        "type": "train_extended",
        "base": {"type": "coco_captions", "data_dir": str(tiny_benchmark / "shapes" / "coco"), **common},
        "extra": [{"type": "vg_region_captions", "data_dir": str(vg), **common},
                  {"type": "conceptual_captions", "data_dir": str(cc), **common},
                  {"type": "sbu_captions", "data_dir": str(sbu), **common}]}}
    ds = DATASETS.build(node, split="train", name="coco")
    coco = len(ds.base.base)
    assert len(ds) == coco + 7 + 3 + 2
    picked = [0, coco, coco + 7, coco + 10, coco + 11, 1]  # COCO, VG, CC, SBU, SBU, COCO
    batch = ds.collate([ds[i] for i in picked])
    assert batch["task_type"] == "image_text_pretraining"
    assert batch["image"].shape == (6, 3, 32, 32) and batch["itm_image"].shape == (6, 3, 32, 32)
    assert int(batch["itm_label"].sum()) == 3 and batch["mlm_labels"].shape == batch["mlm_input_ids"].shape
    assert batch["caption"][1] == "a red circle on the left" and batch["caption"][2] == "a dog sitting in the street"
    assert batch["caption"][3] == "A man riding a horse on the street"
    val = DATASETS.build(node, split="val", name="coco")  # evaluation stays on COCO: the extras are not built
    assert len(val) == len(DATASETS.build(node["base"]["base"], split="val", name="coco"))
