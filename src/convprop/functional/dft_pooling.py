"""DFT magnitude pooling (Ryu, Yang and Lim, "DFT-based transformation invariant pooling
layer for visual classification", ECCV 2018), 2-D, NCHW.

Each feature map's 2-D discrete Fourier transform, its magnitude, and the low-frequency
``output_size`` block:

    F[u, v] = (1 / (H W)) sum_{m, n} x[m, n] exp(-2 pi i (u m / H + v n / W))
    y[u, v] = |F[u, v]|,   0 <= u < KH, 0 <= v < KW

By the shift theorem a circular shift of x multiplies F by a unit phase, so y is invariant
to circular translations of each map (exactly, up to rounding), while the kept magnitudes
still describe the map's shape (unlike global average pooling).

Choices where the paper leaves room:

- The block is the **top-left corner** ``F[0:KH, 0:KW]`` of the unshifted DFT (the paper
  keeps the low-frequency NxN part and notes that the top-left cell is the average): the
  non-negative frequencies 0..K-1 along each axis. For a real map ``|F[-u, -v]| = |F[u, v]|``,
  so a centred block would repeat magnitudes; the corner does not (except along the
  self-conjugate rows and columns).
- Normalisation ``1/(H W)`` (NumPy's ``norm="forward"``), so that ``y[0, 0] = |mean(x)|``:
  the paper's remark that the top-left cell equals the average value, and for non-negative
  maps (after ReLU) ``output_size=1`` *is* global average pooling.
- Gradient: ``d|F|/dx = Re(conj(F)/|F| * dF/dx)``, so
  ``dx = Re(ifft2(G))`` with ``G[u, v] = dy[u, v] * F[u, v] / |F[u, v]|`` on the kept block
  and 0 elsewhere. Where ``|F| = 0`` the magnitude is not differentiable; we take the
  subgradient 0 there (as ``ReLU'(0) = 0``).

Loop reference (the DFT by its sum formula): :func:`convprop.reference.dft_pool`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import as_float_array, check_cache, check_dy, check_ndim, pair

__all__ = ["DFTPool2dCache", "dft_pool2d_forward", "dft_pool2d_backward"]


@dataclass(frozen=True)
class DFTPool2dCache:
    """``phase``: ``F / |F|`` on the kept block (0 where ``|F| = 0``), complex (N, C, KH, KW);
    x's shape and dtype."""

    x_shape: tuple
    dtype: np.dtype
    phase: np.ndarray


def dft_pool2d_forward(x: np.ndarray, *, output_size):
    """DFT magnitude pooling: ``y = |fft2(x) / (H W)|[..., :KH, :KW]``.

    Args:
        x: (N, C, H, W).
        output_size: KH or (KH, KW), 1 <= KH <= H, 1 <= KW <= W.

    Returns:
        y (N, C, KH, KW) in x's dtype, and a :class:`DFTPool2dCache`.
    """
    op = "dft_pool2d"
    x = as_float_array(op, "x", x)
    check_ndim(op, "x", x, 4, "(N, C, H, W)")
    kh, kw = pair(op, "output_size", output_size)
    h, w = x.shape[2:]
    if kh > h or kw > w:
        raise ValueError(f"{op}: output_size must not exceed x's spatial size {(h, w)}, got "
                         f"{(kh, kw)}")
    f = np.fft.fft2(x, norm="forward")[..., :kh, :kw]
    mag = np.abs(f)
    phase = np.divide(f, mag, out=np.zeros_like(f), where=mag > 0)
    return mag.astype(x.dtype), DFTPool2dCache(tuple(x.shape), x.dtype, phase)


def dft_pool2d_backward(dy: np.ndarray, cache: DFTPool2dCache) -> np.ndarray:
    """dx = Re(ifft2(G)), ``G = dy * F/|F|`` on the kept block and 0 elsewhere (the
    subgradient 0 where ``|F| = 0``). Shape (N, C, H, W), the forward dtype."""
    cache = check_cache("dft_pool2d_backward", cache, DFTPool2dCache)
    dy = check_dy("dft_pool2d_backward", dy, cache.phase.shape, cache.dtype)
    kh, kw = cache.phase.shape[2:]
    g = np.zeros(cache.x_shape, dtype=cache.phase.dtype)
    g[..., :kh, :kw] = dy * cache.phase
    return np.ascontiguousarray(np.fft.ifft2(g).real.astype(cache.dtype))
