"""meProp: minimal effort back propagation, a top-k sparsified backward for linear and
convolution layers.

Sun, Ren, Ma, Wang, "meProp: Sparsified Back Propagation for Accelerated Deep Learning with
Reduced Overfitting", ICML 2017 (arXiv:1706.06197); reference code lancopku/meProp. The
forward is unchanged; in the backward the output gradient ``dy`` is sparsified so that "only
the top-k elements (in terms of magnitude) are kept", and the products ``dx = dy~ @ w``,
``dw = dy~^T @ x`` use the sparsified ``dy~``. As in the reference code, the bias gradient
``db = sum_n dy`` uses the *full* dy.

Two selections, as the reference code has them:

* per example (``unified=False``): row n of dy keeps its own k largest ``|dy[n, j]|``;
* unified (``unified=True``): one set of k columns for the whole mini-batch, the k largest
  ``sum_n |dy[n, j]|`` (the reference ``linearUnified``: ``dy.abs().sum(0).topk(k)``), so the
  products stay dense, only k rows of w take part.

Convolutions (Wei, Sun, Ren, Xu, "Minimal Effort Back Propagation for Convolutional Neural
Networks", arXiv:1709.05804, who keep "only 5% of the gradients"): the top-k here runs over
the **output channels** (filters) of each example, a channel scored by the L1 norm of its
gradient map, ``s[n, c] = sum_{p} |dy[n, c, p]|`` (unified: ``sum_{n, p}``). Our reading: in
meProp a unit of a fully connected layer is an output neuron, i.e. one row of w, and
sparsifying its gradient leaves "only k rows of the weight matrix" updated; the analogue in a
convolution, whose GEMM is ``W (C_out x C_in*K) @ cols``, is an output channel. (We could not
read that paper's method section through our sources; the per-element alternative, top-k over
the flattened (C_out, Ho, Wo) gradient of each example, is ``granularity="element"``.)

Ties: among equal scores the lower index (column / channel / flat element) is kept, so the
selection is deterministic. ``k == D`` (all units) runs the unmodified full backward, bit for
bit. NumPy has no sparse x dense product, so the per-example variant computes the products on
the union of the units that *any* example kept (exact: the others are zero for every row)
when that union is at most half the units, else the full products of the zeroed dy; it saves
time only when the union is small. The unified variant's union is its k units, so it
multiplies k units whenever k is at most half of them.
"""

from __future__ import annotations

import numpy as np

from .._checks import boolean, check_cache, check_dy, one_of, positive_int
from ._engine.correlate import correlate_backward
from ._engine.layout import channels_major, to_batch_inner
from .conv import ConvCache, conv2d_backward, flip_kernel
from .linear import LinearCache, linear_backward

__all__ = ["MEPROP_GRANULARITIES", "topk_mask", "linear_meprop_backward", "conv2d_meprop_backward"]

#: What a convolution's top-k selects: whole output channels, or single output elements.
MEPROP_GRANULARITIES = ("channel", "element")


def _check_k(op: str, k, units: int, what: str = "units") -> int:
    """k in 1..units (k == units: every unit kept, the full backward)."""
    k = positive_int(op, "k", k)
    if k > units:
        raise ValueError(f"{op}: k must be <= the number of {what} ({units}), got {k}")
    return k


