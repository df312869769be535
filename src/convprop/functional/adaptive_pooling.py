"""Adaptive and global pooling in 1, 2 and 3 spatial dimensions.

Adaptive pooling fixes the output size O instead of the window: along an axis of length L,
output i pools the bin ``[floor(i*L/O), ceil((i+1)*L/O))`` (PyTorch's bin edges; neighbouring
bins overlap when O does not divide L). Global pooling is the one-bin case, returned as (N, C).

- Average: the mean over a product of bins is the product of per-axis means, so the forward
  is one small averaging matrix per axis, ``y = x ×_1 A_1 ×_2 A_2 ...``, and the backward
  its transpose, ``dx = dy ×_1 A_1ᵀ ...``; overlapping bins need nothing special.
- Max: each output remembers the flat index of its bin's first maximum (row-major order, as
  PyTorch; a NaN is the maximum, the last NaN holding the index), PyTorch's
  ``return_indices`` form; backward adds dy at those indices (overlapping bins add).
  ``ties`` (max pooling's policies, :func:`~convprop.functional.max_pool2d_forward`):
  "first" (default) routes through those indices alone; "split" / "all" record the mask of
  each bin's tied maxima and send dy / count ("split") or dy ("all") to each of them.

Loop reference: :func:`convprop.reference.adaptive_avg_pool`,
:func:`convprop.reference.adaptive_max_pool`, :func:`convprop.reference.global_avg_pool`,
:func:`convprop.reference.global_max_pool`.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from .._checks import as_float_array, check_cache, check_dy, check_ndim, ntuple
from ._engine.layout import axes_order, empty_in_order
from .pooling import LAYOUTS, tie_policy
from ..limits import check_array

__all__ = ["AdaptiveAvgPoolCache", "AdaptiveMaxPoolCache", "GlobalPoolCache",
           "GlobalAvgPool2dCache", "adaptive_bins",
           *(f"adaptive_{k}_pool{d}d_{p}" for k in ("avg", "max") for d in (1, 2, 3)
             for p in ("forward", "backward")),
           *(f"global_{k}_pool{d}d_{p}" for k in ("avg", "max") for d in (1, 2, 3)
             for p in ("forward", "backward"))]


@functools.lru_cache(maxsize=256)
def adaptive_bins(size: int, out: int) -> tuple:
    """PyTorch's bins along one axis: ((start, end), ...) with start = floor(i*L/O) and
    end = ceil((i+1)*L/O)."""
    return tuple((i * size // out, -(-(i + 1) * size // out)) for i in range(out))


def _check_x(op: str, nd: int, x) -> np.ndarray:
    x = as_float_array(op, "x", x)
    check_ndim(op, "x", x, nd + 2, LAYOUTS[nd])
    if min(x.shape[2:]) < 1:
        raise ValueError(f"{op}: x must have a non-empty spatial extent, got shape {x.shape}")
    return x


def _output_size(op: str, nd: int, output_size, x) -> tuple:
    """``output_size`` as an nd-tuple; None entries keep the input's size (PyTorch)."""
    if isinstance(output_size, (tuple, list)) and len(output_size) == nd:
        output_size = tuple(x.shape[2 + a] if v is None else v
                            for a, v in enumerate(output_size))
    out = ntuple(op, "output_size", output_size, nd)
    check_array(op, "the output", x.shape[:2] + out, x.dtype, because=f"output_size={out}")
    return out


def _contract(a: np.ndarray, mats, order) -> np.ndarray:
    """``a`` (N, C, *S) with axis 2+k multiplied by ``mats[k]`` (O_k, S_k), allocated in
    ``order`` (the input's memory layout)."""
    for k, m in enumerate(mats):
        a = np.moveaxis(np.moveaxis(a, 2 + k, -1) @ m.T, -1, 2 + k)
    out = empty_in_order(a.shape, a.dtype, order)
    out[...] = a
    return out


# ----------------------------------------------------------------------------- adaptive average

@dataclass(frozen=True)
class AdaptiveAvgPoolCache:
    """The per-axis averaging matrices (O_k, S_k) and x's shape, dtype and memory layout."""

    x_shape: tuple
    dtype: np.dtype
    mats: tuple
    order: tuple


