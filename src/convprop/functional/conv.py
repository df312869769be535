"""Convolution in 1, 2 and 3 spatial dimensions: cross-correlation (PyTorch's ``conv*d``) or
true convolution (``mode="convolution"``).

With d spatial axes, x (N, C_in, *S), w (C_out, C_in/G, *K) and output position o,

    cross-correlation  y[n, f, o] = b[f] + sum_{c, k} w[f, c, k]          x_pad[n, c', o*s + k*r]
    convolution        y[n, f, o] = b[f] + sum_{c, k} w[f, c, K - 1 - k]  x_pad[n, c', o*s + k*r]

(c' = c + G-group offset of f). "The convolution operation carried out here is the same as
cross-correlation, except that the kernel is flipped": deep-learning libraries call the
first one convolution; the second is the convolution of signal processing, equal to
cross-correlation with the kernel reversed along every spatial axis (and its weight
gradient reversed back). Both run on the engine's correlation (:mod:`._engine.correlate`):
im2col columns and one GEMM per group, or bands of them for large layers.

Loop reference: :func:`convprop.reference.conv` (and ``conv_backward``; true convolution is ``conv``
with ``flip(w)``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import (as_float_array, check_cache, check_dy, check_ndim, check_same_dtype, ntuple,
                       positive_int)
from ._engine.correlate import (BAND_ABOVE, BAND_BYTES, ConvGeometry, ConvWork, correlate,
                                correlate_backward)
from ._engine.layout import channels_major, from_gemm, to_batch_inner
from ._engine.windows import axis_names, out_size
from ..limits import check_array

__all__ = ["ConvCache", "Conv1dCache", "Conv2dCache", "Conv3dCache", "MODES",
           "conv1d_forward", "conv1d_backward", "conv2d_forward", "conv2d_backward",
           "conv3d_forward", "conv3d_backward", "conv_args", "BAND_ABOVE", "BAND_BYTES"]

#: ``mode`` of every convolution kernel and module.
MODES = ("cross-correlation", "convolution")
_LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}
_KERNEL = {1: "KL", 2: "KH, KW", 3: "KD, KH, KW"}


class ConvArgs(NamedTuple):
    """A convolution's validated hyperparameters (kernel size excluded: it comes with w)."""

    stride: tuple
    padding: tuple | str        # leading = trailing per axis, or "valid" / "same"
    dilation: tuple
    groups: int
    mode: str
    output_padding: tuple = ()  # transposed convolutions only


def conv_args(op: str, nd: int, *, stride=1, padding=0, dilation=1, groups=1,
              mode="cross-correlation", output_padding=None) -> ConvArgs:
    """The one check of a convolution's hyperparameters, used by the kernels and by the
    modules' constructors alike (so the two tiers cannot drift). ``padding`` may be "valid"
    or "same" (stride 1) for a convolution; ``output_padding`` (not None) marks a transposed
    one, whose padding must be numeric and output_padding < max(stride, dilation)."""
    stride = ntuple(op, "stride", stride, nd)
    dilation = ntuple(op, "dilation", dilation, nd)
    groups = positive_int(op, "groups", groups)
    if mode not in MODES:
        raise ValueError(f"{op}: mode must be one of {list(MODES)}, got {mode!r}")
    if isinstance(padding, str) and output_padding is None:
        if padding not in ("valid", "same"):
            what = "a pair" if nd == 2 else f"a tuple of {nd}"
            raise ValueError(f"{op}: padding must be an int, {what}, 'valid' or 'same', "
                             f"got {padding!r}")
        if padding == "same" and stride != (1,) * nd:
            raise ValueError(f"{op}: padding='same' needs stride 1, got stride={stride}")
    else:
        padding = ntuple(op, "padding", padding, nd, minimum=0)
    if output_padding is None:
        return ConvArgs(stride, padding, dilation, groups, mode)
    out_pad = ntuple(op, "output_padding", output_padding, nd, minimum=0)
    if any(p >= max(s, d) for p, s, d in zip(out_pad, stride, dilation)):
        raise ValueError(f"{op}: output_padding must be smaller than stride or dilation, "
                         f"got output_padding={out_pad}, stride={stride}, dilation={dilation}")
    return ConvArgs(stride, padding, dilation, groups, mode, out_pad)


def check_conv_arrays(op: str, nd: int, x, w, b, w_layout: str):
    """x, w (and b) as float arrays of one dtype with ``nd`` spatial axes and positive sizes."""
    x = as_float_array(op, "x", x)
    w = as_float_array(op, "w", w)
    if b is not None:
        b = as_float_array(op, "b", b)
    check_same_dtype(op, x=x, w=w, b=b)
    check_ndim(op, "x", x, nd + 2, _LAYOUT[nd])
    check_ndim(op, "w", w, nd + 2, f"({w_layout}, {_KERNEL[nd]})")
    if min(x.shape) < 1 or min(w.shape) < 1:
        raise ValueError(f"{op}: all sizes must be positive, got x.shape={x.shape}, "
                         f"w.shape={w.shape}")
    return x, w, b


