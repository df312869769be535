"""Adaptive and global pooling, one bin at a time.

Adaptive pooling's output i pools the bin [floor(i*L/O), ceil((i+1)*L/O)) of each axis;
global pooling is the one bin covering the whole plane.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ._grid import ntuple, positions
from .pooling import beats, tie_winners

__all__ = ["adaptive_avg_pool", "adaptive_bins", "adaptive_max_pool",
           "adaptive_max_pool_backward_ties", "global_avg_pool", "global_max_pool"]


def adaptive_bins(size: int, out: int) -> list:
    """PyTorch's bins: output i pools [floor(i*L/O), ceil((i+1)*L/O))."""
    return [(math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out)]


def _bins(x, output_size):
    nd = x.ndim - 2
    out = tuple(x.shape[2 + a] if v is None else v
                for a, v in enumerate(ntuple(output_size, nd)))
    return out, [adaptive_bins(x.shape[2 + a], out[a]) for a in range(nd)]


def adaptive_avg_pool(x, *, output_size):
    """The mean of each bin."""
    out, bins = _bins(x, output_size)
    y = np.zeros(x.shape[:2] + out)
    for o in positions(out):
        box = x[(slice(None), slice(None), *(slice(*bins[a][oa]) for a, oa in enumerate(o)))]
        y[(slice(None), slice(None), *o)] = box.mean(axis=tuple(range(2, x.ndim)))
    return y


def adaptive_max_pool(x, *, output_size):
    """Values and flat plane indices of each bin's maximum (first maximum, last NaN)."""
    sp = x.shape[2:]
    out, bins = _bins(x, output_size)
    y = np.empty(x.shape[:2] + out, x.dtype)
    idx = np.empty(x.shape[:2] + out, np.int64)
    for n, c in positions(x.shape[:2]):
        for o in positions(out):
            best, arg = -math.inf, None
            for at in itertools.product(*(range(*bins[a][oa]) for a, oa in enumerate(o))):
                if beats(x[(n, c, *at)], best, arg is None):
                    best, arg = x[(n, c, *at)], int(np.ravel_multi_index(at, sp))
            y[(n, c, *o)], idx[(n, c, *o)] = best, arg
    return y, idx


def adaptive_max_pool_backward_ties(dy, x, *, output_size, ties="first"):
    """dx of adaptive max pooling under a tie policy (see pooling.tie_winners), one bin at
    a time; overlapping bins add. Global max pooling is output_size=1 (dy (N, C) or
    (N, C, 1, ...))."""
    out, bins = _bins(x, output_size)
    dy = np.reshape(dy, x.shape[:2] + out)
    dx = np.zeros(x.shape)
    for n, c in positions(x.shape[:2]):
        for o in positions(out):
            cells = list(itertools.product(*(range(*bins[a][oa]) for a, oa in enumerate(o))))
            winners, share = tie_winners([x[(n, c, *at)] for at in cells], ties)
            for k in winners:
                dx[(n, c, *cells[k])] += dy[(n, c, *o)] / share
    return dx


def global_avg_pool(x):
    """(N, C): the mean of each plane."""
    n, c = x.shape[:2]
    return np.array([[float(np.sum(x[i, j])) / x[i, j].size for j in range(c)]
                     for i in range(n)])


def global_max_pool(x):
    """Values (N, C) and flat plane indices of the maximum (first maximum, last NaN)."""
    n, c = x.shape[:2]
    y, idx = np.empty((n, c), x.dtype), np.empty((n, c), np.int64)
    for i, j in positions((n, c)):
        plane = x[i, j].ravel()
        arg = 0
        for t in range(1, plane.size):
            if beats(plane[t], plane[arg], False):
                arg = t
        y[i, j], idx[i, j] = plane[arg], arg
    return y, idx
