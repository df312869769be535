"""2-D convolution (cross-correlation, as PyTorch) as im2col plus one GEMM per group.

The three products of a convolution layer all run on the same column matrix
``cols = im2col(x)`` of shape (C_in*KH*KW, Ho*Wo*N) and the weight matrix
``W`` (C_out, C_in/groups*KH*KW), per group g:

    forward       y[g]    = W[g] @ cols[g]          (C_out/G, Ho*Wo*N)
    weight grad   dW[g]   = dy[g] @ cols[g].T       (computed as (cols[g] @ dy[g].T).T)
    input grad    dx      = col2im(W[g].T @ dy[g])  (scatter-add, the adjoint of im2col)

A layer whose column matrix would not fit in cache (over :data:`BAND_ABOVE`) runs the same
three products band by band over its output rows instead (:func:`correlate_bands`), and
backward rebuilds each band's columns rather than keeping them all.

Activations travel channel-major with the batch innermost: the GEMM result (C_out, Ho*Wo*N)
is returned as an (N, C_out, Ho, Wo) *view* of a (C_out, Ho, Wo, N) buffer, so no transpose
copy is paid, a following convolution reads it back as (C, H*W*N) for free, and every
per-offset copy in im2col/col2im moves runs of Wo*N elements rather than rows of Wo. The transposed
convolution in :mod:`.conv_transpose` reuses these helpers with the roles swapped.
"""

from __future__ import annotations

import math
import threading
from typing import NamedTuple

import numpy as np

from .._checks import (as_float_array, check_dy, check_ndim, check_same_dtype, pair,
                       positive_int)
from ._window import col2im, im2col, out_size

__all__ = ["Conv2dCache", "conv2d_forward", "conv2d_backward"]


class ConvGeometry(NamedTuple):
    """Where the windows of a convolution sit: ``x_shape`` is the convolution's input
    (N, C, H, W), ``padding`` the (top, left) zero padding, ``out_hw`` its output size."""

    x_shape: tuple
    c_out: int
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int
    out_hw: tuple


class Conv2dCache(NamedTuple):
    """What :func:`conv2d_backward` needs: the im2col columns of x when they were built in
    one block (cached, not rebuilt), else x itself and the bands of output rows whose
    columns backward rebuilds; the weight, whether there was a bias, and the geometry."""

    cols: np.ndarray | None
    w: np.ndarray
    has_bias: bool
    geometry: ConvGeometry
    x: np.ndarray | None = None
    bands: tuple = ()


# -- shared machinery (also used by conv_transpose) ------------------------------------------

_scratch = threading.local()
#: The largest temporary column matrix kept for reuse (per thread and slot).
WORKSPACE_BYTES = 32 << 20


def _workspace(slot: str, shape, dtype) -> np.ndarray:
    """A C-contiguous buffer of ``shape`` for a temporary column matrix, reused per thread
    and per ``slot`` ("cols", "dcols"; grown when too small) as long as it takes at most
    :data:`WORKSPACE_BYTES`, else fresh. Callers never return a view of it. Reuse spares
    the page faults of a fresh large array on every call (conv 64x32x16x16 -> 64 fwd+bwd
    with glibc's default allocator: 42 -> 17-19 ms); each thread keeps at most two such
    buffers alive."""
    n = math.prod(shape)
    if n * np.dtype(dtype).itemsize > WORKSPACE_BYTES:
        return np.empty(shape, dtype=dtype)
    buf = getattr(_scratch, slot, None)
    if buf is None or buf.dtype != dtype or buf.size < n:
        buf = np.empty(n, dtype=dtype)
        setattr(_scratch, slot, buf)
    return buf[:n].reshape(shape)


