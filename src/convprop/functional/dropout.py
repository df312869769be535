"""Inverted dropout.

Loop reference: :func:`convprop.reference.dropout` (and ``dropout_backward``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_cache, check_dy, real_number, training_rng

__all__ = ["dropout_p", "DropoutCache", "dropout_forward", "dropout_backward"]


class DropoutCache(NamedTuple):
    mask: np.ndarray | None     # bool, True = kept; None when dropout was the identity
    scale: float                # 1 / (1 - p) (0 when p == 1)
    shape: tuple
    dtype: np.dtype


def dropout_p(op: str, p) -> float:
    """The one check of a dropout probability (kernel and module): a real number in [0, 1]."""
    p = real_number(op, "p", p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: p must be in [0, 1] (probability of dropping), got {p}")
    return p


def dropout_forward(x: np.ndarray, *, p: float, training: bool,
                    rng: np.random.Generator | None) -> tuple[np.ndarray, DropoutCache]:
    """Inverted dropout: ``y = x * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` per element.

    Args:
        x: any shape, float32/float64.
        p: probability of *dropping* an element (PyTorch's meaning), in [0, 1].
        training: when False (or when p == 0) the op is the identity.
        rng: the Generator that draws the mask (required when training; may be None
            otherwise). An element is kept when its uniform draw ``u`` satisfies ``u >= p``;
            draws are float64 whatever the dtype, so one seed gives one mask.
    Returns: y (a new array, same shape and dtype), cache. ``cache.mask`` is the boolean
    keep-mask, or None when the op was the identity. p == 1 gives zeros.
    """
    x = as_float_array("dropout", "x", x)
    p = dropout_p("dropout", p)
    training = training_rng("dropout", training, rng)
    if not training or p == 0:
        return x.copy(), DropoutCache(None, 1.0, x.shape, x.dtype)
    mask = rng.random(x.shape) >= p
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    y = x * mask
    y *= x.dtype.type(scale)
    return y, DropoutCache(mask, scale, x.shape, x.dtype)


def dropout_backward(dy: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """``dx = dy * m / (1 - p)`` with the forward's mask ``m``."""
    cache = check_cache("dropout_backward", cache, DropoutCache)
    dy = check_dy("dropout_backward", dy, cache.shape, cache.dtype)
    if cache.mask is None:
        return dy.copy()
    dx = dy * cache.mask
    dx *= cache.dtype.type(cache.scale)
    return dx