def check_bias(op: str, b, c_out: int) -> None:
    if b is not None and b.shape != (c_out,):
        raise ValueError(f"{op}: b must have shape ({c_out},) (one per output channel), "
                         f"got {b.shape}")


def flip_kernel(w: np.ndarray) -> np.ndarray:
    """``w`` reversed along every spatial axis (2, ...), as a new C-contiguous array."""
    return np.ascontiguousarray(w[(slice(None), slice(None)) + (slice(None, None, -1),)
                                  * (w.ndim - 2)])


def _pads(padding, kernel, dilation) -> tuple:
    """((before, after), ...) per axis; "same" puts an odd extra pixel after (PyTorch)."""
    if padding == "valid":
        return ((0, 0),) * len(kernel)
    if padding == "same":
        tot = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in tot)
    return tuple((p, p) for p in padding)


class ConvCache(NamedTuple):
    """What a convolution's backward needs: the weight as correlated (``w`` reversed along
    its spatial axes for ``mode="convolution"``), whether there was a bias, the geometry and
    the engine's :class:`~._engine.correlate.ConvWork` (the cached im2col columns, or x
    and the bands whose columns backward rebuilds)."""

    w: np.ndarray
    has_bias: bool
    geometry: ConvGeometry
    work: ConvWork
    flipped: bool = False

    @property
    def cols(self):
        return self.work.cols

    @property
    def bands(self) -> tuple:
        return self.work.bands


#: One cache type for every dimension; the names say which op made it.
Conv1dCache = Conv2dCache = Conv3dCache = ConvCache


def _forward(op: str, nd: int, x, w, b, stride, padding, dilation, groups, mode):
    x, w, b = check_conv_arrays(op, nd, x, w, b, "out, in/groups")
    a = conv_args(op, nd, stride=stride, padding=padding, dilation=dilation, groups=groups,
                  mode=mode)
    n, c, sp = x.shape[0], x.shape[1], x.shape[2:]
    c_out, cg, kernel = w.shape[0], w.shape[1], w.shape[2:]
    if c_out % a.groups or c % a.groups:
        raise ValueError(f"{op}: groups={a.groups} must divide both C_in={c} and "
                         f"C_out={c_out} (x.shape={x.shape}, w.shape={w.shape})")
    if cg * a.groups != c:
        raise ValueError(f"{op}: x has {c} channels but w expects {cg * a.groups} "
                         f"(x.shape={x.shape}, w.shape={w.shape}, groups={a.groups})")
    check_bias(op, b, c_out)
    pads = _pads(a.padding, kernel, a.dilation)
    out = tuple(out_size(op, s, k, st, p, d, axis=ax) for s, k, st, p, d, ax in
                zip(sp, kernel, a.stride, pads, a.dilation, axis_names(nd)))
    why = f"kernel {kernel}, stride={a.stride}, padding={a.padding}, dilation={a.dilation}"
    check_array(op, "the output", (n, c_out, *out), x.dtype, because=why)
    check_array(op, "the padded input", (n, c, *(s + p + q for s, (p, q) in zip(sp, pads))),
                x.dtype, because=why)
    geo = ConvGeometry(x.shape, c_out, kernel, a.stride, tuple(p for p, _ in pads),
                       a.dilation, a.groups, out)
    flipped = a.mode == "convolution"
    wc = flip_kernel(w) if flipped else w
    y2, work = correlate(x, wc, geo)
    if b is not None:
        y2 += b.reshape(a.groups, -1, 1)
    return from_gemm(y2, n, out), ConvCache(wc, b is not None, geo, work, flipped)


def _backward(op: str, dy, cache: ConvCache, need_dx: bool):
    cache = check_cache(op, cache, ConvCache)
    geo = cache.geometry
    dy = check_dy(op, dy, (geo.x_shape[0], geo.c_out, *geo.out), cache.w.dtype)
    dy2 = channels_major(to_batch_inner(dy, slot="dy"), geo.groups)
    dx, dw = correlate_backward(dy2, cache.w, geo, cache.work, need_dx)
    if cache.flipped:
        dw = flip_kernel(dw)
    db = dy2.sum(axis=2).reshape(-1) if cache.has_bias else None
    return dx, dw, db


