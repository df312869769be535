"""Batch normalization and local response normalization (across channels).

Loop reference: :func:`convprop.reference.batch_norm` (and ``batch_norm_backward``),
:func:`convprop.reference.local_response_norm`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import (as_float_array, check_cache, check_dy, check_ndim, check_same_dtype,
                       check_shape, finite_number, positive_int)

__all__ = [
    "BatchNormCache", "batch_norm_args", "batch_norm_forward", "batch_norm_backward",
    "LocalResponseNormCache", "local_response_norm_forward", "local_response_norm_backward",
    "lrn_args",
]


def _subscripts(ndim: int) -> str:
    return "nc" + "xyz"[:ndim - 2]


def _channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum(a * b)`` over every axis but 1, without a temporary or a transpose."""
    s = _subscripts(a.ndim)
    return np.einsum(f"{s},{s}->c", a, b)


def _channel_sum(a: np.ndarray) -> np.ndarray:
    # einsum reduces (N, C, H, W) over (0, 2, 3) about 3x faster than a.sum(axis=(0, 2, 3))
    return np.einsum(f"{_subscripts(a.ndim)}->c", a)


def batch_norm_args(op: str, momentum, eps, *, momentum_none: bool = False) -> tuple:
    """The one check of batch norm's hyperparameters (kernel and modules): ``momentum`` in
    [0, 1] (None with ``momentum_none``: a module's cumulative average) and ``eps``
    a finite number > 0 (0 divides by zero on a constant channel)."""
    if momentum is not None or not momentum_none:
        momentum = finite_number(op, "momentum", momentum, low=0.0, high=1.0)
    eps = finite_number(op, "eps", eps, low=0.0, low_open=True)
    return momentum, eps


class BatchNormCache(NamedTuple):
    xhat: np.ndarray            # (x - mean) / sqrt(var + eps), x's shape
    inv_std: np.ndarray         # (C,)
    gamma: np.ndarray           # (C,)
    training: bool
    running_mean: np.ndarray | None   # updated (training) or the inputs unchanged (eval)
    running_var: np.ndarray | None


def batch_norm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                       running_mean: np.ndarray | None, running_var: np.ndarray | None, *,
                       training: bool, momentum: float = 0.1, eps: float = 1e-5
                       ) -> tuple[np.ndarray, BatchNormCache]:
    """Batch normalization per channel, ``y = gamma * (x - mean) / sqrt(var + eps) + beta``.

    Args:
        x: (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W); statistics are taken over
            every axis but C.
        gamma, beta: (C,). running_mean, running_var: (C,), or both None (training only,
            like PyTorch's ``track_running_stats=False``).
        training: True normalizes with the batch mean and the *biased* batch variance;
            False with the running statistics.
    Returns: y (x's shape and dtype), cache. In training, ``cache.running_mean`` and
    ``cache.running_var`` are NEW arrays ``(1 - momentum) * old + momentum * batch``, the
    variance updated with the *unbiased* batch variance (PyTorch's rule); the arguments are
    never written, the caller rebinds its buffers. In evaluation they are the inputs.
    """
    op = "batch_norm"
    x = as_float_array(op, "x", x)
    check_ndim(op, "x", x, (2, 3, 4, 5), "(N, C, *S) with up to 3 spatial axes")
    gamma = as_float_array(op, "gamma", gamma)
    beta = as_float_array(op, "beta", beta)
    C = x.shape[1]
    check_shape(op, "gamma", gamma, (C,), f"x has {C} channels")
    check_shape(op, "beta", beta, (C,), f"x has {C} channels")
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: running_mean and running_var must both be arrays or both "
                         f"be None, got {type(running_mean).__name__} and "
                         f"{type(running_var).__name__}")
    if running_mean is not None:
        running_mean = as_float_array(op, "running_mean", running_mean)
        running_var = as_float_array(op, "running_var", running_var)
        check_shape(op, "running_mean", running_mean, (C,), f"x has {C} channels")
        check_shape(op, "running_var", running_var, (C,), f"x has {C} channels")
    check_same_dtype(op, x=x, gamma=gamma, beta=beta, running_mean=running_mean,
                     running_var=running_var)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"{op}: training must be a bool, got {training!r}")
    momentum, eps = batch_norm_args(op, momentum, eps)

    bshape = (1, C) + (1,) * (x.ndim - 2)
    m = x.size // C if C else 0
    dt = x.dtype.type
    if training:
        if m <= 1:
            raise ValueError(f"{op}: expected more than 1 value per channel when training, "
                             f"got input shape {x.shape}")
        mean = _channel_sum(x) / dt(m)
        xc = x - mean.reshape(bshape)
        var = _channel_dot(xc, xc) / dt(m)   # biased
        inv_std = 1 / np.sqrt(var + dt(eps))
        if running_mean is not None:
            new_mean = dt(1 - momentum) * running_mean + dt(momentum) * mean
            new_var = dt(1 - momentum) * running_var + dt(momentum * m / (m - 1)) * var
            running_mean, running_var = new_mean, new_var
        xc *= inv_std.reshape(bshape)
        xhat = xc
    else:
        if running_mean is None:
            raise ValueError(f"{op}: evaluation mode needs running_mean and running_var, "
                             f"got None")
        inv_std = 1 / np.sqrt(running_var + dt(eps))
        xhat = (x - running_mean.reshape(bshape)) * inv_std.reshape(bshape)
    y = xhat * gamma.reshape(bshape)
    y += beta.reshape(bshape)
    return y, BatchNormCache(xhat, inv_std, gamma, bool(training), running_mean, running_var)