def _avg_matrix(size: int, out: int, dtype) -> np.ndarray:
    m = np.zeros((out, size), dtype=dtype)
    for i, (s, e) in enumerate(adaptive_bins(size, out)):
        m[i, s:e] = 1.0 / (e - s)
    return m


def _adaptive_avg_forward(op, nd, x, output_size):
    x = _check_x(op, nd, x)
    out = _output_size(op, nd, output_size, x)
    mats = tuple(_avg_matrix(s, o, x.dtype) for s, o in zip(x.shape[2:], out))
    order = axes_order(x)
    return _contract(x, mats, order), AdaptiveAvgPoolCache(tuple(x.shape), x.dtype, mats, order)


def _adaptive_avg_backward(op, dy, cache: AdaptiveAvgPoolCache):
    cache = check_cache(op, cache, AdaptiveAvgPoolCache)
    out = tuple(m.shape[0] for m in cache.mats)
    dy = check_dy(op, dy, cache.x_shape[:2] + out, cache.dtype)
    return _contract(dy, tuple(m.T for m in cache.mats), cache.order)


# ----------------------------------------------------------------------------- adaptive max

@dataclass(frozen=True)
class AdaptiveMaxPoolCache:
    """``indices``: the flat index of each output's maximum into its input plane (int64, the
    shape of y: PyTorch's ``return_indices``); x's shape, dtype and memory layout.

    ``ties="split"`` / ``"all"`` only: ``tied[k]`` (K, N, C, *O) bool marks the outputs whose
    bin holds its maximum at the bin's k-th element (row-major within the bin, K the largest
    bin's size; k past a smaller bin's end is False; :attr:`bin_indices` maps k to the input
    plane); a bin whose maximum is NaN marks only its switch. Backward routes through it."""

    x_shape: tuple
    dtype: np.dtype
    indices: np.ndarray
    order: tuple
    ties: str = "first"
    tied: np.ndarray | None = None

    @property
    def bin_indices(self) -> np.ndarray:
        """(K, *O) int64: the flat plane index of each bin's k-th element, -1 past its end."""
        sp, out = tuple(self.x_shape[2:]), tuple(self.indices.shape[2:])
        return _bin_table(sp, out).T.reshape(-1, *out).copy()


@functools.lru_cache(maxsize=64)
def _bin_positions(sp: tuple, out: tuple) -> tuple:
    """For each output bin (row-major): its slices and the flat input indices of its
    elements in row-major order."""
    res = []
    for bins in itertools.product(*(adaptive_bins(s, o) for s, o in zip(sp, out))):
        grids = np.meshgrid(*(np.arange(s, e) for s, e in bins), indexing="ij")
        flat = np.ravel_multi_index(tuple(grids), sp).ravel()
        res.append((tuple(slice(s, e) for s, e in bins), flat))
    return tuple(res)


@functools.lru_cache(maxsize=64)
def _bin_table(sp: tuple, out: tuple) -> np.ndarray:
    """(B, K) int64: row b the flat input indices of bin b (row-major), -1 past its end."""
    flats = [flat for _, flat in _bin_positions(sp, out)]
    table = np.full((len(flats), max(f.size for f in flats)), -1, dtype=np.int64)
    for b, f in enumerate(flats):
        table[b, :f.size] = f
    table.setflags(write=False)
    return table


def _argmax(a: np.ndarray) -> np.ndarray:
    """Index of the maximum along the last axis as PyTorch picks it: the first maximum, or
    where there is a NaN (which is then the maximum), the last NaN."""
    i = a.argmax(axis=-1)  # the first maximum, or the first NaN
    nan = np.isnan(np.take_along_axis(a, i[..., None], axis=-1)[..., 0])
    if nan.any():
        i = np.where(nan, a.shape[-1] - 1 - np.isnan(a[..., ::-1]).argmax(axis=-1), i)
    return i


