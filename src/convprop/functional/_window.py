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

import functools
import math

import numpy as np

from ._threads import parallel_chunks

_IM2COL_MIN_WORK = 1 << 22  # columns elements; see im2col
# col2im: the thin-input conv (64,3,32,32)->32 k3 (1.77M column elements) measured ~0.5 ms
# slower threaded, (64,32,16,16)->64 k3 (4.7M) 5.5 -> 3.0 ms faster
_COL2IM_MIN_WORK = 1 << 21


def out_size(op: str, size: int, k: int, s: int, p, d: int = 1, *,
             ceil_mode: bool = False, axis: str = "H") -> int:
    """Output length along one axis, PyTorch's rule (floor, or ceil with the last window
    required to start inside the input or its left padding). ``p`` is the padding on each
    side, or a (before, after) pair for asymmetric padding (conv2d's "same"). Raises if no
    window fits."""
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


def axes_order(a: np.ndarray) -> tuple:
    """``a``'s axes from outermost to innermost in memory (C order: 0, 1, ..., ndim-1)."""
    st = a.strides
    return tuple(sorted(range(a.ndim), key=lambda i: -abs(st[i])))  # stable, as C order


def empty_in_order(shape, dtype, order) -> np.ndarray:
    """An uninitialised array of ``shape`` whose memory lays its axes out in ``order``
    (outermost first), so elementwise work between it and an input of that layout runs over
    long contiguous runs: conv2d returns (C, H, W, N) memory, and an NCHW-ordered result
    next to it would make every following elementwise op stride across the batch."""
    if tuple(order) == tuple(range(len(shape))):
        return np.empty(shape, dtype=dtype)
    buf = np.empty([shape[a] for a in order], dtype=dtype)
    inverse = [0] * len(order)
    for k, a in enumerate(order):
        inverse[a] = k
    return buf.transpose(inverse)


def pad_hw(x: np.ndarray, pad_h: tuple[int, int], pad_w: tuple[int, int],
           value: float = 0.0) -> np.ndarray:
    """A new array with the last two axes padded by (top, bottom) and (left, right), in
    ``x``'s memory layout.

    Returns ``x`` itself when there is nothing to pad (callers never write into it)."""
    (t, b), (l, r) = pad_h, pad_w
    if t == b == l == r == 0:
        return x
    shape = x.shape[:-2] + (x.shape[-2] + t + b, x.shape[-1] + l + r)
    out = empty_in_order(shape, x.dtype, axes_order(x))
    out.fill(value)
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


