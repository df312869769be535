"""Max unpooling in 1, 2 and 3 spatial dimensions (``torch.nn.functional.max_unpool*d``):
the partial inverse of max pooling, which puts each value back where its maximum came from.

``y = 0`` except ``y[n, c, indices[n, c, i]] = x[n, c, i]``, indices being max pooling's
flat plane indices (``MaxPoolCache.indices``). The switches Zeiler and Fergus's DeconvNet
records are exactly these. Backward is the gather ``dx[n, c, i] = dy[n, c, indices[n, c, i]]``.

Repeated indices (possible only when the pooling windows overlapped) are a semantic choice:
the last one in flat input order writes its value (PyTorch's serial CPU loop does the same)
and alone receives the gradient, so forward and backward are exact adjoints; PyTorch's
backward instead gives the gradient to every repeat.

Loop reference: :func:`convprop.reference.max_unpool` (and ``max_unpool_backward``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._checks import as_float_array, check_cache, check_dy, check_ndim, check_shape
from ._engine.layout import axes_order, empty_in_order
from .pooling import LAYOUTS, pool_args
from ..limits import check_array

__all__ = ["MaxUnpoolCache", "unpool_output_size",
           "max_unpool1d_forward", "max_unpool1d_backward", "max_unpool2d_forward",
           "max_unpool2d_backward", "max_unpool3d_forward", "max_unpool3d_backward"]


@dataclass(frozen=True)
class MaxUnpoolCache:
    """The global flat output index of every input element, the mask of those that won a
    repeated index (None when no index repeats), the input's shape and layout, and dtype."""

    targets: np.ndarray
    winners: np.ndarray | None
    x_shape: tuple
    y_shape: tuple
    dtype: np.dtype
    order: tuple


def unpool_output_size(op: str, in_sp, kernel, stride, padding, output_size) -> tuple:
    """PyTorch's rule: ``(L_in - 1)*s - 2p + k`` per axis, or ``output_size`` (the spatial
    sizes, or (N, C, *spatial)) within (default - stride, default + stride)."""
    nd = len(kernel)
    default = tuple((n - 1) * s + k - 2 * p for n, k, s, p in zip(in_sp, kernel, stride, padding))
    if output_size is None:
        out = default
    else:
        if not isinstance(output_size, (tuple, list)) or not all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in output_size):
            raise TypeError(f"{op}: output_size must be a tuple of ints, got {output_size!r}")
        out = tuple(int(v) for v in output_size)
        if len(out) == nd + 2:
            out = out[2:]
        if len(out) != nd:
            raise ValueError(f"{op}: output_size must have {nd} or {nd + 2} entries, got "
                             f"{output_size!r}")
        for a in range(nd):
            lo, hi = default[a] - stride[a], default[a] + stride[a]
            if not lo < out[a] < hi:
                raise ValueError(f"{op}: output_size {out} is invalid: axis {a} must lie "
                                 f"strictly between {lo} and {hi}")
    if min(out) < 1:
        raise ValueError(f"{op}: output size must be positive, got {out}")
    return out


def _forward(op, nd, x, indices, kernel_size, stride, padding, output_size):
    x = as_float_array(op, "x", x)
    check_ndim(op, "x", x, nd + 2, LAYOUTS[nd])
    if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer numpy.ndarray, got "
                        f"{type(indices).__name__} {getattr(indices, 'dtype', '')}")
    check_shape(op, "indices", indices, x.shape, "x's shape")
    k, s, p, _ = pool_args(op, nd, kernel_size, stride, padding)
    out = unpool_output_size(op, x.shape[2:], k, s, p, output_size)
    check_array(op, "the output", x.shape[:2] + out, x.dtype,
                because=f"kernel_size={k}, stride={s}, padding={p}, output_size={output_size}")
    n, c, plane = x.shape[0], x.shape[1], math.prod(out)
    idx = indices.astype(np.int64, copy=False)
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= plane):
        raise ValueError(f"{op}: indices must lie in [0, {plane}) (the output plane "
                         f"{out}), got values in [{int(idx.min())}, {int(idx.max())}]")
    rows = np.arange(n * c, dtype=np.int64).reshape(n, c, *([1] * nd))
    targets = (rows * plane + idx).ravel()
    # the last writer of a repeated index wins, decided explicitly: NumPy leaves the order
    # of a fancy assignment with repeats unspecified
    last = np.full(n * c * plane, -1, dtype=np.int64)
    np.maximum.at(last, targets, np.arange(targets.size))
    winners = last[targets] == np.arange(targets.size)
    winners = None if winners.all() else winners
    flat = np.zeros(n * c * plane, dtype=x.dtype)
    values = np.ascontiguousarray(x).ravel()
    if winners is None:
        flat[targets] = values
    else:
        flat[targets[winners]] = values[winners]
    order = axes_order(x)
    y = empty_in_order((n, c, *out), x.dtype, order)
    y[...] = flat.reshape(n, c, *out)
    return y, MaxUnpoolCache(targets, winners, tuple(x.shape), (n, c, *out), x.dtype, order)


def _backward(op, dy, cache: MaxUnpoolCache):
    cache = check_cache(op, cache, MaxUnpoolCache)
    dy = check_dy(op, dy, cache.y_shape, cache.dtype)
    g = np.ascontiguousarray(dy).ravel()[cache.targets]
    if cache.winners is not None:
        g *= cache.winners
    dx = empty_in_order(cache.x_shape, cache.dtype, cache.order)
    dx[...] = g.reshape(cache.x_shape)
    return dx


def max_unpool2d_forward(x, indices, *, kernel_size, stride=None, padding=0, output_size=None):
    """2-D max unpooling, as ``torch.nn.functional.max_unpool2d``: x and indices (N, C, H, W)
    (indices from max pooling, flat into each Ho*Wo output plane) -> y (N, C, Ho, Wo), zero
    except at the indices; ``Ho = (H-1)*sh - 2*ph + KH`` unless ``output_size`` says
    otherwise. Returns y and a :class:`MaxUnpoolCache`."""
    return _forward("max_unpool2d", 2, x, indices, kernel_size, stride, padding, output_size)


def max_unpool2d_backward(dy, cache: MaxUnpoolCache):
    """Gradient of :func:`max_unpool2d_forward`: dx = dy gathered at the indices."""
    return _backward("max_unpool2d_backward", dy, cache)


def max_unpool1d_forward(x, indices, *, kernel_size, stride=None, padding=0, output_size=None):
    """1-D max unpooling, x and indices (N, C, L) -> y (N, C, Lo) (see
    :func:`max_unpool2d_forward`)."""
    return _forward("max_unpool1d", 1, x, indices, kernel_size, stride, padding, output_size)


def max_unpool1d_backward(dy, cache: MaxUnpoolCache):
    """Gradient of :func:`max_unpool1d_forward`."""
    return _backward("max_unpool1d_backward", dy, cache)


def max_unpool3d_forward(x, indices, *, kernel_size, stride=None, padding=0, output_size=None):
    """3-D max unpooling, x and indices (N, C, D, H, W) -> y (N, C, Do, Ho, Wo) (see
    :func:`max_unpool2d_forward`)."""
    return _forward("max_unpool3d", 3, x, indices, kernel_size, stride, padding, output_size)


def max_unpool3d_backward(dy, cache: MaxUnpoolCache):
    """Gradient of :func:`max_unpool3d_forward`."""
    return _backward("max_unpool3d_backward", dy, cache)
