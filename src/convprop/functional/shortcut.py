"""The parameter-free ResNet shortcut ("option A" of He et al. 2016, used for CIFAR)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_ndim, positive_int

__all__ = ["pad_shortcut_forward", "pad_shortcut_backward", "PadShortcutCache"]


class PadShortcutCache(NamedTuple):
    x_shape: tuple
    stride: int
    before: int


def pad_shortcut_forward(x, *, out_channels: int, stride: int = 2):
    """Subsample by ``stride`` and zero-pad channels to ``out_channels``:
    ``y[:, before:before+C] = x[:, :, ::stride, ::stride]``, zeros elsewhere, with the
    extra channels split evenly (``before = (out_channels - C) // 2``).

    x (N, C, H, W) -> y (N, out_channels, ceil(H/stride), ceil(W/stride))."""
    op = "pad_shortcut"
    x = as_float_array(op, "x", x)
    check_ndim(op, "x", x, 4, "(N, C, H, W)")
    stride = positive_int(op, "stride", stride)
    out_channels = positive_int(op, "out_channels", out_channels)
    c = x.shape[1]
    if out_channels < c:
        raise ValueError(f"{op}: out_channels must be >= the input's {c} channels, "
                         f"got {out_channels}")
    before = (out_channels - c) // 2
    xs = x[:, :, ::stride, ::stride]
    y = np.zeros((x.shape[0], out_channels) + xs.shape[2:], dtype=x.dtype)
    y[:, before:before + c] = xs
    return y, PadShortcutCache(x.shape, stride, before)


def pad_shortcut_backward(dy, cache: PadShortcutCache):
    """dx: the gradient of the kept channels, routed back to the sampled positions."""
    n, c, h, w = cache.x_shape
    s = cache.stride
    dx = np.zeros(cache.x_shape, dtype=dy.dtype)
    dx[:, :, ::s, ::s] = dy[:, cache.before:cache.before + c]
    return dx
