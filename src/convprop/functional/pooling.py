"""Max and average pooling in 1, 2 and 3 spatial dimensions, with hand-written backward passes.

All windows go through the engine's N-d primitive (:mod:`._engine.windows`): the forward pass
gathers one strided view per kernel offset, the backward pass scatter-adds into the same
views. A 1-D, 2-D or 3-D pool is the same code with a different count of spatial axes.

Loop reference: :func:`convprop.reference.max_pool` (its switches; backward ``max_pool_backward``,
the tie policies ``max_pool_backward_ties``), :func:`convprop.reference.avg_pool` (and
``avg_pool_backward``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._checks import (as_float_array, boolean, check_cache, check_dy, check_ndim, ntuple, one_of,
                       positive_int)
from ._engine.layout import axes_order, empty_in_order
from ._engine.threads import num_threads, parallel_chunks
from ._engine.windows import axis_names, kernel_offsets, out_size, pad_spatial, window, \
    window_add
from ..limits import check_array

__all__ = ["PoolGeometry", "pool_args", "TIES",
           "MaxPoolCache", "MaxPool1dCache", "MaxPool2dCache", "MaxPool3dCache",
           "max_pool1d_forward", "max_pool1d_backward", "max_pool2d_forward",
           "max_pool2d_backward", "max_pool3d_forward", "max_pool3d_backward",
           "AvgPoolCache", "AvgPool1dCache", "AvgPool2dCache", "AvgPool3dCache",
           "avg_pool1d_forward", "avg_pool1d_backward", "avg_pool2d_forward",
           "avg_pool2d_backward", "avg_pool3d_forward", "avg_pool3d_backward"]

LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}

#: Max pooling's tie policies: which of a window's equal maxima receive its gradient.
TIES = ("first", "split", "all")


def tie_policy(op: str, ties) -> str:
    """The one check of max pooling's ``ties`` argument (kernels and modules)."""
    return one_of(op, "ties", ties, TIES)


@dataclass(frozen=True)
class PoolGeometry:
    """Where the windows sit: sizes, hyperparameters (one entry per spatial axis), the
    (before, after) pads (after may exceed ``padding`` for ceil_mode's last window), the
    forward dtype (dy must match it) and x's memory layout (outputs and dx follow it)."""

    x_shape: tuple
    dtype: np.dtype
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    out: tuple
    pads: tuple
    order: tuple

    @property
    def y_shape(self) -> tuple:
        return self.x_shape[:2] + self.out

    def empty(self, shape, dtype=None) -> np.ndarray:
        return empty_in_order(shape, self.dtype if dtype is None else dtype, self.order)

    @property
    def offsets(self) -> tuple:
        return kernel_offsets(self.kernel)


def pool_args(op: str, nd: int, kernel_size, stride, padding, dilation=1) -> tuple:
    """The one check of a pooling's hyperparameters (kernels and module constructors):
    ``(kernel, stride, padding, dilation)`` as ``nd``-tuples, stride defaulting to the kernel,
    padding at most half the kernel (PyTorch's rule)."""
    k = ntuple(op, "kernel_size", kernel_size, nd)
    s = k if stride is None else ntuple(op, "stride", stride, nd)
    p = ntuple(op, "padding", padding, nd, minimum=0)
    d = ntuple(op, "dilation", dilation, nd)
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise ValueError(f"{op}: padding must be at most half the kernel size "
                         f"(kernel_size={k}, so padding <= {tuple(ki // 2 for ki in k)}), "
                         f"got {p}")
    return k, s, p, d


