"""CIFAR-10 / CIFAR-100 from tiny folders written in the official python-version pickle format."""
from __future__ import annotations

import pickle
import pickletools
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from unimm.config.errors import ConfigError
from unimm.data.cifar import cifar
from unimm.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from unimm.registry import DATASETS

IDENTITY = {"type": "normalize_image", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}  # pixels / 255
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def py2_opcodes(value: Any) -> bytes:
    """``value`` as Python 2's cPickle (protocol 2) wrote the official files: bytes are py2 ``str``."""
    if isinstance(value, dict):
        return b"}(" + b"".join(py2_opcodes(k) + py2_opcodes(v) for k, v in value.items()) + b"u"  # SETITEMS
    if isinstance(value, list):
        return b"](" + b"".join(py2_opcodes(v) for v in value) + b"e"  # APPENDS
    if isinstance(value, tuple):
        return b"(" + b"".join(py2_opcodes(v) for v in value) + b"t"  # TUPLE
    if isinstance(value, bytes):  # SHORT_BINSTRING / BINSTRING
        return (b"U" + bytes([len(value)]) if len(value) < 256 else b"T" + struct.pack("<I", len(value))) + value
    if value is None or isinstance(value, bool):
        return {None: b"N", True: b"\x88", False: b"\x89"}[value]
    if isinstance(value, int):
        return b"J" + struct.pack("<i", value)  # BININT
    if isinstance(value, np.ndarray):  # numpy 1.x: _reconstruct(ndarray, (0,), 'b') then BUILD with the state
        dtype = (b"cnumpy\ndtype\n" + py2_opcodes((value.dtype.str[1:].encode(), 0, 1)) + b"R"
                 + py2_opcodes((3, value.dtype.str[:1].encode(), None, None, None, -1, -1, 0)) + b"b")
        state = b"(" + py2_opcodes(1) + py2_opcodes(value.shape) + dtype + b"\x89" + py2_opcodes(value.tobytes()) + b"t"
        return (b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n" + py2_opcodes((0,)) + py2_opcodes(b"b")
                + b"tR" + state + b"b")
    raise TypeError(type(value))


def write_pickle(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x80\x02" + py2_opcodes(value) + b".")


def pixels(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 3072), dtype=np.uint8)


def write_cifar10(root: Path) -> Path:
    """Batches of 2 images (labels ``[i - 1, i + 4]`` in batch ``i``) and a test batch of 3 images."""
    for i in range(1, 6):
        write_pickle(root / f"data_batch_{i}", {b"batch_label": b"training batch %d of 5" % i, b"data": pixels(2, i),
                                                b"labels": [i - 1, i + 4], b"filenames": [b"a.png", b"b.png"]})
    write_pickle(root / "test_batch", {b"batch_label": b"testing batch 1 of 1", b"data": pixels(3, 0),
                                       b"labels": [9, 0, 5], b"filenames": [b"c.png", b"d.png", b"e.png"]})
    write_pickle(root / "batches.meta", {b"num_cases_per_batch": 2, b"label_names": [n.encode() for n in CIFAR10_NAMES],
                                         b"num_vis": 3072})
    return root


def write_cifar100(root: Path) -> Path:
    for split, count, seed in (("train", 4, 7), ("test", 2, 8)):
        write_pickle(root / split, {b"filenames": [b"x.png"] * count, b"batch_label": b"training batch 1 of 1",
                                    b"fine_labels": [99, 3, 0, 42][:count], b"coarse_labels": [19, 7, 0, 4][:count],
                                    b"data": pixels(count, seed)})
    write_pickle(root / "meta", {b"fine_label_names": [b"fine%d" % i for i in range(100)],
                                 b"coarse_label_names": [b"coarse%d" % i for i in range(20)]})
    return root


def build(root: Path, split: str = "train", **node: Any):
    return DATASETS.build({"type": "cifar", "data_dir": str(root), **node}, split=split, name="cifar")


def test_fake_files_are_in_the_official_format(tmp_path):
    write_cifar10(tmp_path)
    raw = (tmp_path / "data_batch_2").read_bytes()
    names = {arg for op, arg, _ in pickletools.genops(raw) if op.name == "GLOBAL"}
    assert names == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    batch = pickle.loads(raw, encoding="bytes")  # what the CIFAR page tells users to run
    assert batch[b"labels"] == [1, 6] and batch[b"data"].dtype == np.uint8
    assert np.array_equal(batch[b"data"], pixels(2, 2))


