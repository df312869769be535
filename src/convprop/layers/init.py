"""Weight initializers, each drawing from an explicit ``numpy.random.Generator``.

Every initializer is ``f(shape, rng, *, dtype=np.float32) -> ndarray``. Fans follow
PyTorch's rule on the raw weight shape: ``fan_in = shape[1] * KH * KW`` and
``fan_out = shape[0] * KH * KW``. For a transposed convolution, whose weight is
(C_in, C_out/groups, KH, KW), that makes ``fan_in = C_out/groups * KH * KW`` (as in PyTorch).

- ``he_normal``: N(0, 2/fan_in); ``he_uniform``: U(-sqrt(6/fan_in), sqrt(6/fan_in)) (Kaiming,
  gain sqrt(2), for ReLU networks).
- ``glorot_normal``: N(0, 2/(fan_in+fan_out)); ``glorot_uniform``:
  U(-sqrt(6/(fan_in+fan_out)), +...) (Xavier).
- ``torch_uniform``: PyTorch's default, kaiming_uniform with a=sqrt(5), which is
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)); under the name ``"torch"`` the bias gets the same bound.

A layer's ``init=`` takes one of the names in :data:`INITIALIZERS` or any callable with the
signature above (used for the weight; the bias is then zero, as for he/glorot).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..limits import check_array

__all__ = [
    "INITIALIZERS",
    "fan_in_and_fan_out",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "init_weight_and_bias",
    "torch_uniform",
]


def fan_in_and_fan_out(shape) -> tuple[int, int]:
    """PyTorch's fans of a weight of shape (out, in) or (A, B, KH, KW, ...)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"fan_in_and_fan_out: weight must have at least 2 dimensions, "
                         f"got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _draw(kind: str, scale: float, shape, rng: np.random.Generator, dtype) -> np.ndarray:
    if kind == "normal":
        a = rng.standard_normal(shape) * scale
    else:
        a = rng.uniform(-scale, scale, size=shape)
    return np.asarray(a).astype(dtype, copy=False)


def he_normal(shape, rng: np.random.Generator, *, dtype=np.float32) -> np.ndarray:
    """Kaiming normal (fan_in mode, gain sqrt(2)): std = sqrt(2 / fan_in)."""
    fan_in, _ = fan_in_and_fan_out(shape)
    return _draw("normal", math.sqrt(2.0 / fan_in), shape, rng, dtype)


def he_uniform(shape, rng: np.random.Generator, *, dtype=np.float32) -> np.ndarray:
    """Kaiming uniform (fan_in mode, gain sqrt(2)): bound = sqrt(6 / fan_in)."""
    fan_in, _ = fan_in_and_fan_out(shape)
    return _draw("uniform", math.sqrt(6.0 / fan_in), shape, rng, dtype)


def glorot_normal(shape, rng: np.random.Generator, *, dtype=np.float32) -> np.ndarray:
    """Xavier normal: std = sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(shape)
    return _draw("normal", math.sqrt(2.0 / (fan_in + fan_out)), shape, rng, dtype)


def glorot_uniform(shape, rng: np.random.Generator, *, dtype=np.float32) -> np.ndarray:
    """Xavier uniform: bound = sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(shape)
    return _draw("uniform", math.sqrt(6.0 / (fan_in + fan_out)), shape, rng, dtype)


def torch_uniform(shape, rng: np.random.Generator, *, dtype=np.float32) -> np.ndarray:
    """PyTorch's default weight init: bound = 1 / sqrt(fan_in)."""
    fan_in, _ = fan_in_and_fan_out(shape)
    return _draw("uniform", 1.0 / math.sqrt(fan_in), shape, rng, dtype)


INITIALIZERS: dict[str, Callable] = {
    "torch": torch_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
}


def init_weight_and_bias(op: str, init, w_shape, bias_len: int | None, rng, dtype):
    """(weight, bias or None) for a layer: ``init`` is a name in :data:`INITIALIZERS` or a
    callable ``f(shape, rng, *, dtype)``; ``bias_len`` None means no bias. The bias is
    U(+-1/sqrt(fan_in)) for ``"torch"`` and zero otherwise."""
    if rng is None:
        rng = np.random.default_rng()
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"{op}: rng must be a numpy.random.Generator or None, "
                        f"got {type(rng).__name__}")
    if isinstance(init, str):
        if init not in INITIALIZERS:
            raise ValueError(f"{op}: init must be one of {sorted(INITIALIZERS)} or a callable, "
                             f"got {init!r}")
        fn = INITIALIZERS[init]
    elif callable(init):
        fn = init
    else:
        raise TypeError(f"{op}: init must be a name or a callable, got {type(init).__name__}")
    w_shape = tuple(int(s) for s in w_shape)
    # the draw is float64 before the cast: check that size, before anything is allocated
    check_array(op, "the weight", w_shape, np.float64,
                because="the layer's feature and kernel sizes")
    w = np.asarray(fn(w_shape, rng, dtype=dtype))
    if w.shape != w_shape:
        raise ValueError(f"{op}: init returned shape {w.shape}, expected {w_shape}")
    w = w.astype(dtype, copy=False)
    if bias_len is None:
        return w, None
    if init == "torch":
        fan_in, _ = fan_in_and_fan_out(w_shape)
        return w, _draw("uniform", 1.0 / math.sqrt(fan_in), (bias_len,), rng, dtype)
    return w, np.zeros((bias_len,), dtype=dtype)
