"""Small helpers shared by the layer modules."""

from __future__ import annotations

import numpy as np

from .._checks import as_float_array
from .module import Parameter


def float_dtype(op: str, dtype) -> np.dtype:
    """``dtype`` as a numpy dtype, which must be float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{op}: dtype must be float32 or float64, got {dtype!r}")
    return dt


def accumulate(p: Parameter | None, g) -> None:
    """Add a kernel's gradient into ``p.grad`` (the kernels return fresh arrays)."""
    if p is not None and g is not None:
        p.grad += g


def check_input(op: str, x, params) -> np.ndarray:
    """``x`` must be a float array of the dtype of the module's parameters: a float64 batch
    fed to a float32 model would otherwise upcast (or fail deep inside a kernel)."""
    as_float_array(op, "x", x)
    for p in params:
        if p is not None and p.value.dtype != x.dtype:
            raise TypeError(f"{op}: x has dtype {x.dtype} but the parameters are "
                            f"{p.value.dtype}; cast x or call .astype({x.dtype}) on the model")
    return x
