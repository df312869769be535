"""Index helpers shared by the loop references: tuples, positions, padding."""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["conv_pads", "ntuple", "positions", "zero_pad"]


def ntuple(v, n: int) -> tuple:
    """An int repeated ``n`` times, or a sequence as a tuple."""
    return (v,) * n if isinstance(v, (int, np.integer)) else tuple(v)


def positions(shape):
    """Every index tuple of ``shape`` in row-major order."""
    return itertools.product(*(range(s) for s in shape))


def conv_pads(padding, kernel, dilation) -> tuple:
    """((before, after), ...) per spatial axis for an int / tuple / "valid" / "same" padding;
    "same" puts the odd extra element after, as PyTorch."""
    nd = len(kernel)
    if padding == "valid":
        return ((0, 0),) * nd
    if padding == "same":
        tot = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in tot)
    return tuple((p, p) for p in ntuple(padding, nd))


def zero_pad(x, pads, value=0.0):
    """``x`` (N, C, *S) as float64 with ``pads`` ((before, after) per spatial axis) added."""
    return np.pad(np.asarray(x, np.float64), [(0, 0), (0, 0), *pads], constant_values=value)
