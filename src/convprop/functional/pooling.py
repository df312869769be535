"""Max, average and global average pooling over NCHW input, with hand-written backward passes.

All windows go through the shared primitive in :mod:`._window`: the forward pass gathers one
strided view per kernel offset, the backward pass scatter-adds into the same views.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import as_float_array, check_dy, check_ndim, pair
from ._threads import num_threads, parallel_chunks
from ._window import axes_order, empty_in_order, out_size, pad_hw, window, window_add

__all__ = ["MaxPool2dCache", "max_pool2d_forward", "max_pool2d_backward",
           "AvgPool2dCache", "avg_pool2d_forward", "avg_pool2d_backward",
           "GlobalAvgPool2dCache", "global_avg_pool2d_forward", "global_avg_pool2d_backward"]


@dataclass(frozen=True)
class _Geometry:
    """Where the windows sit: sizes, hyperparameters and the (top, bottom), (left, right) pads,
    and the forward dtype (dy must match it)."""

    x_shape: tuple
    dtype: np.dtype
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out_hw: tuple[int, int]
    pad_h: tuple[int, int]
    pad_w: tuple[int, int]
    order: tuple = (0, 1, 2, 3)  # x's memory layout: outputs and dx are allocated alike

    def empty(self, shape, dtype=None) -> np.ndarray:
        return empty_in_order(shape, self.dtype if dtype is None else dtype, self.order)


def _geometry(op, x, kernel_size, stride, padding, dilation, ceil_mode) -> _Geometry:
    x = as_float_array(op, "x", x)
    check_ndim(op, "x", x, 4, "(N, C, H, W)")
    k = pair(op, "kernel_size", kernel_size)
    s = k if stride is None else pair(op, "stride", stride)
    p = pair(op, "padding", padding, minimum=0)
    d = pair(op, "dilation", dilation)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"{op}: ceil_mode must be a bool, got {ceil_mode!r}")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: padding must be at most half the kernel size "
                         f"(kernel_size={k}, so padding <= {(k[0] // 2, k[1] // 2)}), got {p}")
    H, W = x.shape[2:]
    ho = out_size(op, H, k[0], s[0], p[0], d[0], ceil_mode=bool(ceil_mode), axis="H")
    wo = out_size(op, W, k[1], s[1], p[1], d[1], ceil_mode=bool(ceil_mode), axis="W")
    if ho < 1 or wo < 1:
        raise ValueError(f"{op}: output size must be positive, got ({ho}, {wo}) for input "
                         f"{x.shape}")
    # ceil_mode's last window may run past the bottom/right padding: pad just enough for it
    need_h = (ho - 1) * s[0] + d[0] * (k[0] - 1) + 1
    need_w = (wo - 1) * s[1] + d[1] * (k[1] - 1) + 1
    pad_h = (p[0], max(0, need_h - H - p[0]))
    pad_w = (p[1], max(0, need_w - W - p[1]))
    return _Geometry(tuple(x.shape), x.dtype, k, s, p, d, (ho, wo), pad_h, pad_w,
                     axes_order(x))


def _check_dy(op: str, dy, g: _Geometry) -> np.ndarray:
    return check_dy(op, dy, g.x_shape[:2] + g.out_hw, g.dtype)


def _in_chunks(g: _Geometry, fn) -> None:
    """Run ``fn(sl)`` over disjoint index tuples ``sl`` splitting the batch (or, for a batch
    smaller than the thread count, the channels); serial for small work. Each chunk does
    exactly the serial elementwise work on its slice, so results are bit-identical."""
    n, c = g.x_shape[:2]
    work = g.kernel[0] * g.kernel[1] * n * c * g.out_hw[0] * g.out_hw[1]
    if n >= num_threads() or n >= c:
        parallel_chunks(n, lambda lo, hi: fn((slice(lo, hi),)), work=work)
    else:
        parallel_chunks(c, lambda lo, hi: fn((slice(None), slice(lo, hi))), work=work)


def _scatter_into(dx: np.ndarray, sl: tuple, g: _Geometry, add) -> None:
    """``dx[sl]`` = crop of a zero padded buffer that ``add(buffer)`` scatter-adds into."""
    dxs = dx[sl]
    if sum(g.pad_h) + sum(g.pad_w) == 0:
        dxs.fill(0)
        add(dxs)
        return
    H, W = g.x_shape[2:]
    buf = g.empty(dxs.shape[:2] + (H + sum(g.pad_h), W + sum(g.pad_w)), dx.dtype)
    buf.fill(0)
    add(buf)
    t, l = g.pad_h[0], g.pad_w[0]
    dxs[...] = buf[..., t:t + H, l:l + W]


# ----------------------------------------------------------------------------- max pooling

@dataclass(frozen=True)
class MaxPool2dCache:
    """The switches of a max pooling: ``argmax`` is the winning kernel offset ``i*KW + j`` per
    output (compact, what backward uses); ``indices`` is PyTorch's ``return_indices`` form."""

    geometry: _Geometry
    argmax: np.ndarray  # (N, C, Ho, Wo), small unsigned ints

    @property
    def x_shape(self) -> tuple:
        return self.geometry.x_shape

    @property
    def indices(self) -> np.ndarray:
        """Flat index of each maximum into its input plane (H*W), int64, shape of y."""
        g = self.geometry
        (ho, wo), (sh, sw), (dh, dw), (ph, pw) = g.out_hw, g.stride, g.dilation, g.padding
        ki, kj = np.divmod(self.argmax.astype(np.int64), g.kernel[1])
        rows = np.arange(ho)[:, None] * sh - ph + ki * dh
        cols = np.arange(wo)[None, :] * sw - pw + kj * dw
        return rows * g.x_shape[3] + cols


