"""Transposed convolution in 1, 2 and 3 spatial dimensions: the input gradient of a
convolution, as a layer (``torch.nn.functional.conv_transpose1d/2d/3d``).

``conv_transpose(x, w)`` is the dx of a convolution whose output is x, with the same w, so it
runs on the engine's correlation with the roles swapped:

    forward       y  = col2im(W.T @ x)      (a convolution's input gradient)
    input grad    dx = W @ im2col(dy)       (a convolution's forward)
    weight grad   dw = x @ im2col(dy).T     (a convolution's weight gradient, x playing dy)

which makes ``<conv(u, w), v> == <u, conv_transpose(v, w)>`` exact by construction.
``mode="convolution"`` reverses the kernel along every spatial axis, as for convolution.

Loop reference: :func:`convprop.reference.conv_transpose`.
"""

from __future__ import annotations

import math

from typing import NamedTuple

import numpy as np

from .._checks import check_cache, check_dy
from ._engine.correlate import ConvGeometry, correlate, correlate_backward, correlate_input_grad
from ._engine.layout import channels_major, from_gemm
from .conv import check_bias, check_conv_arrays, conv_args, flip_kernel
from ..limits import check_array

__all__ = ["ConvTransposeCache", "ConvTranspose1dCache", "ConvTranspose2dCache",
           "ConvTranspose3dCache", "conv_transpose1d_forward", "conv_transpose1d_backward",
           "conv_transpose2d_forward", "conv_transpose2d_backward",
           "conv_transpose3d_forward", "conv_transpose3d_backward"]


class ConvTransposeCache(NamedTuple):
    """What a transposed convolution's backward needs: x in (G, C_in/G, prod(S)*N)
    channel-major form, the weight as correlated (reversed for ``mode="convolution"``),
    whether there was a bias, and the geometry of the underlying convolution (whose *input*
    is this op's output)."""

    x2: np.ndarray
    w: np.ndarray
    has_bias: bool
    geometry: ConvGeometry
    flipped: bool = False


ConvTranspose1dCache = ConvTranspose2dCache = ConvTranspose3dCache = ConvTransposeCache


def _forward(op: str, nd: int, x, w, b, stride, padding, output_padding, dilation, groups,
             mode):
    x, w, b = check_conv_arrays(op, nd, x, w, b, "in, out/groups")
    a = conv_args(op, nd, stride=stride, padding=padding, dilation=dilation, groups=groups,
                  mode=mode, output_padding=output_padding)
    n, c_in, sp = x.shape[0], x.shape[1], x.shape[2:]
    if w.shape[0] != c_in:
        raise ValueError(f"{op}: x has {c_in} channels but w expects {w.shape[0]} "
                         f"(x.shape={x.shape}, w.shape={w.shape})")
    if c_in % a.groups:
        raise ValueError(f"{op}: groups={a.groups} must divide C_in={c_in} "
                         f"(x.shape={x.shape}, w.shape={w.shape})")
    c_out, kernel = w.shape[1] * a.groups, w.shape[2:]
    check_bias(op, b, c_out)
    out = tuple((s - 1) * st - 2 * p + d * (k - 1) + op_ + 1 for s, st, p, d, k, op_
                in zip(sp, a.stride, a.padding, a.dilation, kernel, a.output_padding))
    if min(out) < 1:
        raise ValueError(f"{op}: output size must be positive, got {out} from input "
                         f"{tuple(sp)}, kernel {kernel}, stride {a.stride}, padding "
                         f"{a.padding}, dilation {a.dilation}, output_padding "
                         f"{a.output_padding}")
    check_array(op, "the output", (n, c_out, *out), x.dtype,
                because=f"kernel {kernel}, stride={a.stride}, padding={a.padding}, dilation="
                        f"{a.dilation}, output_padding={a.output_padding}")
    if len(sp) < 3:  # the columns col2im scatters from (3-D may slide over depth instead)
        check_array(op, "the column buffer", (c_out * math.prod(kernel), n * math.prod(sp)),
                    x.dtype, because=f"kernel {kernel} over an input of {tuple(sp)}")
    geo = ConvGeometry((n, c_out, *out), c_in, kernel, a.stride, a.padding, a.dilation,
                       a.groups, tuple(sp))
    flipped = a.mode == "convolution"
    wc = flip_kernel(w) if flipped else w
    x2 = channels_major(x, a.groups)
    y = correlate_input_grad(x2, wc, geo)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * nd)  # y is a fresh buffer of ours
    return y, ConvTransposeCache(x2, wc, b is not None, geo, flipped)


