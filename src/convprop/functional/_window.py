"""The windowing primitive shared by convolution, transposed convolution and pooling.

A sliding-window op of kernel (KH, KW), stride (sh, sw) and dilation (dh, dw) over a padded
input ``xp`` reads, for each kernel offset (i, j), the strided view
``xp[..., i*dh : i*dh + sh*(Ho-1) + 1 : sh, j*dw : ... : sw]`` of shape (..., Ho, Wo).
Looping over the KH*KW offsets (never over the batch or the output positions) and doing
whole-array work on each view is the gather; adding into the same views of a zero buffer is
its adjoint, the scatter-add that every backward pass uses. Overlapping windows
(stride < kernel) simply add into the same buffer elements from several offsets.
"""

from __future__ import annotations

import math

import numpy as np


def out_size(op: str, size: int, k: int, s: int, p: int, d: int = 1, *,
             ceil_mode: bool = False, axis: str = "H") -> int:
    """Output length along one axis, PyTorch's rule (floor, or ceil with the last window
    required to start inside the input or its left padding). Raises if no window fits."""
    eff = d * (k - 1) + 1
    if size + 2 * p < eff:
        raise ValueError(
            f"{op}: the {eff}-wide window (kernel {k}, dilation {d}) does not fit the padded "
            f"input along {axis}: input {size} + 2*padding {p} = {size + 2 * p}")
    if ceil_mode:
        o = math.ceil((size + 2 * p - eff) / s) + 1
        if (o - 1) * s >= size + p:
            o -= 1
    else:
        o = (size + 2 * p - eff) // s + 1
    return o


def pad_hw(x: np.ndarray, pad_h: tuple[int, int], pad_w: tuple[int, int],
           value: float = 0.0) -> np.ndarray:
    """A new array with the last two axes padded by (top, bottom) and (left, right).

    Returns ``x`` itself when there is nothing to pad (callers never write into it)."""
    (t, b), (l, r) = pad_h, pad_w
    if t == b == l == r == 0:
        return x
    shape = x.shape[:-2] + (x.shape[-2] + t + b, x.shape[-1] + l + r)
    out = np.full(shape, value, dtype=x.dtype)
    out[..., t:t + x.shape[-2], l:l + x.shape[-1]] = x
    return out


def offset_slices(i: int, j: int, out_hw: tuple[int, int], stride: tuple[int, int],
                  dilation: tuple[int, int] = (1, 1)) -> tuple[slice, slice]:
    """The (row, column) slices that kernel offset (i, j) reads for every output position."""
    (ho, wo), (sh, sw), (dh, dw) = out_hw, stride, dilation
    return (slice(i * dh, i * dh + sh * (ho - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (wo - 1) + 1, sw))


def window(xp: np.ndarray, i: int, j: int, out_hw, stride, dilation=(1, 1)) -> np.ndarray:
    """Strided view (..., Ho, Wo) of ``xp`` at kernel offset (i, j): the gather."""
    rs, cs = offset_slices(i, j, out_hw, stride, dilation)
    return xp[..., rs, cs]


def window_add(buf: np.ndarray, i: int, j: int, v: np.ndarray, out_hw, stride,
               dilation=(1, 1)) -> None:
    """``buf[window at (i, j)] += v``: the adjoint of :func:`window` (the scatter-add).

    Within one offset the strided targets are distinct, so a plain ``+=`` is exact; overlaps
    between offsets accumulate across calls."""
    rs, cs = offset_slices(i, j, out_hw, stride, dilation)
    buf[..., rs, cs] += v
