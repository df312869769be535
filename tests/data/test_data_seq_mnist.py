"""Sequential MNIST: raster-order pixel sequences and row sequences, against loop oracles."""

import numpy as np
import pytest
from helpers import hostile

from convprop.data import SEQUENCE_FORMS, load_dataset, sequential_mnist


def _pixels_loop(images):
    n, h, w = images.shape
    out = np.zeros((n, 1, h * w), np.uint8)
    for k in range(n):
        for r in range(h):
            for c in range(w):
                out[k, 0, r * w + c] = images[k, r, c]
    return out


def _rows_loop(images):
    n, h, w = images.shape
    out = np.zeros((n, w, h), np.uint8)
    for k in range(n):
        for r in range(h):  # time step r carries row r; its pixels are the channels
            out[k, :, r] = images[k, r, :]
    return out


@pytest.mark.parametrize("form, oracle", [("pixels", _pixels_loop), ("rows", _rows_loop)])
@pytest.mark.parametrize("shape", [(5, 28, 28), (3, 4, 7), (1, 1, 1)])
@pytest.mark.parametrize("channel_axis", [False, True])
def test_matches_loop(form, oracle, shape, channel_axis, rng):
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    given = images[:, None] if channel_axis else images
    out = sequential_mnist(hostile(given), form=form)
    expected = oracle(images)
    assert out.dtype == np.uint8 and out.shape == expected.shape and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)
    assert out.flags.writeable and not np.shares_memory(out, given)


def test_forms():
    assert SEQUENCE_FORMS == ("pixels", "rows")


@pytest.mark.parametrize("images, kw, exc, pat", [
    (np.zeros((2, 28, 28), np.float32), {}, TypeError, r"images must be a uint8"),
    ([[1, 2]], {}, TypeError, r"images must be a uint8 ndarray"),
    (np.zeros((2, 3, 28, 28), np.uint8), {}, ValueError, r"images must be \(N, 1, h, w\)"),
    (np.zeros((784,), np.uint8), {}, ValueError, r"images must be \(N, 1, h, w\)"),
    (np.zeros((2, 28, 28), np.uint8), {"form": "columns"}, ValueError,
     r"form must be one of \('pixels', 'rows'\), got 'columns'"),
])
def test_bad_arguments(images, kw, exc, pat):
    with pytest.raises(exc, match=r"^sequential_mnist: " + pat):
        sequential_mnist(images, **kw)


@pytest.mark.parametrize("split, n", [("train", 10_000), ("test", 2_000)])
def test_registered_splits(split, n):
    ds = load_dataset("seq-mnist", split)
    src = load_dataset("mnist-sample", split)
    assert ds.name == "seq-mnist" and ds.split == split and ds.classes == src.classes
    assert ds.images.shape == (n, 1, 784) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images, src.images.reshape(n, 1, 784))
    np.testing.assert_array_equal(ds.labels, src.labels)


def test_registered_from_idx_files(tmp_path, idx_writer):
    x, y = idx_writer.write(tmp_path, "train", n=6)
    ds = load_dataset("seq-mnist", "train", root=tmp_path)
    np.testing.assert_array_equal(ds.images, _pixels_loop(x))
    assert ds.labels.tolist() == y.tolist()
