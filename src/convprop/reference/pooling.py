"""Max, average and Lp pooling, one window at a time (any number of spatial dimensions).

Max pooling::  y[n, c, o] = max_{k in window(o)} x[n, c, o*s - p + k*d]
               its backward sends dy[n, c, o] to the window's maximum (the "switch").
Average::      y[n, c, o] = sum_{k in window(o)} x[n, c, o*s - p + k] / divisor(o)
               its backward spreads dy[n, c, o] / divisor(o) over the window.
"""

from __future__ import annotations

import math

import numpy as np

from ._grid import ntuple, positions

__all__ = ["avg_pool", "avg_pool_backward", "lp_pool", "max_pool", "max_pool_backward",
           "max_pool_backward_ties", "tie_winners",
           "pool_windows", "pooled_length", "scatter_at_indices", "windows"]


def pooled_length(size, k, s, p, d, ceil):
    """PyTorch's pooled output length (floor, or ceil with the last window starting inside
    the input or its left padding)."""
    span = size + 2 * p - d * (k - 1) - 1
    n = (-(-span // s) if ceil else span // s) + 1
    if ceil and (n - 1) * s >= size + p:
        n -= 1
    return n


def beats(v, best, first: bool) -> bool:
    """PyTorch's rule for a maximum: a larger value, or any NaN (so NaN propagates and the
    last NaN in window order holds the index); on a plain tie the first maximum stays."""
    return first or v > best or math.isnan(v)


def _geometry(x, kernel_size, stride, padding, dilation, ceil_mode):
    nd = x.ndim - 2
    k = ntuple(kernel_size, nd)
    s = k if stride is None else ntuple(stride, nd)
    p, d = ntuple(padding, nd), ntuple(dilation, nd)
    out = tuple(pooled_length(x.shape[2 + a], k[a], s[a], p[a], d[a], ceil_mode)
                for a in range(nd))
    return k, s, p, d, out


def pool_windows(x_shape, *, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """{output position: [input positions of its window inside the input]}, row-major: the
    windows of a pooling layer one by one (explain mode shows them)."""
    sp = tuple(x_shape[2:])
    k, s, p, d, out = _geometry(np.empty((1, 1) + sp), kernel_size, stride, padding, dilation,
                                ceil_mode)
    found = {}
    for o in positions(out):
        at_all = (tuple(oa * sa - pa + ka * da for oa, sa, pa, ka, da in zip(o, s, p, kk, d))
                  for kk in positions(k))
        found[o] = [at for at in at_all if all(0 <= a < m for a, m in zip(at, sp))]
    return found


def max_pool(x, *, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Values and flat plane indices (PyTorch's ``return_indices``) of max pooling; on a tie
    the first maximum in row-major window order wins, a NaN beats everything (see beats)."""
    sp = x.shape[2:]
    k, s, p, d, out = _geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    y = np.empty(x.shape[:2] + out, x.dtype)
    idx = np.empty(x.shape[:2] + out, np.int64)
    for n, c in positions(x.shape[:2]):
        for o in positions(out):
            best, arg = -math.inf, None
            for kk in positions(k):
                at = tuple(oa * sa - pa + ka * da for oa, sa, pa, ka, da in zip(o, s, p, kk, d))
                if all(0 <= a < m for a, m in zip(at, sp)) and beats(
                        x[(n, c, *at)], best, arg is None):
                    best, arg = x[(n, c, *at)], int(np.ravel_multi_index(at, sp))
            y[(n, c, *o)], idx[(n, c, *o)] = best, arg
    return y, idx


def scatter_at_indices(dy, idx, x_shape):
    """Max pooling's backward: each dy added at its window's maximum (overlaps add)."""
    dx = np.zeros((*x_shape[:2], math.prod(x_shape[2:])))
    for n, c in positions(x_shape[:2]):
        for g, f in zip(dy[n, c].ravel(), idx[n, c].ravel()):
            dx[n, c, f] += g
    return dx.reshape(x_shape)


max_pool_backward = scatter_at_indices


def max_pool_backward_ties(dy, x, *, kernel_size, stride=None, padding=0, dilation=1,
                           ceil_mode=False, ties="first"):
    """Max pooling's backward under a tie policy, one window at a time: the window's input
    elements equal to its maximum share dy ("split": dy / count each), each get all of it
    ("all"), or the first alone gets it ("first"); a window holding a NaN sends dy to its
    last NaN alone. Padding never takes a share."""
    wins = pool_windows(x.shape, kernel_size=kernel_size, stride=stride, padding=padding,
                        dilation=dilation, ceil_mode=ceil_mode)
    dx = np.zeros(x.shape)
    for n, c in positions(x.shape[:2]):
        for o, cells in wins.items():
            winners, share = tie_winners([x[(n, c, *at)] for at in cells], ties)
            for k in winners:
                dx[(n, c, *cells[k])] += dy[(n, c, *o)] / share
    return dx


def tie_winners(vals, ties):
    """(winners, divisor): the positions in ``vals`` that receive a window's gradient, and
    what each one's dy is divided by. The last NaN alone if there is one; else the values
    equal to the maximum, all of them ("split": dy / their count each; "all": dy each) or
    the first ("first")."""
    nans = [k for k, v in enumerate(vals) if math.isnan(v)]
    winners = nans[-1:] or [k for k, v in enumerate(vals) if v == max(vals)]
    if ties == "first":
        winners = winners[:1]
    return winners, (len(winners) if ties == "split" else 1)


def _avg_boxes(x_shape, k, s, p, out, count_include_pad, divisor_override):
    """(output position, slices of the in-input window, divisor) for average pooling."""
    sp = x_shape[2:]
    for o in positions(out):
        lo = [oa * sa - pa for oa, sa, pa in zip(o, s, p)]
        hi = [min(la + ka, m + pa) for la, ka, m, pa in zip(lo, k, sp, p)]
        clo = [max(la, 0) for la in lo]
        chi = [min(ha, m) for ha, m in zip(hi, sp)]
        if divisor_override is not None:
            div = divisor_override
        elif count_include_pad:     # the window clipped to input + padding
            div = math.prod(h - la for h, la in zip(hi, lo))
        else:                       # the window clipped to the input alone
            div = math.prod(h - la for h, la in zip(chi, clo))
        yield o, tuple(slice(a, b) for a, b in zip(clo, chi)), div


def avg_pool(x, *, kernel_size, stride=None, padding=0, ceil_mode=False,
             count_include_pad=True, divisor_override=None):
    """Average pooling with PyTorch's divisor (see _avg_boxes)."""
    k, s, p, _, out = _geometry(x, kernel_size, stride, padding, 1, ceil_mode)
    y = np.zeros(x.shape[:2] + out)
    for o, box, div in _avg_boxes(x.shape, k, s, p, out, count_include_pad, divisor_override):
        y[(slice(None), slice(None), *o)] = x[(slice(None), slice(None), *box)].sum(
            axis=tuple(range(2, x.ndim))) / div
    return y


def avg_pool_backward(dy, x_shape, *, kernel_size, stride=None, padding=0, ceil_mode=False,
                      count_include_pad=True, divisor_override=None):
    """dx of :func:`avg_pool`: each dy / divisor added over its window (overlaps add)."""
    k, s, p, _, out = _geometry(np.empty(x_shape), kernel_size, stride, padding, 1, ceil_mode)
    dx = np.zeros(x_shape)
    for o, box, div in _avg_boxes(x_shape, k, s, p, out, count_include_pad, divisor_override):
        g = dy[(slice(None), slice(None), *o)] / div
        dx[(slice(None), slice(None), *box)] += g.reshape(g.shape + (1,) * len(box))
    return dx


def lp_pool(x, *, norm_type, kernel_size, stride=None, ceil_mode=False):
    """PyTorch's Lp pooling one window at a time: (K / n_in * sum of x**p) ** (1/p) over the
    n_in in-bounds elements of a window of K (n_in < K only for ceil_mode's last windows,
    which PyTorch's avg_pool-then-multiply rescales); max |x| for p = inf."""
    k, s, _, _, out = _geometry(x, kernel_size, stride, 0, 1, ceil_mode)
    y = np.zeros(x.shape[:2] + out)
    for n, c in positions(x.shape[:2]):
        for o in positions(out):
            box = x[(n, c, *(slice(oa * sa, oa * sa + ka) for oa, sa, ka in zip(o, s, k)))]
            if norm_type == math.inf:
                y[(n, c, *o)] = np.abs(box).max()
                continue
            total = (box.astype(np.float64) ** norm_type).sum() * math.prod(k) / box.size
            y[(n, c, *o)] = total ** (1 / norm_type)
    return y


def windows(x, k, s):
    """(N, C, *O, prod(K)): every window of the unpadded input in row-major window order."""
    nd = x.ndim - 2
    k = ntuple(k, nd)
    s = k if s is None else ntuple(s, nd)
    out = tuple((n - kk) // ss + 1 for n, kk, ss in zip(x.shape[2:], k, s))
    w = np.zeros(x.shape[:2] + out + (math.prod(k),))
    for o in positions(out):
        for q, off in enumerate(positions(k)):
            at = tuple(oo * ss + kk for oo, ss, kk in zip(o, s, off))
            w[(slice(None), slice(None), *o, q)] = x[(slice(None), slice(None), *at)]
    return w
