"""Resampling for saliency maps: nearest and bilinear up-sampling of (N, C, h, w) maps to an
image's size (PyTorch's ``interpolate`` rules, so Grad-CAM maps agree with Captum's), and a
Gaussian blur (the forward and backward cues method smooths its map)."""

from __future__ import annotations

import numpy as np

__all__ = ["interpolate", "gaussian_blur", "INTERPOLATION"]

INTERPOLATION = ("nearest", "bilinear")


def _nearest(a: np.ndarray, axis: int, size: int) -> np.ndarray:
    n = a.shape[axis]
    src = np.minimum(np.floor(np.arange(size) * (n / size)).astype(np.int64), n - 1)
    return np.take(a, src, axis=axis)


def _linear(a: np.ndarray, axis: int, size: int) -> np.ndarray:
    """align_corners=False: output sample i sits at input coordinate (i + 1/2) n/size - 1/2,
    clamped at 0; the two neighbours are blended (the last one repeats at the edge)."""
    n = a.shape[axis]
    src = np.maximum((np.arange(size) + 0.5) * (n / size) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    lam = (src - i0).astype(a.dtype)
    shape = [1] * a.ndim
    shape[axis] = size
    lam = lam.reshape(shape)
    return np.take(a, i0, axis=axis) * (1 - lam) + np.take(a, i1, axis=axis) * lam


def interpolate(maps: np.ndarray, size: tuple, mode: str = "bilinear") -> np.ndarray:
    """(N, C, h, w) -> (N, C, *size) by ``mode`` "nearest" (source index floor(i h/H), as
    ``torch.nn.functional.interpolate(mode="nearest")``) or "bilinear" (align_corners=False,
    as PyTorch and OpenCV's ``resize``). Separable: one axis at a time."""
    if mode not in INTERPOLATION:
        raise ValueError(f"interpolate: mode must be one of {INTERPOLATION}, got {mode!r}")
    if maps.ndim != 4 or len(size) != 2:
        raise ValueError(f"interpolate: maps must be 4-D (N, C, h, w) and size a pair, got "
                         f"shape {maps.shape} and size {size!r}")
    f = _nearest if mode == "nearest" else _linear
    out = maps
    for axis, s in zip((2, 3), size):
        if out.shape[axis] != s:
            out = f(out, axis, int(s))
    return out


def gaussian_blur(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Blur (N, C, H, W) maps over H and W with a normalised Gaussian of std ``sigma`` pixels,
    truncated at radius round(2.5 sigma) (the 11-tap kernel of sigma 2 that Imamoglu et al.'s
    code uses), edges mirrored without repeating the border pixel (OpenCV's default)."""
    if sigma <= 0:
        return maps
    r = max(1, int(round(2.5 * sigma)))
    t = np.arange(-r, r + 1)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).astype(maps.dtype)
    out = maps
    for axis in (2, 3):
        n = out.shape[axis]
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="reflect" if n > r else "edge")
        acc = np.zeros_like(out)
        for j, w in enumerate(k):
            sl = [slice(None)] * 4
            sl[axis] = slice(j, j + n)
            acc += w * p[tuple(sl)]
        out = acc
    return out
