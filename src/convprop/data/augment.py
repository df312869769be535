"""Batch augmentations and conversions, vectorized over the batch, with an explicit Generator.

All return a new array and never write into their input. The crop and the flip are 2-D image
augmentations and take (N, C, H, W) only; the conversions and :func:`channel_stats` take any
(N, C, *spatial).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["channel_stats", "normalize", "random_crop", "random_horizontal_flip", "to_float"]


def _check_batch(op: str, x, *, images_only: bool = True) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: x must be a numpy.ndarray, got {type(x).__name__}")
    if images_only and x.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D (N, C, H, W), a batch of images (a 2-D "
                         f"augmentation; sequences and clips have none), got shape {x.shape}")
    if x.ndim < 2:
        raise ValueError(f"{op}: x must be (N, C, *spatial), got shape {x.shape}")
    return x


def _check_rng(op: str, rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{op}: rng must be a numpy.random.Generator, got {type(rng).__name__}")


def _int(op: str, name: str, v, minimum: int) -> int:
    if not (isinstance(v, numbers.Integral) and not isinstance(v, bool)):
        raise TypeError(f"{op}: {name} must be an int, got {v!r}")
    if v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v}")
    return int(v)


def random_crop(x: np.ndarray, size, padding: int, rng: np.random.Generator) -> np.ndarray:
    """Zero-pad each image by ``padding`` on every side, then crop ``size`` at a random offset.

    Each image gets its own offset, drawn uniformly from all positions where the crop fits in
    the padded image; the crop is one gather from a sliding-window view (no per-image loop).

    Args:
        x: (N, C, H, W) any dtype. size: int or (h, w). padding: int >= 0.
    Returns:
        (N, C, h, w), same dtype as ``x``.
    """
    op = "random_crop"
    _check_batch(op, x)
    _check_rng(op, rng)
    if isinstance(size, (tuple, list)) and len(size) == 2:
        sh, sw = (_int(op, "size", s, 1) for s in size)
    else:
        sh = sw = _int(op, "size", size, 1)
    p = _int(op, "padding", padding, 0)
    n, _, h, w = x.shape
    if sh > h + 2 * p or sw > w + 2 * p:
        raise ValueError(f"{op}: crop size ({sh}, {sw}) is larger than the padded image "
                         f"({h + 2 * p}, {w + 2 * p}) (x.shape={x.shape}, padding={p})")
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
    oy = rng.integers(0, h + 2 * p - sh + 1, size=n)
    ox = rng.integers(0, w + 2 * p - sw + 1, size=n)
    win = np.lib.stride_tricks.sliding_window_view(xp, (sh, sw), axis=(2, 3))
    # Advanced indices on axes 0, 2, 3 around a slice: the batch axis comes first -> (N, C, h, w).
    return win[np.arange(n), :, oy, ox]


def random_horizontal_flip(x: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right independently with probability ``p``; same dtype as ``x``."""
    op = "random_horizontal_flip"
    _check_batch(op, x)
    _check_rng(op, rng)
    if not (isinstance(p, numbers.Real) and 0.0 <= p <= 1.0):
        raise ValueError(f"{op}: p must be a probability in [0, 1], got {p!r}")
    flip = rng.random(x.shape[0]) < p
    return np.where(flip[:, None, None, None], x[..., ::-1], x)


def _channel_vector(op: str, name: str, v, c: int) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, c)
    if a.size != c:
        raise ValueError(f"{op}: {name} must be a scalar or have one value per channel ({c}), "
                         f"got {a.size} values")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{op}: {name} must be finite, got {a.tolist()}")
    return a


def normalize(images: np.ndarray, mean, std) -> np.ndarray:
    """Per-channel standardization of uint8 images: ``y = (x / 255 - mean[c]) / std[c]``.

    ``mean`` and ``std`` are on the [0, 1] scale (as in torchvision, e.g. MNIST 0.1307, 0.3081),
    each a scalar or one value per channel (:func:`channel_stats` measures them).

    Args:
        images: (N, C, *spatial) uint8: sequences, images or clips.
    Returns:
        float32, the shape of ``images``.
    """
    op = "normalize"
    _check_batch(op, images, images_only=False)
    if images.dtype != np.uint8:
        raise TypeError(f"{op}: images must be uint8 (0..255), got dtype {images.dtype}; "
                        "for float images subtract and divide directly")
    c = images.shape[1]
    m = _channel_vector(op, "mean", mean, c)
    s = _channel_vector(op, "std", std, c)
    if np.any(s <= 0):
        raise ValueError(f"{op}: std must be > 0, got {s.tolist()}")
    per_channel = (c,) + (1,) * (images.ndim - 2)
    scale = (1.0 / (255.0 * s)).astype(np.float32).reshape(per_channel)
    shift = (-m / s).astype(np.float32).reshape(per_channel)
    out = images.astype(np.float32)
    out *= scale
    out += shift
    return out


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and (population) standard deviation of uint8 data on the [0, 1] scale.

    The arguments :func:`normalize` takes. Computed exactly from each channel's 256-bin
    histogram in integer arithmetic, so no float copy of the data is made (``np.std`` would
    allocate eight bytes per pixel: 0.8 GB for the moving-mnist training clips).

    Args:
        images: (N, C, *spatial) uint8.
    Returns:
        ``(mean, std)``, two lists of C floats.
    """
    op = "channel_stats"
    _check_batch(op, images, images_only=False)
    if images.dtype != np.uint8:
        raise TypeError(f"{op}: images must be uint8 (0..255), got dtype {images.dtype}")
    if images.size == 0:
        raise ValueError(f"{op}: images must not be empty, got shape {images.shape}")
    values = np.arange(256, dtype=np.int64)
    mean, std = [], []
    for c in range(images.shape[1]):
        counts = np.bincount(images[:, c].ravel(), minlength=256).astype(np.int64)
        n, s1, s2 = int(counts.sum()), int(counts @ values), int(counts @ values ** 2)
        mean.append(s1 / n / 255.0)
        std.append(math.sqrt((n * s2 - s1 * s1) / (n * n)) / 255.0)
    return mean, std


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images to float32 in [0, 1]: ``y = x / 255``; any shape."""
    if not isinstance(images, np.ndarray):
        raise TypeError(f"to_float: images must be a numpy.ndarray, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise TypeError(f"to_float: images must be uint8 (0..255), got dtype {images.dtype}")
    out = images.astype(np.float32)
    out /= np.float32(255.0)
    return out
