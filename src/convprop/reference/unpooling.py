"""Max unpooling: the switches of a max pooling put the values back where they came from."""

from __future__ import annotations

import math

import numpy as np

from ._grid import ntuple, positions

__all__ = ["max_unpool", "max_unpool_backward", "unpool_size"]


def unpool_size(in_sp, kernel_size, stride, padding) -> tuple:
    """The default output size (n - 1) * s - 2p + k per spatial axis."""
    nd = len(in_sp)
    k = ntuple(kernel_size, nd)
    s = k if stride is None else ntuple(stride, nd)
    p = ntuple(padding, nd)
    return tuple((n - 1) * sa - 2 * pa + ka for n, ka, sa, pa in zip(in_sp, k, s, p))


def max_unpool(x, indices, out_sp):
    """y zero but at the flat plane indices; a repeated index keeps the value of its LAST
    writer in flat input order. Returns y and the mask (x's shape) of the writers that won."""
    n, c = x.shape[:2]
    xf = np.asarray(x, np.float64).reshape(n, c, -1)
    idx = np.asarray(indices).reshape(n, c, -1)
    y = np.zeros((n, c, math.prod(out_sp)))
    won = np.zeros(xf.shape, bool)
    for i, j in positions((n, c)):
        last = {}
        for t in range(idx.shape[2]):
            last[int(idx[i, j, t])] = t
        for f, t in last.items():
            y[i, j, f] = xf[i, j, t]
            won[i, j, t] = True
    return y.reshape(n, c, *out_sp), won.reshape(x.shape)


def max_unpool_backward(dy, indices, won):
    """dx[i] = dy at index i's target when i won its target, else 0."""
    n, c = indices.shape[:2]
    dyf = np.asarray(dy, np.float64).reshape(n, c, -1)
    idx, wonf = np.asarray(indices).reshape(n, c, -1), won.reshape(n, c, -1)
    dx = np.zeros(idx.shape)
    for i, j in positions((n, c)):
        for t in range(idx.shape[2]):
            if wonf[i, j, t]:
                dx[i, j, t] = dyf[i, j, idx[i, j, t]]
    return dx.reshape(indices.shape)
