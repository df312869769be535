"""Batch augmentations and conversions against loop references in this file."""

import numpy as np
import pytest
from helpers import hostile

from convprop.data import channel_stats, normalize, random_crop, random_horizontal_flip, to_float


def _unique_images(n, c, h, w, dtype=np.float64):
    # every pixel distinct and nonzero, so a crop's top-left value tells where it came from
    return (np.arange(n * c * h * w).reshape(n, c, h, w) + 1).astype(dtype)


def _crop_loop(img, pad, top, left, sh, sw):
    c, h, w = img.shape
    out = np.zeros((c, sh, sw), img.dtype)
    for ch in range(c):
        for i in range(sh):
            for j in range(sw):
                r, q = top + i - pad, left + j - pad
                if 0 <= r < h and 0 <= q < w:
                    out[ch, i, j] = img[ch, r, q]
    return out


@pytest.mark.parametrize("shape, size, pad", [
    ((40, 2, 5, 7), 5, 2), ((120, 1, 6, 6), (3, 4), 0), ((40, 3, 4, 5), 1, 1),
    ((1, 1, 3, 3), 3, 1), ((60, 1, 4, 4), (6, 6), 1)])
def test_random_crop_matches_loop(shape, size, pad):
    n, c, h, w = shape
    sh, sw = (size, size) if isinstance(size, int) else size
    x = _unique_images(*shape)
    out = random_crop(hostile(x), size, pad, np.random.default_rng(3))
    assert out.shape == (n, c, sh, sw) and out.dtype == x.dtype
    positions = set()
    for k in range(n):
        # find the offset this output came from (pixels are unique), then compare with the loop
        found = [(t, l) for t in range(h + 2 * pad - sh + 1) for l in range(w + 2 * pad - sw + 1)
                 if np.array_equal(out[k], _crop_loop(x[k], pad, t, l, sh, sw))]
        assert found, k
        if len(found) > 1:  # only a crop lying wholly in the zero padding is ambiguous
            assert not out[k].any(), (k, found)
        else:
            positions.add(found[0])
    n_pos = (h + 2 * pad - sh + 1) * (w + 2 * pad - sw + 1)
    if n >= 60:
        assert len(positions) == n_pos  # offsets vary per image and cover every position


def test_random_crop_uint8_and_reproducible():
    x = np.random.default_rng(0).integers(0, 256, (8, 3, 32, 32), dtype=np.uint8)
    a = random_crop(x, 32, 4, np.random.default_rng(5))
    b = random_crop(x, 32, 4, np.random.default_rng(5))
    assert a.dtype == np.uint8 and a.shape == x.shape
    np.testing.assert_array_equal(a, b)
    assert a.flags.writeable and not np.shares_memory(a, x)


def test_random_crop_errors():
    x = np.zeros((2, 1, 4, 4), np.float32)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"random_crop: crop size \(7, 7\) is larger"):
        random_crop(x, 7, 1, rng)
    with pytest.raises(ValueError, match=r"random_crop: padding must be >= 0"):
        random_crop(x, 2, -1, rng)
    with pytest.raises(ValueError, match=r"random_crop: x must be 4-D"):
        random_crop(x[0], 2, 0, rng)
    with pytest.raises(TypeError, match=r"random_crop: rng must be a numpy.random.Generator"):
        random_crop(x, 2, 0, 42)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_random_horizontal_flip(dtype):
    x = _unique_images(400, 2, 3, 5, dtype=np.float64).astype(dtype) if dtype != np.uint8 else \
        np.random.default_rng(1).integers(0, 256, (400, 2, 3, 5), dtype=np.uint8)
    out = random_horizontal_flip(hostile(x), np.random.default_rng(4))
    assert out.dtype == dtype and out.shape == x.shape
    flipped = 0
    for k in range(len(x)):
        mirror = np.stack([[row[::-1] for row in ch] for ch in x[k]])
        if np.array_equal(out[k], mirror) and not np.array_equal(x[k], mirror):
            flipped += 1
        else:
            np.testing.assert_array_equal(out[k], x[k])
    assert 160 <= flipped <= 240  # p = 0.5 on 400 images
    np.testing.assert_array_equal(random_horizontal_flip(x, np.random.default_rng(0), p=0.0), x)
    np.testing.assert_array_equal(random_horizontal_flip(x, np.random.default_rng(0), p=1.0),
                                  x[..., ::-1])