def _geometry(op, nd, x, kernel_size, stride, padding, dilation, ceil_mode) -> PoolGeometry:
    x = as_float_array(op, "x", x)
    check_ndim(op, "x", x, nd + 2, LAYOUTS[nd])
    k, s, p, d = pool_args(op, nd, kernel_size, stride, padding, dilation)
    ceil_mode = boolean(op, "ceil_mode", ceil_mode)
    sp = x.shape[2:]
    out = tuple(out_size(op, n, *a, ceil_mode=ceil_mode, axis=ax)
                for n, a, ax in zip(sp, zip(k, s, p, d), axis_names(nd)))
    if min(out) < 1:
        raise ValueError(f"{op}: output size must be positive, got {out} for input "
                         f"{x.shape}")
    # ceil_mode's last window may run past the trailing padding: pad just enough for it
    pads = tuple((pi, max(0, (o - 1) * si + di * (ki - 1) + 1 - n - pi))
                 for n, o, ki, si, pi, di in zip(sp, out, k, s, p, d))
    check_array(op, "the padded input", x.shape[:2] + tuple(
        n + a + b for n, (a, b) in zip(sp, pads)), x.dtype,
        because=f"kernel_size={k}, stride={s}, padding={p}, dilation={d}")
    return PoolGeometry(tuple(x.shape), x.dtype, k, s, p, d, out, pads, axes_order(x))


def _in_chunks(g: PoolGeometry, fn) -> None:
    """Run ``fn(sl)`` over disjoint index tuples ``sl`` splitting the batch (or, for a batch
    smaller than the thread count, the channels); serial for small work. Each chunk does
    exactly the serial elementwise work on its slice, so results are bit-identical."""
    n, c = g.x_shape[:2]
    work = math.prod(g.kernel) * n * c * math.prod(g.out)
    if n >= num_threads() or n >= c:
        parallel_chunks(n, lambda lo, hi: fn((slice(lo, hi),)), work=work)
    else:
        parallel_chunks(c, lambda lo, hi: fn((slice(None), slice(lo, hi))), work=work)


def _scatter_into(dx: np.ndarray, sl: tuple, g: PoolGeometry, add) -> None:
    """``dx[sl]`` = crop of a zero padded buffer that ``add(buffer)`` scatter-adds into."""
    dxs = dx[sl]
    if not any(b or a for b, a in g.pads):
        dxs.fill(0)
        add(dxs)
        return
    sp = g.x_shape[2:]
    buf = g.empty(dxs.shape[:2] + tuple(n + b + a for n, (b, a) in zip(sp, g.pads)), dx.dtype)
    buf.fill(0)
    add(buf)
    dxs[...] = buf[(Ellipsis, *(slice(b, b + n) for n, (b, _) in zip(sp, g.pads)))]


def _check_dy(op: str, dy, g: PoolGeometry) -> np.ndarray:
    return check_dy(op, dy, g.y_shape, g.dtype)


# ----------------------------------------------------------------------------- max pooling

@dataclass(frozen=True)
class MaxPoolCache:
    """The switches of a max pooling: ``argmax`` is the winning kernel offset (row-major flat
    index into the window) per output, compact, what backward uses; ``indices`` is PyTorch's
    ``return_indices`` form, the flat index into each input plane (L, H*W or D*H*W)."""

    geometry: PoolGeometry
    argmax: np.ndarray  # (N, C, *O), small unsigned ints
    ties: str = "first"
    #: ``ties="split"`` / ``"all"`` only: ``tied[k]`` marks the outputs whose window holds
    #: its maximum at kernel offset k (K, N, C, *O) bool; padding never counts, and a window
    #: with a NaN marks only its switch (the NaN rule of "first")
    tied: np.ndarray | None = None

    @property
    def x_shape(self) -> tuple:
        return self.geometry.x_shape

    @property
    def indices(self) -> np.ndarray:
        """Flat index of each maximum into its input plane, int64, the shape of y."""
        g = self.geometry
        nd = len(g.out)
        ks = np.unravel_index(self.argmax.astype(np.int64), g.kernel)
        flat = np.zeros(self.argmax.shape, dtype=np.int64)
        for a in range(nd):
            pos = np.arange(g.out[a]) * g.stride[a] - g.padding[a]
            pos = pos.reshape((-1,) + (1,) * (nd - 1 - a)) + ks[a] * g.dilation[a]
            flat = flat * g.x_shape[2 + a] + pos
        return flat


