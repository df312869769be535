"""Flatten: (N, C, H, W, ...) -> (N, C*H*W*...), the bridge from convolutions to linear layers.

Loop reference: :func:`convprop.reference.flatten`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_cache, check_dy, check_ndim
from ._engine.layout import axes_order, empty_in_order

__all__ = ["FlattenCache", "flatten_forward", "flatten_backward"]


class FlattenCache(NamedTuple):
    """The input's shape, to restore in backward, its dtype and its memory layout."""

    x_shape: tuple
    dtype: np.dtype
    order: tuple = ()


def flatten_forward(x):
    """Flatten every axis after the batch axis: ``y[n] = x[n].ravel()`` (C order, as torch).

    Args:
        x: (N, ...) with at least 2 axes, float32/float64; may be non-contiguous.
    Returns:
        y (N, prod(rest)) (a view of x when x's layout allows, else a copy), and a
        :class:`FlattenCache`.
    """
    op = "flatten"
    x = as_float_array(op, "x", x)
    if x.ndim < 2:
        raise ValueError(f"{op}: x must have at least 2 axes (N, ...), got shape {x.shape}")
    y = x.reshape(x.shape[0], math.prod(x.shape[1:]))
    return y, FlattenCache(tuple(x.shape), x.dtype, axes_order(x))


def flatten_backward(dy, cache: FlattenCache):
    """Gradient of flatten: ``dy`` reshaped back to the input's shape.

    Args:
        dy: (N, prod(rest)) in the forward's dtype.
    Returns:
        dx with the forward input's shape, dtype and memory layout: a view of dy when the
        input was C-ordered, else a copy laid out like the input (e.g. the batch-innermost
        output of a convolution or pooling), so the layer below works on one layout.
    """
    cache = check_cache("flatten_backward", cache, FlattenCache)
    op = "flatten_backward"
    dy = as_float_array(op, "dy", dy)
    check_ndim(op, "dy", dy, 2, "(N, D)")
    shape = cache.x_shape
    dy = check_dy(op, dy, (shape[0], math.prod(shape[1:])), cache.dtype)
    order = cache.order or tuple(range(len(shape)))
    if order == tuple(range(len(shape))):
        return dy.reshape(shape)
    dx = empty_in_order(shape, dy.dtype, order)
    dx[...] = dy.reshape(shape)
    return dx
