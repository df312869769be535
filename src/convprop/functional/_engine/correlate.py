"""Correlation as GEMMs on im2col columns, in one block or in bands: the engine of every
convolution and transposed convolution, any number of spatial dimensions.

With ``cols = im2col(x)`` (C_in*prod(K), prod(O)*N) and the weight matrix ``W``
(C_out, C_in/G*prod(K)), per group g:

    forward       y[g]  = W[g] @ cols[g]                (C_out/G, prod(O)*N)
    weight grad   dW[g] = (cols[g] @ dy[g].T).T          (= dy[g] @ cols[g].T)
    input grad    dx    = col2im(W[g].T @ dy[g])         (scatter-add, im2col's adjoint)

:func:`correlate` and :func:`correlate_backward` are the one conv-level entry: forward
returns the GEMM output and a :class:`ConvWork`, always the same type, holding either the
cached columns (one block), or x and the bands whose columns backward rebuilds, or the
depth-sliding planes of a 3-D layer (:mod:`.slide`). A layer whose columns would exceed
:data:`BAND_ABOVE` bytes runs band by band over the first spatial axis of its output, each
band's columns in a reused buffer of at most :data:`BAND_BYTES`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .layout import to_batch_inner
from .slide import slide_forward, slide_input_grad, slide_planes, slide_weight_grad, slides
from .windows import col2im, identity_window, im2col
from .workspace import workspace

__all__ = ["ConvGeometry", "ConvWork", "Band", "BAND_BYTES", "BAND_ABOVE", "correlate",
           "correlate_backward", "correlate_input_grad", "correlate_weight_grad", "row_bands"]

#: A convolution whose im2col columns would exceed ``BAND_ABOVE`` bytes (more than a 32 MiB
#: L3 cache holds) is computed in bands of output rows (along the first spatial axis) whose
#: columns take at most ``BAND_BYTES`` (at least one row per band), built into a reused
#: per-thread buffer: each band's columns are still in cache when the GEMM reads them, and
#: no column matrix the size of the layer is written, kept, or page-faulted in. Measured on
#: 2 cores (AMD EPYC, 32 MiB L3), fwd+bwd on batch-innermost inputs with the training loop's
#: allocator tuning, first quartile of 20 interleaved runs: ResNet-20's first stage
#: (64x16x32x32 -> 16 k3, 38 MB of columns) 22.8 ms in one block, 19.3 ms in 4 MiB bands;
#: 64x32x16x16 -> 64 (19 MB) 15.7 vs 15.5 ms, so smaller layers keep one cached block.
BAND_BYTES = 4 << 20
BAND_ABOVE = 32 << 20


class ConvGeometry(NamedTuple):
    """Where the windows of a correlation sit: ``x_shape`` is its input (N, C, *S),
    ``padding`` the leading zero padding per spatial axis, ``out`` its output size."""

    x_shape: tuple
    c_out: int
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int
    out: tuple

    @property
    def identity(self) -> bool:
        """1x..x1 kernel, stride 1, no padding: the columns are x itself."""
        return identity_window(self.x_shape[2:], self.kernel, self.stride, self.padding,
                               self.out)


class Band(NamedTuple):
    """Output rows [p0, p1) along the first spatial axis and the input rows [r0, r1) their
    windows read; ``top`` is the zero padding before row r0 as the band sees it."""

    p0: int
    p1: int
    r0: int
    r1: int
    top: int


class ConvWork(NamedTuple):
    """What a correlation's backward needs besides the weight: the im2col columns when they
    were built in one block (``bands == ()``), else x (batch-innermost) and the bands whose
    columns backward rebuilds (recompute: writing and re-reading the whole column matrix
    through memory measured slower than rebuilding it band by band in cache); for a 3-D
    layer on the sliding path (``sliding``), ``cols`` holds its depth planes."""

    cols: np.ndarray | None
    x: np.ndarray | None
    bands: tuple
    sliding: bool = False


def row_bands(geo: ConvGeometry, itemsize: int) -> tuple:
    """The bands of output rows of ``geo``'s columns: one (the whole output) when they take
    at most :data:`BAND_ABOVE` bytes, else bands of at most :data:`BAND_BYTES`."""
    c, h = geo.x_shape[1], geo.x_shape[2]
    ho, kh = geo.out[0], geo.kernel[0]
    row_bytes = c * math.prod(geo.kernel) * math.prod(geo.out[1:]) * geo.x_shape[0] * itemsize
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


def _band_cols(x: np.ndarray, geo: ConvGeometry, band: Band, out=None) -> np.ndarray:
    """im2col columns (C*prod(K), rows*prod(O[1:])*N) of the output rows in ``band``."""
    return im2col(x[:, :, band.r0:band.r1], geo.kernel, geo.stride,
                  (band.top, *geo.padding[1:]), geo.dilation,
                  (band.p1 - band.p0, *geo.out[1:]), out=out)


def _wmat(w: np.ndarray, g: int) -> np.ndarray:
    return w.reshape(g, w.shape[0] // g, -1)


def correlate(x: np.ndarray, w: np.ndarray, geo: ConvGeometry) -> tuple[np.ndarray, ConvWork]:
    """``y = x ⋆ w`` as the GEMM output (G, C_out/G, prod(O)*N), and the :class:`ConvWork`
    that :func:`correlate_backward` takes. ``w`` is (C_out, C_in/G, *K)."""
    if slides(geo, x.dtype.itemsize):
        planes = slide_planes(x, geo)
        return slide_forward(planes, w, geo), ConvWork(planes, None, (), True)
    g, n = geo.groups, geo.x_shape[0]
    w2 = _wmat(w, g)
    bands = row_bands(geo, x.dtype.itemsize)
    if len(bands) == 1:
        cols = im2col(x, geo.kernel, geo.stride, geo.padding, geo.dilation, geo.out)
        y2 = np.matmul(w2, cols.reshape(g, cols.shape[0] // g, cols.shape[1]))
        return y2, ConvWork(cols, None, ())
    xc = to_batch_inner(x)  # every band's columns gather (C, rows, ..., N) runs from it
    k = geo.x_shape[1] * math.prod(geo.kernel)
    inner = math.prod(geo.out[1:]) * n
    y = np.empty((g, w2.shape[1], geo.out[0], inner), dtype=x.dtype)
    for band in bands:
        m = (band.p1 - band.p0) * inner
        cols = _band_cols(xc, geo, band, out=workspace("cols", (k, m), x.dtype))
        np.matmul(w2, cols.reshape(g, k // g, m),
                  out=y[:, :, band.p0:band.p1].reshape(g, -1, m))
    return y.reshape(g, w2.shape[1], -1), ConvWork(None, xc, bands)


def correlate_weight_grad(dy2: np.ndarray, cols: np.ndarray, w_shape) -> np.ndarray:
    """dw of ``x ⋆ w`` (shape ``w_shape``) from dy in (G, C_out/G, prod(O)*N) form."""
    g = dy2.shape[0]
    # as (cols @ dy.T).T: the same sums, measured 5-40% faster than dy @ cols.T for every
    # conv shape of the benchmarks and model zoo (OpenBLAS, 2 threads)
    dwt = np.matmul(cols.reshape(g, cols.shape[0] // g, cols.shape[1]), dy2.transpose(0, 2, 1))
    return dwt.transpose(0, 2, 1).reshape(w_shape)


def correlate_input_grad(dy2: np.ndarray, w: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """dx (N, C, *S), a view of (C, *S, N) memory, of ``x ⋆ w`` from dy in
    (G, C_out/G, prod(O)*N) form (transposed convolution's forward)."""
    if slides(geo, w.dtype.itemsize):
        return slide_input_grad(dy2, w, geo)
    w2 = _wmat(w, geo.groups)
    # the columns are a temporary that col2im scatters from and never returns a view of,
    # except for a 1x1 conv, whose result is the columns themselves
    out = None if geo.identity else workspace(
        "dcols", (geo.groups, w2.shape[2], dy2.shape[2]), w.dtype)
    dcols = np.matmul(w2.transpose(0, 2, 1), dy2, out=out)
    return col2im(dcols.reshape(-1, dcols.shape[2]), geo.x_shape, geo.kernel, geo.stride,
                  geo.padding, geo.dilation, geo.out)


def correlate_backward(dy2: np.ndarray, w: np.ndarray, geo: ConvGeometry, work: ConvWork,
                       need_dx: bool = True):
    """(dx or None, dw) of ``x ⋆ w`` from dy in (G, C_out/G, prod(O)*N) form."""
    if work.sliding:
        dw = slide_weight_grad(dy2, work.cols, w.shape)
        return (slide_input_grad(dy2, w, geo) if need_dx else None), dw
    if not work.bands:
        dw = correlate_weight_grad(dy2, work.cols, w.shape)
        return (correlate_input_grad(dy2, w, geo) if need_dx else None), dw
    g, n, c, sp = geo.groups, geo.x_shape[0], geo.x_shape[1], geo.x_shape[2:]
    inner, k = math.prod(geo.out[1:]) * n, c * math.prod(geo.kernel)
    w2 = _wmat(w, g)
    dwt = np.zeros(w2.transpose(0, 2, 1).shape, dtype=w.dtype)  # as correlate_weight_grad
    part = np.empty_like(dwt)
    dx = None
    if need_dx:
        nd = len(sp)
        dx = np.zeros((c, *sp, n), dtype=w.dtype).transpose(nd + 1, *range(nd + 1))
    for band in work.bands:
        m = (band.p1 - band.p0) * inner
        d = dy2[:, :, band.p0 * inner:band.p1 * inner]
        cols = _band_cols(work.x, geo, band, out=workspace("cols", (k, m), w.dtype))
        dwt += np.matmul(cols.reshape(g, k // g, m), d.transpose(0, 2, 1), out=part)
        if need_dx:
            dcols = np.matmul(w2.transpose(0, 2, 1), d,
                              out=workspace("dcols", (g, k // g, m), w.dtype))
            col2im(dcols.reshape(k, m), (n, c, band.r1 - band.r0, *sp[1:]), geo.kernel,
                   geo.stride, (band.top, *geo.padding[1:]), geo.dilation,
                   (band.p1 - band.p0, *geo.out[1:]), add_to=dx[:, :, band.r0:band.r1])
    return dx, dwt.transpose(0, 2, 1).reshape(w.shape)
