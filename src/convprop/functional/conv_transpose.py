"""Transposed 2-D convolution: the input gradient of :func:`conv2d_forward`, as a layer.

``conv_transpose2d(x, w)`` is ``conv2d``'s dx for a convolution whose output is x, with the
same w, so it runs on the same machinery with the roles swapped:

    forward       y  = col2im(W.T @ x)      (conv2d's input gradient)
    input grad    dx = W @ im2col(dy)       (conv2d's forward)
    weight grad   dw = x @ im2col(dy).T     (conv2d's weight gradient, x playing dy)

which makes ``<conv2d(u, w), v> == <u, conv_transpose2d(v, w)>`` exact by construction.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import check_dy, pair
from .conv import (ConvGeometry, channels_major, check_bias, check_conv_args, correlate,
                   correlate_input_grad, correlate_weight_grad, to_nchw)

__all__ = ["ConvTranspose2dCache", "conv_transpose2d_forward", "conv_transpose2d_backward"]

_OP = "conv_transpose2d"


class ConvTranspose2dCache(NamedTuple):
    """What :func:`conv_transpose2d_backward` needs: x in (G, C_in/G, H*W*N) channel-major
    form, the weight, whether there was a bias, and the geometry of the underlying conv2d
    (whose *input* is this op's output)."""

    x2: np.ndarray
    w: np.ndarray
    has_bias: bool
    geometry: ConvGeometry


def conv_transpose2d_forward(x, w, b, *, stride=1, padding=0, output_padding=0, dilation=1,
                             groups=1):
    """Transposed convolution ``y = x ⋆ᵀ w + b``, as ``torch.nn.functional.conv_transpose2d``.

    ``y[n, o, p, q] = b[o] + sum_{c, h, v, i, j} x[n, c, h, v] * w[c, o', i, j]`` over
    ``p = h*sh + i*dh - ph``, ``q = v*sw + j*dw - pw`` (o' is o within its group): every input
    pixel scatters a weighted copy of the kernel; overlaps add. ``padding`` crops the result.

    Args:
        x: (N, C_in, H, W) float32/float64; w: (C_in, C_out/groups, KH, KW); b: (C_out,) or
        None. stride, dilation >= 1; padding >= 0; output_padding < max(stride, dilation)
        (ints or pairs) adds rows/columns at the bottom/right.
    Returns:
        y (N, C_out, Ho, Wo) with ``Ho = (H-1)*sh - 2*ph + dh*(KH-1) + output_padding + 1``, a
        view of a (C_out, Ho, Wo, N) buffer, and a
        :class:`ConvTranspose2dCache` (x itself; backward builds im2col of dy once).
    """
    x, w, b, groups, stride, dilation = check_conv_args(_OP, x, w, b, groups, stride, dilation)
    padding = pair(_OP, "padding", padding, minimum=0)
    out_pad = pair(_OP, "output_padding", output_padding, minimum=0)
    n, c_in, h, wd = x.shape
    if w.shape[0] != c_in:
        raise ValueError(f"{_OP}: x has {c_in} channels but w expects {w.shape[0]} "
                         f"(x.shape={x.shape}, w.shape={w.shape})")
    if c_in % groups:
        raise ValueError(f"{_OP}: groups={groups} must divide C_in={c_in} "
                         f"(x.shape={x.shape}, w.shape={w.shape})")
    c_out = w.shape[1] * groups
    check_bias(_OP, b, c_out)
    kernel = w.shape[2:]
    for a in range(2):
        if out_pad[a] >= max(stride[a], dilation[a]):
            raise ValueError(f"{_OP}: output_padding must be smaller than stride or dilation, "
                             f"got output_padding={out_pad}, stride={stride}, "
                             f"dilation={dilation}")
    out_hw = tuple((s - 1) * st - 2 * p + d * (k - 1) + op + 1 for s, st, p, d, k, op
                   in zip((h, wd), stride, padding, dilation, kernel, out_pad))
    if min(out_hw) < 1:
        raise ValueError(f"{_OP}: output size must be positive, got {out_hw} from input "
                         f"{(h, wd)}, kernel {kernel}, stride {stride}, padding {padding}, "
                         f"dilation {dilation}, output_padding {out_pad}")
    geo = ConvGeometry((n, c_out, *out_hw), c_in, kernel, stride, padding, dilation, groups,
                       (h, wd))
    x2 = channels_major(x, groups)
    y = correlate_input_grad(x2, w, geo)
    if b is not None:
        y += b.reshape(1, -1, 1, 1)  # y is a fresh buffer of ours
    return y, ConvTranspose2dCache(x2, w, b is not None, geo)


def conv_transpose2d_backward(dy, cache: ConvTranspose2dCache):
    """Gradients of :func:`conv_transpose2d_forward`: ``dx = conv2d(dy, w)``,
    ``dw = x ⋆ im2col(dy)`` per group, ``db = sum dy`` over (N, Ho, Wo).

    Args: dy (N, C_out, Ho, Wo) in the forward's dtype; the cache from the forward.
    Returns: (dx (N, C_in, H, W) — a view of (C_in, H, W, N) memory —, dw (C_in, C_out/groups, KH, KW),
    db (C_out,) or None).
    """
    geo = cache.geometry
    dy = check_dy(f"{_OP}_backward", dy, geo.x_shape, cache.w.dtype)
    dx2, cols = correlate(dy, cache.w, geo)
    dx = to_nchw(dx2, geo.x_shape[0], geo.out_hw)
    dw = correlate_weight_grad(cache.x2, cols, cache.w.shape)
    db = dy.sum(axis=(0, 2, 3)) if cache.has_bias else None
    return dx, dw, db
