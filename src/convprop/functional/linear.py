"""Fully connected (affine) layer kernels.

Loop reference: :func:`convprop.reference.linear` (and ``linear_backward``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import (as_float_array, check_cache, check_dy, check_ndim, check_same_dtype,
                       check_shape)

__all__ = ["LinearCache", "linear_forward", "linear_backward"]


class LinearCache(NamedTuple):
    """The input and the weight (both needed for the gradients; ``x.dtype`` is the forward
    dtype); whether a bias was used."""

    x: np.ndarray
    w: np.ndarray
    has_bias: bool


def linear_forward(x, w, b=None):
    """Affine map: ``y = x @ w.T + b``.

    Args:
        x: (N, D_in) float32/float64.
        w: (D_out, D_in), same dtype (PyTorch's ``nn.Linear`` weight layout).
        b: (D_out,) or None.
    Returns:
        y (N, D_out) in x's dtype, and a :class:`LinearCache`.
    """
    op = "linear"
    x = as_float_array(op, "x", x)
    w = as_float_array(op, "w", w)
    check_ndim(op, "x", x, 2, "(N, D_in)")
    check_ndim(op, "w", w, 2, "(D_out, D_in)")
    if b is not None:
        b = as_float_array(op, "b", b)
        check_shape(op, "b", b, (w.shape[0],), "(D_out,)")
    check_same_dtype(op, x=x, w=w, b=b)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"{op}: x has {x.shape[1]} features but w expects {w.shape[1]} "
                         f"(x.shape={x.shape}, w.shape={w.shape})")
    y = x @ w.T
    if b is not None:
        y += b
    return y, LinearCache(x, w, b is not None)


def linear_backward(dy, cache: LinearCache, *, need_dx: bool = True):
    """Gradients of ``y = x @ w.T + b``: ``dx = dy @ w``, ``dw = dy.T @ x``, ``db = sum_n dy``.

    Args:
        dy: (N, D_out) in the forward's dtype.
    Returns:
        (dx (N, D_in), dw (D_out, D_in), db (D_out,) or None when forward had no bias);
        dx is None when ``need_dx=False`` (the caller discards it).
    """
    cache = check_cache("linear_backward", cache, LinearCache)
    dy = check_dy("linear_backward", dy, (cache.x.shape[0], cache.w.shape[0]), cache.x.dtype)
    dx = dy @ cache.w if need_dx else None
    dw = dy.T @ cache.x
    db = dy.sum(axis=0) if cache.has_bias else None
    return dx, dw, db