def _adaptive_max_forward(op, nd, x, output_size, ties="first"):
    ties = tie_policy(op, ties)
    x = _check_x(op, nd, x)
    out = _output_size(op, nd, output_size, x)
    n, c, sp = x.shape[0], x.shape[1], tuple(x.shape[2:])
    y = np.empty((n, c, math.prod(out)), dtype=x.dtype)
    idx = np.empty((n, c, math.prod(out)), dtype=np.int64)
    for b, (slices, flat) in enumerate(_bin_positions(sp, out)):
        box = x[(slice(None), slice(None), *slices)].reshape(n, c, -1)
        a = _argmax(box)
        y[:, :, b] = np.take_along_axis(box, a[:, :, None], axis=2)[:, :, 0]
        idx[:, :, b] = flat[a]
    order = axes_order(x)
    ys = empty_in_order((n, c, *out), x.dtype, order)
    ys[...] = y.reshape(n, c, *out)
    idx = idx.reshape(n, c, *out)
    if ties == "first":
        return ys, AdaptiveMaxPoolCache(tuple(x.shape), x.dtype, idx, order)
    return ys, AdaptiveMaxPoolCache(tuple(x.shape), x.dtype, idx, order, ties,
                                    _bin_tie_mask(x, y, idx.reshape(n, c, -1), out))


def _tied(box: np.ndarray, ymax: np.ndarray, switch: np.ndarray, flat: np.ndarray):
    """(..., k) bool: ``box == ymax`` along the last axis, except that a row whose maximum is
    NaN (NaN == NaN is False) marks its switch alone, the element at plane index ``switch``."""
    t = box == ymax[..., None]
    nan = np.isnan(ymax)
    if nan.any():
        t[nan] = flat == switch[nan][:, None]
    return t


def _bin_tie_mask(x, y, idx, out) -> np.ndarray:
    """The ``tied`` mask of :class:`AdaptiveMaxPoolCache`, (K, N, C, *O) bool, from the
    bins' maxima ``y`` and switches ``idx`` (both (N, C, B))."""
    n, c, sp = x.shape[0], x.shape[1], tuple(x.shape[2:])
    table = _bin_table(sp, out)
    tied = np.zeros((table.shape[1], n, c, table.shape[0]), dtype=bool)
    for b, (slices, flat) in enumerate(_bin_positions(sp, out)):
        box = x[(slice(None), slice(None), *slices)].reshape(n, c, -1)
        tied[:flat.size, :, :, b] = np.moveaxis(_tied(box, y[:, :, b], idx[:, :, b], flat), -1, 0)
    return tied.reshape(tied.shape[:3] + tuple(out))


def scatter_add_planes(values: np.ndarray, indices: np.ndarray, x_shape, order) -> np.ndarray:
    """dx (x_shape, in ``order``) with ``values`` added at the flat plane ``indices`` of each
    (n, c) plane; repeated indices add (one pass of ``np.bincount``)."""
    n, c, plane = x_shape[0], x_shape[1], math.prod(x_shape[2:])
    rows = np.arange(n * c, dtype=np.int64).reshape(n, c, *([1] * (indices.ndim - 2)))
    flat = np.bincount((rows * plane + indices).ravel(), weights=values.ravel(),
                       minlength=n * c * plane)
    dx = empty_in_order(tuple(x_shape), values.dtype, order)
    dx[...] = flat.reshape(x_shape)
    return dx


def _adaptive_max_backward(op, dy, cache: AdaptiveMaxPoolCache):
    cache = check_cache(op, cache, AdaptiveMaxPoolCache)
    dy = check_dy(op, dy, cache.indices.shape, cache.dtype)
    if cache.ties != "first":
        return _adaptive_max_backward_tied(dy, cache)
    return scatter_add_planes(dy, cache.indices, cache.x_shape, cache.order)


def _adaptive_max_backward_tied(dy, cache: AdaptiveMaxPoolCache) -> np.ndarray:
    """dx for ties="split" (dy / count to each tied maximum of a bin) or "all" (dy to each):
    only the marked entries are gathered, so an infinite dy never meets a zero weight; they
    are added in (n, c, bin) order as "first" adds, so without ties the results are equal."""
    n, c, sp = cache.x_shape[0], cache.x_shape[1], tuple(cache.x_shape[2:])
    tied = np.moveaxis(cache.tied.reshape(cache.tied.shape[0], n, c, -1), 0, -1)
    ni, ci, b, k = np.nonzero(tied)
    vals = dy.reshape(n, c, -1)[ni, ci, b]
    if cache.ties == "split":  # every bin holds at least one maximum: count >= 1
        vals = vals / tied.sum(axis=-1, dtype=dy.dtype)[ni, ci, b]
    plane = math.prod(sp)
    at = (ni * c + ci) * plane + _bin_table(sp, tuple(dy.shape[2:]))[b, k]
    dx = empty_in_order(cache.x_shape, dy.dtype, cache.order)
    dx[...] = np.bincount(at, weights=vals, minlength=n * c * plane).reshape(cache.x_shape)
    return dx