def conv2d_forward(x, w, b, *, stride=1, padding=0, dilation=1, groups=1,
                   mode="cross-correlation"):
    """2-D convolution ``y = x ⋆ w + b`` (cross-correlation with zero padding, as PyTorch).

    ``y[n, o, p, q] = b[o] + sum_{c, i, j} w[o, c, i, j] * x_pad[n, g*C_in/G + c,
    p*sh + i*dh, q*sw + j*dw]`` where g is o's group; ``mode="convolution"`` uses
    ``w[o, c, KH-1-i, KW-1-j]`` instead (true convolution, see the module docstring).

    Args:
        x: (N, C_in, H, W), float32 or float64; w: (C_out, C_in/groups, KH, KW);
        b: (C_out,) or None. stride, dilation: int or pair (>= 1); padding: int or pair
        (>= 0), "valid" or "same" (stride 1 only; an odd total pads one more bottom/right).
    Returns:
        y (N, C_out, Ho, Wo), ``Ho = floor((H + pad_top + pad_bottom - dh*(KH-1) - 1)/sh) + 1``,
        and a :class:`ConvCache`. y is a view of a (C_out, Ho, Wo, N) buffer (the engine's
        batch-innermost layout; ``np.ascontiguousarray`` gives C order).

    Memory: when the im2col columns of x (C_in*KH*KW*Ho*Wo*N elements) fit in
    :data:`BAND_ABOVE`, they are built once and cached, so backward does not rebuild them
    (for a 1x1, stride-1, unpadded conv they are a view of x itself). Larger layers are
    computed in bands of output rows whose columns fit :data:`BAND_BYTES`, and the cache
    keeps x instead (batch-innermost: x itself for a conv output, else a transposed copy).
    Either way x must not be modified between forward and backward.
    """
    return _forward("conv2d", 2, x, w, b, stride, padding, dilation, groups, mode)


def conv2d_backward(dy, cache: ConvCache, *, need_dx: bool = True):
    """Gradients of :func:`conv2d_forward`.

    ``dw = dy ⋆ x`` (per group, as the GEMM ``dy @ cols.T``), ``dx`` = the full correlation
    of dy with the kernel (GEMM ``W.T @ dy`` scattered back by col2im), ``db = sum dy`` over
    (N, Ho, Wo); for ``mode="convolution"`` dw is reversed back along KH and KW.

    Args: dy (N, C_out, Ho, Wo), the forward's dtype; the cache from the forward;
    ``need_dx=False`` skips the input gradient (dx is None), e.g. for a first layer.
    Returns: (dx (N, C_in, H, W), dw (C_out, C_in/groups, KH, KW), db (C_out,) or None).
    dx is a view of a (C_in, H, W, N) buffer.
    """
    return _backward("conv2d_backward", dy, cache, need_dx)


def conv1d_forward(x, w, b, *, stride=1, padding=0, dilation=1, groups=1,
                   mode="cross-correlation"):
    """1-D convolution ``y = x ⋆ w + b``, as ``torch.nn.functional.conv1d``:
    ``y[n, o, p] = b[o] + sum_{c, i} w[o, c, i] * x_pad[n, c', p*s + i*d]``.

    Args: x (N, C_in, L); w (C_out, C_in/groups, KL); b (C_out,) or None; stride, padding,
    dilation: int or 1-tuple (padding also "valid" / "same"); mode as :func:`conv2d_forward`.
    Returns: y (N, C_out, Lo), a view of (C_out, Lo, N) memory, and a :class:`ConvCache`.
    """
    return _forward("conv1d", 1, x, w, b, stride, padding, dilation, groups, mode)


def conv1d_backward(dy, cache: ConvCache, *, need_dx: bool = True):
    """Gradients (dx, dw, db) of :func:`conv1d_forward` (see :func:`conv2d_backward`)."""
    return _backward("conv1d_backward", dy, cache, need_dx)


def conv3d_forward(x, w, b, *, stride=1, padding=0, dilation=1, groups=1,
                   mode="cross-correlation"):
    """3-D convolution ``y = x ⋆ w + b``, as ``torch.nn.functional.conv3d``:
    ``y[n, o, p, q, r] = b[o] + sum_{c, i, j, k} w[o, c, i, j, k] *
    x_pad[n, c', p*sd + i*dd, q*sh + j*dh, r*sw + k*dw]``.

    Args: x (N, C_in, D, H, W); w (C_out, C_in/groups, KD, KH, KW); b (C_out,) or None;
    stride, padding, dilation: int or triple (padding also "valid" / "same"); mode as
    :func:`conv2d_forward`. Large layers are banded along the output depth.
    Returns: y (N, C_out, Do, Ho, Wo), a view of (C_out, Do, Ho, Wo, N) memory, and a
    :class:`ConvCache`.
    """
    return _forward("conv3d", 3, x, w, b, stride, padding, dilation, groups, mode)


def conv3d_backward(dy, cache: ConvCache, *, need_dx: bool = True):
    """Gradients (dx, dw, db) of :func:`conv3d_forward` (see :func:`conv2d_backward`)."""
    return _backward("conv3d_backward", dy, cache, need_dx)