def batch_norm_backward(dy: np.ndarray, cache: BatchNormCache
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dgamma, dbeta)`` of batch normalization.

    With M values per channel, ``dbeta = sum(dy)``, ``dgamma = sum(dy * xhat)`` and, in
    training (the statistics depend on x), ``dx = gamma * inv_std / M * (M * dy - dbeta -
    xhat * dgamma)``; in evaluation ``dx = gamma * inv_std * dy`` (an affine map)."""
    cache = check_cache("batch_norm_backward", cache, BatchNormCache)
    xhat = cache.xhat
    dt = xhat.dtype
    dy = check_dy("batch_norm_backward", dy, xhat.shape, dt)
    C = xhat.shape[1]
    bshape = (1, C) + (1,) * (xhat.ndim - 2)
    dbeta = _channel_sum(dy)
    dgamma = _channel_dot(dy, xhat)
    scale = (cache.gamma * cache.inv_std).reshape(bshape)
    if not cache.training:
        return dy * scale, dgamma, dbeta
    m = xhat.size // C
    inv_m = dt.type(1.0 / m)
    dx = xhat * (dgamma * inv_m).reshape(bshape)
    dx += (dbeta * inv_m).reshape(bshape)
    np.subtract(dy, dx, out=dx)
    dx *= scale
    return dx, dgamma, dbeta


class LocalResponseNormCache(NamedTuple):
    x: np.ndarray
    denom: np.ndarray       # D = k + alpha/size * window sum of x^2
    scale: np.ndarray       # D ** -beta
    size: int
    alpha: float
    beta: float


def _channel_window_sum(a: np.ndarray, before: int, after: int) -> np.ndarray:
    """``out[:, c] = sum(a[:, c - before : c + after + 1])`` along axis 1, clipped at the ends
    (zero padding). Loops over the window's offsets only."""
    C = a.shape[1]
    out = a.copy()
    for d in range(1, min(before, C - 1) + 1):
        out[:, d:] += a[:, :C - d]
    for d in range(1, min(after, C - 1) + 1):
        out[:, :C - d] += a[:, d:]
    return out


def lrn_args(op: str, size, alpha, beta, k) -> tuple:
    """The one check of LRN's hyperparameters (kernel and module): ``size >= 1``;
    ``alpha >= 0``, ``beta`` and ``k > 0`` finite. k > 0 and alpha >= 0 keep the denominator
    at least k for every input, the only domain where the op (and its fractional power) is
    defined everywhere."""
    return (positive_int(op, "size", size), finite_number(op, "alpha", alpha, low=0.0),
            finite_number(op, "beta", beta), finite_number(op, "k", k, low=0.0, low_open=True))


def local_response_norm_forward(x: np.ndarray, *, size: int, alpha: float = 1e-4,
                                beta: float = 0.75, k: float = 1.0
                                ) -> tuple[np.ndarray, LocalResponseNormCache]:
    """Local response normalization across channels (PyTorch's definition).

    ``y[:, c] = x[:, c] / (k + alpha / size * sum_{j=c-size//2}^{c+(size-1)//2} x[:, j]**2)
    ** beta``, channels outside [0, C) counting as zeros; the divisor is always ``size``.

    Args: x: (N, C, *) with at least 3 dimensions, float32/float64; size >= 1; alpha >= 0,
    beta and k > 0 finite (PyTorch does not check them; a k <= 0 or a negative alpha lets the
    denominator reach zero or below, where the power is undefined).
    Returns: y (x's shape and dtype), cache. For even ``size`` the window reaches one channel
    further *below* c than above it, as PyTorch pads (size//2 before, (size-1)//2 after)."""
    op = "local_response_norm"
    x = as_float_array(op, "x", x)
    if x.ndim < 3:
        raise ValueError(f"{op}: x must be at least 3-D (N, C, ...), got shape {x.shape}")
    size, alpha, beta, k = lrn_args(op, size, alpha, beta, k)
    dt = x.dtype.type
    denom = _channel_window_sum(x * x, size // 2, (size - 1) // 2)
    denom *= dt(alpha / size)
    denom += dt(k)
    scale = denom ** dt(-beta)
    return x * scale, LocalResponseNormCache(x, denom, scale, size, alpha, beta)


def local_response_norm_backward(dy: np.ndarray, cache: LocalResponseNormCache) -> np.ndarray:
    """``dx_j = dy_j * D_j**-beta - 2 * beta * alpha / size * x_j * sum_{i: j in window(i)}
    dy_i * x_i * D_i**(-beta - 1)`` (the adjoint window runs (size-1)//2 before, size//2
    after)."""
    cache = check_cache("local_response_norm_backward", cache, LocalResponseNormCache)
    x, denom, scale = cache.x, cache.denom, cache.scale
    dy = check_dy("local_response_norm_backward", dy, x.shape, x.dtype)
    dt = x.dtype.type
    t = dy * x
    t *= scale
    t /= denom
    s = _channel_window_sum(t, (cache.size - 1) // 2, cache.size // 2)
    s *= x
    s *= dt(-2.0 * cache.beta * cache.alpha / cache.size)
    s += dy * scale
    return s