# ----------------------------------------------------------------------------- global

@dataclass(frozen=True)
class GlobalPoolCache:
    """x's shape, dtype and memory layout; for max pooling, the flat plane index of each
    (first) maximum, (N, C) int64, and for ``ties="split"`` / ``"all"`` the mask ``tied`` (x's
    shape, bool) of each plane's tied maxima (a plane whose maximum is NaN: its switch alone),
    which the backward routes through."""

    x_shape: tuple
    dtype: np.dtype
    order: tuple = (0, 1, 2, 3)
    indices: np.ndarray | None = None
    ties: str = "first"
    tied: np.ndarray | None = None


GlobalAvgPool2dCache = GlobalPoolCache


def _global_avg_forward(op, nd, x):
    x = _check_x(op, nd, x)
    y = x.mean(axis=tuple(range(2, x.ndim)), dtype=x.dtype)
    return y, GlobalPoolCache(tuple(x.shape), x.dtype, axes_order(x))


def _global_avg_backward(op, dy, cache: GlobalPoolCache):
    cache = check_cache(op, cache, GlobalPoolCache)
    dy = check_dy(op, dy, cache.x_shape[:2], cache.dtype)
    plane = math.prod(cache.x_shape[2:])
    dx = empty_in_order(cache.x_shape, dy.dtype, cache.order)
    dx[...] = (dy / dy.dtype.type(plane))[(Ellipsis,) + (None,) * (len(cache.x_shape) - 2)]
    return dx


def _global_max_forward(op, nd, x, ties="first"):
    ties = tie_policy(op, ties)
    x = _check_x(op, nd, x)
    n, c = x.shape[:2]
    flat = x.reshape(n, c, -1)
    idx = _argmax(flat)
    y = np.take_along_axis(flat, idx[:, :, None], axis=2)[:, :, 0]
    if ties == "first":
        return y, GlobalPoolCache(tuple(x.shape), x.dtype, axes_order(x), idx)
    tied = _tied(flat, y, idx, np.arange(flat.shape[2])).reshape(x.shape)
    return y, GlobalPoolCache(tuple(x.shape), x.dtype, axes_order(x), idx, ties, tied)


def _global_max_backward(op, dy, cache: GlobalPoolCache):
    cache = check_cache(op, cache, GlobalPoolCache)
    dy = check_dy(op, dy, cache.x_shape[:2], cache.dtype)
    if cache.ties == "first":
        return scatter_add_planes(dy, cache.indices, cache.x_shape, cache.order)
    spatial = tuple(range(2, len(cache.x_shape)))
    if cache.ties == "split":
        dy = dy / cache.tied.sum(axis=spatial, dtype=dy.dtype)
    dx = empty_in_order(cache.x_shape, dy.dtype, cache.order)
    # np.where, not a product: an infinite dy must leave the untied elements at 0
    dx[...] = np.where(cache.tied, np.expand_dims(dy, spatial), dy.dtype.type(0))
    return dx


# ----------------------------------------------------------------------------- public kernels

def adaptive_avg_pool1d_forward(x, *, output_size):
    """Adaptive average pooling (``torch.nn.functional.adaptive_avg_pool1d``): x (N, C, L) ->
    y (N, C, *output_size), each output the mean of its bin (``output_size``: an int or
    1-tuple, None keeping that axis). Returns y and an :class:`AdaptiveAvgPoolCache`."""
    return _adaptive_avg_forward("adaptive_avg_pool1d", 1, x, output_size)


def adaptive_avg_pool1d_backward(dy, cache):
    """Gradient of :func:`adaptive_avg_pool1d_forward`: dy (N, C, *O) -> dx (N, C, L)."""
    return _adaptive_avg_backward("adaptive_avg_pool1d_backward", dy, cache)


