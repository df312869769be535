"""Wavelet pooling (Williams and Li, "Wavelet pooling for convolutional neural networks",
ICLR 2018), 2-D, NCHW.

The paper's forward: take each feature map's *second-level* 2-D discrete wavelet transform,
discard the first-level detail subbands, and invert the second level only, which gives a map
of half the size:

    LL1, (LH1, HL1, HH1) = DWT(x)           first level; the details are discarded
    LL2, LH2, HL2, HH2   = DWT(LL1)         second level
    y                    = IDWT(LL2, LH2, HL2, HH2)          (N, C, H/2, W/2)

Choices where the paper leaves room (stated once, here):

- Transform: the orthonormal separable DWT with *periodic extension* (circular boundary,
  pywt's ``mode="periodization"`` in spirit), ``a[k] = sum_m h[m] x[(2k+m) mod n]`` and
  ``d[k] = sum_m g[m] x[(2k+m) mod n]`` along each axis, ``g[m] = (-1)^m h[L-1-m]``. With
  it the transform is an orthogonal matrix for every even length, so the inverse is the
  transpose and, by perfect reconstruction, ``y == LL1`` up to rounding. For Haar,
  ``h = (1, 1)/sqrt(2)`` and ``LL1`` is the 2x2 block sum divided by 2: Haar wavelet pooling
  is exactly **2 x** 2x2 average pooling (the factor 2 is the orthonormal normalisation,
  ``h0 * h1 * 4 = 2``). Daubechies-2 uses the 4-tap filter
  ``h = (1+sqrt3, 3+sqrt3, 3-sqrt3, 1-sqrt3) / (4 sqrt2)``. The filters are written here;
  PyWavelets is not needed.
- Sizes: H and W must be multiples of 4 (two decimations by 2); no padding is added.
- Backward, ``backward_rule="exact"`` (default): the forward is linear, ``y = P x``, and the
  backward is its adjoint ``dx = P^T dy``, computed by running the steps in reverse with
  their adjoints (the adjoint of an orthogonal DWT is its IDWT and vice versa):
  ``dLL1 = IDWT(DWT(dy))``; ``dx = IDWT(dLL1, 0, 0, 0)``.
- Backward, ``backward_rule="paper"``: the paper's backpropagation rule:
  a first-level DWT of dy gives (a, lh, hl, hh); the detail subbands are upsampled by 2 to
  act as new first-level details, the first decomposition becomes the second level, and a
  two-level IDWT gives dx:
  ``dx = IDWT(IDWT(a, lh, hl, hh), up(lh), up(hl), up(hh))``. The upsampling is not
  specified in the paper; we take nearest-neighbour repetition (each coefficient fills a 2x2
  block). Since ``IDWT(a, lh, hl, hh) == dy``, the paper's dx equals the exact dx plus
  ``IDWT(0, up(lh), up(hl), up(hh))``: it injects the gradient's own detail content into the
  discarded first-level detail subbands, so it is *not* the gradient of the forward
  (a gradient check fails for it), but it agrees with the exact rule whenever dy has no
  detail content at its first level (e.g. a dy constant on aligned 2x2 blocks, for Haar).

Loop reference: :func:`convprop.reference.wavelet_pool` (and ``wavelet_pool_paper_backward``; the
DWT itself as ``dwt2`` / ``idwt2``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .._checks import as_float_array, check_cache, check_dy, check_ndim, one_of

__all__ = ["WAVELETS", "WaveletPool2dCache", "wavelet_filters", "wavelet_pool2d_forward",
           "wavelet_pool2d_backward"]

_S2, _S3 = math.sqrt(2.0), math.sqrt(3.0)

#: Orthonormal scaling (low-pass) filters h; the high-pass is g[m] = (-1)^m h[L-1-m].
WAVELETS = {
    "haar": (1.0 / _S2, 1.0 / _S2),
    "db2": ((1 + _S3) / (4 * _S2), (3 + _S3) / (4 * _S2), (3 - _S3) / (4 * _S2),
            (1 - _S3) / (4 * _S2)),
}
_RULES = ("exact", "paper")


def wavelet_filters(wavelet: str) -> tuple:
    """``(h, g)``: the low-pass scaling filter and its quadrature-mirror high-pass."""
    h = np.array(WAVELETS[wavelet])
    g = np.array([(-1) ** m * h[len(h) - 1 - m] for m in range(len(h))])
    return h, g


@functools.lru_cache(maxsize=64)
def _analysis(wavelet: str, n: int, dtype: str) -> tuple:
    """The periodic analysis matrices (A, D), each (n/2, n): a = A x, d = D x."""
    h, g = wavelet_filters(wavelet)
    a, d = np.zeros((n // 2, n)), np.zeros((n // 2, n))
    for k in range(n // 2):
        for m in range(len(h)):
            a[k, (2 * k + m) % n] += h[m]
            d[k, (2 * k + m) % n] += g[m]
    return a.astype(dtype), d.astype(dtype)


def _dwt2(x: np.ndarray, wavelet: str) -> tuple:
    """One level of the 2-D DWT over the last two axes: (LL, LH, HL, HH), rows first
    letter (L: low-pass along H), columns second."""
    ah, dh = _analysis(wavelet, x.shape[-2], x.dtype.name)
    aw, dw = _analysis(wavelet, x.shape[-1], x.dtype.name)
    lo, hi = ah @ x, dh @ x
    return lo @ aw.T, lo @ dw.T, hi @ aw.T, hi @ dw.T


def _idwt2(ll, lh, hl, hh, wavelet: str) -> np.ndarray:
    """The inverse (= adjoint, the transform being orthogonal) of :func:`_dwt2`."""
    ah, dh = _analysis(wavelet, 2 * ll.shape[-2], ll.dtype.name)
    aw, dw = _analysis(wavelet, 2 * ll.shape[-1], ll.dtype.name)
    return ah.T @ (ll @ aw + lh @ dw) + dh.T @ (hl @ aw + hh @ dw)


def _upsample2(a: np.ndarray) -> np.ndarray:
    """Nearest-neighbour upsampling by 2 along the last two axes (the paper's rule)."""
    return np.repeat(np.repeat(a, 2, axis=-2), 2, axis=-1)


@dataclass(frozen=True)
class WaveletPool2dCache:
    """The forward is linear: the backward needs only x's shape and dtype, the basis and the
    backward rule."""

    x_shape: tuple
    dtype: np.dtype
    wavelet: str
    backward_rule: str


def wavelet_args(op: str, wavelet, backward_rule) -> tuple:
    """The one check of wavelet pooling's ``wavelet`` and ``backward_rule`` (kernel and
    module)."""
    return (one_of(op, "wavelet", wavelet, tuple(WAVELETS), shown=repr(tuple(WAVELETS))),
            one_of(op, "backward_rule", backward_rule, _RULES, shown=repr(_RULES)))


def _check_args(op: str, x, wavelet, backward_rule) -> np.ndarray:
    x = as_float_array(op, "x", x)
    check_ndim(op, "x", x, 4, "(N, C, H, W)")
    wavelet_args(op, wavelet, backward_rule)
    h, w = x.shape[2:]
    if h < 4 or w < 4 or h % 4 or w % 4:
        raise ValueError(f"{op}: x's height and width must be positive multiples of 4 (two "
                         f"levels of decimation by 2), got shape {x.shape}")
    return x


def wavelet_pool2d_forward(x: np.ndarray, *, wavelet: str = "haar",
                           backward_rule: str = "exact"):
    """Wavelet pooling: ``y = IDWT(DWT(LL1(x)))``, the second level inverted with the
    first-level details discarded (see the module docstring for the boundary, the sizes and
    the two backward rules).

    Args:
        x: (N, C, H, W), H and W multiples of 4.
        wavelet: ``"haar"`` or ``"db2"`` (orthonormal, periodic extension).
        backward_rule: ``"exact"`` (the adjoint of this forward) or ``"paper"``.

    Returns:
        y (N, C, H/2, W/2) in x's dtype, and a :class:`WaveletPool2dCache`.
    """
    op = "wavelet_pool2d"
    x = _check_args(op, x, wavelet, backward_rule)
    ll1 = _dwt2(x, wavelet)[0]          # first level; its details are discarded
    y = _idwt2(*_dwt2(ll1, wavelet), wavelet)   # second level decomposed and inverted
    return np.ascontiguousarray(y), WaveletPool2dCache(tuple(x.shape), x.dtype, wavelet,
                                                       backward_rule)


def wavelet_pool2d_backward(dy: np.ndarray, cache: WaveletPool2dCache) -> np.ndarray:
    """dx: ``exact``: ``IDWT(IDWT(DWT(dy)), 0, 0, 0)`` (the forward's adjoint); ``paper``:
    ``IDWT(IDWT(a, lh, hl, hh), up(lh), up(hl), up(hh))`` with ``(a, lh, hl, hh) =
    DWT(dy)``. Shape (N, C, H, W), the forward dtype."""
    cache = check_cache("wavelet_pool2d_backward", cache, WaveletPool2dCache)
    n, c, h, w = cache.x_shape
    dy = check_dy("wavelet_pool2d_backward", dy, (n, c, h // 2, w // 2), cache.dtype)
    a, lh, hl, hh = _dwt2(dy, cache.wavelet)
    dll1 = _idwt2(a, lh, hl, hh, cache.wavelet)
    if cache.backward_rule == "exact":
        zero = np.zeros_like(dll1)
        dx = _idwt2(dll1, zero, zero, zero, cache.wavelet)
    else:
        dx = _idwt2(dll1, _upsample2(lh), _upsample2(hl), _upsample2(hh), cache.wavelet)
    return np.ascontiguousarray(dx)