def _backward(op: str, dy, cache: ConvTransposeCache):
    cache = check_cache(op, cache, ConvTransposeCache)
    geo = cache.geometry
    dy = check_dy(op, dy, geo.x_shape, cache.w.dtype)
    dx2, work = correlate(dy, cache.w, geo)
    dx = from_gemm(dx2, geo.x_shape[0], geo.out)
    _, dw = correlate_backward(cache.x2, cache.w, geo, work, need_dx=False)
    if cache.flipped:
        dw = flip_kernel(dw)
    db = dy.sum(axis=(0, *range(2, dy.ndim))) if cache.has_bias else None
    return dx, dw, db


def conv_transpose2d_forward(x, w, b, *, stride=1, padding=0, output_padding=0, dilation=1,
                             groups=1, mode="cross-correlation"):
    """Transposed convolution ``y = x ⋆ᵀ w + b``, as ``torch.nn.functional.conv_transpose2d``.

    ``y[n, o, p, q] = b[o] + sum_{c, h, v, i, j} x[n, c, h, v] * w[c, o', i, j]`` over
    ``p = h*sh + i*dh - ph``, ``q = v*sw + j*dw - pw`` (o' is o within its group): every input
    pixel scatters a weighted copy of the kernel; overlaps add. ``padding`` crops the result.

    Args:
        x: (N, C_in, H, W) float32/float64; w: (C_in, C_out/groups, KH, KW); b: (C_out,) or
        None. stride, dilation >= 1; padding >= 0; output_padding < max(stride, dilation)
        (ints or pairs) adds rows/columns at the bottom/right. mode: "cross-correlation"
        (PyTorch) or "convolution" (the kernel reversed along KH and KW).
    Returns:
        y (N, C_out, Ho, Wo) with ``Ho = (H-1)*sh - 2*ph + dh*(KH-1) + output_padding + 1``, a
        view of a (C_out, Ho, Wo, N) buffer, and a :class:`ConvTransposeCache` (x itself;
        backward builds im2col of dy once, in bands for a large layer).
    """
    return _forward("conv_transpose2d", 2, x, w, b, stride, padding, output_padding,
                    dilation, groups, mode)


def conv_transpose2d_backward(dy, cache: ConvTransposeCache, *, need_dx: bool = True):
    """Gradients of :func:`conv_transpose2d_forward`: ``dx = conv2d(dy, w)``,
    ``dw = x ⋆ im2col(dy)`` per group, ``db = sum dy`` over (N, Ho, Wo). dx and dw share
    one im2col of dy, so ``need_dx=False`` saves nothing and dx is always returned.

    Returns: (dx (N, C_in, H, W), a view of (C_in, H, W, N) memory; dw (C_in,
    C_out/groups, KH, KW); db (C_out,) or None).
    """
    return _backward("conv_transpose2d_backward", dy, cache)


def conv_transpose1d_forward(x, w, b, *, stride=1, padding=0, output_padding=0, dilation=1,
                             groups=1, mode="cross-correlation"):
    """1-D transposed convolution, as ``torch.nn.functional.conv_transpose1d``: x (N, C_in, L),
    w (C_in, C_out/groups, KL) -> y (N, C_out, Lo), ``Lo = (L-1)*s - 2p + d*(KL-1) +
    output_padding + 1`` (see :func:`conv_transpose2d_forward`)."""
    return _forward("conv_transpose1d", 1, x, w, b, stride, padding, output_padding,
                    dilation, groups, mode)


def conv_transpose1d_backward(dy, cache: ConvTransposeCache, *, need_dx: bool = True):
    """Gradients (dx, dw, db) of :func:`conv_transpose1d_forward`."""
    return _backward("conv_transpose1d_backward", dy, cache)


def conv_transpose3d_forward(x, w, b, *, stride=1, padding=0, output_padding=0, dilation=1,
                             groups=1, mode="cross-correlation"):
    """3-D transposed convolution, as ``torch.nn.functional.conv_transpose3d``:
    x (N, C_in, D, H, W), w (C_in, C_out/groups, KD, KH, KW) -> y (N, C_out, Do, Ho, Wo)
    (see :func:`conv_transpose2d_forward`)."""
    return _forward("conv_transpose3d", 3, x, w, b, stride, padding, output_padding,
                    dilation, groups, mode)


def conv_transpose3d_backward(dy, cache: ConvTransposeCache, *, need_dx: bool = True):
    """Gradients (dx, dw, db) of :func:`conv_transpose3d_forward`."""
    return _backward("conv_transpose3d_backward", dy, cache)