def channels_major(a: np.ndarray, groups: int) -> np.ndarray:
    """(N, C, H, W) -> (G, C/G, H*W*N), the column order of im2col; free when ``a`` is a view
    of a (C, H, W, N) buffer, as conv2d's outputs are."""
    n, c, h, w = a.shape
    return a.transpose(1, 2, 3, 0).reshape(groups, c // groups, h * w * n)


def correlate(x: np.ndarray, w: np.ndarray, geo: ConvGeometry):
    """``y = x ⋆ w`` as (G, C_out/G, Ho*Wo*N) GEMM output, and the columns it used."""
    g = geo.groups
    cols = im2col(x, geo.kernel, geo.stride, geo.padding, geo.dilation, geo.out_hw)
    w2 = w.reshape(g, w.shape[0] // g, -1)
    y2 = np.matmul(w2, cols.reshape(g, cols.shape[0] // g, cols.shape[1]))
    return y2, cols


def correlate_input_grad(dy2: np.ndarray, w: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """dx (N, C, H, W) of ``x ⋆ w`` from dy in (G, C_out/G, Ho*Wo*N) form."""
    g = geo.groups
    w2 = w.reshape(g, w.shape[0] // g, -1)
    one_to_one = geo.kernel == (1, 1) and geo.stride == (1, 1) and geo.padding == (0, 0) \
        and geo.out_hw == tuple(geo.x_shape[2:])
    # the columns are a temporary that col2im scatters from and never returns a view of,
    # except for a 1x1 conv, whose result is the columns themselves
    out = None if one_to_one else _workspace("dcols", (g, w2.shape[2], dy2.shape[2]), w.dtype)
    dcols = np.matmul(w2.transpose(0, 2, 1), dy2, out=out)
    return col2im(dcols.reshape(-1, dcols.shape[2]), geo.x_shape, geo.kernel, geo.stride,
                  geo.padding, geo.dilation, geo.out_hw)


def correlate_weight_grad(dy2: np.ndarray, cols: np.ndarray, w_shape) -> np.ndarray:
    """dw of ``x ⋆ w`` (shape ``w_shape``) from dy in (G, C_out/G, Ho*Wo*N) form."""
    g = dy2.shape[0]
    # as (cols @ dy.T).T: the same sums, measured 5-40% faster than dy @ cols.T for every
    # conv shape of the benchmarks and model zoo (OpenBLAS, 2 threads)
    dwt = np.matmul(cols.reshape(g, cols.shape[0] // g, cols.shape[1]), dy2.transpose(0, 2, 1))
    return dwt.transpose(0, 2, 1).reshape(w_shape)


# -- bands of output rows: im2col in cache-sized blocks -----------------------------------------

#: A convolution whose im2col columns would exceed :data:`BAND_ABOVE` bytes (more than a
#: 32 MiB L3 cache holds) is computed in bands of output rows whose columns take at most
#: ``BAND_BYTES`` (at least one row per band), built into a reused per-thread buffer. Each
#: band's columns are then still in cache when the GEMM reads them, and no column matrix the
#: size of the layer is written to memory, kept, or page-faulted in. Measured on 2 cores
#: (AMD EPYC, 32 MiB L3), fwd+bwd on (C, H, W, N) inputs with the training loop's allocator
#: tuning, first quartile of 20 interleaved runs: ResNet-20's first stage (64x16x32x32 -> 16
#: k3, 38 MB of columns) 22.8 ms in one block, 19.3 ms in 4 MiB bands; 64x32x16x16 -> 64
#: (19 MB) 15.7 vs 15.5 ms, so smaller layers keep the single block and its cached columns.
BAND_BYTES = 4 << 20
BAND_ABOVE = 32 << 20


class Band(NamedTuple):
    """Output rows [p0, p1) and the input rows [r0, r1) their windows read; ``top`` is the
    zero padding above row r0 as seen by the band (the layer's top padding for the first)."""

    p0: int
    p1: int
    r0: int
    r1: int
    top: int


def row_bands(geo: ConvGeometry, itemsize: int) -> tuple:
    """The bands of output rows for ``geo``'s columns: one band (the whole output) when
    they take at most :data:`BAND_ABOVE` bytes, else bands of at most :data:`BAND_BYTES`."""
    c, h = geo.x_shape[1], geo.x_shape[2]
    (kh, kw), (ho, wo) = geo.kernel, geo.out_hw
    row_bytes = c * kh * kw * wo * geo.x_shape[0] * itemsize
    rows = max(1, BAND_BYTES // max(row_bytes, 1))
    if rows >= ho or row_bytes * ho <= BAND_ABOVE:
        return (Band(0, ho, 0, h, geo.padding[0]),)
    sh, dh, top = geo.stride[0], geo.dilation[0], geo.padding[0]
    bands = []
    for p0 in range(0, ho, rows):
        p1 = min(ho, p0 + rows)
        lo, hi = p0 * sh - top, (p1 - 1) * sh - top + dh * (kh - 1) + 1
        r0 = min(max(lo, 0), h)
        bands.append(Band(p0, p1, r0, max(r0, min(hi, h)), r0 - lo))
    return tuple(bands)


def band_cols(x: np.ndarray, geo: ConvGeometry, band: Band, out=None) -> np.ndarray:
    """im2col columns (C*KH*KW, rows*Wo*N) of the output rows in ``band``."""
    return im2col(x[:, :, band.r0:band.r1], geo.kernel, geo.stride,
                  (band.top, geo.padding[1]), geo.dilation,
                  (band.p1 - band.p0, geo.out_hw[1]), out=out)


def correlate_bands(x: np.ndarray, w: np.ndarray, geo: ConvGeometry, bands) -> np.ndarray:
    """:func:`correlate`'s GEMM output (G, C_out/G, Ho*Wo*N), computed band by band."""
    g, (n, c) = geo.groups, geo.x_shape[:2]
    (ho, wo), k = geo.out_hw, c * geo.kernel[0] * geo.kernel[1]
    w2 = w.reshape(g, w.shape[0] // g, -1)
    y = np.empty((g, w.shape[0] // g, ho, wo * n), dtype=x.dtype)
    for band in bands:
        m = (band.p1 - band.p0) * wo * n
        cols = band_cols(x, geo, band, out=_workspace("cols", (k, m), x.dtype))
        np.matmul(w2, cols.reshape(g, k // g, m),
                  out=y[:, :, band.p0:band.p1].reshape(g, -1, m))
    return y.reshape(g, w.shape[0] // g, ho * wo * n)


def correlate_bands_backward(dy2: np.ndarray, x: np.ndarray, w: np.ndarray,
                             geo: ConvGeometry, bands, need_dx: bool):
    """(dx or None, dw) of ``x ⋆ w`` from dy in (G, C_out/G, Ho*Wo*N) form, rebuilding
    each band's columns (the recompute that replaces a cached column matrix)."""
    g, (n, c, h, wd) = geo.groups, geo.x_shape
    wo, k = geo.out_hw[1], c * geo.kernel[0] * geo.kernel[1]
    w2 = w.reshape(g, w.shape[0] // g, -1)
    dwt = np.zeros(w2.transpose(0, 2, 1).shape, dtype=w.dtype)  # as correlate_weight_grad
    part = np.empty_like(dwt)
    dx = None
    if need_dx:
        dx = np.zeros((c, h, wd, n), dtype=w.dtype).transpose(3, 0, 1, 2)
    for band in bands:
        m = (band.p1 - band.p0) * wo * n
        d = dy2[:, :, band.p0 * wo * n:band.p1 * wo * n]
        cols = band_cols(x, geo, band, out=_workspace("cols", (k, m), w.dtype))
        dwt += np.matmul(cols.reshape(g, k // g, m), d.transpose(0, 2, 1), out=part)
        if need_dx:
            dcols = np.matmul(w2.transpose(0, 2, 1), d,
                              out=_workspace("dcols", (g, k // g, m), w.dtype))
            col2im(dcols.reshape(k, m), (n, c, band.r1 - band.r0, wd), geo.kernel,
                   geo.stride, (band.top, geo.padding[1]), geo.dilation,
                   (band.p1 - band.p0, wo), add_to=dx[:, :, band.r0:band.r1])
    return dx, dwt.transpose(0, 2, 1).reshape(w.shape)


def is_chwn(x: np.ndarray) -> bool:
    """Whether (N, C, H, W) ``x`` is a view of whole, C-ordered (C, H, W, N) memory."""
    return x.transpose(1, 2, 3, 0).flags.c_contiguous


def to_chwn(x: np.ndarray, slot: str | None = None) -> np.ndarray:
    """``x`` (N, C, H, W) as a view of (C, H, W, N) memory: itself when it is one already
    (conv2d's outputs), else a transposed copy, made in the reused workspace ``slot`` when
    given (for a temporary that nothing returned keeps)."""
    if is_chwn(x):
        return x
    n, c, h, w = x.shape
    buf = np.empty((c, h, w, n), x.dtype) if slot is None else \
        _workspace(slot, (c, h, w, n), x.dtype)
    np.copyto(buf, x.transpose(1, 2, 3, 0))
    return buf.transpose(3, 0, 1, 2)


def to_nchw(y2: np.ndarray, n: int, hw: tuple) -> np.ndarray:
    """(G, C/G, H*W*N) GEMM output -> (N, C, H, W) view of its (C, H, W, N) memory."""
    return y2.reshape(-1, *hw, n).transpose(3, 0, 1, 2)


def check_conv_args(op: str, x, w, b, groups, stride, dilation):
    """Shared entry validation of conv2d / conv_transpose2d; returns normalised values."""
    x = as_float_array(op, "x", x)
    w = as_float_array(op, "w", w)
    if b is not None:
        b = as_float_array(op, "b", b)
    check_same_dtype(op, x=x, w=w, b=b)
    check_ndim(op, "x", x, 4, "(N, C, H, W)")
    check_ndim(op, "w", w, 4, "(out, in/groups, KH, KW)" if op == "conv2d"
               else "(in, out/groups, KH, KW)")
    if min(x.shape) < 1 or min(w.shape) < 1:
        raise ValueError(f"{op}: all sizes must be positive, got x.shape={x.shape}, "
                         f"w.shape={w.shape}")
    groups = positive_int(op, "groups", groups)
    stride = pair(op, "stride", stride)
    dilation = pair(op, "dilation", dilation)
    return x, w, b, groups, stride, dilation


def check_bias(op: str, b, c_out: int) -> None:
    if b is not None and b.shape != (c_out,):
        raise ValueError(f"{op}: b must have shape ({c_out},) (one per output channel), "
                         f"got {b.shape}")


def _padding(padding, kernel, dilation, stride) -> tuple[tuple[int, int], tuple[int, int]]:
    """(top, bottom), (left, right); "same" puts the odd extra pixel bottom/right (PyTorch)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"conv2d: padding='same' needs stride 1, got stride={stride}")
            tot = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return (tot[0] // 2, tot[0] - tot[0] // 2), (tot[1] // 2, tot[1] - tot[1] // 2)
        raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', "
                         f"got {padding!r}")
    ph, pw = pair("conv2d", "padding", padding, minimum=0)
    return (ph, ph), (pw, pw)


# -- public kernels --------------------------------------------------------------------------

def conv2d_forward(x, w, b, *, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution ``y = x ⋆ w + b`` (cross-correlation with zero padding, as PyTorch).

    ``y[n, o, p, q] = b[o] + sum_{c, i, j} w[o, c, i, j] * x_pad[n, g*C_in/G + c,
    p*sh + i*dh, q*sw + j*dw]`` where g is o's group.

    Args:
        x: (N, C_in, H, W), float32 or float64; w: (C_out, C_in/groups, KH, KW);
        b: (C_out,) or None. stride, dilation: int or pair (>= 1); padding: int or pair
        (>= 0), "valid" or "same" (stride 1 only; an odd total pads one more bottom/right).
    Returns:
        y (N, C_out, Ho, Wo), ``Ho = floor((H + pad_top + pad_bottom - dh*(KH-1) - 1)/sh) + 1``,
        and a :class:`Conv2dCache`. y is a view of a (C_out, Ho, Wo, N) buffer
        (use ``np.ascontiguousarray`` if C order is needed).

    Memory: when the im2col columns of x (C_in*KH*KW*Ho*Wo*N elements) fit in
    :data:`BAND_ABOVE`, they are built once and cached, so backward does not rebuild them
    (for a 1x1, stride-1, unpadded conv they are a view of x itself). Larger layers are
    computed in bands of output rows whose columns fit :data:`BAND_BYTES`, in a reused buffer,
    and the cache keeps x instead (as (C, H, W, N) memory: x itself for a conv2d output,
    else a transposed copy): backward rebuilds each band's columns (recompute, since
    writing and re-reading the whole column matrix through memory measured slower than
    rebuilding it band by band in cache). Either way x must not be modified between
    forward and backward (caches are read-only by convention).
    """
    op = "conv2d"
    x, w, b, groups, stride, dilation = check_conv_args(op, x, w, b, groups, stride, dilation)
    n, c, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    if c_out % groups or c % groups:
        raise ValueError(f"conv2d: groups={groups} must divide both C_in={c} and "
                         f"C_out={c_out} (x.shape={x.shape}, w.shape={w.shape})")
    if cg * groups != c:
        raise ValueError(f"conv2d: x has {c} channels but w expects {cg * groups} "
                         f"(x.shape={x.shape}, w.shape={w.shape}, groups={groups})")
    check_bias(op, b, c_out)
    (pt, pb), (pl, pr) = _padding(padding, (kh, kw), dilation, stride)
    ho = out_size(op, h, kh, stride[0], (pt, pb), dilation[0], axis="H")
    wo = out_size(op, wd, kw, stride[1], (pl, pr), dilation[1], axis="W")
    geo = ConvGeometry(x.shape, c_out, (kh, kw), stride, (pt, pl), dilation, groups, (ho, wo))
    bands = row_bands(geo, x.dtype.itemsize)
    if len(bands) == 1:
        y2, cols = correlate(x, w, geo)
        cache = Conv2dCache(cols, w, b is not None, geo)
    else:
        xc = to_chwn(x)  # every band's columns gather (C, rows, W, N) runs from it
        y2 = correlate_bands(xc, w, geo, bands)
        cache = Conv2dCache(None, w, b is not None, geo, xc, bands)
    if b is not None:
        y2 += b.reshape(groups, -1, 1)
    return to_nchw(y2, n, (ho, wo)), cache


def conv2d_backward(dy, cache: Conv2dCache, *, need_dx: bool = True):
    """Gradients of :func:`conv2d_forward`.

    ``dw = dy ⋆ x`` (per group, as the GEMM ``dy @ cols.T``), ``dx`` = the full correlation
    of dy with the kernel (GEMM ``W.T @ dy`` scattered back by col2im), ``db = sum dy`` over
    (N, Ho, Wo).

    Args: dy (N, C_out, Ho, Wo), the forward's dtype; the cache from the forward;
    ``need_dx=False`` skips the input gradient (dx is None), e.g. for a first layer.
    Returns: (dx (N, C_in, H, W), dw (C_out, C_in/groups, KH, KW), db (C_out,) or None).
    dx is a view of a (C_in, H, W, N) buffer.
    """
    geo = cache.geometry
    n = geo.x_shape[0]
    dy = check_dy("conv2d_backward", dy, (n, geo.c_out, *geo.out_hw), cache.w.dtype)
    dy2 = channels_major(to_chwn(dy, slot="dy"), geo.groups)
    if cache.cols is None:
        dx, dw = correlate_bands_backward(dy2, cache.x, cache.w, geo, cache.bands, need_dx)
    else:
        dw = correlate_weight_grad(dy2, cache.cols, cache.w.shape)
        dx = correlate_input_grad(dy2, cache.w, geo) if need_dx else None
    db = dy2.sum(axis=2).reshape(-1) if cache.has_bias else None
    return dx, dw, db