def _keep_top(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the k largest entries of each row of ``scores`` (R, U); on ties the
    lower index wins. O(U) per row: a partition finds the k-th largest value t, everything
    above t is kept, then the first (lowest-index) entries equal to t fill up to k."""
    r, u = scores.shape
    if k >= u:
        return np.ones((r, u), dtype=bool)
    t = -np.partition(-scores, k - 1, axis=1)[:, k - 1:k]   # the k-th largest per row
    above = scores > t
    equal = scores == t
    room = k - above.sum(axis=1, keepdims=True)
    return above | (equal & (np.cumsum(equal, axis=1) <= room))


def topk_mask(a, k: int, *, unified: bool = False) -> np.ndarray:
    """meProp's selection: a boolean (N, U) mask keeping the k largest ``|a[n, u]|`` of each
    row (``unified=False``), or the same k columns for every row, those with the k largest
    ``sum_n |a[n, u]|`` (``unified=True``). Ties go to the lower column index.

    Args: a (N, U) float array (a score matrix: dy, or per-unit L1 norms); 1 <= k <= U (k == U
    keeps everything).
    Returns: bool (N, U), exactly ``min(k, U)`` True per row.
    """
    op = "topk_mask"
    if not isinstance(a, np.ndarray) or a.ndim != 2 or a.dtype.kind != "f":
        raise ValueError(f"{op}: a must be a 2-D float numpy array (N, U), got "
                         f"{getattr(a, 'shape', type(a).__name__)}")
    k = _check_k(op, k, a.shape[1], "columns")
    unified = boolean(op, "unified", unified)
    s = np.abs(a)
    if unified:
        keep = _keep_top(s.sum(axis=0, keepdims=True), k)
        return np.broadcast_to(keep, a.shape).copy()
    return _keep_top(s, k)


def linear_meprop_backward(dy, cache: LinearCache, *, k: int, unified: bool = False,
                           need_dx: bool = True):
    """meProp gradients of ``y = x @ w.T + b`` (:func:`~convprop.functional.linear_forward`'s
    cache): with the sparsified ``dy~ = dy * topk_mask(dy, k, unified)``,
    ``dx = dy~ @ w``, ``dw = dy~^T @ x``, and ``db = sum_n dy`` from the full dy.

    Args: dy (N, D_out) in the forward's dtype; 1 <= k <= D_out kept outputs per example (k ==
    D_out: the full backward, bit for bit); unified: one column set for the batch.
    Returns: (dx (N, D_in) or None when ``need_dx=False``, dw (D_out, D_in), db or None).
    Rows of dw for outputs no example kept are exactly zero.
    """
    op = "linear_meprop_backward"
    cache = check_cache(op, cache, LinearCache)
    x, w = cache.x, cache.w
    dy = check_dy(op, dy, (x.shape[0], w.shape[0]), x.dtype)
    k = _check_k(op, k, w.shape[0], "outputs D_out")
    unified = boolean(op, "unified", unified)
    need_dx = boolean(op, "need_dx", need_dx)
    if k >= w.shape[0]:
        return linear_backward(dy, cache, need_dx=need_dx)
    mask = topk_mask(dy, k, unified=unified)
    db = dy.sum(axis=0) if cache.has_bias else None
    cols = np.flatnonzero(mask.any(axis=0))       # units some example kept, ascending
    if 2 * cols.size > w.shape[0]:                # most columns live: masked full products
        d = dy * mask
        return (d @ w if need_dx else None), d.T @ x, db
    d = dy[:, cols] * mask[:, cols]               # (N, |cols|): the only nonzero columns
    dx = d @ w[cols] if need_dx else None
    dw = np.zeros(w.shape, dtype=w.dtype)
    dw[cols] = d.T @ x
    return dx, dw, db


def conv2d_meprop_backward(dy, cache: ConvCache, *, k: int, unified: bool = False,
                           granularity: str = "channel", need_dx: bool = True):
    """meProp gradients of :func:`~convprop.functional.conv2d_forward` (Wei et al. 2017):
    ``dy~ = dy * mask`` with the top-k taken per example over output channels scored by
    ``sum_{h,w} |dy[n, c, h, w]|`` (``granularity="channel"``, the default) or over the
    C_out*Ho*Wo single entries (``"element"``); ``unified`` uses one selection for the whole
    batch (scores summed over n). Then ``dx``, ``dw`` are the convolution's gradients of dy~,
    and ``db = sum_{n,h,w} dy`` uses the full dy.

    Args: dy (N, C_out, Ho, Wo), the forward's dtype; 1 <= k <= units kept per example (k == the
    number of units: the full backward, bit for bit).
    Returns: (dx (N, C_in, H, W) or None, dw (C_out, C_in/groups, KH, KW), db or None).
    Only filters with some kept gradient are multiplied (groups == 1); the others' dw is 0.
    """
    op = "conv2d_meprop_backward"
    cache = check_cache(op, cache, ConvCache)
    geo = cache.geometry
    if len(geo.kernel) != 2:
        raise ValueError(f"{op}: cache must come from conv2d_forward, got a "
                         f"{len(geo.kernel)}-D convolution's cache")
    n, c_out = geo.x_shape[0], geo.c_out
    dy = check_dy(op, dy, (n, c_out, *geo.out), cache.w.dtype)
    one_of(op, "granularity", granularity, MEPROP_GRANULARITIES)
    units = c_out if granularity == "channel" else dy[0].size
    k = _check_k(op, k, units, "output channels" if granularity == "channel"
                  else "output elements per example")
    unified = boolean(op, "unified", unified)
    need_dx = boolean(op, "need_dx", need_dx)
    if k >= units:
        return conv2d_backward(dy, cache, need_dx=need_dx)
    if granularity == "channel":
        scores = np.abs(dy).reshape(n, c_out, -1).sum(axis=2)
        mask = topk_mask(scores, k, unified=unified)[:, :, None, None]
    else:
        mask = topk_mask(dy.reshape(n, -1), k, unified=unified).reshape(dy.shape)
    sparse = dy * mask
    db = dy.sum(axis=(0, 2, 3)) if cache.has_bias else None
    live = np.flatnonzero(np.broadcast_to(mask, dy.shape).any(axis=(0, 2, 3)))
    if geo.groups != 1 or live.size == c_out:
        dx, dw, _ = conv2d_backward(sparse, cache, need_dx=need_dx)
        return dx, dw, db
    # only the live filters: a convolution with |live| output channels
    d2 = channels_major(to_batch_inner(sparse[:, live]), 1)
    dx, dw_live = correlate_backward(d2, cache.w[live], geo._replace(c_out=live.size),
                                     cache.work, need_dx)
    if cache.flipped:
        dw_live = flip_kernel(dw_live)
    dw = np.zeros(cache.w.shape, dtype=cache.w.dtype)
    dw[live] = dw_live
    return dx, dw, db
