"""Lp (power-average) pooling in 1, 2 and 3 spatial dimensions, PyTorch's definition.

Built on average pooling (:mod:`.pooling`), as PyTorch builds it: the window sum of x**p
is an average pooling of x**p times the kernel area, so the windows, ceil_mode and the
backward's scatter-add are average pooling's.

Loop reference: :func:`convprop.reference.lp_pool`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._checks import as_float_array, check_cache, check_ndim, real_number
from .pooling import LAYOUTS, AvgPoolCache, MaxPoolCache, _avg_backward, _avg_forward, \
    _check_dy, _max_backward, _max_forward

__all__ = ["LPPoolCache", "LPPool1dCache", "LPPool2dCache", "LPPool3dCache",
           "lp_pool1d_forward", "lp_pool1d_backward", "lp_pool2d_forward",
           "lp_pool2d_backward", "lp_pool3d_forward", "lp_pool3d_backward"]


@dataclass(frozen=True)
class LPPoolCache:
    """What the backward routes through. Finite p: ``pool`` is the average pooling of x**p
    (its windows and divisors), ``dsum`` = dy/dsum per output, (K/p) * s**(1/p - 1), zero
    where the window sum s is 0, and ``dpow`` = d(x**p)/dx = p * x**(p-1) (None for p = 1).
    p = inf: ``pool`` is the max pooling of |x| (its switches) and ``dpow`` = sign(x)."""

    norm_type: float
    pool: AvgPoolCache | MaxPoolCache
    dsum: np.ndarray | None
    dpow: np.ndarray | None

    @property
    def x_shape(self) -> tuple:
        return self.pool.geometry.x_shape


LPPool1dCache = LPPool2dCache = LPPool3dCache = LPPoolCache


def norm_type_arg(op: str, p) -> float:
    """The one check of Lp pooling's p (kernels and modules): a real number > 0, or inf."""
    p = real_number(op, "norm_type", p)
    if not p > 0:
        raise ValueError(f"{op}: norm_type must be > 0 (or inf), got {p}")
    return p


def _lp_forward(op, nd, x, norm_type, kernel_size, stride, ceil_mode):
    x = as_float_array(op, "x", x)
    check_ndim(op, "x", x, nd + 2, LAYOUTS[nd])
    p = norm_type_arg(op, norm_type)
    if p == math.inf:
        y, pool = _max_forward(op, nd, np.abs(x), kernel_size, stride, 0, 1, ceil_mode)
        return y, LPPoolCache(p, pool, None, np.sign(x))
    # x**p of a negative x is NaN for a non-integer p, and so is an odd p's root of a
    # negative sum: PyTorch's values, computed without NumPy's warnings
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        xp = x if p == 1 else x * x if p == 2 else np.power(x, x.dtype.type(p))
        mean, pool = _avg_forward(op, nd, xp, kernel_size, stride, 0, ceil_mode, True, None)
        area = math.prod(pool.geometry.kernel)
        s = mean * x.dtype.type(area)  # = the window sum (see lp_pool2d_forward on ceil_mode)
        y = s if p == 1 else np.power(s, x.dtype.type(1 / p))
        # d y / d s = s**(1/p - 1) / p; PyTorch's sign(s) * relu(|s|) makes it 0 at s == 0
        dsum = (np.ones_like(s) if p == 1 else np.power(s, x.dtype.type(1 / p - 1)))
        dsum *= x.dtype.type(area / p)
        dsum[s == 0] = 0
        dpow = None if p == 1 else x * x.dtype.type(2) if p == 2 else \
            np.power(x, x.dtype.type(p - 1)) * x.dtype.type(p)
    return y, LPPoolCache(p, pool, dsum, dpow)


def _lp_backward(op, dy, cache: LPPoolCache):
    cache = check_cache(op, cache, LPPoolCache)
    g = cache.pool.geometry
    dy = _check_dy(op, dy, g)
    with np.errstate(invalid="ignore", over="ignore"):
        if cache.norm_type == math.inf:
            return _max_backward(op, dy, cache.pool) * cache.dpow
        dx = _avg_backward(op, dy * cache.dsum, cache.pool)
        if cache.dpow is not None:
            dx *= cache.dpow  # 0 * inf = NaN at a zero x for p < 1, as PyTorch
    return dx


def lp_pool2d_forward(x, *, norm_type, kernel_size, stride=None, ceil_mode=False):
    """2-D Lp pooling: ``y = (sum over the window of x**p) ** (1/p)``, p = ``norm_type``.

    PyTorch's definition: y = (K * avg_pool(x**p)) ** (1/p) with K the kernel area, no
    padding. p = 1 is sum pooling, p = 2 the window's Euclidean norm, and as p grows y tends
    to the window's maximum (for x >= 0); p = inf is max pooling of |x| (PyTorch's special
    case, the first maximum taking the gradient). As in PyTorch, x**p is NaN for a negative x
    and a non-integer p (and an odd p's root of a negative sum is NaN): keep x >= 0 there.
    With ``ceil_mode`` a last window cut short by the input is rescaled by K / (its size),
    since avg_pool divides by the clipped size and PyTorch multiplies by the full K.

    Gradient: dx = sum over the windows holding x of dy * s**(1/p - 1) * x**(p-1), s the
    window sum. Where s == 0 that is undefined (0 ** negative); as PyTorch, such a window
    passes a gradient of 0 (its ``sign(s) * relu(|s|)`` has derivative 0 at 0). For p < 1 a
    zero x has an infinite derivative: inf where its window sum is nonzero, NaN where it is
    0 (0 * inf), exactly PyTorch's values.

    Args:
        x: (N, C, H, W) float32/float64.
        norm_type: p > 0, a real number or ``math.inf``.
        kernel_size, stride (None: kernel_size): int or (h, w) pair.
        ceil_mode: round the output size up (PyTorch's rule).
    Returns:
        y (N, C, Ho, Wo) in x's dtype and an :class:`LPPoolCache`.
    """
    return _lp_forward("lp_pool2d", 2, x, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d_backward(dy, cache: LPPoolCache):
    """Gradient of :func:`lp_pool2d_forward` (zero where a window's sum is 0).
    dy (N, C, Ho, Wo) in the forward's dtype -> dx (N, C, H, W)."""
    return _lp_backward("lp_pool2d_backward", dy, cache)


def lp_pool1d_forward(x, *, norm_type, kernel_size, stride=None, ceil_mode=False):
    """1-D Lp pooling over x (N, C, L) -> y (N, C, Lo) (see :func:`lp_pool2d_forward`)."""
    return _lp_forward("lp_pool1d", 1, x, norm_type, kernel_size, stride, ceil_mode)


def lp_pool1d_backward(dy, cache: LPPoolCache):
    """Gradient of :func:`lp_pool1d_forward`."""
    return _lp_backward("lp_pool1d_backward", dy, cache)


def lp_pool3d_forward(x, *, norm_type, kernel_size, stride=None, ceil_mode=False):
    """3-D Lp pooling over x (N, C, D, H, W) -> y (N, C, Do, Ho, Wo) (see
    :func:`lp_pool2d_forward`)."""
    return _lp_forward("lp_pool3d", 3, x, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d_backward(dy, cache: LPPoolCache):
    """Gradient of :func:`lp_pool3d_forward`."""
    return _lp_backward("lp_pool3d_backward", dy, cache)
