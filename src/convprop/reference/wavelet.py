"""Wavelet pooling (Williams and Li, ICLR 2018), one plane and one coefficient at a time.

Periodic orthonormal DWT along one axis (``g[m] = (-1)^m h[L-1-m]``)::

    a[k] = sum_m h[m] v[(2k+m) mod n],    d[k] = sum_m g[m] v[(2k+m) mod n]

The pooling::  LL1 = DWT(x)[0] (first-level details discarded);  y = IDWT(DWT(LL1))
The paper's backward rule::  (a, lh, hl, hh) = DWT(dy);
                             dx = IDWT(IDWT(a, lh, hl, hh), up(lh), up(hl), up(hh))
with up() nearest-neighbour 2x upsampling. The exact backward is the forward's adjoint.
"""

from __future__ import annotations

import math

import numpy as np

from ._grid import positions

__all__ = ["WAVELET_FILTERS", "dwt2", "idwt2", "per_plane", "wavelet_pool",
           "wavelet_pool_paper_backward"]

_S2, _S3 = math.sqrt(2), math.sqrt(3)
#: The low-pass filters h: orthonormal Haar and Daubechies-2.
WAVELET_FILTERS = {"haar": [1 / _S2, 1 / _S2],
                   "db2": [(1 + _S3) / (4 * _S2), (3 + _S3) / (4 * _S2),
                           (3 - _S3) / (4 * _S2), (1 - _S3) / (4 * _S2)]}


def _hg(wavelet):
    h = WAVELET_FILTERS[wavelet]
    return h, [(-1) ** m * h[len(h) - 1 - m] for m in range(len(h))]


def _dwt1(v, wavelet):
    """(a, d) of one periodic level of the sequence v (even length)."""
    h, g = _hg(wavelet)
    n = len(v)
    a, d = [0.0] * (n // 2), [0.0] * (n // 2)
    for k in range(n // 2):
        for m in range(len(h)):
            a[k] += h[m] * v[(2 * k + m) % n]
            d[k] += g[m] * v[(2 * k + m) % n]
    return a, d


def _idwt1(a, d, wavelet):
    """The transpose of _dwt1 (its inverse: the transform is orthogonal)."""
    h, g = _hg(wavelet)
    n = 2 * len(a)
    v = [0.0] * n
    for k in range(n // 2):
        for m in range(len(h)):
            v[(2 * k + m) % n] += h[m] * a[k] + g[m] * d[k]
    return v


def dwt2(x, wavelet):
    """One 2-D level of an (H, W) plane, axis 0 then axis 1: [LL, LH, HL, HH]."""
    hgt, wid = x.shape
    lo, hi = np.zeros((hgt // 2, wid)), np.zeros((hgt // 2, wid))
    for j in range(wid):
        lo[:, j], hi[:, j] = _dwt1(list(x[:, j]), wavelet)
    out = []
    for half in (lo, hi):
        a, d = np.zeros((hgt // 2, wid // 2)), np.zeros((hgt // 2, wid // 2))
        for i in range(hgt // 2):
            a[i], d[i] = _dwt1(list(half[i]), wavelet)
        out += [a, d]
    return out


def idwt2(ll, lh, hl, hh, wavelet):
    """The inverse of :func:`dwt2`: the (2h, 2w) plane."""
    hgt, wid = 2 * ll.shape[0], 2 * ll.shape[1]
    lo, hi = np.zeros((hgt // 2, wid)), np.zeros((hgt // 2, wid))
    for i in range(hgt // 2):
        lo[i] = _idwt1(list(ll[i]), list(lh[i]), wavelet)
        hi[i] = _idwt1(list(hl[i]), list(hh[i]), wavelet)
    x = np.zeros((hgt, wid))
    for j in range(wid):
        x[:, j] = _idwt1(list(lo[:, j]), list(hi[:, j]), wavelet)
    return x


def per_plane(fn, a, out_shape):
    """(N, C, *out_shape): ``fn`` applied to every (H, W) plane of ``a`` in float64."""
    out = np.zeros((*a.shape[:2], *out_shape))
    for i, j in positions(a.shape[:2]):
        out[i, j] = fn(np.asarray(a[i, j], np.float64))
    return out


def _up(a):
    return np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)


def wavelet_pool(x, wavelet="haar"):
    """The paper's algorithm step by step: level 1 (details discarded), level 2, inverse."""
    def plane(p):
        ll1 = dwt2(p, wavelet)[0]
        return idwt2(*dwt2(ll1, wavelet), wavelet)
    return per_plane(plane, x, (x.shape[2] // 2, x.shape[3] // 2))


def wavelet_pool_paper_backward(dy, wavelet="haar"):
    """The paper's rule: DWT of dy, its detail subbands upsampled as new first-level
    details, a two-level inverse. Not the forward's gradient (see the fast kernel)."""
    def plane(p):
        a, lh, hl, hh = dwt2(p, wavelet)
        return idwt2(idwt2(a, lh, hl, hh, wavelet), _up(lh), _up(hl), _up(hh), wavelet)
    return per_plane(plane, dy, (2 * dy.shape[2], 2 * dy.shape[3]))