MaxPool1dCache = MaxPool2dCache = MaxPool3dCache = MaxPoolCache


def _max_forward(op, nd, x, kernel_size, stride, padding, dilation, ceil_mode, ties="first"):
    ties = tie_policy(op, ties)
    g = _geometry(op, nd, x, kernel_size, stride, padding, dilation, ceil_mode)
    offs = g.offsets
    itype = np.uint8 if len(offs) <= 256 else np.int32
    y = g.empty(g.y_shape)
    argmax = g.empty(y.shape, itype)
    argmax.fill(0)

    padded = any(b or a for b, a in g.pads)

    def run(sl):
        xp = pad_spatial(x[sl], g.pads, value=-np.inf)
        ys, am = y[sl], argmax[sl]
        ys[...] = window(xp, offs[0], g.out, g.stride, g.dilation)
        better = g.empty(ys.shape, bool)
        step = g.empty(ys.shape, itype)
        for k in range(1, len(offs)):
            v = window(xp, offs[k], g.out, g.stride, g.dilation)
            np.greater(v, ys, out=better)  # strict: an equal later value never displaces
            # offsets only grow, so "argmax = k where better" is max(argmax, better * k):
            # this avoids masked assignment, which is several times slower than plain ufuncs
            np.multiply(better, itype(k), out=step)
            np.maximum(am, step, out=am)
            np.maximum(ys, v, out=ys)
        # np.maximum propagates a NaN into ys but "greater" never picks it: as PyTorch, a NaN
        # is the maximum and the last NaN in window order holds the switch (without a NaN
        # this costs one reduction: min propagates NaN)
        lo = ys.min() if ys.size else 0.0
        if np.isnan(lo):
            nan = np.isnan(ys)
            for k in range(len(offs)):
                am[nan & np.isnan(window(xp, offs[k], g.out, g.stride, g.dilation))] = k
        # the same reduction finds a window whose maximum is -inf (when none is NaN): its
        # inputs tie with the -inf padding, and PyTorch's switch is its first real element
        if padded and (lo == -np.inf or np.isnan(lo) and (ys == -np.inf).any()):
            _first_real_switch(g, ys, am)

    _in_chunks(g, run)
    if ties == "first":
        return y, MaxPoolCache(g, argmax)
    return y, MaxPoolCache(g, argmax, ties, _tie_mask(x, g, y, argmax))


def _real(g: PoolGeometry) -> np.ndarray:
    """(1, 1, *padded spatial) bool: True on the input, False on the padding."""
    return pad_spatial(np.ones((1, 1) + g.x_shape[2:], bool), g.pads)


def _first_real_switch(g: PoolGeometry, ys, am) -> None:
    """Point the switch of every window whose maximum is -inf at its first element inside
    the input (the -inf padding would otherwise win a tie with an input of -inf)."""
    neg, real = ys == -np.inf, _real(g)
    for k in reversed(range(len(g.offsets))):  # the first real offset written last
        am[neg & window(real, g.offsets[k], g.out, g.stride, g.dilation)] = k


def _tie_mask(x, g: PoolGeometry, y, argmax) -> np.ndarray:
    """``tied[k] = (window k == y)`` over real (unpadded) elements, (K, N, C, *O) bool; a
    window whose maximum is NaN keeps only its switch (NaN == NaN is False everywhere)."""
    offs = g.offsets
    tied = np.empty((len(offs),) + y.shape, dtype=bool)
    padded = any(b or a for b, a in g.pads)
    # padding is -inf: an input of -inf would tie with it, so mask the padding out
    real = _real(g) if padded else None

    def run(sl):
        xp, ys = pad_spatial(x[sl], g.pads, value=-np.inf), y[sl]
        for k, off in enumerate(offs):
            t = tied[(k, *sl)]
            np.equal(window(xp, off, g.out, g.stride, g.dilation), ys, out=t)
            if padded:
                t &= window(real, off, g.out, g.stride, g.dilation)
        nan = np.isnan(ys)
        if nan.any():
            am = argmax[sl]
            for k in range(len(offs)):
                tied[(k, *sl)][nan] = am[nan] == k

    _in_chunks(g, run)
    return tied


