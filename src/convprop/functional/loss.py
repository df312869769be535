"""Losses: softmax cross-entropy on class targets (integer indices or class probabilities), and
mean squared error.

Same contract as every kernel: ``forward -> (loss, cache)``, ``backward(dy, cache)``. For the
reductions "mean" and "sum" the loss is a 0-d array of the input dtype and ``dy`` a Python
number (usually 1.0, taken in that dtype) or a 0-d array of that dtype; for "none" the loss
is per sample / per element and ``dy`` has its shape and dtype.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_cache, check_dy, check_ndim, check_same_dtype

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
    targets: np.ndarray     # (N,) int64 class indices, or (N, K) float class probabilities
    reduction: str


def softmax_cross_entropy_forward(logits: np.ndarray, targets: np.ndarray, *,
                                  reduction: str = "mean"
                                  ) -> tuple[np.ndarray, SoftmaxCrossEntropyCache]:
    """Cross-entropy of the softmax of ``logits`` against class indices or class probabilities.

    Class indices (N,): ``loss_n = logsumexp(logits[n]) - logits[n, targets[n]]``.
    Probabilities (N, K), PyTorch's rule for float targets of ``CrossEntropyLoss``:
    ``loss_n = -sum_k targets[n, k] * log_softmax(logits[n])_k``. The rows need not sum to 1
    nor be non-negative (noise-enhanced training adds noise to one-hot targets); nothing is
    renormalised, as in PyTorch. Both forms subtract each row's maximum first, so logits like
    1e4 neither overflow nor lose the loss.

    Args: logits: (N, K) float32/float64; targets: (N,) any integer dtype, in [0, K), or
        (N, K) finite floats of the logits' dtype; reduction: "mean" (over N), "sum" or "none".
    Returns: loss (0-d array of the logits' dtype, or (N,) for "none"), cache; the cache keeps
    the probabilities (``cache.probs.argmax(1)`` is the prediction)."""
    op = "softmax_cross_entropy"
    logits = as_float_array(op, "logits", logits)
    check_ndim(op, "logits", logits, 2, "(N, K)")
    reduction = _reduction(op, reduction, ("mean", "sum", "none"))
    if (not isinstance(targets, np.ndarray) or targets.dtype.kind not in "iuf"
            or (targets.dtype.kind == "f" and targets.ndim != 2)):
        got = (f"{targets.dtype} of shape {targets.shape}" if isinstance(targets, np.ndarray)
               else type(targets).__name__)
        raise TypeError(f"{op}: targets must be an integer numpy.ndarray of class indices or "
                        f"an (N, K) float array of class probabilities, got {got}")
    N, K = logits.shape
    soft = targets.dtype.kind == "f"
    if soft:
        if targets.shape != (N, K):
            raise ValueError(f"{op}: probability targets must have the logits' shape "
                             f"{logits.shape}, got {targets.shape}")
        if targets.dtype != logits.dtype:
            raise TypeError(f"{op}: probability targets must have the logits' dtype "
                            f"{logits.dtype}, got {targets.dtype}")
    elif targets.shape != (N,):
        raise ValueError(f"{op}: targets must have shape ({N},) to match logits {logits.shape}, "
                         f"got {targets.shape}")
    if N == 0 or K == 0:
        raise ValueError(f"{op}: logits must be non-empty, got shape {logits.shape}")
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    sumexp = e.sum(axis=1)
    if soft:
        if not np.all(np.isfinite(targets)):
            raise ValueError(f"{op}: probability targets must be finite")
        t = np.array(targets, copy=True)
        # -sum_k t_k (shifted_k - log sumexp): log_softmax never forms log(p) of a tiny p
        losses = t.sum(axis=1) * np.log(sumexp) - np.einsum("nk,nk->n", t, shifted)
    else:
        bad = np.flatnonzero((targets < 0) | (targets >= K))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{op}: targets must be class indices in [0, {K}), got "
                             f"{targets[i]} at index {i}")
        t = targets.astype(np.int64, copy=False)
        losses = np.log(sumexp) - shifted[np.arange(N), t]
    e /= sumexp[:, None]
    if reduction == "mean":
        loss = np.array(losses.mean(), dtype=logits.dtype)
    elif reduction == "sum":
        loss = np.array(losses.sum(), dtype=logits.dtype)
    else:
        loss = losses
    return loss, SoftmaxCrossEntropyCache(e, t, reduction)


def softmax_cross_entropy_backward(dy, cache: SoftmaxCrossEntropyCache) -> np.ndarray:
    """``dlogits = (probs - onehot(targets)) * dy`` for class indices and
    ``(probs * sum_k targets_k - targets) * dy`` for probabilities (the same when a row sums
    to 1), divided by N for "mean"."""
    op = "softmax_cross_entropy_backward"
    cache = check_cache(op, cache, SoftmaxCrossEntropyCache)
    probs, t = cache.probs, cache.targets
    N = probs.shape[0]
    dy = _loss_dy(op, dy, cache.reduction, (N,), probs.dtype)
    if t.ndim == 2:
        g = probs * t.sum(axis=1, keepdims=True)
        g -= t
    else:
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
    cache = check_cache("mse_backward", cache, MSECache)
    diff = cache.diff
    dy = _loss_dy("mse_backward", dy, cache.reduction, diff.shape, diff.dtype)
    if cache.reduction == "none":
        return 2 * diff * dy
    factor = {"mean": 2.0 / max(diff.size, 1), "sum": 2.0, "half_sum": 1.0}[cache.reduction]
    return diff * diff.dtype.type(factor * float(dy))
