"""Stochastic and mixed pooling, one window at a time, given the recorded draws.

Stochastic (Zeiler and Fergus 2013), window values a_i >= 0, p_i = a_i / sum a::
    training:    y = a_l, l = the first offset whose cumulative sum exceeds u * sum a
                 (u the window's uniform draw; an all-zero window takes floor(u K))
    evaluation:  y = sum_i p_i a_i (0 for an all-zero window)
Yu et al. 2014::   y = max(window) if lambda else avg(window), lambda the recorded 0/1
                   choice of the layer, the channel or the window
Lee et al. 2016::  y = a max + (1 - a) avg;  gated: s = sigmoid(w . window),
                   y = s max + (1 - s) avg
max is max pooling's (first maximum), avg is average pooling's (count_include_pad).
"""

from __future__ import annotations

import numpy as np

from ._grid import ntuple, positions
from .dense import sigmoid
from .pooling import avg_pool, max_pool, windows

__all__ = ["gated_pool", "mixed_maxavg_pool", "mixed_pool", "scatter_to_offsets",
           "stochastic_pool", "stochastic_pool_eval"]


def stochastic_pool(x, u, *, kernel_size, stride=None):
    """(y, offsets (N, C, *O)): the sample of each window drawn by inverse CDF from u (*O)."""
    wins = windows(x, kernel_size, stride)
    y, off = np.zeros(wins.shape[:-1]), np.zeros(wins.shape[:-1], np.int64)
    for idx in positions(wins.shape[:-1]):
        vals = [float(v) for v in wins[idx]]
        total = sum(vals)
        if total == 0:      # no distribution: a uniform position
            off[idx] = min(int(u[idx] * len(vals)), len(vals) - 1)
        else:
            cum = 0.0
            for q, v in enumerate(vals):
                cum += v
                if cum > u[idx] * total:
                    off[idx] = q
                    break
        y[idx] = vals[off[idx]]
    return y, off


def stochastic_pool_eval(x, *, kernel_size, stride=None):
    """The test-time rule: sum_i p_i a_i = sum a^2 / sum a per window (0 if all zero)."""
    wins = windows(x, kernel_size, stride)
    y = np.zeros(wins.shape[:-1])
    for idx in positions(y.shape):
        total = wins[idx].sum()
        y[idx] = 0.0 if total == 0 else float((wins[idx] / total * wins[idx]).sum())
    return y


def scatter_to_offsets(dy, offsets, x_shape, kernel_size, stride=None):
    """dx: each dy added at its window's recorded offset (row-major in the window;
    overlapping windows add), as the backward of a sampled or switched pooling."""
    nd = len(x_shape) - 2
    k = ntuple(kernel_size, nd)
    s = k if stride is None else ntuple(stride, nd)
    dx = np.zeros(x_shape)
    for n, c, *o in positions(dy.shape):
        kk = np.unravel_index(int(offsets[(n, c, *o)]), k)
        at = tuple(oa * sa + int(ka) for oa, sa, ka in zip(o, s, kk))
        dx[(n, c, *at)] += dy[(n, c, *o)]
    return dx


def _branches(x, **kw):
    """(max pooling, average pooling) of x with the same windows."""
    return max_pool(x, **kw)[0], avg_pool(x, **kw)


def mixed_pool(x, lam, granularity, *, kernel_size, stride=None, padding=0):
    """Yu's mixed pooling with the recorded choice lam: () for "layer", (C,) for
    "channel", y's shape for "window"; True picks max, False average."""
    ym, ya = _branches(x, kernel_size=kernel_size, stride=stride, padding=padding)
    y = np.zeros(ya.shape)
    for idx in positions(y.shape):
        choice = {"layer": (), "channel": (idx[1],), "window": idx}[granularity]
        y[idx] = ym[idx] if lam[choice] else ya[idx]
    return y


def mixed_maxavg_pool(x, a, *, kernel_size, stride=None):
    """Lee's mixed max-average pooling, a of shape (), (1,) or (C,) in [0, 1]."""
    ym, ya = _branches(x, kernel_size=kernel_size, stride=stride)
    a = np.asarray(a, np.float64).reshape(-1)
    y = np.zeros(ya.shape)
    for idx in positions(y.shape):
        ac = float(a[idx[1] if a.size > 1 else 0])     # one per layer, or one per channel
        y[idx] = ac * ym[idx] + (1 - ac) * ya[idx]
    return y


def gated_pool(x, w, *, kernel_size, stride=None):
    """Lee's gated pooling, the gating mask w of shape (*K) or (C, *K)."""
    wins = windows(x, kernel_size, stride)
    ym, ya = _branches(x, kernel_size=kernel_size, stride=stride)
    y = np.zeros(ya.shape)
    per_channel = np.ndim(w) == x.ndim - 1
    for idx in positions(y.shape):
        mask = np.reshape(w[idx[1]] if per_channel else w, -1)
        z = sum(float(m) * float(v) for m, v in zip(mask, wins[idx]))
        gate = sigmoid(z)
        y[idx] = gate * ym[idx] + (1 - gate) * ya[idx]
    return y
