"""MNIST / Fashion-MNIST IDX readers through load_dataset: synthetic files, errors, full copies."""

import gzip

import numpy as np
import pytest
from helpers import SHARED_DATA, needs_mnist

from convprop.data import DATASETS, ArrayDataset, load_dataset


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_synthetic_roundtrip(tmp_path, idx_writer, name, split):
    x, y = idx_writer.write(tmp_path, split, n=9, rows=5, cols=3)  # non-square
    ds = load_dataset(name, split, root=tmp_path)
    assert isinstance(ds, ArrayDataset) and ds.name == name and ds.split == split
    assert ds.images.dtype == np.uint8 and ds.images.shape == (9, 1, 5, 3)
    assert ds.labels.dtype == np.int64 and ds.labels.shape == (9,)
    np.testing.assert_array_equal(ds.images[:, 0], x)
    np.testing.assert_array_equal(ds.labels, y)
    assert len(ds) == 9 and len(ds.classes) == 10
    assert ds.images.flags.writeable  # callers may augment in place without a surprise


def test_uncompressed_files_and_single_image(tmp_path, idx_writer):
    x, y = idx_writer.write(tmp_path, "test", n=1, gz=False)
    ds = load_dataset("mnist", "test", root=tmp_path)
    np.testing.assert_array_equal(ds.images[0, 0], x[0])
    assert ds.labels.tolist() == y.tolist()


def test_dataset_names():
    assert DATASETS == ("mnist-sample", "mnist", "fashion-mnist", "cifar10", "moving-mnist",
                        "seq-mnist")


def test_fashion_class_names(tmp_path, idx_writer):
    idx_writer.write(tmp_path, "test", n=2)
    ds = load_dataset("fashion-mnist", "test", root=tmp_path)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"


# --- errors -------------------------------------------------------------------------------

def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"load_dataset: .*does not exist.*--data-dir"):
        load_dataset("mnist", root=tmp_path / "nope")


def test_missing_file_names_it(tmp_path, idx_writer):
    idx_writer.write(tmp_path, "train", n=3)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError,
                       match=r"idx: train-labels-idx1-ubyte.gz not found"
                             r".*--data-dir.*download=True"):
        load_dataset("mnist", root=tmp_path)


def test_empty_cache_says_how_to_get_data(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"load_dataset: .*download=True"):
        load_dataset("fashion-mnist", "test", cache_dir=tmp_path)


def test_swapped_files_wrong_magic(tmp_path, idx_writer):
    img, lab, _, _ = idx_writer.files(4)
    idx_writer.write(tmp_path, "train", img=lab, lab=img)
    with pytest.raises(ValueError, match=r"idx: .*magic number 0x00000801, expected IDX images"):
        load_dataset("mnist", root=tmp_path)


def test_garbage_magic(tmp_path, idx_writer):
    img, lab, _, _ = idx_writer.files(4)
    idx_writer.write(tmp_path, "train", img=b"\x00\x00\x08\x0d" + img[4:], lab=lab)
    with pytest.raises(ValueError, match=r"idx: .*magic number 0x0000080d"):
        load_dataset("mnist", root=tmp_path)


def test_truncated_data(tmp_path, idx_writer):
    img, lab, _, _ = idx_writer.files(5)
    idx_writer.write(tmp_path, "train", img=img[:-100], lab=lab)
    with pytest.raises(ValueError, match=r"idx: .*truncated: the header says shape \(5, 28, 28\)"):
        load_dataset("mnist", root=tmp_path)


def test_truncated_header(tmp_path, idx_writer):
    img, lab, _, _ = idx_writer.files(5)
    idx_writer.write(tmp_path, "train", img=img, lab=lab[:6])
    with pytest.raises(ValueError, match=r"idx: .*truncated: its header needs 8 bytes"):
        load_dataset("mnist", root=tmp_path)


def test_trailing_bytes(tmp_path, idx_writer):
    img, lab, _, _ = idx_writer.files(5)
    idx_writer.write(tmp_path, "train", img=img, lab=lab + b"\x01")
    with pytest.raises(ValueError, match=r"idx: .*longer than its header says"):
        load_dataset("mnist", root=tmp_path)


def test_truncated_gzip_stream(tmp_path, idx_writer):
    idx_writer.write(tmp_path, "train", n=50)
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"idx: .*damaged or truncated gzip"):
        load_dataset("mnist", root=tmp_path)