def _max_backward_tied(op, dy, cache: MaxPoolCache):
    """dx for ties="split" (dy / count to each tied maximum) or "all" (dy to each)."""
    cache = check_cache(op, cache, MaxPoolCache)
    g = cache.geometry
    dy = _check_dy(op, dy, g)
    dx = g.empty(g.x_shape, dy.dtype)
    if cache.ties == "split":
        # every window holds at least one maximum, so count >= 1
        scale = np.reciprocal(cache.tied.sum(axis=0, dtype=dy.dtype))

    def run(sl):
        dys = dy[sl] if cache.ties == "all" else dy[sl] * scale[sl]
        part = g.empty(dys.shape, dys.dtype)

        def add(b):
            for k, off in enumerate(g.offsets):
                np.multiply(dys, cache.tied[(k, *sl)], out=part)
                window_add(b, off, part, g.out, g.stride, g.dilation)

        _scatter_into(dx, sl, g, add)

    _in_chunks(g, run)
    return dx


def _max_backward(op, dy, cache: MaxPoolCache):
    cache = check_cache(op, cache, MaxPoolCache)
    if cache.ties != "first":
        return _max_backward_tied(op, dy, cache)
    g = cache.geometry
    dy = _check_dy(op, dy, g)
    offs, one = g.offsets, (1,) * len(g.out)
    dx = g.empty(g.x_shape, dy.dtype)
    # Windows that tile the input without overlap or padding (the usual 2x2 stride 2): every
    # element of dx gets exactly one offset's value, written straight into its strided view,
    # with no zero fill and no add (LeNet-5's first pool: 13 -> 8 passes).
    tiles = g.stride == g.kernel and g.dilation == one and not any(a or b for a, b in g.pads)

    def run(sl):
        dys, am = dy[sl], cache.argmax[sl]
        if tiles and len(offs) > 1:
            dxs = dx[sl]
            hit = g.empty(dys.shape, bool)
            for a, (o, k) in enumerate(zip(g.out, g.kernel)):  # what no window covers
                dxs[(slice(None), slice(None), *(slice(None),) * a, slice(o * k, None))] = 0
            for k, off in enumerate(offs):
                np.equal(am, k, out=hit)
                np.multiply(dys, hit, out=window(dxs, off, g.out, g.stride, one))
            return
        if len(offs) == 1:
            _scatter_into(dx, sl, g, lambda b: window_add(b, offs[0], dys, g.out, g.stride,
                                                          g.dilation))
            return
        hit = g.empty(dys.shape, bool)
        part = g.empty(dys.shape, dys.dtype)

        def add(b):
            for k, off in enumerate(offs):
                np.equal(am, k, out=hit)
                np.multiply(dys, hit, out=part)  # plain ufunc: far faster than np.where
                window_add(b, off, part, g.out, g.stride, g.dilation)

        _scatter_into(dx, sl, g, add)

    _in_chunks(g, run)
    return dx