def _valid_range(n_out: int, size: int, offset: int, s: int, p: int) -> tuple[int, int]:
    """Output positions [lo, hi) whose input index ``o*s + offset - p`` lies in [0, size)."""
    lo = max(0, -((offset - p) // s))
    hi = min(n_out, (size - 1 + p - offset) // s + 1)
    return lo, max(lo, hi)


def _offset_regions(size_hw, kernel, stride, padding, dilation, out_hw) -> tuple:
    """For each kernel offset (i, j): its output region and the matching input slices."""
    return _regions(tuple(size_hw), tuple(kernel), tuple(stride), tuple(padding),
                    tuple(dilation), tuple(out_hw))


@functools.lru_cache(maxsize=256)
def _regions(size_hw, kernel, stride, padding, dilation, out_hw) -> tuple:
    # a training loop asks for the same few geometries every step: computed once each
    return tuple(_iter_regions(size_hw, kernel, stride, padding, dilation, out_hw))


def _iter_regions(size_hw, kernel, stride, padding, dilation, out_hw):
    for i in range(kernel[0]):
        r0, r1 = _valid_range(out_hw[0], size_hw[0], i * dilation[0], stride[0], padding[0])
        h0 = r0 * stride[0] + i * dilation[0] - padding[0]
        hs = slice(h0, h0 + (r1 - r0 - 1) * stride[0] + 1, stride[0])
        for j in range(kernel[1]):
            c0, c1 = _valid_range(out_hw[1], size_hw[1], j * dilation[1], stride[1],
                                  padding[1])
            w0 = c0 * stride[1] + j * dilation[1] - padding[1]
            ws = slice(w0, w0 + (c1 - c0 - 1) * stride[1] + 1, stride[1])
            yield i, j, (r0, r1, c0, c1), (hs, ws)


def im2col(x: np.ndarray, kernel, stride, padding, dilation, out_hw, *,
           out: np.ndarray | None = None) -> np.ndarray:
    """Columns ``(C*KH*KW, Ho*Wo*N)`` of the zero-padded NCHW input ``x`` (the gather).

    Row ``(c, i, j)`` holds ``x_padded[n, c, o_h*sh + i*dh, o_w*sw + j*dw]`` for every
    ``(o_h, o_w, n)``, the batch innermost: every offset then copies runs of Wo*N contiguous
    elements instead of rows of Wo (LeNet's second layer: 0.68 -> 0.10 ms), because NumPy's
    per-row overhead dominates short rows. ``padding`` is (top, left) only, rows past the
    bottom/right edge read zero. The padded input is never materialised: each offset copies
    its in-bounds part and zeroes the rest. A 1x1, stride-1, unpadded window is ``x`` in
    (C, H*W*N) order (a view when ``x`` already has that memory layout). ``out``, a
    C-contiguous buffer of the columns' size, receives the columns instead of a new array
    (conv2d reuses one for every band of rows)."""
    n, c, h, w = x.shape
    (kh, kw), (ho, wo) = kernel, out_hw
    xt = x.transpose(1, 2, 3, 0)
    if (kh, kw) == (1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0) \
            and (ho, wo) == (h, w):
        return xt.reshape(c, h * w * n)
    if out is None:
        cols = np.empty((c, kh, kw, ho, wo, n), dtype=x.dtype)
    else:
        cols = out.reshape(c, kh, kw, ho, wo, n)
    regions = list(_offset_regions((h, w), kernel, stride, padding, dilation, out_hw))
    wn_packed = xt.strides[3] == x.itemsize and xt.strides[2] == n * x.itemsize

    def fill(lo: int, hi: int) -> None:
        # Gathering straight from NCHW memory measured 2x slower than one transposing copy
        # first; from (C, H, W, N) memory (conv2d's outputs), a row band included, the
        # offsets copy contiguous runs of W*N already, so no copy is made.
        src = xt[lo:hi] if wn_packed else np.ascontiguousarray(xt[lo:hi])
        for i, j, (r0, r1, c0, c1), (hs, ws) in regions:
            dst = cols[lo:hi, i, j]  # (C', Ho, Wo, N)
            if r0 > 0 or r1 < ho or c0 > 0 or c1 < wo:
                dst[:, :r0] = 0
                dst[:, r1:] = 0
                dst[:, r0:r1, :c0] = 0
                dst[:, r0:r1, c1:] = 0
            if r1 > r0 and c1 > c0:
                dst[:, r0:r1, c0:c1] = src[:, hs, ws]

    # channel chunks on separate threads: copies only, so bit-identical to one chunk. A plain
    # copy gains less than col2im's adds: measured on 2 cores, 1.8M-element columns (C=3)
    # got slower threaded, 4.7M (C=32) went 2.8 -> 1.7 ms
    parallel_chunks(c, fill, work=cols.size, min_work=_IM2COL_MIN_WORK)
    return cols.reshape(c * kh * kw, ho * wo * n)


def col2im(cols: np.ndarray, x_shape, kernel, stride, padding, dilation,
           out_hw, *, add_to: np.ndarray | None = None) -> np.ndarray:
    """The adjoint of :func:`im2col`: scatter-add ``(C*KH*KW, Ho*Wo*N)`` columns into an
    ``(N, C, H, W)`` array, dropping what lands in the padding.

    Returns an (N, C, H, W) view of a fresh (C, H, W, N) buffer (batch innermost, so each
    offset adds runs of Wo*N elements: LeNet's second layer 1.55 -> 0.34 ms). An offset whose window
    covers the whole input (stride 1 and enough padding, e.g. the centre of a 3x3 "same"
    conv) initialises the buffer instead of adding into zeros.

    With ``add_to``, an (N, C, H, W) array (conv2d passes a band of rows of its dx), the
    columns are added into it instead, and it is returned."""
    n, c, h, w = x_shape
    (kh, kw), (ho, wo) = kernel, out_hw
    one_to_one = (kh, kw) == (1, 1) and tuple(stride) == (1, 1) \
        and tuple(padding) == (0, 0) and (ho, wo) == (h, w)
    if one_to_one and add_to is None:
        return cols.reshape(c, h, w, n).transpose(3, 0, 1, 2)
    c6 = cols.reshape(c, kh, kw, ho, wo, n)
    regions = list(_offset_regions((h, w), kernel, stride, padding, dilation, out_hw))
    full = [k for k, (_, _, _, (hs, ws)) in enumerate(regions)
            if stride[0] == stride[1] == 1 and (hs.start, hs.stop, ws.start, ws.stop)
            == (0, h, 0, w)]
    first = regions.pop(full[0]) if full and add_to is None else None
    if add_to is None:
        buf = np.empty((c, h, w, n), dtype=cols.dtype)
    else:
        buf = add_to.transpose(1, 2, 3, 0)

    def scatter(lo: int, hi: int) -> None:
        b, src = buf[lo:hi], c6[lo:hi]
        if first is not None:
            i, j, (r0, r1, c0, c1), _ = first
            b[...] = src[:, i, j, r0:r1, c0:c1]
        elif add_to is None:
            b.fill(0)
        for i, j, (r0, r1, c0, c1), (hs, ws) in regions:
            if r1 > r0 and c1 > c0:
                b[:, hs, ws] += src[:, i, j, r0:r1, c0:c1]

    # each channel chunk adds the offsets in the serial order: bit-identical to one chunk
    parallel_chunks(c, scatter, work=cols.size, min_work=_COL2IM_MIN_WORK)
    return buf.transpose(3, 0, 1, 2)
