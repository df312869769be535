"""Losses, one example (one element) at a time.

Softmax cross-entropy::  loss_n = log sum_k exp(z[n, k]) - z[n, t_n]
                         dz[n, k] = g_n (softmax(z_n)[k] - 1[k = t_n])
Squared error::          e = (y - t)^2 elementwise;  de/dy = 2 (y - t)
``g_n`` is the upstream gradient of example n's loss: dy for "sum" and "none", dy / N for
"mean" (for MSE, dy / (number of elements)), dy / 2 for MSE's "half_sum".
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["cross_entropy", "cross_entropy_backward", "mse", "mse_backward", "reduce",
           "squared_errors"]


def reduce(per, reduction):
    """Apply a loss reduction to per-example (per-element) losses."""
    return {"mean": per.mean(), "sum": per.sum(), "half_sum": per.sum() / 2,
            "none": per}[reduction]


def _weights(dy, shape, reduction):
    """Each per-example loss's upstream gradient under ``reduction``."""
    size = math.prod(shape)
    scale = {"mean": 1.0 / size, "sum": 1.0, "half_sum": 0.5}.get(reduction)
    return np.broadcast_to(np.asarray(dy, np.float64) * (1.0 if scale is None else scale),
                           shape)


def cross_entropy(logits, targets, reduction="none"):
    """Per-example softmax cross-entropy from logits (N, K) and class indices (N,)."""
    out = []
    for row, t in zip(logits, targets, strict=True):
        m = max(float(v) for v in row)            # shift so that exp never overflows
        lse = m + math.log(sum(math.exp(float(v) - m) for v in row))
        out.append(lse - float(row[t]))
    return reduce(np.array(out), reduction)


def cross_entropy_backward(dy, logits, targets, reduction="mean"):
    """dlogits: the softmax minus the one-hot target, times each example's upstream grad."""
    g = _weights(dy, (len(targets),), reduction)
    dz = np.zeros(np.shape(logits))
    for n, (row, t) in enumerate(zip(logits, targets, strict=True)):
        m = max(float(v) for v in row)
        e = [math.exp(float(v) - m) for v in row]
        for k in range(len(row)):
            dz[n, k] = g[n] * (e[k] / sum(e) - (1.0 if k == t else 0.0))
    return dz


def squared_errors(y, t):
    """(y - t)^2 elementwise."""
    out = np.empty(np.shape(y))
    for idx in np.ndindex(out.shape):
        out[idx] = (float(y[idx]) - float(t[idx])) ** 2
    return out


def mse(y, t, reduction="mean"):
    return reduce(squared_errors(y, t), reduction)


def mse_backward(dy, y, t, reduction="mean"):
    """dy/dpred = 2 (y - t) times each element's upstream gradient."""
    g = _weights(dy, np.shape(y), reduction)
    dpred = np.empty(np.shape(y))
    for idx in np.ndindex(dpred.shape):
        dpred[idx] = g[idx] * 2.0 * (float(y[idx]) - float(t[idx]))
    return dpred