def max_pool2d_forward(x, *, kernel_size, stride=None, padding=0, dilation=1,
                       ceil_mode=False, ties="first"):
    """2-D max pooling: ``y[n,c,i,j] = max over (a,b) of xp[n,c, i*sh + a*dh, j*sw + b*dw]``.

    ``xp`` is ``x`` padded with -inf (padding <= kernel_size // 2, as in PyTorch); overlapping
    windows (stride < kernel) accumulate gradients. ``ties`` says which of a window's equal
    maxima receive its gradient (max is not differentiable there; each choice is one answer):

    - ``"first"`` (default): the first maximum in row-major window order alone, PyTorch's and
      cuDNN's rule. A subgradient (a valid element of the Clarke subdifferential), one index
      per output, cheapest to store and to route.
    - ``"split"``: dy / m to each of the m tied maxima. Also a subgradient (the average of
      the "first"-like choices), symmetric under permutations of the window, and the sum
      of dx equals the sum of dy as with every other choice.
    - ``"all"``: the full dy to every tied maximum, what a naive from-scratch ``x == max``
      mask does. NOT a gradient of max: it overcounts, sum(dx) grows with the ties (a
      window of m equal values sends m * dy). Here to reproduce and compare such code.

    Without ties the three agree. A NaN is the maximum of its window under every policy,
    and the last NaN in window order alone takes the gradient, as PyTorch.
    ``cache.indices`` (PyTorch's ``return_indices``) is always the "first" switch.

    Args:
        x: (N, C, H, W) float32/float64.
        kernel_size, stride (None: kernel_size), padding, dilation: int or (h, w) pair.
        ceil_mode: round the output size up (PyTorch's rule).
        ties: "first", "split" or "all".
    Returns:
        y (N, C, Ho, Wo) in x's dtype and memory layout, and a :class:`MaxPoolCache`
        (``argmax``, and for "split" / "all" the ``tied`` mask the backward routes through).
    """
    return _max_forward("max_pool2d", 2, x, kernel_size, stride, padding, dilation, ceil_mode,
                        ties)


def max_pool2d_backward(dy, cache: MaxPoolCache):
    """Gradient of max pooling: each dy goes to its window's maximum (the first, or the tied
    ones as the forward's ``ties`` says); overlapping windows add.
    dy (N, C, Ho, Wo) in the forward's dtype -> dx (N, C, H, W)."""
    return _max_backward("max_pool2d_backward", dy, cache)


def max_pool1d_forward(x, *, kernel_size, stride=None, padding=0, dilation=1,
                       ceil_mode=False, ties="first"):
    """1-D max pooling over x (N, C, L) -> y (N, C, Lo) (see :func:`max_pool2d_forward`,
    ``ties`` included; ``cache.indices`` index into L)."""
    return _max_forward("max_pool1d", 1, x, kernel_size, stride, padding, dilation, ceil_mode,
                        ties)


def max_pool1d_backward(dy, cache: MaxPoolCache):
    """Gradient of :func:`max_pool1d_forward`."""
    return _max_backward("max_pool1d_backward", dy, cache)


def max_pool3d_forward(x, *, kernel_size, stride=None, padding=0, dilation=1,
                       ceil_mode=False, ties="first"):
    """3-D max pooling over x (N, C, D, H, W) -> y (N, C, Do, Ho, Wo) (see
    :func:`max_pool2d_forward`, ``ties`` included; "first" means first in (d, h, w)
    row-major window order; ``cache.indices`` index into D*H*W)."""
    return _max_forward("max_pool3d", 3, x, kernel_size, stride, padding, dilation, ceil_mode,
                        ties)


def max_pool3d_backward(dy, cache: MaxPoolCache):
    """Gradient of :func:`max_pool3d_forward`."""
    return _max_backward("max_pool3d_backward", dy, cache)


# ----------------------------------------------------------------------------- average pooling

@dataclass(frozen=True)
class AvgPoolCache:
    """Window geometry and the per-output reciprocal divisor (*O)."""

    geometry: PoolGeometry
    inv_divisor: np.ndarray  # (*O), x's dtype

    @property
    def x_shape(self) -> tuple:
        return self.geometry.x_shape


AvgPool1dCache = AvgPool2dCache = AvgPool3dCache = AvgPoolCache