def test_labels_out_of_range(tmp_path, idx_writer):
    x, y = idx_writer.arrays(6)
    y[3] = 10
    img, lab, _, _ = idx_writer.files(6, x=x, y=y)
    idx_writer.write(tmp_path, "test", img=img, lab=lab)
    with pytest.raises(ValueError, match=r"idx: .*label 10 at index 3, expected labels in 0\.\.9"):
        load_dataset("mnist", "test", root=tmp_path)


def test_count_mismatch(tmp_path, idx_writer):
    img, _, _, _ = idx_writer.files(6)
    _, lab, _, _ = idx_writer.files(5)
    idx_writer.write(tmp_path, "test", img=img, lab=lab)
    with pytest.raises(ValueError, match=r"idx: .*6 images but .*5 labels"):
        load_dataset("mnist", "test", root=tmp_path)


@pytest.mark.parametrize("kw, exc, pat", [
    ({"name": "imagenet"}, ValueError, r"load_dataset: unknown data set 'imagenet'"),
    ({"name": "mnist", "split": "val"}, ValueError, r"load_dataset: split must be one of"),
])
def test_bad_arguments(kw, exc, pat):
    with pytest.raises(exc, match=pat):
        load_dataset(**kw)


def test_arraydataset_validates():
    x = np.zeros((2, 1, 3, 3), np.uint8)
    with pytest.raises(TypeError, match="ArrayDataset: images must be a uint8"):
        ArrayDataset(x.astype(np.float32), np.zeros(2, np.int64), ("a", "b"), "t")
    with pytest.raises(TypeError, match="ArrayDataset: labels must be an int64"):
        ArrayDataset(x, np.zeros(2, np.int32), ("a", "b"), "t")
    with pytest.raises(ValueError, match="ArrayDataset: 2 images but 3 labels"):
        ArrayDataset(x, np.zeros(3, np.int64), ("a", "b"), "t")
    with pytest.raises(ValueError, match=r"ArrayDataset: labels must lie in 0\.\.1"):
        ArrayDataset(x, np.array([0, 2]), ("a", "b"), "t")
    for bad in ((2, 9), (2, 1, 2, 2, 2, 2)):
        with pytest.raises(TypeError, match=r"ArrayDataset: images must be a uint8 ndarray "
                                             r"\(N, C, \*spatial\) with 1 to 3 spatial axes"):
            ArrayDataset(np.zeros(bad, np.uint8), np.zeros(2, np.int64), ("a", "b"), "t")


@pytest.mark.parametrize("shape", [(2, 1, 9), (2, 3, 4, 5), (2, 1, 3, 4, 5)])
def test_arraydataset_takes_one_to_three_spatial_axes(shape):
    ds = ArrayDataset(np.zeros(shape, np.uint8), np.array([0, 1]), ("a", "b"), "t")
    assert ds.images.shape == shape and len(ds) == 2 and ds.num_classes == 2


# --- the full copies ------------------------------------------------------------------------

def _readme_loader(directory, prefix):
    """The reader given in shared/data/README.md, independent of convprop."""
    def read(name):
        return gzip.decompress((directory / name).read_bytes())
    x = np.frombuffer(read(f"{prefix}-images-idx3-ubyte.gz"), np.uint8, offset=16)
    y = np.frombuffer(read(f"{prefix}-labels-idx1-ubyte.gz"), np.uint8, offset=8)
    return x.reshape(-1, 28, 28), y


@needs_mnist
def test_full_mnist_matches_published_facts():
    d = SHARED_DATA / "mnist"
    tr = load_dataset("mnist", "train", root=d)
    assert tr.images.shape == (60000, 1, 28, 28)
    assert abs(tr.images.mean() - 33.3184) < 1e-4
    assert np.bincount(tr.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                               5851, 5949]
    te = load_dataset("mnist", "test", root=d)
    x, y = _readme_loader(d, "t10k")
    np.testing.assert_array_equal(te.images[:, 0], x)
    np.testing.assert_array_equal(te.labels, y)


@pytest.mark.skipif(not (SHARED_DATA / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").exists(),
                    reason=f"Fashion-MNIST not at {SHARED_DATA / 'fashion-mnist'}")
def test_full_fashion_test_split():
    d = SHARED_DATA / "fashion-mnist"
    te = load_dataset("fashion-mnist", "test", root=d)
    assert abs(te.images.mean() - 73.1466) < 1e-4
    assert np.bincount(te.labels).tolist() == [1000] * 10
    x, y = _readme_loader(d, "t10k")
    np.testing.assert_array_equal(te.images[:, 0], x)
    np.testing.assert_array_equal(te.labels, y)