def test_cifar10_train_reads_the_five_batches_in_order(tmp_path):
    train = build(write_cifar10(tmp_path), train_transform=IDENTITY)
    assert train.info() == {"num_classes": 10, "labels": CIFAR10_NAMES}
    assert len(train) == 10 and train.task_type == "classification"
    assert train.labels.tolist() == [0, 5, 1, 6, 2, 7, 3, 8, 4, 9]
    sample = train[5]  # batch 3, second row
    expected = torch.from_numpy(pixels(2, 3)[1].reshape(3, 32, 32)).float() / 255  # R, G, B planes, row-major
    assert sample["label"] == 7 and torch.allclose(sample["image"], expected, atol=1e-6)


def test_pixel_layout_with_the_default_and_an_identity_transform(tmp_path):
    write_cifar10(tmp_path)
    row = np.zeros((2, 3, 32, 32), dtype=np.uint8)
    row[0, 0, 0, 0] = 255  # R at (y=0, x=0)
    row[0, 1, 1, 2] = 128  # G at (y=1, x=2)
    write_pickle(tmp_path / "data_batch_1", {b"data": row.reshape(2, 3072), b"labels": [3, 4]})
    plain = build(tmp_path, train_transform=IDENTITY)[0]["image"]
    assert plain.shape == (3, 32, 32) and plain.dtype == torch.float32
    assert plain[0, 0, 0] == 1.0 and plain[1, 1, 2] == pytest.approx(128 / 255)
    assert plain.sum() == pytest.approx(1.0 + 128 / 255)  # nothing anywhere else, nothing transposed
    default = cifar(data_dir=str(tmp_path), split="train", name="cifar")[0]["image"]  # ImageNet normalisation
    assert default[0, 0, 0] == pytest.approx((1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0])
    assert default[0, 0, 1] == pytest.approx(-IMAGENET_MEAN[0] / IMAGENET_STD[0])
    assert default[1, 1, 2] == pytest.approx((128 / 255 - IMAGENET_MEAN[1]) / IMAGENET_STD[1])


def test_val_and_test_read_the_test_batch_with_the_eval_transform(tmp_path):
    write_cifar10(tmp_path)
    resize = {"type": "image_pipeline", "steps": [{"type": "resize_center_crop", "size": 48}, IDENTITY]}
    for split in ("val", "test"):
        data = build(tmp_path, split, train_transform=IDENTITY, eval_transform=resize)
        assert data.labels.tolist() == [9, 0, 5]
        batch = data.collate([data[i] for i in range(3)])
        assert batch["image"].shape == (3, 3, 48, 48) and bool(batch["pixel_mask"].all())
        assert batch["label"].tolist() == [9, 0, 5]
    train = build(tmp_path, train_transform=IDENTITY, eval_transform=resize)
    batch = train.collate([train[0], train[1]])
    assert batch["image"].shape == (2, 3, 32, 32) and batch["pixel_mask"].shape == (2, 32, 32)


def test_cifar100_fine_and_coarse_labels(tmp_path):
    write_cifar100(tmp_path)
    fine = build(tmp_path, variant="cifar100")
    assert fine.info()["num_classes"] == 100 and fine.info()["labels"][:3] == ["fine0", "fine1", "fine2"]
    assert fine.labels.tolist() == [99, 3, 0, 42] and fine[0]["image"].shape == (3, 32, 32)
    coarse = build(tmp_path, variant="cifar100", label_kind="coarse")
    assert coarse.info() == {"num_classes": 20, "labels": [f"coarse{i}" for i in range(20)]}
    assert coarse.labels.tolist() == [19, 7, 0, 4]
    assert build(tmp_path, "test", variant="cifar100", label_kind="coarse").labels.tolist() == [19, 7]


def test_max_samples_stops_inside_a_batch(tmp_path):
    write_cifar10(tmp_path)
    assert build(tmp_path, max_samples=3).labels.tolist() == [0, 5, 1]
    assert len(build(tmp_path, max_samples=100)) == 10
    (tmp_path / "data_batch_5").write_bytes(b"not read")  # a short run reads only the batches it needs
    assert build(tmp_path, max_samples=4).pixels.shape == (4, 3072)
    with pytest.raises(ConfigError, match="max_samples: must be at least 1"):
        build(tmp_path, max_samples=0)