def max_pool2d_forward(x, *, kernel_size, stride=None, padding=0, dilation=1,
                       ceil_mode=False):
    """2-D max pooling: ``y[n,c,i,j] = max over (a,b) of xp[n,c, i*sh + a*dh, j*sw + b*dw]``.

    ``xp`` is ``x`` padded with -inf (padding <= kernel_size // 2, as in PyTorch).
    On a tie the FIRST maximum in row-major window order wins and alone receives the
    gradient (PyTorch's rule); overlapping windows (stride < kernel) accumulate gradients.

    Args:
        x: (N, C, H, W) float32/float64.
        kernel_size, stride (None: kernel_size), padding, dilation: int or (h, w) pair.
        ceil_mode: round the output size up (PyTorch's rule).
    Returns:
        y (N, C, Ho, Wo) in x's dtype, and a :class:`MaxPool2dCache`.
    """
    op = "max_pool2d"
    g = _geometry(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    kh, kw = g.kernel
    itype = np.uint8 if kh * kw <= 256 else np.int32
    y = g.empty(g.x_shape[:2] + g.out_hw)
    argmax = g.empty(y.shape, itype)
    argmax.fill(0)

    def run(sl):
        xp = pad_hw(x[sl], g.pad_h, g.pad_w, value=-np.inf)
        ys, am = y[sl], argmax[sl]
        ys[...] = window(xp, 0, 0, g.out_hw, g.stride, g.dilation)
        better = g.empty(ys.shape, bool)
        step = g.empty(ys.shape, itype)
        for k in range(1, kh * kw):
            v = window(xp, k // kw, k % kw, g.out_hw, g.stride, g.dilation)
            np.greater(v, ys, out=better)  # strict: an equal later value never displaces
            # offsets only grow, so "argmax = k where better" is max(argmax, better * k):
            # this avoids masked assignment, which is several times slower than plain ufuncs
            np.multiply(better, itype(k), out=step)
            np.maximum(am, step, out=am)
            np.maximum(ys, v, out=ys)

    _in_chunks(g, run)
    return y, MaxPool2dCache(g, argmax)


def max_pool2d_backward(dy, cache: MaxPool2dCache):
    """Gradient of max pooling: each dy goes to its window's (first) maximum.

    Args:
        dy: (N, C, Ho, Wo) in the forward's dtype.
    Returns:
        dx (N, C, H, W) in the forward's dtype.
    """
    g = cache.geometry
    dy = _check_dy("max_pool2d_backward", dy, g)
    kh, kw = g.kernel
    dx = g.empty(g.x_shape, dy.dtype)
    # Windows that tile the input without overlap or padding (the usual 2x2 stride 2): every
    # element of dx gets exactly one offset's value, written straight into its strided view,
    # with no zero fill and no add (LeNet-5's first pool: 13 -> 8 passes).
    tiles = g.stride == g.kernel and g.dilation == (1, 1) \
        and g.pad_h == (0, 0) and g.pad_w == (0, 0)

    def run(sl):
        dys, am = dy[sl], cache.argmax[sl]
        if tiles and kh * kw > 1:
            dxs = dx[sl]
            (ho, wo), hit = g.out_hw, g.empty(dys.shape, bool)
            dxs[:, :, ho * kh:] = 0  # rows and columns no window covers (floor mode)
            dxs[:, :, :ho * kh, wo * kw:] = 0
            for k in range(kh * kw):
                np.equal(am, k, out=hit)
                np.multiply(dys, hit, out=window(dxs, k // kw, k % kw, g.out_hw, g.stride))
            return
        if kh * kw == 1:
            _scatter_into(dx, sl, g, lambda b: window_add(b, 0, 0, dys, g.out_hw, g.stride,
                                                          g.dilation))
            return
        hit = g.empty(dys.shape, bool)
        part = g.empty(dys.shape, dys.dtype)

        def add(b):
            for k in range(kh * kw):
                np.equal(am, k, out=hit)
                np.multiply(dys, hit, out=part)  # plain ufunc: far faster than np.where
                window_add(b, k // kw, k % kw, part, g.out_hw, g.stride, g.dilation)

        _scatter_into(dx, sl, g, add)

    _in_chunks(g, run)
    return dx


# ----------------------------------------------------------------------------- average pooling

@dataclass(frozen=True)
class AvgPool2dCache:
    """Window geometry and the per-output reciprocal divisor (Ho, Wo)."""

    geometry: _Geometry
    inv_divisor: np.ndarray  # (Ho, Wo), x's dtype

    @property
    def x_shape(self) -> tuple:
        return self.geometry.x_shape


def _axis_counts(size: int, n_out: int, k: int, s: int, p: int, include_pad: bool):
    start = np.arange(n_out) * s - p
    # PyTorch clips the window to input + padding first: the part of a ceil_mode window that
    # runs past the padding never counts, even with count_include_pad
    end = np.minimum(start + k, size + p)
    if include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def avg_pool2d_forward(x, *, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True):
    """2-D average pooling: ``y[n,c,i,j] = sum over the window of xp / divisor[i,j]``.

    ``xp`` is ``x`` zero-padded (padding <= kernel_size // 2). The divisor is PyTorch's: the
    window clipped to input + padding (count_include_pad=True) or to the input alone
    (False); with ceil_mode the part of a window beyond the padding never counts.

    Args:
        x: (N, C, H, W) float32/float64.
        kernel_size, stride (None: kernel_size), padding: int or (h, w) pair.
    Returns:
        y (N, C, Ho, Wo) in x's dtype, and an :class:`AvgPool2dCache`.
    """
    op = "avg_pool2d"
    g = _geometry(op, x, kernel_size, stride, padding, 1, ceil_mode)
    if not isinstance(count_include_pad, (bool, np.bool_)):
        raise TypeError(f"{op}: count_include_pad must be a bool, got {count_include_pad!r}")
    H, W = g.x_shape[2:]
    ch = _axis_counts(H, g.out_hw[0], g.kernel[0], g.stride[0], g.padding[0], count_include_pad)
    cw = _axis_counts(W, g.out_hw[1], g.kernel[1], g.stride[1], g.padding[1], count_include_pad)
    inv = (1.0 / np.outer(ch, cw)).astype(x.dtype)
    kh, kw = g.kernel
    y = g.empty(g.x_shape[:2] + g.out_hw)

    def run(sl):
        xp = pad_hw(x[sl], g.pad_h, g.pad_w)
        ys = y[sl]
        ys[...] = window(xp, 0, 0, g.out_hw, g.stride)
        for k in range(1, kh * kw):
            ys += window(xp, k // kw, k % kw, g.out_hw, g.stride)
        ys *= inv

    _in_chunks(g, run)
    return y, AvgPool2dCache(g, inv)


def avg_pool2d_backward(dy, cache: AvgPool2dCache):
    """Gradient of average pooling: dy / divisor spread over each window (overlaps add).

    Args:
        dy: (N, C, Ho, Wo) in the forward's dtype.
    Returns:
        dx (N, C, H, W) in the forward's dtype.
    """
    g = cache.geometry
    dy = _check_dy("avg_pool2d_backward", dy, g)
    kh, kw = g.kernel
    dx = g.empty(g.x_shape, dy.dtype)

    def run(sl):
        scaled = dy[sl] * cache.inv_divisor

        def add(b):
            for k in range(kh * kw):
                window_add(b, k // kw, k % kw, scaled, g.out_hw, g.stride)

        _scatter_into(dx, sl, g, add)

    _in_chunks(g, run)
    return dx


# ----------------------------------------------------------------------------- global average

@dataclass(frozen=True)
class GlobalAvgPool2dCache:
    x_shape: tuple
    dtype: np.dtype
    order: tuple = (0, 1, 2, 3)  # x's memory layout: dx is allocated alike


def global_avg_pool2d_forward(x):
    """Global average pooling: ``y[n,c] = mean over (h, w) of x[n,c,h,w]``.

    Args:
        x: (N, C, H, W) float32/float64.
    Returns:
        y (N, C) in x's dtype, and a :class:`GlobalAvgPool2dCache`.
    """
    op = "global_avg_pool2d"
    x = as_float_array(op, "x", x)
    check_ndim(op, "x", x, 4, "(N, C, H, W)")
    if x.shape[2] * x.shape[3] == 0:
        raise ValueError(f"{op}: x must have a non-empty spatial extent, got shape {x.shape}")
    y = x.mean(axis=(2, 3), dtype=x.dtype)
    return y, GlobalAvgPool2dCache(tuple(x.shape), x.dtype, axes_order(x))


def global_avg_pool2d_backward(dy, cache: GlobalAvgPool2dCache):
    """Gradient of global average pooling: ``dx[n,c,h,w] = dy[n,c] / (H*W)``.

    Args:
        dy: (N, C) in the forward's dtype.
    Returns:
        dx (N, C, H, W) in the forward's dtype, in the memory layout of the forward's x
        (so the elementwise backward work before it, e.g. a ReLU's, never mixes layouts).
    """
    op = "global_avg_pool2d_backward"
    dy = check_dy(op, dy, cache.x_shape[:2], cache.dtype)
    H, W = cache.x_shape[2:]
    dx = empty_in_order(cache.x_shape, dy.dtype, cache.order)
    dx[...] = (dy / dy.dtype.type(H * W))[:, :, None, None]
    return dx
