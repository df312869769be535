"""Element-wise activations: ReLU, leaky ReLU, sigmoid, tanh.

Each forward caches the smallest thing its backward needs: a boolean mask for the ReLU
family, the output ``y`` for sigmoid and tanh (their derivatives are functions of ``y``).

ReLU's backward takes one of three rules (``RELU_RULES``), the three "backward passes" that
saliency research built on the same forward (Springenberg et al. 2014, fig. 1):

- ``"gradient"``: ``dx = [x > 0] dy``, the true gradient (Simonyan et al. 2013's saliency);
- ``"deconvnet"``: ``dx = [dy > 0] dy``, Zeiler and Fergus 2014's DeconvNet, which
  rectifies the signal coming down and ignores the forward's mask;
- ``"guided"``: ``dx = [x > 0] [dy > 0] dy``, guided backpropagation (Springenberg et al.
  2014, "Striving for simplicity"), both masks at once.

Only "gradient" is a derivative; the other two are visualisation rules.

Loop reference: :func:`convprop.reference.activation` (and ``activation_backward``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_cache, check_dy, finite_number, one_of

__all__ = [
    "RELU_RULES", "ReluCache", "relu_forward", "relu_backward",
    "LeakyReluCache", "leaky_relu_forward", "leaky_relu_backward",
    "SigmoidCache", "sigmoid_forward", "sigmoid_backward",
    "TanhCache", "tanh_forward", "tanh_backward",
]


#: The ReLU backward rules, by name (see the module docstring).
RELU_RULES = ("gradient", "deconvnet", "guided")


def relu_rule_arg(op: str, rule) -> str:
    """``rule`` checked to be one of :data:`RELU_RULES`."""
    return one_of(op, "rule", rule, RELU_RULES)


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


def relu_backward(dy: np.ndarray, cache: ReluCache, *, rule: str = "gradient") -> np.ndarray:
    """ReLU's backward under ``rule``: "gradient" ``dx = [x > 0] dy`` (the derivative),
    "deconvnet" ``dx = [dy > 0] dy`` (Zeiler and Fergus 2014), "guided"
    ``dx = [x > 0] [dy > 0] dy`` (Springenberg et al. 2014).

    Args: dy: the forward output's shape and dtype; cache: :class:`ReluCache`; rule: one of
    :data:`RELU_RULES`. Returns: dx (same shape and dtype). Reference loops:
    ``tests/explain/test_rules.py``."""
    cache = check_cache("relu_backward", cache, ReluCache)
    rule = relu_rule_arg("relu_backward", rule)
    dy = check_dy("relu_backward", dy, cache.mask.shape, cache.dtype)
    if rule == "gradient":
        return dy * cache.mask
    if rule == "deconvnet":
        return dy * (dy > 0)
    return dy * (cache.mask & (dy > 0))


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
    slope = finite_number("leaky_relu", "negative_slope", negative_slope)
    mask = x > 0
    y = np.where(mask, x, x * x.dtype.type(slope))
    return y, LeakyReluCache(mask, slope, x.dtype)


def leaky_relu_backward(dy: np.ndarray, cache: LeakyReluCache) -> np.ndarray:
    """``dx = dy`` where ``x > 0``, ``negative_slope * dy`` elsewhere."""
    cache = check_cache("leaky_relu_backward", cache, LeakyReluCache)
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
    y = check_cache("sigmoid_backward", cache, SigmoidCache).y
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
    y = check_cache("tanh_backward", cache, TanhCache).y
    dy = check_dy("tanh_backward", dy, y.shape, y.dtype)
    return dy * (1 - y * y)
