"""Losses: softmax cross-entropy on integer class targets, and mean squared error.

Same contract as every kernel: ``forward -> (loss, cache)``, ``backward(dy, cache)``. For the
reductions "mean" and "sum" the loss is a 0-d array of the input dtype and ``dy`` a Python
number (usually 1.0, taken in that dtype) or a 0-d array of that dtype; for "none" the loss
is per sample / per element and ``dy`` has its shape and dtype.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_dy, check_ndim, check_same_dtype

__all__ = [
    "SoftmaxCrossEntropyCache", "softmax_cross_entropy_forward",
    "softmax_cross_entropy_backward",
    "MSECache", "mse_forward", "mse_backward",
]


def _reduction(op: str, reduction, allowed: tuple) -> str:
    if reduction not in allowed:
        raise ValueError(f"{op}: reduction must be one of {', '.join(map(repr, allowed))}, "
                         f"got {reduction!r}")
    return reduction


def _loss_dy(op: str, dy, reduction: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """The upstream gradient as an array of the forward dtype: a scalar for mean/sum (a Python
    number is taken in that dtype; a NumPy scalar or 0-d array must already have it),
    ``shape`` for none."""
    if isinstance(dy, numbers.Real) and not isinstance(dy, (bool, np.generic)):
        dy = np.asarray(dy, dtype=dtype)
    elif isinstance(dy, np.generic):
        dy = np.asarray(dy)
    return check_dy(op, dy, tuple(shape) if reduction == "none" else (), dtype)


class SoftmaxCrossEntropyCache(NamedTuple):
    probs: np.ndarray       # (N, K) softmax of the logits
    targets: np.ndarray     # (N,) int64
    reduction: str


def softmax_cross_entropy_forward(logits: np.ndarray, targets: np.ndarray, *,
                                  reduction: str = "mean"
                                  ) -> tuple[np.ndarray, SoftmaxCrossEntropyCache]:
    """Cross-entropy of the softmax of ``logits`` against class indices.

    ``loss_n = logsumexp(logits[n]) - logits[n, targets[n]]``, computed after subtracting each
    row's maximum, so logits like 1e4 neither overflow nor lose the loss.

    Args: logits: (N, K) float32/float64; targets: (N,) any integer dtype, in [0, K);
        reduction: "mean" (over N), "sum" or "none".
    Returns: loss (0-d array of the logits' dtype, or (N,) for "none"), cache; the cache keeps
    the probabilities (``cache.probs.argmax(1)`` is the prediction)."""
    op = "softmax_cross_entropy"
    logits = as_float_array(op, "logits", logits)
    check_ndim(op, "logits", logits, 2, "(N, K)")
    reduction = _reduction(op, reduction, ("mean", "sum", "none"))
    if not isinstance(targets, np.ndarray) or targets.dtype.kind not in "iu":
        got = targets.dtype if isinstance(targets, np.ndarray) else type(targets).__name__
        raise TypeError(f"{op}: targets must be an integer numpy.ndarray, got {got}")
    N, K = logits.shape
    if targets.shape != (N,):
        raise ValueError(f"{op}: targets must have shape ({N},) to match logits {logits.shape}, "
                         f"got {targets.shape}")
    if N == 0 or K == 0:
        raise ValueError(f"{op}: logits must be non-empty, got shape {logits.shape}")
    bad = np.flatnonzero((targets < 0) | (targets >= K))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{op}: targets must be class indices in [0, {K}), got {targets[i]} "
                         f"at index {i}")
    t = targets.astype(np.int64, copy=False)
    rows = np.arange(N)
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    sumexp = e.sum(axis=1)
    losses = np.log(sumexp) - shifted[rows, t]
    e /= sumexp[:, None]
    if reduction == "mean":
        loss = np.array(losses.mean(), dtype=logits.dtype)
    elif reduction == "sum":
        loss = np.array(losses.sum(), dtype=logits.dtype)
    else:
        loss = losses
    return loss, SoftmaxCrossEntropyCache(e, t, reduction)


def softmax_cross_entropy_backward(dy, cache: SoftmaxCrossEntropyCache) -> np.ndarray:
    """``dlogits = (probs - onehot(targets)) * dy`` (divided by N for "mean")."""
    probs, t = cache.probs, cache.targets
    N = probs.shape[0]
    dy = _loss_dy("softmax_cross_entropy_backward", dy, cache.reduction, (N,), probs.dtype)
    g = probs.copy()
    g[np.arange(N), t] -= 1
    if cache.reduction == "none":
        g *= dy[:, None]
    else:
        g *= dy / g.dtype.type(N) if cache.reduction == "mean" else dy
    return g


class MSECache(NamedTuple):
    diff: np.ndarray        # prediction - target
    reduction: str


def mse_forward(y: np.ndarray, target: np.ndarray, *, reduction: str = "mean"
                ) -> tuple[np.ndarray, MSECache]:
    """Squared error between a prediction ``y`` and a ``target`` of the same shape.

    ``"mean"``: mean((y - t)^2); ``"sum"``: sum((y - t)^2); ``"half_sum"``:
    1/2 sum((t - y)^2), the textbook ``E`` whose gradient is ``y - t``; ``"none"``: (y - t)^2
    element-wise. Only the prediction gets a gradient (the target is data).

    Args: y, target: same shape, same dtype (float32/float64).
    Returns: loss (0-d array of the input dtype, or y's shape for "none"), cache."""
    op = "mse"
    y = as_float_array(op, "y", y)
    target = as_float_array(op, "target", target)
    if y.shape != target.shape:
        raise ValueError(f"{op}: y and target must have the same shape, got {y.shape} and "
                         f"{target.shape}")
    check_same_dtype(op, y=y, target=target)
    reduction = _reduction(op, reduction, ("mean", "sum", "half_sum", "none"))
    diff = y - target
    sq = diff * diff
    if reduction == "none":
        loss = sq
    elif reduction == "mean":
        loss = np.array(sq.mean(), dtype=y.dtype)
    elif reduction == "sum":
        loss = np.array(sq.sum(), dtype=y.dtype)
    else:
        loss = np.array(sq.sum() / 2, dtype=y.dtype)
    return loss, MSECache(diff, reduction)


def mse_backward(dy, cache: MSECache) -> np.ndarray:
    """Gradient with respect to the prediction: ``2 (y - t) dy`` ("sum", "none"), divided by
    the element count for "mean", and ``(y - t) dy`` for "half_sum"."""
    diff = cache.diff
    dy = _loss_dy("mse_backward", dy, cache.reduction, diff.shape, diff.dtype)
    if cache.reduction == "none":
        return 2 * diff * dy
    factor = {"mean": 2.0 / max(diff.size, 1), "sum": 2.0, "half_sum": 1.0}[cache.reduction]
    return diff * diff.dtype.type(factor * float(dy))
