"""The embedded mnist-sample: stratified, equal to MNIST at the recorded indices, verified."""

import hashlib
import json
import shutil

import numpy as np
import pytest
from helpers import SHARED_DATA, needs_mnist

from convprop.data import load_dataset
from convprop.data.sample import SAMPLE_JSON, SAMPLE_NPZ, content_sha256, load_sample_arrays

MNIST_COUNTS = {
    "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}
SIZES = {"train": 10_000, "test": 2_000}


@pytest.fixture(scope="module")
def sample():
    with np.load(SAMPLE_NPZ, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(SAMPLE_JSON.read_text())


@pytest.mark.parametrize("split", ["train", "test"])
def test_load(split):
    ds = load_dataset("mnist-sample", split)
    assert ds.name == "mnist-sample" and ds.split == split
    assert ds.images.shape == (SIZES[split], 1, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (SIZES[split],) and ds.labels.dtype == np.int64
    assert ds.classes == tuple("0123456789")


@pytest.mark.parametrize("split", ["train", "test"])
def test_stratified_counts(sample, split):
    arrays, record = sample
    counts = np.bincount(arrays[f"y_{split}"], minlength=10)
    expected = np.array(MNIST_COUNTS[split]) * SIZES[split] / sum(MNIST_COUNTS[split])
    assert counts.sum() == SIZES[split]
    assert np.all(np.abs(counts - expected) < 1), (counts, expected)  # proportional, rounded
    assert counts.tolist() == record["class_counts"][split]
    idx = arrays[f"idx_{split}"]
    assert np.all(np.diff(idx) > 0)  # sorted, no duplicates
    assert idx.min() >= 0 and idx.max() < sum(MNIST_COUNTS[split])


def test_record_and_checksums(sample):
    arrays, record = sample
    assert record["file_sha256"] == hashlib.sha256(SAMPLE_NPZ.read_bytes()).hexdigest()
    assert record["content_sha256"] == content_sha256(arrays)
    assert isinstance(record["seed"], int)
    assert record["source_files_sha256"]["train-images-idx3-ubyte.gz"] == (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609")
    assert SAMPLE_NPZ.stat().st_size < 5_000_000


@needs_mnist
def test_equals_full_mnist_at_recorded_indices(sample):
    arrays, record = sample
    for split in ("train", "test"):
        full = load_dataset("mnist", split, root=SHARED_DATA / "mnist")
        idx = arrays[f"idx_{split}"]
        np.testing.assert_array_equal(arrays[f"x_{split}"], full.images[idx])
        np.testing.assert_array_equal(arrays[f"y_{split}"], full.labels[idx])
    for name, digest in record["source_files_sha256"].items():
        got = hashlib.sha256((SHARED_DATA / "mnist" / name).read_bytes()).hexdigest()
        assert got == digest, name


@needs_mnist
def test_rebuild_reproduces_content(tmp_path):
    import importlib.util
    from pathlib import Path
    script = Path(__file__).resolve().parents[2] / "scripts" / "make_mnist_sample.py"
    spec = importlib.util.spec_from_file_location("make_mnist_sample", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(["--mnist-dir", str(SHARED_DATA / "mnist"), "--out-dir", str(tmp_path)])
    rebuilt = json.loads((tmp_path / "mnist_sample.json").read_text())
    assert rebuilt["content_sha256"] == json.loads(SAMPLE_JSON.read_text())["content_sha256"]


def test_corrupt_sample_is_rejected(tmp_path):
    npz, js = tmp_path / "s.npz", tmp_path / "s.json"
    data = bytearray(SAMPLE_NPZ.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    shutil.copy(SAMPLE_JSON, js)
    with pytest.raises(ValueError, match=r"mnist-sample: checksum mismatch"):
        load_sample_arrays(npz, js)


def test_missing_sample_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mnist-sample: .*missing"):
        load_sample_arrays(tmp_path / "none.npz", SAMPLE_JSON)
