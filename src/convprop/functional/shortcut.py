"""The parameter-free ResNet shortcut ("option A" of He et al. 2016, used for CIFAR).

Loop reference: :func:`convprop.reference.pad_shortcut`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_cache, check_dy, check_ndim, positive_int
from ._engine.layout import axes_order, empty_in_order
from ..limits import check_array

__all__ = ["pad_shortcut_forward", "pad_shortcut_backward", "PadShortcutCache"]


class PadShortcutCache(NamedTuple):
    x_shape: tuple      # (N, C, H, W) of the input
    y_shape: tuple      # (N, out_channels, ceil(H/stride), ceil(W/stride))
    stride: int
    before: int         # index of the first kept channel in y
    dtype: np.dtype
    order: tuple = (0, 1, 2, 3)  # x's memory layout: y and dx are allocated alike


def pad_shortcut_forward(x, *, out_channels: int, stride: int = 2):
    """Subsample by ``stride`` and zero-pad channels to ``out_channels``.

    ``y[:, before:before+C] = x[:, :, ::stride, ::stride]``, zeros elsewhere, where
    ``before = (out_channels - C) // 2``: the extra channels are split evenly, an odd one
    going after (for out_channels = 2C this is PyTorch's ``F.pad(..., (0,0,0,0,C//2,C//2))``
    pattern). Sampling starts at row/column 0, so the output matches a 3x3 convolution with
    stride ``stride`` and padding 1: ceil(H/stride) x ceil(W/stride).

    Args: x (N, C, H, W); out_channels >= C; stride >= 1.
    Returns: y (N, out_channels, ceil(H/stride), ceil(W/stride)), same dtype and memory
    layout (e.g. the (C, H, W, N) of a conv2d output, so the residual add after it never
    mixes layouts); cache.
    """
    op = "pad_shortcut"
    x = as_float_array(op, "x", x)
    check_ndim(op, "x", x, 4, "(N, C, H, W)")
    stride = positive_int(op, "stride", stride)
    out_channels = positive_int(op, "out_channels", out_channels)
    c = x.shape[1]
    if out_channels < c:
        raise ValueError(f"{op}: out_channels must be >= the input's {c} channels, "
                         f"got {out_channels} (x.shape={x.shape})")
    xs = x[:, :, ::stride, ::stride]
    check_array(op, "the output", (x.shape[0], out_channels) + xs.shape[2:], x.dtype,
                because=f"out_channels={out_channels}")
    before = (out_channels - c) // 2
    order = axes_order(x)
    y = empty_in_order((x.shape[0], out_channels) + xs.shape[2:], x.dtype, order)
    y.fill(0)
    y[:, before:before + c] = xs
    return y, PadShortcutCache(x.shape, y.shape, stride, before, x.dtype, order)


def pad_shortcut_backward(dy, cache: PadShortcutCache):
    """dx: the gradient of the kept channels, routed back to the sampled positions (zero at
    the positions the subsampling skipped). dy (N, out_channels, H', W') -> dx (N, C, H, W)
    in the forward's dtype (dy must have it too) and x's memory layout."""
    cache = check_cache("pad_shortcut_backward", cache, PadShortcutCache)
    op = "pad_shortcut_backward"
    dy = check_dy(op, dy, cache.y_shape, cache.dtype)
    c, s = cache.x_shape[1], cache.stride
    dx = empty_in_order(cache.x_shape, cache.dtype, cache.order)
    dx.fill(0)
    dx[:, :, ::s, ::s] = dy[:, cache.before:cache.before + c]
    return dx
