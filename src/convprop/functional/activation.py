"""Element-wise activations: ReLU, leaky ReLU, sigmoid, tanh.

Each forward caches the smallest thing its backward needs: a boolean mask for the ReLU
family, the output ``y`` for sigmoid and tanh (their derivatives are functions of ``y``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_dy, real_number

__all__ = [
    "ReluCache", "relu_forward", "relu_backward",
    "LeakyReluCache", "leaky_relu_forward", "leaky_relu_backward",
    "SigmoidCache", "sigmoid_forward", "sigmoid_backward",
    "TanhCache", "tanh_forward", "tanh_backward",
]


class ReluCache(NamedTuple):
    mask: np.ndarray    # bool, x > 0
    dtype: np.dtype


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, ReluCache]:
    """Rectified linear unit, ``y = max(x, 0)``.

    Args: x: any shape, float32/float64. Returns: y (same shape and dtype), cache.
    The gradient at exactly ``x == 0`` is 0 (PyTorch's convention)."""
    x = as_float_array("relu", "x", x)
    mask = x > 0
    return x * mask, ReluCache(mask, x.dtype)


def relu_backward(dy: np.ndarray, cache: ReluCache) -> np.ndarray:
    """``dx = dy * [x > 0]``."""
    dy = check_dy("relu_backward", dy, cache.mask.shape, cache.dtype)
    return dy * cache.mask


class LeakyReluCache(NamedTuple):
    mask: np.ndarray    # bool, x > 0
    negative_slope: float
    dtype: np.dtype


def leaky_relu_forward(x: np.ndarray, *, negative_slope: float = 0.01
                       ) -> tuple[np.ndarray, LeakyReluCache]:
    """Leaky ReLU, ``y = x if x > 0 else negative_slope * x``.

    Args: x: any shape, float32/float64. Returns: y (same shape and dtype), cache.
    At exactly ``x == 0`` the gradient is ``negative_slope`` (PyTorch's convention)."""
    x = as_float_array("leaky_relu", "x", x)
    slope = real_number("leaky_relu", "negative_slope", negative_slope)
    mask = x > 0
    y = np.where(mask, x, x * x.dtype.type(slope))
    return y, LeakyReluCache(mask, slope, x.dtype)


def leaky_relu_backward(dy: np.ndarray, cache: LeakyReluCache) -> np.ndarray:
    """``dx = dy`` where ``x > 0``, ``negative_slope * dy`` elsewhere."""
    dy = check_dy("leaky_relu_backward", dy, cache.mask.shape, cache.dtype)
    return np.where(cache.mask, dy, dy * cache.dtype.type(cache.negative_slope))


class SigmoidCache(NamedTuple):
    y: np.ndarray


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, SigmoidCache]:
    """Logistic sigmoid, ``y = 1 / (1 + exp(-x))``.

    Args: x: any shape, float32/float64. Returns: y (same shape and dtype), cache.
    Evaluated through ``e = exp(-|x|)`` (``1/(1+e)`` for x >= 0, ``e/(1+e)`` otherwise), so
    no ``exp`` overflows for large ``|x|``."""
    x = as_float_array("sigmoid", "x", x)
    e = np.exp(-np.abs(x))
    inv = 1 / (1 + e)
    y = np.where(x >= 0, inv, e * inv)
    return y, SigmoidCache(y)


def sigmoid_backward(dy: np.ndarray, cache: SigmoidCache) -> np.ndarray:
    """``dx = dy * y * (1 - y)``."""
    y = cache.y
    dy = check_dy("sigmoid_backward", dy, y.shape, y.dtype)
    return dy * (y * (1 - y))


class TanhCache(NamedTuple):
    y: np.ndarray


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, TanhCache]:
    """Hyperbolic tangent, ``y = tanh(x)``.

    Args: x: any shape, float32/float64. Returns: y (same shape and dtype), cache."""
    x = as_float_array("tanh", "x", x)
    y = np.tanh(x)
    return y, TanhCache(y)


def tanh_backward(dy: np.ndarray, cache: TanhCache) -> np.ndarray:
    """``dx = dy * (1 - y**2)``."""
    y = cache.y
    dy = check_dy("tanh_backward", dy, y.shape, y.dtype)
    return dy * (1 - y * y)
