"""The windowing primitive shared by convolution, transposed convolution and pooling, in any
number of spatial dimensions.

A sliding-window op of kernel K = (K_1, ..., K_d), stride s and dilation r over a padded input
``xp`` (N, C, *S) reads, for each kernel offset k = (k_1, ..., k_d), the strided view

    window(xp, k)[..., o_1, ..., o_d] = xp[..., o_1*s_1 + k_1*r_1, ..., o_d*s_d + k_d*r_d]

of shape (..., *O). Looping over the prod(K) offsets (never over the batch or the output
positions) and doing whole-array work on each view is the *gather*; adding into the same
views of a zero buffer is its adjoint, the *scatter-add* that every backward pass uses.
Overlapping windows (stride < kernel) simply add into the same elements from several offsets.
A 1-D, 2-D or 3-D op is the same code with a different ``d``.

:func:`im2col` / :func:`col2im` are the gather and scatter-add into a column matrix for the
GEMM of a convolution; they never materialise the padded input: each offset copies only its
in-bounds *region* (precomputed once per geometry, :func:`offset_regions`).
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from .layout import axes_order, batch_inner_axes, empty_in_order
from .threads import parallel_chunks

__all__ = ["out_size", "pad_spatial", "kernel_offsets", "window", "window_add",
           "offset_regions", "im2col", "col2im", "identity_window"]

_IM2COL_MIN_WORK = 1 << 22  # columns elements; see im2col
# col2im: the thin-input conv (64,3,32,32)->32 k3 (1.77M column elements) measured ~0.5 ms
# slower threaded, (64,32,16,16)->64 k3 (4.7M) 5.5 -> 3.0 ms faster
_COL2IM_MIN_WORK = 1 << 21

_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def axis_names(nd: int) -> tuple:
    return _AXES.get(nd, tuple(f"axis {2 + a}" for a in range(nd)))


def out_size(op: str, size: int, k: int, s: int, p, d: int = 1, *,
             ceil_mode: bool = False, axis: str = "H") -> int:
    """Output length along one axis, PyTorch's rule (floor, or ceil with the last window
    required to start inside the input or its left padding). ``p`` is the padding on each
    side, or a (before, after) pair for asymmetric padding ("same"). Raises if no window fits."""
    before, after = (p, p) if isinstance(p, int) else p
    eff = d * (k - 1) + 1
    padded = size + before + after
    if padded < eff:
        raise ValueError(
            f"{op}: the {eff}-wide window (kernel {k}, dilation {d}) does not fit the padded "
            f"input along {axis}: input {size} + padding {before}+{after} = {padded}")
    if ceil_mode:
        o = math.ceil((padded - eff) / s) + 1
        if (o - 1) * s >= size + before:
            o -= 1
    else:
        o = (padded - eff) // s + 1
    return o


def pad_spatial(x: np.ndarray, pads, value: float = 0.0) -> np.ndarray:
    """A new array with the spatial axes (2, ...) padded by ``pads`` = ((before, after), ...)
    with ``value``, in ``x``'s memory layout. Returns ``x`` itself when there is nothing to
    pad (callers never write into it)."""
    if not any(b or a for b, a in pads):
        return x
    nd = len(pads)
    lead = x.shape[:x.ndim - nd]
    shape = lead + tuple(s + b + a for s, (b, a) in zip(x.shape[x.ndim - nd:], pads))
    out = empty_in_order(shape, x.dtype, axes_order(x))
    out.fill(value)
    inner = tuple(slice(b, b + s) for s, (b, _) in zip(x.shape[x.ndim - nd:], pads))
    out[(Ellipsis, *inner)] = x
    return out


@functools.lru_cache(maxsize=256)
def kernel_offsets(kernel: tuple) -> tuple:
    """Every kernel offset (k_1, ..., k_d) in row-major order (the order ties are broken in)."""
    return tuple(itertools.product(*(range(k) for k in kernel)))


@functools.lru_cache(maxsize=4096)
def _offset_index(offset, out, stride, dilation) -> tuple:
    return (Ellipsis, *(slice(k * d, k * d + s * (o - 1) + 1, s)
                        for k, o, s, d in zip(offset, out, stride, dilation)))


def window(xp: np.ndarray, offset, out, stride, dilation) -> np.ndarray:
    """Strided view (..., *out) of ``xp`` at kernel ``offset``: the gather."""
    return xp[_offset_index(offset, out, stride, dilation)]


def window_add(buf: np.ndarray, offset, v: np.ndarray, out, stride, dilation) -> None:
    """``buf[window at offset] += v``: the adjoint of :func:`window` (the scatter-add).

    Within one offset the strided targets are distinct, so a plain ``+=`` is exact; overlaps
    between offsets accumulate across calls."""
    buf[_offset_index(offset, out, stride, dilation)] += v


def _valid_range(n_out: int, size: int, offset: int, s: int, p: int) -> tuple[int, int]:
    """Output positions [lo, hi) whose input index ``o*s + offset - p`` lies in [0, size)."""
    lo = max(0, -((offset - p) // s))
    hi = min(n_out, (size - 1 + p - offset) // s + 1)
    return lo, max(lo, hi)


@functools.lru_cache(maxsize=256)
def offset_regions(size, kernel, stride, padding, dilation, out) -> tuple:
    """For each kernel offset, in row-major order: ``(dst, zeros, src, full)`` where ``dst``
    indexes the output positions whose input lies inside the input, ``zeros`` the slabs of
    output positions that read padding (their union is the complement of ``dst``), ``src``
    the strided input slices those positions read, and ``full`` whether ``src`` is the whole
    input at stride 1. Every index starts with a ``slice(None)`` for the channel axis.
    A training loop asks for the same few geometries every step: computed once each."""
    axes = []
    for a in range(len(size)):
        per = []
        for k in range(kernel[a]):
            lo, hi = _valid_range(out[a], size[a], k * dilation[a], stride[a], padding[a])
            start = lo * stride[a] + k * dilation[a] - padding[a]
            per.append((lo, hi, slice(start, start + (hi - lo - 1) * stride[a] + 1, stride[a])))
        axes.append(per)
    regions = []
    for choice in itertools.product(*axes):
        dst = tuple(slice(lo, hi) for lo, hi, _ in choice)
        zeros = []
        for a, (lo, hi, _) in enumerate(choice):
            head = (slice(None), *dst[:a])
            if lo > 0:
                zeros.append((*head, slice(0, lo)))
            if hi < out[a]:
                zeros.append((*head, slice(hi, None)))
        empty = any(hi <= lo for lo, hi, _ in choice)
        src = None if empty else (slice(None), *(sl for _, _, sl in choice))
        full = not empty and all(
            s == 1 and sl.start == 0 and sl.stop == n
            for s, (_, _, sl), n in zip(stride, choice, size))
        regions.append(((slice(None), *dst), tuple(zeros), src, full))
    return tuple(regions)


def identity_window(spatial, kernel, stride, padding, out) -> bool:
    """Whether the windows are the input itself (1x..x1 kernel, stride 1, no padding)."""
    return all(k == 1 for k in kernel) and all(s == 1 for s in stride) \
        and not any(padding) and tuple(out) == tuple(spatial)


def im2col(x: np.ndarray, kernel, stride, padding, dilation, out_sp, *,
           out: np.ndarray | None = None) -> np.ndarray:
    """Columns ``(C*prod(K), prod(O)*N)`` of the zero-padded (N, C, *S) input ``x``.

    Row ``(c, k)`` holds ``x_padded[n, c, o*s + k*r]`` for every ``(o, n)``, the batch
    innermost: every offset then copies runs of O_last*N contiguous elements instead of rows
    of O_last, because NumPy's per-row overhead dominates short rows. ``padding`` is the
    leading padding per axis only; positions past the end read zero. A 1x..x1, stride-1,
    unpadded window is ``x`` in (C, prod(S)*N) order (a view when ``x`` already has that
    memory layout). ``out``, a C-contiguous buffer of the columns' size, receives the
    columns instead of a new array (banded convolution reuses one for every band)."""
    n, c, sp = x.shape[0], x.shape[1], x.shape[2:]
    kernel, out_sp = tuple(kernel), tuple(out_sp)
    xt = x.transpose(batch_inner_axes(x.ndim))  # (C, *S, N)
    if identity_window(sp, kernel, stride, padding, out_sp):
        return xt.reshape(c, math.prod(sp) * n)
    nk = math.prod(kernel)
    shape = (c, nk, *out_sp, n)
    cols = np.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
    regions = offset_regions(tuple(sp), kernel, tuple(stride), tuple(padding),
                             tuple(dilation), out_sp)
    # the last spatial axis and the batch packed: each offset copies contiguous runs
    packed = xt.strides[-1] == x.itemsize and xt.strides[-2] == n * x.itemsize

    def fill(lo: int, hi: int) -> None:
        # Gathering straight from NCHW memory measured 2x slower than one transposing copy
        # first; from batch-innermost memory (conv outputs), a band included, the offsets
        # copy contiguous runs already, so no copy is made.
        src = xt[lo:hi] if packed else np.ascontiguousarray(xt[lo:hi])
        for k, (dst_i, zeros, src_i, _) in enumerate(regions):
            dst = cols[lo:hi, k]  # (C', *O, N)
            for z in zeros:
                dst[z] = 0
            if src_i is not None:
                dst[dst_i] = src[src_i]

    # channel chunks on separate threads: copies only, so bit-identical to one chunk. A plain
    # copy gains less than col2im's adds: measured on 2 cores, 1.8M-element columns (C=3)
    # got slower threaded, 4.7M (C=32) went 2.8 -> 1.7 ms
    parallel_chunks(c, fill, work=cols.size, min_work=_IM2COL_MIN_WORK)
    return cols.reshape(c * nk, math.prod(out_sp) * n)


def col2im(cols: np.ndarray, x_shape, kernel, stride, padding, dilation, out_sp, *,
           add_to: np.ndarray | None = None) -> np.ndarray:
    """The adjoint of :func:`im2col`: scatter-add ``(C*prod(K), prod(O)*N)`` columns into an
    (N, C, *S) array, dropping what lands in the padding.

    Returns an (N, C, *S) view of a fresh (C, *S, N) buffer (batch innermost, so each offset
    adds long runs: LeNet's second layer 1.55 -> 0.34 ms). An offset whose window covers the
    whole input (stride 1 and enough padding, e.g. the centre of a 3x3 "same" conv)
    initialises the buffer instead of adding into zeros. With ``add_to``, an (N, C, *S)
    array (a band of a convolution's dx), the columns are added into it and it is returned."""
    n, c, sp = x_shape[0], x_shape[1], tuple(x_shape[2:])
    kernel, out_sp, nd = tuple(kernel), tuple(out_sp), len(sp)
    if add_to is None and identity_window(sp, kernel, stride, padding, out_sp):
        return cols.reshape(c, *sp, n).transpose(nd + 1, *range(nd + 1))
    c6 = cols.reshape(c, math.prod(kernel), *out_sp, n)
    regions = list(enumerate(offset_regions(sp, kernel, tuple(stride), tuple(padding),
                                            tuple(dilation), out_sp)))
    first = None
    if add_to is None:
        full = [i for i, (_, (_, _, _, f)) in enumerate(regions) if f]
        if full:
            first = regions.pop(full[0])
        buf = np.empty((c, *sp, n), dtype=cols.dtype)
    else:
        buf = add_to.transpose(batch_inner_axes(add_to.ndim))

    def scatter(lo: int, hi: int) -> None:
        b, src = buf[lo:hi], c6[lo:hi]
        if first is not None:
            k, (dst_i, _, _, _) = first
            b[...] = src[:, k][dst_i]
        elif add_to is None:
            b.fill(0)
        for k, (dst_i, _, src_i, _) in regions:
            if src_i is not None:
                b[src_i] += src[:, k][dst_i]

    # each channel chunk adds the offsets in the serial order: bit-identical to one chunk
    parallel_chunks(c, scatter, work=cols.size, min_work=_COL2IM_MIN_WORK)
    return buf.transpose(nd + 1, *range(nd + 1))