def adaptive_avg_pool2d_forward(x, *, output_size):
    """Adaptive average pooling (``torch.nn.functional.adaptive_avg_pool2d``): x (N, C, H, W) ->
    y (N, C, *output_size), each output the mean of its bin (``output_size``: an int or
    2-tuple, None keeping that axis). Returns y and an :class:`AdaptiveAvgPoolCache`."""
    return _adaptive_avg_forward("adaptive_avg_pool2d", 2, x, output_size)


def adaptive_avg_pool2d_backward(dy, cache):
    """Gradient of :func:`adaptive_avg_pool2d_forward`: dy (N, C, *O) -> dx (N, C, H, W)."""
    return _adaptive_avg_backward("adaptive_avg_pool2d_backward", dy, cache)


def adaptive_avg_pool3d_forward(x, *, output_size):
    """Adaptive average pooling (``torch.nn.functional.adaptive_avg_pool3d``): x (N, C, D, H, W) ->
    y (N, C, *output_size), each output the mean of its bin (``output_size``: an int or
    3-tuple, None keeping that axis). Returns y and an :class:`AdaptiveAvgPoolCache`."""
    return _adaptive_avg_forward("adaptive_avg_pool3d", 3, x, output_size)


def adaptive_avg_pool3d_backward(dy, cache):
    """Gradient of :func:`adaptive_avg_pool3d_forward`: dy (N, C, *O) -> dx (N, C, D, H, W)."""
    return _adaptive_avg_backward("adaptive_avg_pool3d_backward", dy, cache)


def adaptive_max_pool2d_forward(x, *, output_size, ties="first"):
    """Adaptive max pooling (``torch.nn.functional.adaptive_max_pool2d``): x (N, C, H, W) ->
    y (N, C, *output_size), each output the maximum of its bin (PyTorch's bins, which
    overlap when the output does not divide the input; ``output_size``: an int or 2-tuple,
    None keeping that axis). A NaN counts as the maximum.

    ``ties`` says which of a bin's equal maxima receive its gradient, max pooling's policies
    (see :func:`~convprop.functional.max_pool2d_forward` for why each exists):

    - ``"first"`` (default): the first maximum in row-major bin order alone (a NaN bin: its
      last NaN), PyTorch's rule; the backward routes through ``cache.indices``.
    - ``"split"``: dy / m to each of the bin's m tied maxima (a subgradient; the sum of each
      bin's dy is kept).
    - ``"all"``: the full dy to each tied maximum, a naive ``x == max`` mask (not a gradient:
      it overcounts).

    Under every policy a bin whose maximum is NaN sends its gradient to its last NaN alone
    (NaN == NaN is False, so a mask would drop it; this keeps PyTorch's routing), and
    overlapping bins add. Without ties the three agree.

    Returns:
        y in x's dtype and memory layout, and an :class:`AdaptiveMaxPoolCache`: ``indices``
        (PyTorch's ``return_indices``, the "first" switch under every policy) and, for
        "split" / "all", the ``tied`` mask the backward routes through.
    """
    return _adaptive_max_forward("adaptive_max_pool2d", 2, x, output_size, ties)


def adaptive_max_pool2d_backward(dy, cache):
    """Gradient of :func:`adaptive_max_pool2d_forward`: dy (N, C, *O) -> dx (N, C, H, W), each
    dy sent to its bin's maximum (or tied maxima, as the forward's ``ties`` says)."""
    return _adaptive_max_backward("adaptive_max_pool2d_backward", dy, cache)


def adaptive_max_pool1d_forward(x, *, output_size, ties="first"):
    """Adaptive max pooling (``torch.nn.functional.adaptive_max_pool1d``): x (N, C, L) ->
    y (N, C, *output_size) (see :func:`adaptive_max_pool2d_forward`, ``ties`` included).
    Returns y and an :class:`AdaptiveMaxPoolCache` whose ``indices`` index into L."""
    return _adaptive_max_forward("adaptive_max_pool1d", 1, x, output_size, ties)


def adaptive_max_pool1d_backward(dy, cache):
    """Gradient of :func:`adaptive_max_pool1d_forward`: dy (N, C, *O) -> dx (N, C, L)."""
    return _adaptive_max_backward("adaptive_max_pool1d_backward", dy, cache)


