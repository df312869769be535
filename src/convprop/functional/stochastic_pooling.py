"""Stochastic pooling (Zeiler and Fergus 2013), with the sampled positions recorded.

M. D. Zeiler and R. Fergus, "Stochastic Pooling for Regularization of Deep Convolutional
Neural Networks", ICLR 2013 (arXiv:1301.3557). In each pooling region R_j of non-negative
activations a_i the probabilities are ``p_i = a_i / sum_{k in R_j} a_k``; in training the
output is the activation at one position ``l ~ Multinomial(p)`` (the gradient, as in max
pooling, flows to that position only); at test time the output is the probabilistic
weighting ``sum_i p_i a_i`` (the paper's test-time rule), a deterministic function whose
exact gradient the backward returns.

Where the paper is silent, convprop chooses (and the docstrings repeat):

- an all-zero region has no distribution; training samples its position *uniformly* (the
  output is 0 either way, and the gradient goes to that recorded position, as a switch);
  evaluation outputs 0 and passes no gradient there (``sum a^2 / sum a`` has no derivative
  at a = 0);
- negative or non-finite activations are an error, never clipped: the paper pools the
  outputs of a ReLU;
- one uniform draw per window, float64 whatever x's dtype, position = the first offset in
  row-major window order whose cumulative activation exceeds ``u * sum`` (the inverse CDF),
  so one seed gives one sample and a zero activation is never picked.

The windows come from the engine's N-d primitive and the pooling geometry helpers of
:mod:`.pooling`; the training backward is max pooling's switch scatter. 1-D (N, C, L) and
3-D (N, C, D, H, W) are the same code with another count of spatial axes.

Loop reference: :func:`convprop.reference.stochastic_pool` (given the draws),
:func:`convprop.reference.stochastic_pool_eval`, :func:`convprop.reference.scatter_to_offsets` (the
training backward).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import check_cache, check_dy, training_rng
from ._engine.windows import window, window_add
from .pooling import MaxPoolCache, PoolGeometry, _geometry, _max_backward, _scatter_into

__all__ = ["StochasticPool1dCache", "StochasticPool2dCache", "StochasticPool3dCache",
           "stochastic_pool1d_forward", "stochastic_pool1d_backward",
           "stochastic_pool2d_forward", "stochastic_pool2d_backward",
           "stochastic_pool3d_forward", "stochastic_pool3d_backward"]


@dataclass(frozen=True)
class StochasticPool2dCache:
    """What the backward routes through.

    Training: ``offset`` (N, C, Ho, Wo), the sampled kernel offset of each window (row-major
    flat index into the window, as max pooling's ``argmax``); ``indices`` gives the same as
    flat indices into each H*W plane (PyTorch's ``return_indices`` convention).
    Evaluation: ``offset`` is None and ``x`` (the input, read only) is kept for the exact
    gradient of the probability-weighted average."""

    geometry: PoolGeometry
    training: bool
    offset: np.ndarray | None
    x: np.ndarray | None

    @property
    def x_shape(self) -> tuple:
        return self.geometry.x_shape

    @property
    def indices(self) -> np.ndarray:
        """Flat index of each sampled position into its input plane (training only)."""
        if self.offset is None:
            raise ValueError(f"stochastic_pool{len(self.geometry.out)}d: an evaluation-mode "
                             f"cache has no sampled indices")
        return MaxPoolCache(self.geometry, self.offset).indices


def _check_args(op: str, x, kernel_size, stride, rng, training, nd: int = 2):
    g = _geometry(op, nd, x, kernel_size, stride, 0, 1, False)
    training = training_rng(op, training, rng)
    if x.size and not (np.isfinite(x).all() and x.min() >= 0):
        bad = x[~(np.isfinite(x) & (x >= 0))].flat[0]
        raise ValueError(f"{op}: x must be finite and non-negative (the probabilities are "
                         f"proportional to the activations; pool the output of a ReLU), "
                         f"got {bad}")
    return g, training


def _windows(g: PoolGeometry, x: np.ndarray) -> list:
    return [window(x, o, g.out, g.stride, g.dilation) for o in g.offsets]


def _sample_offsets(g: PoolGeometry, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One position per window by the inverse CDF of ``p_i = a_i / sum a`` (module docstring);
    an all-zero window uniformly."""
    wins = _windows(g, x)
    k = len(wins)
    itype = np.uint8 if k <= 256 else np.int32
    u = rng.random(g.y_shape)  # the only draw: one float64 uniform per window
    total = np.zeros(g.y_shape, dtype=np.float64)
    for w in wins:
        total += w
    t = u * total
    # offset = the first k with cum_k > t = how many cum_k <= t (cum never decreases)
    count = np.zeros(g.y_shape, dtype=np.int32)
    cum = np.zeros(g.y_shape, dtype=np.float64)
    for w in wins:
        cum += w
        count += cum <= t
    zero = total == 0
    count[zero] = np.minimum((u[zero] * k).astype(np.int32), k - 1)
    over = count >= k
    if over.any():  # u * total rounded up to total itself: the last position with mass
        last = np.zeros(int(over.sum()), dtype=np.int32)
        for i, w in enumerate(wins):
            last[w[over] > 0] = i
        count[over] = last
    return count.astype(itype)


def _gather(g: PoolGeometry, x: np.ndarray, offset: np.ndarray) -> np.ndarray:
    y = g.empty(g.y_shape)
    for i, w in enumerate(_windows(g, x)):
        np.copyto(y, w, where=offset == i)
    return y


def _weighted_average(g: PoolGeometry, x: np.ndarray):
    """``(y, s1)``: ``y = sum a^2 / sum a`` per window (0 for an all-zero window), s1 = sum a."""
    s1 = g.empty(g.y_shape)
    s2 = g.empty(g.y_shape)
    s1.fill(0)
    s2.fill(0)
    for w in _windows(g, x):
        s1 += w
        s2 += w * w
    y = s2 / np.where(s1 > 0, s1, 1).astype(s1.dtype, copy=False)
    return y, s1


def stochastic_pool2d_forward(x, *, kernel_size, stride=None, rng, training):
    """2-D stochastic pooling (Zeiler and Fergus 2013; see the module docstring).

    With ``p_i = a_i / sum_{k in window} a_k`` over each window of x:

    - training: ``y = a_l`` with ``l ~ Multinomial(p)`` drawn from ``rng`` (one float64
      uniform per window); the sampled offset is recorded in the cache, and the backward
      sends dy to it alone (overlapping windows add). An all-zero window samples uniformly.
    - evaluation: ``y = sum_i p_i a_i = sum a^2 / sum a`` (the paper's probabilistic
      weighting), 0 for an all-zero window; ``rng`` is not used (may be None).

    Args:
        x: (N, C, H, W) float32/float64, finite and non-negative.
        kernel_size, stride (None: kernel_size): int or (h, w) pair; no padding.
        rng: numpy.random.Generator (required when training).
        training: bool.
    Returns:
        y (N, C, Ho, Wo) in x's dtype and a :class:`StochasticPool2dCache`.
    """
    return _forward("stochastic_pool2d", 2, x, kernel_size, stride, rng, training)


def _forward(op, nd, x, kernel_size, stride, rng, training):
    g, training = _check_args(op, x, kernel_size, stride, rng, training, nd)
    if training:
        offset = _sample_offsets(g, x, rng)
        return _gather(g, x, offset), StochasticPool2dCache(g, True, offset, None)
    y, _ = _weighted_average(g, x)
    return y, StochasticPool2dCache(g, False, None, x)


def stochastic_pool2d_backward(dy, cache: StochasticPool2dCache):
    """Gradient of :func:`stochastic_pool2d_forward`; never draws.

    Training: dy goes to each window's recorded position (overlaps add). Evaluation: the
    exact gradient of ``y = sum a^2 / sum a``, ``dy/da_k = (2 a_k - y) / sum a`` for every
    window containing a_k (none from an all-zero window).
    dy (N, C, Ho, Wo) in the forward's dtype -> dx (N, C, H, W)."""
    return _backward("stochastic_pool2d_backward", dy, cache)


def _backward(op, dy, cache: StochasticPool2dCache):
    cache = check_cache(op, cache, StochasticPool2dCache)
    g = cache.geometry
    if cache.training:
        return _max_backward(op, dy, MaxPoolCache(g, cache.offset))
    dy = check_dy(op, dy, g.y_shape, g.dtype)
    y, s1 = _weighted_average(g, cache.x)
    scale = dy / np.where(s1 > 0, s1, 1).astype(s1.dtype, copy=False)
    scale *= s1 > 0
    dx = g.empty(g.x_shape, dy.dtype)

    def add(buf):
        for o, w in zip(g.offsets, _windows(g, cache.x)):
            part = 2 * w
            part -= y
            part *= scale
            window_add(buf, o, part, g.out, g.stride, g.dilation)

    _scatter_into(dx, (slice(None),), g, add)
    return dx


StochasticPool1dCache = StochasticPool3dCache = StochasticPool2dCache


def stochastic_pool1d_forward(x, *, kernel_size, stride=None, rng, training):
    """Stochastic pooling over x (N, C, L) (see :func:`stochastic_pool2d_forward`)."""
    return _forward("stochastic_pool1d", 1, x, kernel_size, stride, rng, training)


def stochastic_pool1d_backward(dy, cache: StochasticPool2dCache):
    """Gradient of :func:`stochastic_pool1d_forward`; never draws."""
    return _backward("stochastic_pool1d_backward", dy, cache)


def stochastic_pool3d_forward(x, *, kernel_size, stride=None, rng, training):
    """Stochastic pooling over x (N, C, D, H, W) (see :func:`stochastic_pool2d_forward`;
    positions in (d, h, w) row-major window order)."""
    return _forward("stochastic_pool3d", 3, x, kernel_size, stride, rng, training)


def stochastic_pool3d_backward(dy, cache: StochasticPool2dCache):
    """Gradient of :func:`stochastic_pool3d_forward`; never draws."""
    return _backward("stochastic_pool3d_backward", dy, cache)