def _axis_counts(size: int, n_out: int, k: int, s: int, p: int, include_pad: bool):
    start = np.arange(n_out) * s - p
    # PyTorch clips the window to input + padding first: the part of a ceil_mode window that
    # runs past the padding never counts, even with count_include_pad
    end = np.minimum(start + k, size + p)
    if include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def _avg_forward(op, nd, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                 divisor_override):
    g = _geometry(op, nd, x, kernel_size, stride, padding, 1, ceil_mode)
    include = boolean(op, "count_include_pad", count_include_pad)
    if divisor_override is None:
        div = np.ones((), dtype=np.float64)
        for a in range(nd):
            c = _axis_counts(g.x_shape[2 + a], g.out[a], g.kernel[a], g.stride[a],
                             g.padding[a], include)
            div = np.multiply.outer(div, c)
        inv = (1.0 / div).astype(x.dtype)
    else:
        d = positive_int(op, "divisor_override", divisor_override)
        inv = np.full(g.out, 1.0 / d, dtype=x.dtype)
    offs = g.offsets
    y = g.empty(g.y_shape)

    def run(sl):
        xp = pad_spatial(x[sl], g.pads)
        ys = y[sl]
        ys[...] = window(xp, offs[0], g.out, g.stride, g.dilation)
        for off in offs[1:]:
            ys += window(xp, off, g.out, g.stride, g.dilation)
        ys *= inv

    _in_chunks(g, run)
    return y, AvgPoolCache(g, inv)


def _avg_backward(op, dy, cache: AvgPoolCache):
    cache = check_cache(op, cache, AvgPoolCache)
    g = cache.geometry
    dy = _check_dy(op, dy, g)
    dx = g.empty(g.x_shape, dy.dtype)

    def run(sl):
        scaled = dy[sl] * cache.inv_divisor

        def add(b):
            for off in g.offsets:
                window_add(b, off, scaled, g.out, g.stride, g.dilation)

        _scatter_into(dx, sl, g, add)

    _in_chunks(g, run)
    return dx


def avg_pool2d_forward(x, *, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True, divisor_override=None):
    """2-D average pooling: ``y[n,c,i,j] = sum over the window of xp / divisor[i,j]``.

    ``xp`` is ``x`` zero-padded (padding <= kernel_size // 2). The divisor is PyTorch's: the
    window clipped to input + padding (count_include_pad=True) or to the input alone
    (False); with ceil_mode the part of a window beyond the padding never counts.
    ``divisor_override`` (a positive int) replaces it everywhere: 1 makes sum pooling.

    Args:
        x: (N, C, H, W) float32/float64.
        kernel_size, stride (None: kernel_size), padding: int or (h, w) pair.
    Returns:
        y (N, C, Ho, Wo) in x's dtype and memory layout, and an :class:`AvgPoolCache`.
    """
    return _avg_forward("avg_pool2d", 2, x, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, divisor_override)


def avg_pool2d_backward(dy, cache: AvgPoolCache):
    """Gradient of average pooling: dy / divisor spread over each window (overlaps add).
    dy (N, C, Ho, Wo) in the forward's dtype -> dx (N, C, H, W)."""
    return _avg_backward("avg_pool2d_backward", dy, cache)


def avg_pool1d_forward(x, *, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True, divisor_override=None):
    """1-D average pooling over x (N, C, L) -> y (N, C, Lo) (see :func:`avg_pool2d_forward`;
    PyTorch's ``avg_pool1d`` has no ``divisor_override``, convprop keeps it for symmetry)."""
    return _avg_forward("avg_pool1d", 1, x, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, divisor_override)


def avg_pool1d_backward(dy, cache: AvgPoolCache):
    """Gradient of :func:`avg_pool1d_forward`."""
    return _avg_backward("avg_pool1d_backward", dy, cache)


def avg_pool3d_forward(x, *, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True, divisor_override=None):
    """3-D average pooling over x (N, C, D, H, W) -> y (N, C, Do, Ho, Wo) (see
    :func:`avg_pool2d_forward`)."""
    return _avg_forward("avg_pool3d", 3, x, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, divisor_override)


def avg_pool3d_backward(dy, cache: AvgPoolCache):
    """Gradient of :func:`avg_pool3d_forward`."""
    return _avg_backward("avg_pool3d_backward", dy, cache)
