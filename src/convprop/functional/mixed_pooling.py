"""Two families that both get called "mixed pooling"; do not confuse them.

1. **Yu's mixed pooling** (random): D. Yu, H. Wang, P. Chen and Z. Wei, "Mixed Pooling for
   Convolutional Neural Networks", RSKT 2014, LNCS 8818, pp. 364-375
   (doi:10.1007/978-3-319-11740-9_34). ``y = lambda * max + (1 - lambda) * avg`` with
   ``lambda`` a random 0 or 1 drawn anew on every forward pass and recorded for the backward;
   a regulariser in the spirit of dropout and stochastic pooling. No parameter.
2. **Lee's mixed max-average and gated pooling** (learned): C.-Y. Lee, P. W. Gallagher and
   Z. Tu, "Generalizing Pooling Functions in Convolutional Neural Networks: Mixed, Gated, and
   Tree", AISTATS 2016, PMLR 51:464-472 (arXiv:1509.08985). Mixed max-average:
   ``y = a * max + (1 - a) * avg`` with a learned ``a`` in [0, 1]; gated:
   ``y = s * max + (1 - s) * avg`` with ``s = sigmoid(w . window)``, a learned gating mask
   ``w`` of the window's size, so the mix depends on each window's content. No randomness.

Both families take their max and average branches from :mod:`.pooling` (max pooling's first
maximum in row-major window order wins a tie and alone receives the gradient, PyTorch's rule;
average pooling divides by the full window, PyTorch's ``count_include_pad=True`` default) and
route the backward through those branches' own backward passes. 1-D (N, C, L) and 3-D
(N, C, D, H, W) versions are the same code with another count of spatial axes (the 2-D
docstrings state the equations).

Loop reference: :func:`convprop.reference.mixed_pool` (Yu's, given the recorded choice),
:func:`convprop.reference.mixed_maxavg_pool` and :func:`convprop.reference.gated_pool` (Lee's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import (as_float_array, check_cache, check_dy, check_same_dtype, one_of,
                       training_rng)
from ._engine.windows import window, window_add
from .pooling import AvgPoolCache, MaxPoolCache, PoolGeometry, _avg_backward, _avg_forward, \
    _geometry, _max_backward, _max_forward, _scatter_into

__all__ = ["MIXED_POOL_GRANULARITIES",
           "MixedPool1dCache", "MixedPool2dCache", "MixedPool3dCache",
           "mixed_pool1d_forward", "mixed_pool1d_backward", "mixed_pool2d_forward",
           "mixed_pool2d_backward", "mixed_pool3d_forward", "mixed_pool3d_backward",
           "MixedMaxAvgPool1dCache", "MixedMaxAvgPool2dCache", "MixedMaxAvgPool3dCache",
           "mixed_maxavg_pool1d_forward", "mixed_maxavg_pool1d_backward",
           "mixed_maxavg_pool2d_forward", "mixed_maxavg_pool2d_backward",
           "mixed_maxavg_pool3d_forward", "mixed_maxavg_pool3d_backward",
           "GatedPool1dCache", "GatedPool2dCache", "GatedPool3dCache",
           "gated_pool1d_forward", "gated_pool1d_backward", "gated_pool2d_forward",
           "gated_pool2d_backward", "gated_pool3d_forward", "gated_pool3d_backward"]

#: Yu's mixed pooling: where one lambda is shared (see :func:`mixed_pool2d_forward`).
MIXED_POOL_GRANULARITIES = ("layer", "channel", "window")


def _branches(op, nd, x, kernel_size, stride, padding, want_max=True, want_avg=True):
    """(y_max, max cache, y_avg, avg cache), a branch None when not wanted."""
    ym = mc = ya = ac = None
    if want_max:
        ym, mc = _max_forward(op, nd, x, kernel_size, stride, padding, 1, False)
    if want_avg:
        ya, ac = _avg_forward(op, nd, x, kernel_size, stride, padding, False, True, None)
    return ym, mc, ya, ac


def _branch_backward(op, dy_max, mc, dy_avg, ac):
    """``max_backward(dy_max) + avg_backward(dy_avg)`` over the branches that ran."""
    dx = None
    if mc is not None:
        dx = _max_backward(op, dy_max, mc)
    if ac is not None:
        da = _avg_backward(op, dy_avg, ac)
        dx = da if dx is None else dx + da
    return dx


# ------------------------------------------------------------------ Yu et al. 2014 (random)

@dataclass(frozen=True)
class MixedPool2dCache:
    """The recorded choice and the branches the backward follows.

    ``lam`` is the choice (bool, True = max pooling) at its granularity: shape () for
    "layer", (C,) for "channel", (N, C, Ho, Wo) for "window"; the draw in training, the
    given ``eval_lambda`` in evaluation. ``max_cache`` / ``avg_cache`` are None for a branch
    that no output used."""

    granularity: str
    training: bool
    lam: np.ndarray
    y_shape: tuple
    dtype: np.dtype
    max_cache: MaxPoolCache | None
    avg_cache: AvgPoolCache | None

    @property
    def x_shape(self) -> tuple:
        return (self.max_cache or self.avg_cache).x_shape

    @property
    def lam_full(self) -> np.ndarray:
        """``lam`` broadcastable against y."""
        if self.lam.ndim == 1:
            return self.lam.reshape((1, -1) + (1,) * (len(self.y_shape) - 2))
        return self.lam


def _lambda_shape(granularity: str, y_shape: tuple) -> tuple:
    return {"layer": (), "channel": (y_shape[1],), "window": y_shape}[granularity]


def _eval_lambda(op: str, v, channels: int) -> np.ndarray:
    if v is None:
        raise ValueError(f"{op}: evaluation needs eval_lambda, the pooling chosen more often "
                         f"in training (1 = max, 0 = average; a scalar or one per channel; "
                         f"MixedPool2d keeps the counts), got None")
    a = np.asarray(v)
    if a.dtype.kind not in "biuf" or a.shape not in ((), (1,), (channels,)) \
            or not np.isin(a, (0, 1)).all():
        raise ValueError(f"{op}: eval_lambda must be 0 or 1 (1 = max), a scalar or one per "
                         f"channel ({channels},), got {v!r}")
    return (a.reshape(()) if a.size == 1 and a.shape != (channels,) else a).astype(bool)


def mixed_pool2d_forward(x, *, kernel_size, stride=None, padding=0, rng, training,
                         granularity="layer", eval_lambda=None):
    """Yu et al.'s mixed pooling: ``y = lambda * max_pool(x) + (1 - lambda) * avg_pool(x)``.

    Yu, Wang, Chen and Wei, "Mixed Pooling for Convolutional Neural Networks", RSKT 2014.
    In training ``lambda`` is 0 or 1 with probability 1/2 each (the paper's "random value
    being either 0 or 1"), drawn from ``rng`` on every forward pass (float64 uniforms
    ``u``, ``lambda = u < 0.5``), recorded in the cache and followed by the backward: dy goes
    through max pooling's backward where lambda = 1 and average pooling's where 0.

    ``granularity`` says where one lambda is shared; the paper's equation carries one lambda
    per pooling, and convprop offers: ``"layer"`` (one draw for the whole batch, the
    default; only the chosen branch is computed), ``"channel"`` (one per feature map, shared
    over the batch) or ``"window"`` (one per output element).

    Evaluation: as we read the paper's test-time rule, no random choice is made: the
    training-time values of lambda are counted and the pooling type selected more often is
    applied. The paper does not fix at what level the count is kept, nor what a tie means;
    convprop counts per layer for "layer" and per channel for "channel" and "window" (every
    window of a channel counts), and a tie (or no training at all) gives max pooling. A
    kernel keeps no state, so the caller passes the choice as ``eval_lambda`` (1 = max,
    0 = average; a scalar or one per channel); the :class:`~convprop.layers.MixedPool2d`
    module keeps the counts and passes the majority.

    Padding: the max branch pads with -inf, the average branch with zeros counted in the
    divisor (PyTorch's ``count_include_pad=True``); padding <= kernel_size // 2.

    Args:
        x: (N, C, H, W) float32/float64.
        kernel_size, stride (None: kernel_size), padding: int or (h, w) pair.
        rng: numpy.random.Generator (required when training; not used in evaluation).
        training: bool.
        granularity: "layer", "channel" or "window".
        eval_lambda: the evaluation-time choice (required when not training).
    Returns:
        y (N, C, Ho, Wo) in x's dtype and a :class:`MixedPool2dCache` (``cache.lam``).
    """
    return _mixed_forward("mixed_pool2d", 2, x, kernel_size, stride, padding, rng, training,
                          granularity, eval_lambda)


def granularity_arg(op: str, granularity) -> str:
    """The one check of Yu's mixed pooling ``granularity`` (kernels and modules)."""
    return one_of(op, "granularity", granularity, MIXED_POOL_GRANULARITIES,
                  shown=repr(MIXED_POOL_GRANULARITIES))


def _mixed_forward(op, nd, x, kernel_size, stride, padding, rng, training, granularity,
                   eval_lambda):
    g = _geometry(op, nd, x, kernel_size, stride, padding, 1, False)
    training = training_rng(op, training, rng)
    granularity_arg(op, granularity)
    if training:
        lam = np.asarray(rng.random(_lambda_shape(granularity, g.y_shape)) < 0.5)
    else:
        lam = _eval_lambda(op, eval_lambda, g.x_shape[1])
    any_max, all_max = bool(lam.any()), bool(lam.all())
    ym, mc, ya, ac = _branches(op, nd, x, kernel_size, stride, padding, any_max, not all_max)
    cache = MixedPool2dCache(granularity, training, lam, g.y_shape, g.dtype, mc, ac)
    if ya is None:
        return ym, cache
    if ym is None:
        return ya, cache
    return np.where(cache.lam_full, ym, ya), cache


def mixed_pool2d_backward(dy, cache: MixedPool2dCache):
    """Gradient of :func:`mixed_pool2d_forward` with the recorded lambda (never draws):
    ``dx = max_backward(lambda * dy) + avg_backward((1 - lambda) * dy)``.
    dy (N, C, Ho, Wo) in the forward's dtype -> dx (N, C, H, W)."""
    return _mixed_backward("mixed_pool2d_backward", dy, cache)


def _mixed_backward(op, dy, cache: MixedPool2dCache):
    cache = check_cache(op, cache, MixedPool2dCache)
    dy = check_dy(op, dy, cache.y_shape, cache.dtype)
    lam = cache.lam_full
    dmax = dy if cache.avg_cache is None else dy * lam
    davg = dy if cache.max_cache is None else dy * ~lam
    return _branch_backward(op, dmax, cache.max_cache, davg, cache.avg_cache)


# ------------------------------------------------------------------ Lee et al. 2016 (learned)

def _check_param(op: str, name: str, p, x: np.ndarray, shapes: tuple, what: str):
    p = as_float_array(op, name, p)
    check_same_dtype(op, x=x, **{name: p})
    if p.shape not in shapes:
        raise ValueError(f"{op}: {name} must have shape {' or '.join(map(str, shapes))} "
                         f"({what}), got {p.shape}")
    return p


def _per_channel(p: np.ndarray, nd: int) -> np.ndarray:
    """A per-channel parameter (C,) broadcastable against (N, C, *O); else as is."""
    return p.reshape((1, p.shape[0]) + (1,) * nd) if p.ndim == 1 and p.size > 1 else p


@dataclass(frozen=True)
class MixedMaxAvgPool2dCache:
    """The two branches, their difference ``max - avg`` (dy/da) and the mixing weight."""

    a: np.ndarray
    diff: np.ndarray  # (N, C, Ho, Wo): y_max - y_avg
    max_cache: MaxPoolCache
    avg_cache: AvgPoolCache

    @property
    def x_shape(self) -> tuple:
        return self.max_cache.x_shape


def mixed_maxavg_pool2d_forward(x, a, *, kernel_size, stride=None):
    """Lee et al.'s mixed max-average pooling: ``y = a * max_pool(x) + (1 - a) * avg_pool(x)``.

    Lee, Gallagher and Tu, "Generalizing Pooling Functions in Convolutional Neural Networks:
    Mixed, Gated, and Tree", AISTATS 2016, eq. for f_mix. ``a`` is the learned mixing
    proportion in [0, 1], one per layer (shape () or (1,), the paper's main setting) or one
    per channel (C,) (the paper's "layer/channel" responsiveness). The kernel takes ``a``
    itself and rejects values outside [0, 1]; how a trainer keeps it there is the caller's
    choice: the paper states the constraint but not a mechanism, and
    :class:`~convprop.layers.MixedMaxAvgPool2d` trains a logit with ``a = sigmoid(logit)``.
    Ties in the max branch: first maximum (PyTorch's rule). No padding.

    Args:
        x: (N, C, H, W) float32/float64.
        a: float array of x's dtype, shape (), (1,) or (C,), values in [0, 1].
        kernel_size, stride (None: kernel_size): int or (h, w) pair.
    Returns:
        y (N, C, Ho, Wo) and a :class:`MixedMaxAvgPool2dCache`.
    """
    return _maxavg_forward("mixed_maxavg_pool2d", 2, x, a, kernel_size, stride)


def _maxavg_forward(op, nd, x, a, kernel_size, stride):
    g = _geometry(op, nd, x, kernel_size, stride, 0, 1, False)
    a = _check_param(op, "a", a, x, ((), (1,), (g.x_shape[1],)),
                     "one per layer or one per channel")
    if not ((a >= 0) & (a <= 1)).all():
        raise ValueError(f"{op}: a must lie in [0, 1] (the mixing proportion of max "
                         f"pooling), got {a}")
    ym, mc, ya, ac = _branches(op, nd, x, kernel_size, stride, 0)
    diff = ym - ya
    y = ya + _per_channel(a, nd) * diff
    return y, MixedMaxAvgPool2dCache(a, diff, mc, ac)


def mixed_maxavg_pool2d_backward(dy, cache: MixedMaxAvgPool2dCache):
    """Gradient of :func:`mixed_maxavg_pool2d_forward`: ``dx = max_backward(a dy) +
    avg_backward((1 - a) dy)``, ``da = sum dy * (max - avg)`` (over all but the channel axis
    for a per-channel ``a``). Returns ``(dx, da)``, da of a's shape."""
    return _maxavg_backward("mixed_maxavg_pool2d_backward", dy, cache)


def _maxavg_backward(op, dy, cache: MixedMaxAvgPool2dCache):
    cache = check_cache(op, cache, MixedMaxAvgPool2dCache)
    g = cache.max_cache.geometry
    nd = len(g.out)
    dy = check_dy(op, dy, g.y_shape, g.dtype)
    a = _per_channel(cache.a, nd)
    dx = _branch_backward(op, dy * a, cache.max_cache, dy * (1 - a), cache.avg_cache)
    prod = dy * cache.diff
    if cache.a.shape == (g.x_shape[1],):  # per channel (for C == 1 the same as per layer)
        da = prod.sum(axis=(0, *range(2, 2 + nd))).reshape(cache.a.shape)
    else:
        da = prod.sum().reshape(cache.a.shape)
    return dx, da.astype(g.dtype, copy=False)


@dataclass(frozen=True)
class GatedPool2dCache:
    """The input (the gate's gradient needs its windows), the gating mask, the gate values
    ``s`` (N, C, Ho, Wo), ``max - avg`` and the two branches."""

    x: np.ndarray
    w: np.ndarray
    gate: np.ndarray
    diff: np.ndarray
    max_cache: MaxPoolCache
    avg_cache: AvgPoolCache

    @property
    def x_shape(self) -> tuple:
        return self.max_cache.x_shape

    @property
    def geometry(self) -> PoolGeometry:
        return self.max_cache.geometry


def _mask_at(w: np.ndarray, k: tuple) -> np.ndarray:
    """The gating mask's weight at kernel offset ``k``: a scalar (one mask per layer), or
    (1, C, 1, ...) (one per channel)."""
    nd = len(k)
    return w[k] if w.ndim == nd else w[(slice(None), *k)].reshape((1, -1) + (1,) * nd)


def gated_pool2d_forward(x, w, *, kernel_size, stride=None):
    """Lee et al.'s gated max-average pooling:
    ``y = s * max_pool(x) + (1 - s) * avg_pool(x)``, ``s = sigmoid(sum_k w_k x_k)`` per window.

    Lee, Gallagher and Tu, AISTATS 2016, eq. for f_gate: the gate is ``sigma(omega^T x)``
    with ``omega`` a learned gating mask of the pooling region's size (no bias, as the
    paper's equation), so each window mixes max and average according to its own content.
    ``w`` is one mask per layer (KH, KW), the paper's setting (e.g. 9 parameters for a 3x3
    pool), or one per channel (C, KH, KW). Ties in the max branch: first maximum (PyTorch's
    rule). No padding.

    Args:
        x: (N, C, H, W) float32/float64.
        w: (KH, KW) or (C, KH, KW) in x's dtype.
        kernel_size, stride (None: kernel_size): int or (h, w) pair.
    Returns:
        y (N, C, Ho, Wo) and a :class:`GatedPool2dCache`.
    """
    return _gated_forward("gated_pool2d", 2, x, w, kernel_size, stride)


def _gated_forward(op, nd, x, w, kernel_size, stride):
    g = _geometry(op, nd, x, kernel_size, stride, 0, 1, False)
    w = _check_param(op, "w", w, x, (g.kernel, (g.x_shape[1],) + g.kernel),
                     "the gating mask: one per layer or one per channel")
    z = g.empty(g.y_shape)
    z.fill(0)
    for k in g.offsets:
        z += _mask_at(w, k) * window(x, k, g.out, g.stride, g.dilation)
    gate = 0.5 * (1 + np.tanh(0.5 * z))  # sigmoid without overflow
    ym, mc, ya, ac = _branches(op, nd, x, kernel_size, stride, 0)
    diff = ym - ya
    y = ya + gate * diff
    return y, GatedPool2dCache(x, w, gate, diff, mc, ac)


def gated_pool2d_backward(dy, cache: GatedPool2dCache):
    """Gradient of :func:`gated_pool2d_forward`. With ``dz = dy (max - avg) s (1 - s)``:
    ``dx = max_backward(s dy) + avg_backward((1 - s) dy) + scatter(dz * w)`` and
    ``dw_k = sum dz * x_k`` over each window's offset k (per channel for a per-channel mask).
    Returns ``(dx, dw)``."""
    return _gated_backward("gated_pool2d_backward", dy, cache)


def _gated_backward(op, dy, cache: GatedPool2dCache):
    cache = check_cache(op, cache, GatedPool2dCache)
    g = cache.geometry
    nd = len(g.out)
    dy = check_dy(op, dy, g.y_shape, g.dtype)
    s = cache.gate
    dx = _branch_backward(op, dy * s, cache.max_cache, dy * (1 - s), cache.avg_cache)
    dz = dy * cache.diff
    dz *= s * (1 - s)
    dw = np.empty(cache.w.shape, dtype=g.dtype)
    dgate = g.empty(g.x_shape, dy.dtype)

    def add(buf):
        for k in g.offsets:
            window_add(buf, k, dz * _mask_at(cache.w, k), g.out, g.stride, g.dilation)

    _scatter_into(dgate, (slice(None),), g, add)
    for k in g.offsets:
        prod = dz * window(cache.x, k, g.out, g.stride, g.dilation)
        if cache.w.ndim == nd:
            dw[k] = prod.sum()
        else:
            dw[(slice(None), *k)] = prod.sum(axis=(0, *range(2, 2 + nd)))
    dx += dgate
    return dx, dw


# ------------------------------------------------------------------ 1-D and 3-D: the same code

MixedPool1dCache = MixedPool3dCache = MixedPool2dCache
MixedMaxAvgPool1dCache = MixedMaxAvgPool3dCache = MixedMaxAvgPool2dCache
GatedPool1dCache = GatedPool3dCache = GatedPool2dCache


def mixed_pool1d_forward(x, *, kernel_size, stride=None, padding=0, rng, training,
                         granularity="layer", eval_lambda=None):
    """Yu et al.'s mixed pooling over x (N, C, L) (see :func:`mixed_pool2d_forward`)."""
    return _mixed_forward("mixed_pool1d", 1, x, kernel_size, stride, padding, rng, training,
                          granularity, eval_lambda)


def mixed_pool1d_backward(dy, cache: MixedPool2dCache):
    """Gradient of :func:`mixed_pool1d_forward` with the recorded lambda."""
    return _mixed_backward("mixed_pool1d_backward", dy, cache)


def mixed_pool3d_forward(x, *, kernel_size, stride=None, padding=0, rng, training,
                         granularity="layer", eval_lambda=None):
    """Yu et al.'s mixed pooling over x (N, C, D, H, W) (see :func:`mixed_pool2d_forward`)."""
    return _mixed_forward("mixed_pool3d", 3, x, kernel_size, stride, padding, rng, training,
                          granularity, eval_lambda)


def mixed_pool3d_backward(dy, cache: MixedPool2dCache):
    """Gradient of :func:`mixed_pool3d_forward` with the recorded lambda."""
    return _mixed_backward("mixed_pool3d_backward", dy, cache)


def mixed_maxavg_pool1d_forward(x, a, *, kernel_size, stride=None):
    """Lee et al.'s mixed max-average pooling over x (N, C, L) (see
    :func:`mixed_maxavg_pool2d_forward`)."""
    return _maxavg_forward("mixed_maxavg_pool1d", 1, x, a, kernel_size, stride)


def mixed_maxavg_pool1d_backward(dy, cache: MixedMaxAvgPool2dCache):
    """Gradient of :func:`mixed_maxavg_pool1d_forward`: ``(dx, da)``."""
    return _maxavg_backward("mixed_maxavg_pool1d_backward", dy, cache)


def mixed_maxavg_pool3d_forward(x, a, *, kernel_size, stride=None):
    """Lee et al.'s mixed max-average pooling over x (N, C, D, H, W) (see
    :func:`mixed_maxavg_pool2d_forward`)."""
    return _maxavg_forward("mixed_maxavg_pool3d", 3, x, a, kernel_size, stride)


def mixed_maxavg_pool3d_backward(dy, cache: MixedMaxAvgPool2dCache):
    """Gradient of :func:`mixed_maxavg_pool3d_forward`: ``(dx, da)``."""
    return _maxavg_backward("mixed_maxavg_pool3d_backward", dy, cache)


def gated_pool1d_forward(x, w, *, kernel_size, stride=None):
    """Lee et al.'s gated pooling over x (N, C, L), w (KL,) or (C, KL) (see
    :func:`gated_pool2d_forward`)."""
    return _gated_forward("gated_pool1d", 1, x, w, kernel_size, stride)


def gated_pool1d_backward(dy, cache: GatedPool2dCache):
    """Gradient of :func:`gated_pool1d_forward`: ``(dx, dw)``."""
    return _gated_backward("gated_pool1d_backward", dy, cache)


def gated_pool3d_forward(x, w, *, kernel_size, stride=None):
    """Lee et al.'s gated pooling over x (N, C, D, H, W), w (KD, KH, KW) or (C, KD, KH, KW)
    (see :func:`gated_pool2d_forward`)."""
    return _gated_forward("gated_pool3d", 3, x, w, kernel_size, stride)


def gated_pool3d_backward(dy, cache: GatedPool2dCache):
    """Gradient of :func:`gated_pool3d_forward`: ``(dx, dw)``."""
    return _gated_backward("gated_pool3d_backward", dy, cache)