def test_bad_arguments(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(ConfigError, match="label_kind: cifar10 has only fine labels, got 'coarse'"):
        build(tmp_path, label_kind="coarse")
    with pytest.raises(ConfigError, match="unknown split 'dev'"):
        build(tmp_path, "dev")
    with pytest.raises(ConfigError, match="variant: 'cifar1000' is not one of"):
        build(tmp_path, variant="cifar1000")


def test_missing_files_are_listed_with_the_official_archive(tmp_path):
    root = write_cifar10(tmp_path / "cifar-10-batches-py")
    (root / "data_batch_4").unlink()
    (root / "batches.meta").unlink()
    with pytest.raises(ConfigError) as err:
        build(root)
    text = str(err.value)
    assert f"missing file: {root / 'data_batch_4'}" in text and f"missing file: {root / 'batches.meta'}" in text
    assert "CIFAR-10 python version" in text and "https://www.cs.toronto.edu/~kriz/cifar.html" in text
    assert "nothing is downloaded" in text and "data_batch_1" not in text
    with pytest.raises(ConfigError, match="set data_dir to that folder"):
        build(tmp_path)  # the folder above the extracted one
    with pytest.raises(ConfigError, match=r"cifar-100-python folder.*missing folder: .*nowhere"):
        build(tmp_path / "nowhere", variant="cifar100")


@pytest.mark.parametrize("batch, message", [
    ({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]},
     r"data_batch_2: field 'data' should be a uint8 array \[N, 3072\].*got a uint8 array of shape \[2, 1024\]"),
    ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "field 'data' .* got a float32 array"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},
     "data_batch_2: field 'labels' has 1 labels for 2 images"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]},
     r"data_batch_2: field 'labels'\[1\] is 10, outside 0..9"),
    ({b"data": np.zeros((2, 3072), np.uint8)}, "data_batch_2: field 'labels' is missing .*fields found: data"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [b"x", 1]}, "field 'labels' should be a list of ints"),
], ids=["shape", "dtype", "count", "range", "missing", "type"])
def test_malformed_batches_name_the_file_and_field(tmp_path, batch, message):
    write_cifar10(tmp_path)
    write_pickle(tmp_path / "data_batch_2", batch)
    with pytest.raises(ConfigError, match=message):
        build(tmp_path)


def test_meta_names_are_checked(tmp_path):
    write_cifar10(tmp_path)
    write_pickle(tmp_path / "batches.meta", {b"label_names": [b"cat", b"dog"]})
    with pytest.raises(ConfigError, match="batches.meta: field 'label_names' has 2 names; .* has 10 classes"):
        build(tmp_path)
    (tmp_path / "batches.meta").write_bytes(b"\x80\x02}(U")
    with pytest.raises(ConfigError, match="batches.meta: not a readable CIFAR pickle"):
        build(tmp_path)


class Evil:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


def evil_py2(command: str) -> bytes:
    """A py2-style file whose data is ``os.system(command)`` (GLOBAL 'os system')."""
    call = b"cos\nsystem\n" + py2_opcodes((command.encode(),)) + b"R"
    return b"\x80\x02}(U\x04data" + call + b"u."


def evil_py3(command: str) -> bytes:
    """The same from a modern pickler (STACK_GLOBAL 'posix system', protocol 5)."""
    return pickle.dumps({b"data": Evil(command), b"labels": [0]}, protocol=5)


@pytest.mark.parametrize("write", [evil_py2, evil_py3], ids=["py2", "protocol5"])
def test_a_pickle_naming_other_globals_is_refused_unrun(tmp_path, write):
    write_cifar10(tmp_path)
    marker = tmp_path / "ran"
    (tmp_path / "data_batch_1").write_bytes(write(f"touch {marker}"))
    refused = r"data_batch_1: refused to unpickle: it names the global '(os|posix)\.system'"
    with pytest.raises(ConfigError, match=refused):
        build(tmp_path)
    assert not marker.exists()
    pickle.loads(write(f"touch {marker}"), encoding="bytes")  # control: plain pickle does run it
    assert marker.exists()