def adaptive_max_pool3d_forward(x, *, output_size, ties="first"):
    """Adaptive max pooling (``torch.nn.functional.adaptive_max_pool3d``): x (N, C, D, H, W)
    -> y (N, C, *output_size) (see :func:`adaptive_max_pool2d_forward`, ``ties`` included;
    "first" in (d, h, w) row-major bin order). Returns y and an
    :class:`AdaptiveMaxPoolCache` whose ``indices`` index into D*H*W."""
    return _adaptive_max_forward("adaptive_max_pool3d", 3, x, output_size, ties)


def adaptive_max_pool3d_backward(dy, cache):
    """Gradient of :func:`adaptive_max_pool3d_forward`: dy (N, C, *O) -> dx (N, C, D, H, W)."""
    return _adaptive_max_backward("adaptive_max_pool3d_backward", dy, cache)


def global_avg_pool1d_forward(x):
    """Global average pooling: x (N, C, L) -> y (N, C), the mean over the spatial axes."""
    return _global_avg_forward("global_avg_pool1d", 1, x)


def global_avg_pool1d_backward(dy, cache):
    """Gradient of :func:`global_avg_pool1d_forward`: dy (N, C) -> dx (N, C, L)."""
    return _global_avg_backward("global_avg_pool1d_backward", dy, cache)


def global_avg_pool2d_forward(x):
    """Global average pooling: x (N, C, H, W) -> y (N, C), the mean over the spatial axes."""
    return _global_avg_forward("global_avg_pool2d", 2, x)


def global_avg_pool2d_backward(dy, cache):
    """Gradient of :func:`global_avg_pool2d_forward`: dy (N, C) -> dx (N, C, H, W)."""
    return _global_avg_backward("global_avg_pool2d_backward", dy, cache)


def global_avg_pool3d_forward(x):
    """Global average pooling: x (N, C, D, H, W) -> y (N, C), the mean over the spatial axes."""
    return _global_avg_forward("global_avg_pool3d", 3, x)


def global_avg_pool3d_backward(dy, cache):
    """Gradient of :func:`global_avg_pool3d_forward`: dy (N, C) -> dx (N, C, D, H, W)."""
    return _global_avg_backward("global_avg_pool3d_backward", dy, cache)


def global_max_pool1d_forward(x, *, ties="first"):
    """Global max pooling: x (N, C, L) -> y (N, C), the maximum over L (see
    :func:`global_max_pool2d_forward`, ``ties`` included)."""
    return _global_max_forward("global_max_pool1d", 1, x, ties)


def global_max_pool1d_backward(dy, cache):
    """Gradient of :func:`global_max_pool1d_forward`: dy (N, C) -> dx (N, C, L)."""
    return _global_max_backward("global_max_pool1d_backward", dy, cache)


def global_max_pool2d_forward(x, *, ties="first"):
    """Global max pooling: x (N, C, H, W) -> y (N, C), the maximum over the spatial axes
    (a NaN counts as the maximum), adaptive max pooling to one bin.

    ``ties`` as :func:`adaptive_max_pool2d_forward`: "first" (default, PyTorch's: the first
    maximum in row-major order, or the last NaN, gets the gradient; ``cache.indices``),
    "split" (dy / m to each of the plane's m tied maxima) or "all" (dy to each); a plane
    whose maximum is NaN routes to its last NaN alone under every policy. Returns y and a
    :class:`GlobalPoolCache` (with the ``tied`` mask, x's shape, for "split" / "all")."""
    return _global_max_forward("global_max_pool2d", 2, x, ties)


def global_max_pool2d_backward(dy, cache):
    """Gradient of :func:`global_max_pool2d_forward`: dy (N, C) -> dx (N, C, H, W)."""
    return _global_max_backward("global_max_pool2d_backward", dy, cache)


def global_max_pool3d_forward(x, *, ties="first"):
    """Global max pooling: x (N, C, D, H, W) -> y (N, C), the maximum over the spatial axes
    (see :func:`global_max_pool2d_forward`, ``ties`` included)."""
    return _global_max_forward("global_max_pool3d", 3, x, ties)


def global_max_pool3d_backward(dy, cache):
    """Gradient of :func:`global_max_pool3d_forward`: dy (N, C) -> dx (N, C, D, H, W)."""
    return _global_max_backward("global_max_pool3d_backward", dy, cache)
