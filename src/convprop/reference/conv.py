"""Convolution and transposed convolution, one output element at a time.

Forward (cross-correlation, as ``torch.nn.functional.conv{1,2,3}d``)::

    y[n, o, p] = b[o] + sum_{c, k} w[o, c, k] * x_pad[n, g(o) * C_in/G + c, p*s + k*d]

Backward is the same sum read the other way (CS231n's conv_backward_naive): every term
``w * x`` of every output sends ``dy * x`` to ``dw`` and ``dy * w`` to ``dx``.
"""

from __future__ import annotations

import itertools

import numpy as np

from ._grid import conv_pads, ntuple, positions, zero_pad

__all__ = ["conv", "conv_backward", "conv_transpose", "flip"]


def _geometry(x, w, stride, padding, dilation):
    nd = x.ndim - 2
    kernel = w.shape[2:]
    s, d = ntuple(stride, nd), ntuple(dilation, nd)
    pads = conv_pads(padding, kernel, d)
    padded = [x.shape[2 + a] + sum(pads[a]) for a in range(nd)]
    out = tuple((padded[a] - d[a] * (kernel[a] - 1) - 1) // s[a] + 1 for a in range(nd))
    return kernel, s, d, pads, out


def conv(x, w, b, *, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation of x (N, C_in, *S) with w (C_out, C_in/G, *K), plus b (C_out,)."""
    kernel, s, d, pads, out = _geometry(x, w, stride, padding, dilation)
    xp = zero_pad(x, pads)
    n, c_out, cg = x.shape[0], w.shape[0], w.shape[1]
    og = c_out // groups                      # output channels per group
    y = np.zeros((n, c_out, *out))
    for bi, o in itertools.product(range(n), range(c_out)):
        c0 = (o // og) * cg                   # first input channel of o's group
        for p in positions(out):
            acc = 0.0 if b is None else float(b[o])
            for ci in range(cg):
                for k in positions(kernel):
                    at = tuple(pa * sa + ka * da for pa, sa, ka, da in zip(p, s, k, d))
                    acc += w[(o, ci, *k)] * xp[(bi, c0 + ci, *at)]
            y[(bi, o, *p)] = acc
    return y


def conv_backward(dy, x, w, *, stride=1, padding=0, dilation=1, groups=1):
    """(dx, dw, db) of :func:`conv` for the upstream gradient dy (N, C_out, *O)."""
    kernel, s, d, pads, out = _geometry(x, w, stride, padding, dilation)
    xp = zero_pad(x, pads)
    dxp = np.zeros(xp.shape)
    dw = np.zeros(w.shape)
    n, c_out, cg = x.shape[0], w.shape[0], w.shape[1]
    og = c_out // groups
    for bi, o in itertools.product(range(n), range(c_out)):
        c0 = (o // og) * cg
        for p in positions(out):
            g = dy[(bi, o, *p)]
            for ci in range(cg):
                for k in positions(kernel):
                    at = tuple(pa * sa + ka * da for pa, sa, ka, da in zip(p, s, k, d))
                    dw[(o, ci, *k)] += g * xp[(bi, c0 + ci, *at)]   # d y / d w = x
                    dxp[(bi, c0 + ci, *at)] += g * w[(o, ci, *k)]  # d y / d x = w
    db = np.array([dy[:, o].sum() for o in range(c_out)])
    crop = tuple(slice(lo, lo + m) for (lo, _), m in zip(pads, x.shape[2:]))
    return dxp[(slice(None), slice(None), *crop)], dw, db


def conv_transpose(x, w, b, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """Transposed convolution, as ``torch.nn.functional.conv_transpose{1,2,3}d``: every input
    element scatters a weighted kernel into an uncropped buffer, which is then cropped by
    ``padding`` (overlaps add). w is (C_in, C_out/G, *K)."""
    nd = x.ndim - 2
    kernel = w.shape[2:]
    s, p, op, d = (ntuple(v, nd) for v in (stride, padding, output_padding, dilation))
    out = [(x.shape[2 + a] - 1) * s[a] - 2 * p[a] + d[a] * (kernel[a] - 1) + op[a] + 1
           for a in range(nd)]
    n, c_in, og = x.shape[0], x.shape[1], w.shape[1]
    full = np.zeros((n, og * groups, *(o + 2 * pa + sa + da * ka for o, pa, sa, da, ka
                                       in zip(out, p, s, d, kernel))))
    cg = c_in // groups
    for bi, c in itertools.product(range(n), range(c_in)):
        o0 = (c // cg) * og
        for q in positions(x.shape[2:]):
            for o in range(og):
                for k in positions(kernel):
                    at = tuple(qa * sa + ka * da for qa, sa, ka, da in zip(q, s, k, d))
                    full[(bi, o0 + o, *at)] += x[(bi, c, *q)] * w[(c, o, *k)]
    y = full[(slice(None), slice(None), *(slice(pa, pa + o) for pa, o in zip(p, out)))].copy()
    if b is not None:
        y += np.asarray(b, np.float64).reshape((1, -1) + (1,) * nd)
    return y


def flip(w):
    """``w`` reversed along every spatial axis (2, ...): true convolution's kernel."""
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]