def test_random_horizontal_flip_errors():
    x = np.zeros((2, 1, 4, 4), np.uint8)
    with pytest.raises(ValueError, match=r"random_horizontal_flip: p must be a probability"):
        random_horizontal_flip(x, np.random.default_rng(0), p=1.5)
    with pytest.raises(TypeError, match=r"random_horizontal_flip: rng must be"):
        random_horizontal_flip(x, None)


@pytest.mark.parametrize("spatial", [(4, 5), (7,), (3, 4, 5)])
@pytest.mark.parametrize("mean, std, c", [((0.1307,), (0.3081,), 1), (0.5, 0.25, 3),
                                          ((0.49, 0.48, 0.45), (0.25, 0.24, 0.26), 3)])
def test_normalize_matches_loop(mean, std, c, spatial):
    # images, sequences and clips alike: (N, C, *spatial)
    x = np.random.default_rng(2).integers(0, 256, (3, c, *spatial), dtype=np.uint8)
    out = normalize(hostile(x), mean, std)
    m = np.broadcast_to(np.asarray(mean, float), (c,))
    s = np.broadcast_to(np.asarray(std, float), (c,))
    ref = np.zeros(x.shape)
    for i in range(x.shape[0]):
        for ch in range(c):
            ref[i, ch] = (x[i, ch] / 255.0 - m[ch]) / s[ch]
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_normalize_errors():
    x = np.zeros((2, 3, 4, 4), np.uint8)
    with pytest.raises(TypeError, match=r"normalize: images must be uint8"):
        normalize(x.astype(np.float32), 0.5, 0.5)
    with pytest.raises(ValueError, match=r"normalize: mean must be a scalar or have one value "
                                         r"per channel \(3\), got 2"):
        normalize(x, (0.5, 0.5), 0.5)
    with pytest.raises(ValueError, match=r"normalize: std must be > 0"):
        normalize(x, 0.5, (0.5, 0.0, 0.5))
    with pytest.raises(ValueError, match=r"normalize: x must be \(N, C, \*spatial\), got "
                                         r"shape \(4,\)"):
        normalize(x[0, 0, 0], 0.5, 0.5)


@pytest.mark.parametrize("shape", [(2, 1, 9), (2, 1, 3, 4, 4)])
def test_image_augmentations_refuse_sequences_and_clips(shape):
    x = np.zeros(shape, np.uint8)
    rng = np.random.default_rng(0)
    pat = r"x must be 4-D \(N, C, H, W\), a batch of images \(a 2-D augmentation"
    with pytest.raises(ValueError, match=r"^random_crop: " + pat):
        random_crop(x, 2, 1, rng)
    with pytest.raises(ValueError, match=r"^random_horizontal_flip: " + pat):
        random_horizontal_flip(x, rng)


@pytest.mark.parametrize("shape", [(50, 1, 30), (20, 3, 6, 7), (4, 2, 3, 5, 6), (1, 1, 1)])
def test_channel_stats_equals_numpy(shape, rng):
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    x[:, 0].flat[::3] = 0  # a skewed channel, as in MNIST
    mean, std = channel_stats(hostile(x))
    axes = (0, *range(2, x.ndim))
    assert isinstance(mean, list) and len(mean) == len(std) == shape[1]
    np.testing.assert_allclose(mean, x.mean(axis=axes) / 255.0, rtol=1e-14, atol=0)
    np.testing.assert_allclose(std, x.std(axis=axes) / 255.0, rtol=1e-12, atol=1e-15)


def test_channel_stats_errors():
    with pytest.raises(TypeError, match=r"^channel_stats: images must be uint8"):
        channel_stats(np.zeros((2, 1, 3), np.float32))
    with pytest.raises(ValueError, match=r"^channel_stats: x must be \(N, C, \*spatial\)"):
        channel_stats(np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r"^channel_stats: images must not be empty"):
        channel_stats(np.zeros((0, 1, 3), np.uint8))


def test_to_float():
    x = np.arange(256, dtype=np.uint8).reshape(4, 1, 8, 8)
    out = to_float(hostile(x))
    assert out.dtype == np.float32 and out.shape == x.shape
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_allclose(out, x / 255.0, rtol=1e-7)
    with pytest.raises(TypeError, match=r"to_float: images must be uint8"):
        to_float(out)
