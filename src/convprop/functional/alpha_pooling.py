"""Alpha-integration pooling (Eom and Choi, "Alpha-integration pooling for convolutional
neural networks", arXiv:1811.03436, 2018), 2-D, NCHW, with a trainable alpha.

Each window R of K positive values is pooled by Amari's alpha-mean (Amari 2007, "Integration
of stochastic models by minimizing alpha-divergence"), with equal weights 1/K:

    f_alpha(s) = s^((1 - alpha) / 2)   (alpha != 1),     f_1(s) = log s
    y = f_alpha^{-1}( (1/K) sum_{i in R} f_alpha(x_i) )
      = ( (1/K) sum_i x_i^p )^(1/p),   p = (1 - alpha) / 2

so alpha = -1 (p = 1) is the arithmetic mean, alpha = 1 (p -> 0) the geometric mean (the
limit, computed as such), alpha = 3 (p = -1) the harmonic mean, alpha -> -inf the maximum and
alpha -> +inf the minimum. alpha is the paper's parameter itself (not p), trainable; one per
layer (shape () or (1,)) or, as an extension, one per channel (shape (C,)).

Evaluation and gradients, with ``l = log x`` and ``w = softmax(p l)`` over the window (the
log-sum-exp form, so that large |p| neither overflows nor underflows):

    log y  = (logsumexp(p l) - log K) / p
    dy/dx_i = y w_i / x_i
    dy/dalpha = -(y / 2) d(log y)/dp,   d(log y)/dp = (sum_i w_i l_i - log y) / p

With ``l`` centred on its window mean k1 (``c = l - k1``), ``log y = k1 + g`` and
``g = log(mean(exp(p c))) / p`` is evaluated through ``log1p(mean(expm1(p c))) / p`` where
``|p| < 1/4`` (accurate as p -> 0; |p c| < 45 there for any positive float32, so nothing
overflows) and through log-sum-exp elsewhere; g = 0 at p = 0 (the geometric mean). The path
is chosen per alpha (per layer, or per channel), so each window is evaluated once.
Near p = 0 (|p| < 1e-5) ``d(log y)/dp`` is the cumulant series
``k2/2 + p k3/3 + p^2 k4/8`` (k2, k3, k4: the window's cumulants of l), its limit at
alpha = 1 being half the variance of log x.

Positivity: alpha-integration is defined for positive values only. The paper applies it to
positive activations; we do not shift or clip the input (a silent shift would change the
mean's meaning), and a non-positive (or NaN) value is a ValueError. Feed it a strictly
positive map (e.g. softplus, or ReLU output plus a small constant).

Windows: ``kernel_size``, ``stride`` (default ``kernel_size``), no padding; windows that do
not tile the input drop the remainder (floor), overlapping windows add their gradients.

Loop reference: :func:`convprop.reference.alpha_pool`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._checks import as_float_array, check_cache, check_dy, check_ndim, check_same_dtype, pair

__all__ = ["AlphaPool2dCache", "alpha_pool2d_forward", "alpha_pool2d_backward"]

#: |p| below which the geometric-mean series replaces the 0/0 forms.
_SERIES_P = 1e-5


@dataclass(frozen=True)
class AlphaPool2dCache:
    """``jac``: dy/dx for each window element (N, C, Ho, Wo, KH*KW); ``dydalpha``: dy/dalpha
    per output (N, C, Ho, Wo); the window geometry, x's shape and alpha's shape."""

    x_shape: tuple
    alpha_shape: tuple
    dtype: np.dtype
    kernel_size: tuple
    stride: tuple
    jac: np.ndarray
    dydalpha: np.ndarray


def _windows(x: np.ndarray, kernel_size: tuple, stride: tuple) -> np.ndarray:
    """(N, C, Ho, Wo, KH*KW): each window's elements in row-major order (a copy)."""
    v = sliding_window_view(x, kernel_size, axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
    return v.reshape(*v.shape[:4], -1)


def _scatter_windows(g: np.ndarray, x_shape: tuple, kernel_size: tuple, stride: tuple):
    """The adjoint of :func:`_windows`: each window element's value added at its input
    position (overlapping windows add)."""
    kh, kw = kernel_size
    sh, sw = stride
    ho, wo = g.shape[2:4]
    dx = np.zeros(x_shape, dtype=g.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += g[..., i * kw + j]
    return dx


def _check_alpha(op: str, alpha, channels: int) -> np.ndarray:
    alpha = as_float_array(op, "alpha", alpha)
    if alpha.shape not in ((), (1,), (channels,)):
        raise ValueError(f"{op}: alpha must have shape () or (1,) (one per layer) or "
                         f"({channels},) (one per channel), got {alpha.shape}")
    if not np.isfinite(alpha).all():
        raise ValueError(f"{op}: alpha must be finite, got {alpha}")
    return alpha


#: |p| below which g is evaluated as log1p(mean(expm1(p c))) / p: no cancellation as p -> 0,
#: and no overflow (with |p| < 1/4, |p c| stays below 45 for every positive float32).
_SMALL_P = 0.25


def _paths(p: np.ndarray):
    """The evaluation path of each alpha: ("series" for |p| < 1e-5, "small" for |p| < 1/4,
    else "large") with the channels it covers (a slice for one alpha per layer)."""
    kinds = np.where(np.abs(p) < _SERIES_P, 0, np.where(np.abs(p) < _SMALL_P, 1, 2))
    names = ("series", "small", "large")
    if p.size == 1:
        return [(names[int(kinds[0])], slice(None))]
    return [(names[k], np.flatnonzero(kinds == k)) for k in range(3) if (kinds == k).any()]


def _large(c, p, k):
    """|p| >= 1/4: log-sum-exp (no overflow for large |p|); w = softmax(p c)."""
    s = p * c
    smax = s.max(axis=-1, keepdims=True)
    s -= smax
    w = np.exp(s, out=s)
    den = w.sum(axis=-1, keepdims=True)
    w /= den
    g = (smax + np.log(den) - math.log(k)) / p
    return w, g, ((w * c).sum(axis=-1, keepdims=True) - g) / p


def _small(c, p, k, series: bool = False):
    """|p| < 1/4: g through log1p/expm1 (accurate as p -> 0, 0 at p = 0); w = exp(p c) / sum
    (exp, not expm1 + 1, which would lose the tiny weights of tiny inputs); d(log y)/dp by
    its cumulant series when ``series`` (|p| < 1e-5, alpha near 1)."""
    s = p * c
    p_safe = np.where(p == 0, 1, p)
    g = np.where(p == 0, 0, np.log1p(np.expm1(s).mean(axis=-1, keepdims=True)) / p_safe)
    w = np.exp(s, out=s)
    w /= w.sum(axis=-1, keepdims=True)
    if series:
        c2 = c * c
        k2, k3 = c2.mean(axis=-1, keepdims=True), (c2 * c).mean(axis=-1, keepdims=True)
        k4 = (c2 * c2).mean(axis=-1, keepdims=True) - 3 * k2 * k2
        return w, g, k2 / 2 + p * k3 / 3 + p * p * k4 / 8
    return w, g, ((w * c).sum(axis=-1, keepdims=True) - g) / p_safe


_PATHS = {"large": _large, "small": _small,
          "series": lambda c, p, k: _small(c, p, k, series=True)}


def alpha_pool2d_forward(x: np.ndarray, alpha: np.ndarray, *, kernel_size, stride=None):
    """Alpha-integration pooling: ``y = ((1/K) sum_R x^p)^(1/p)``, ``p = (1 - alpha)/2``
    (the geometric mean at alpha = 1).

    Args:
        x: (N, C, H, W), every value > 0.
        alpha: shape () or (1,) (per layer) or (C,) (per channel), x's dtype, finite.
        kernel_size: KH or (KH, KW), at most the input size.
        stride: an int or pair; default ``kernel_size``.

    Returns:
        y (N, C, Ho, Wo), ``Ho = (H - KH) // SH + 1``, in x's dtype, and an
        :class:`AlphaPool2dCache`.
    """
    op = "alpha_pool2d"
    x = as_float_array(op, "x", x)
    check_ndim(op, "x", x, 4, "(N, C, H, W)")
    alpha = _check_alpha(op, alpha, x.shape[1])
    dt = check_same_dtype(op, x=x, alpha=alpha)
    ks = pair(op, "kernel_size", kernel_size)
    st = ks if stride is None else pair(op, "stride", stride)
    if ks[0] > x.shape[2] or ks[1] > x.shape[3]:
        raise ValueError(f"{op}: kernel_size {ks} is larger than x's spatial size "
                         f"{x.shape[2:]}")
    if not (x > 0).all():
        raise ValueError(f"{op}: x must be positive (alpha-integration is defined for "
                         f"positive values), got a minimum of {np.nanmin(x) if x.size else x}"
                         + (" and NaN" if np.isnan(x).any() else ""))
    win = _windows(x, ks, st)                                  # (N, C, Ho, Wo, K)
    c = np.log(win)
    k1 = c.mean(axis=-1, keepdims=True)
    c -= k1                                                    # centred logs: log y = k1 + g
    p = ((1 - alpha) / 2).reshape(-1)                          # (1,) or (C,)
    y = np.empty(win.shape[:4] + (1,), dt)
    dlogy = np.empty(win.shape[:4] + (1,), dt)
    jac = np.empty(win.shape, dt)
    for path, chans in _paths(p):
        sel = (slice(None), chans)
        pc = p[chans].reshape(1, -1, 1, 1, 1) if p.size > 1 else p.reshape(1, 1, 1, 1, 1)
        w, g, dl = _PATHS[path](c[sel], pc, win.shape[-1])
        y[sel] = np.exp(k1[sel] + g)
        dlogy[sel] = dl
        jac[sel] = w * y[sel] / win[sel]
    dydalpha = (-0.5 * y * dlogy)[..., 0]
    return (np.ascontiguousarray(y[..., 0], dtype=dt),
            AlphaPool2dCache(tuple(x.shape), alpha.shape, dt, ks, st, jac, dydalpha))


def alpha_pool2d_backward(dy: np.ndarray, cache: AlphaPool2dCache):
    """``(dx, dalpha)``: ``dx`` scatters ``dy * y w_i / x_i`` back over the windows
    (overlaps add); ``dalpha = sum dy * dy/dalpha`` over N, Ho, Wo (and C for one alpha per
    layer), in alpha's shape. The forward dtype."""
    cache = check_cache("alpha_pool2d_backward", cache, AlphaPool2dCache)
    dy = check_dy("alpha_pool2d_backward", dy, cache.dydalpha.shape, cache.dtype)
    dx = _scatter_windows(dy[..., None] * cache.jac, cache.x_shape, cache.kernel_size,
                          cache.stride)
    per_channel = (dy * cache.dydalpha).sum(axis=(0, 2, 3))
    if cache.alpha_shape == (cache.x_shape[1],) and cache.alpha_shape != (1,):
        dalpha = per_channel
    else:
        dalpha = per_channel.sum().reshape(cache.alpha_shape)
    return dx, np.asarray(dalpha, dtype=cache.dtype)  # ascontiguousarray would make 0-d 1-d
