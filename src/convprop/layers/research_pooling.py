"""Pooling modules from the research literature that PyTorch lacks: stochastic pooling (Zeiler
and Fergus 2013), Yu et al.'s random mixed pooling (2014), and Lee et al.'s learned mixed
max-average and gated pooling (2016). The kernels, their equations, the papers and the
choices made where a paper is silent are in :mod:`convprop.functional.stochastic_pooling`
and :mod:`convprop.functional.mixed_pooling`.

The random modules own their Generator in the attribute ``rng`` (as ``Dropout``: None makes a
fresh unseeded one), so a training loop can checkpoint and restore it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import positive_int
from ..functional import mixed_pooling as _mixed
from ..functional import stochastic_pooling as _stochastic
from ..functional.mixed_pooling import granularity_arg
from ..functional.pooling import pool_args
from ._util import accumulate, check_input, float_dtype
from .module import Module, Parameter

__all__ = ["StochasticPool1d", "StochasticPool2d", "StochasticPool3d", "MixedPool1d",
           "MixedPool2d", "MixedPool3d", "MixedMaxAvgPool1d", "MixedMaxAvgPool2d",
           "MixedMaxAvgPool3d", "GatedPool1d", "GatedPool2d", "GatedPool3d"]


class _Nd(Module):
    """The 1-D, 2-D and 3-D modules of one family differ only in ``nd`` (the kernels'
    dimension, which picks ``<op>{nd}d_forward`` / ``_backward``) and their name."""

    nd = 2
    _module = None   # the functional module holding the kernels
    _kernel = ""     # the kernels' stem, e.g. "mixed_pool"

    @property
    def _op(self) -> str:
        return type(self).__name__

    def _forward_fn(self):
        return getattr(self._module, f"{self._kernel}{self.nd}d_forward")

    def _backward_fn(self):
        return getattr(self._module, f"{self._kernel}{self.nd}d_backward")


def _generator(op: str, rng) -> np.random.Generator:
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"{op}: rng must be a numpy.random.Generator or None, "
                        f"got {type(rng).__name__}")
    return np.random.default_rng() if rng is None else rng


def _channels(op: str, per_channel: bool, channels) -> int | None:
    if not isinstance(per_channel, (bool, np.bool_)):
        raise TypeError(f"{op}: per_channel must be a bool, got {per_channel!r}")
    if per_channel and channels is None:
        raise ValueError(f"{op}: per_channel=True needs channels (the number of input "
                         f"channels), got None")
    return None if channels is None else positive_int(op, "channels", channels)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z))


class _StochasticPoolNd(_Nd):
    """Stochastic pooling (Zeiler and Fergus 2013): in training one position per window
    sampled with probability proportional to its (non-negative) activation; in evaluation
    the probability-weighted average ``sum a^2 / sum a``. x (N, C, *S), non-negative (put
    it after a ReLU) -> y (N, C, *O). No padding; ``stride`` defaults to the kernel."""

    _module, _kernel = _stochastic, "stochastic_pool"

    def __init__(self, kernel_size, stride=None, *, rng: np.random.Generator | None = None):
        super().__init__()
        self.kernel_size, self.stride, _, _ = pool_args(self._op, self.nd, kernel_size, stride,
                                                        0)
        self.rng = _generator(self._op, rng)

    def forward(self, x, *, training: bool = False):
        return self._forward_fn()(x, kernel_size=self.kernel_size, stride=self.stride,
                                  rng=self.rng, training=training)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return self._backward_fn()(dy, cache)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class _MixedPoolNd(_Nd):
    """Yu et al.'s mixed pooling (2014): each training forward pass draws lambda in {0, 1}
    (1 = max pooling, 0 = average pooling) at ``granularity`` "layer", "channel" or "window"
    from the module's ``rng``; the backward follows the recorded choice.

    Evaluation follows the paper's rule: the pooling chosen more often in training. The
    module counts the training draws in the buffers ``max_count`` (how many were max) and
    ``draw_count``: one count per layer for "layer", per channel for "channel" and "window"
    (every window of a channel counts once per pass). The majority is applied, a tie (and a
    module never trained) going to max pooling. For "channel" / "window" the per-channel
    buffers get their size from ``channels`` or, when it is None, from the first training
    batch (pass ``channels`` to load a state_dict into a fresh module).
    """

    _module, _kernel = _mixed, "mixed_pool"

    def __init__(self, kernel_size, stride=None, padding=0, granularity: str = "layer", *,
                 rng: np.random.Generator | None = None, channels: int | None = None):
        super().__init__()
        op = self._op
        self.kernel_size, self.stride, self.padding, _ = pool_args(op, self.nd, kernel_size,
                                                                   stride, padding)
        self.granularity = granularity_arg(op, granularity)
        self.rng = _generator(op, rng)
        channels = _channels(op, False, channels)
        shape = () if granularity == "layer" else ((channels,) if channels else (0,))
        self.register_buffer("max_count", np.zeros(shape, dtype=np.int64))
        self.register_buffer("draw_count", np.zeros(shape, dtype=np.int64))

    @property
    def eval_lambda(self) -> np.ndarray:
        """The evaluation-time choice: 1 (max) where at least half the draws were max."""
        if self.max_count.shape == (0,):
            return np.array(1)
        return (2 * self.max_count >= self.draw_count).astype(np.int64)

    def _count(self, x, lam: np.ndarray) -> None:
        c = x.shape[1]
        if self.granularity == "layer":
            self.set_buffer("max_count", self.max_count + int(lam))
            self.set_buffer("draw_count", self.draw_count + 1)
            return
        if self.max_count.shape == (0,):
            self.set_buffer("max_count", np.zeros(c, dtype=np.int64))
            self.set_buffer("draw_count", np.zeros(c, dtype=np.int64))
        if self.granularity == "channel":
            hits, draws = lam.astype(np.int64), 1
        else:
            hits = lam.sum(axis=(0, *range(2, lam.ndim)))
            draws = lam.size // c
        self.set_buffer("max_count", self.max_count + hits)
        self.set_buffer("draw_count", self.draw_count + draws)

    def forward(self, x, *, training: bool = False):
        if (self.granularity != "layer" and self.max_count.shape != (0,)
                and getattr(x, "ndim", 0) == self.nd + 2
                and x.shape[1] != self.max_count.shape[0]):
            raise ValueError(f"{self._op}: x has {x.shape[1]} channels but the module counts "
                             f"{self.max_count.shape[0]}, got shape {x.shape}")
        y, cache = self._forward_fn()(
            x, kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
            rng=self.rng if training else None, training=training,
            granularity=self.granularity, eval_lambda=None if training else self.eval_lambda)
        if training:
            self._count(x, cache.lam)
        return y, cache

    def backward(self, dy, cache, *, need_dx: bool = True):
        return self._backward_fn()(dy, cache)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, granularity={self.granularity!r}")


class _LogitCache(NamedTuple):
    kernel: object      # the kernel's cache
    a: np.ndarray       # sigmoid(logit) used in the forward


class _MixedMaxAvgPoolNd(_Nd):
    """Lee et al.'s mixed max-average pooling (2016): ``y = a max + (1 - a) avg`` with a
    learned ``a`` in [0, 1], one per layer (the default) or one per channel
    (``per_channel=True``, needs ``channels``).

    The trained Parameter is ``logit`` and ``a = sigmoid(logit)`` (the property ``a``): the
    paper requires a in [0, 1] but names no mechanism; a logit keeps it there under any
    optimizer step, where clipping would stall its gradient at the ends. ``logit`` starts at
    0 (a = 1/2). No padding.
    """

    _module, _kernel = _mixed, "mixed_maxavg_pool"

    def __init__(self, kernel_size, stride=None, per_channel: bool = False,
                 channels: int | None = None, *, dtype=np.float32):
        super().__init__()
        op = self._op
        self.kernel_size, self.stride, _, _ = pool_args(op, self.nd, kernel_size, stride, 0)
        self.channels = _channels(op, per_channel, channels)
        self.per_channel = bool(per_channel)
        dt = float_dtype(op, dtype)
        self.logit = Parameter(np.zeros((self.channels,) if per_channel else (1,), dtype=dt))

    @property
    def a(self) -> np.ndarray:
        return _sigmoid(self.logit.value)

    def forward(self, x, *, training: bool = False):
        check_input(self._op, x, (self.logit,))
        a = self.a
        y, cache = self._forward_fn()(x, a, kernel_size=self.kernel_size, stride=self.stride)
        return y, _LogitCache(cache, a)

    def backward(self, dy, cache, *, need_dx: bool = True):
        dx, da = self._backward_fn()(dy, cache.kernel)
        accumulate(self.logit, da * (cache.a * (1 - cache.a)))
        return dx

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"per_channel={self.per_channel}")


class _GatedPoolNd(_Nd):
    """Lee et al.'s gated max-average pooling (2016): ``y = s max + (1 - s) avg`` with
    ``s = sigmoid(w . window)`` per window. The Parameter ``weight`` is the gating mask, of
    the window's size (*K) per layer (the paper's setting) or (C, *K) per channel
    (``per_channel=True``, needs ``channels``). It starts at zero (every gate 1/2, an even
    mix): the paper gives no initialisation. No padding.
    """

    _module, _kernel = _mixed, "gated_pool"

    def __init__(self, kernel_size, stride=None, per_channel: bool = False,
                 channels: int | None = None, *, dtype=np.float32):
        super().__init__()
        op = self._op
        self.kernel_size, self.stride, _, _ = pool_args(op, self.nd, kernel_size, stride, 0)
        self.channels = _channels(op, per_channel, channels)
        self.per_channel = bool(per_channel)
        dt = float_dtype(op, dtype)
        shape = ((self.channels,) if per_channel else ()) + tuple(self.kernel_size)
        self.weight = Parameter(np.zeros(shape, dtype=dt))

    def forward(self, x, *, training: bool = False):
        check_input(self._op, x, (self.weight,))
        return self._forward_fn()(x, self.weight.value, kernel_size=self.kernel_size,
                                  stride=self.stride)

    def backward(self, dy, cache, *, need_dx: bool = True):
        dx, dw = self._backward_fn()(dy, cache)
        accumulate(self.weight, dw)
        return dx

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"per_channel={self.per_channel}")


class StochasticPool1d(_StochasticPoolNd):
    """1-D stochastic pooling (see :class:`StochasticPool2d`): x (N, C, L)."""
    nd = 1


class StochasticPool2d(_StochasticPoolNd):
    __doc__ = _StochasticPoolNd.__doc__
    nd = 2


class StochasticPool3d(_StochasticPoolNd):
    """3-D stochastic pooling (see :class:`StochasticPool2d`): x (N, C, D, H, W)."""
    nd = 3


class MixedPool1d(_MixedPoolNd):
    """1-D mixed pooling of Yu et al. (see :class:`MixedPool2d`): x (N, C, L)."""
    nd = 1


class MixedPool2d(_MixedPoolNd):
    __doc__ = _MixedPoolNd.__doc__
    nd = 2


class MixedPool3d(_MixedPoolNd):
    """3-D mixed pooling of Yu et al. (see :class:`MixedPool2d`): x (N, C, D, H, W)."""
    nd = 3


class MixedMaxAvgPool1d(_MixedMaxAvgPoolNd):
    """1-D mixed max-average pooling (see :class:`MixedMaxAvgPool2d`): x (N, C, L)."""
    nd = 1


class MixedMaxAvgPool2d(_MixedMaxAvgPoolNd):
    __doc__ = _MixedMaxAvgPoolNd.__doc__
    nd = 2


class MixedMaxAvgPool3d(_MixedMaxAvgPoolNd):
    """3-D mixed max-average pooling (see :class:`MixedMaxAvgPool2d`): x (N, C, D, H, W)."""
    nd = 3


class GatedPool1d(_GatedPoolNd):
    """1-D gated pooling (see :class:`GatedPool2d`): x (N, C, L), gating mask (K,)."""
    nd = 1


class GatedPool2d(_GatedPoolNd):
    __doc__ = _GatedPoolNd.__doc__
    nd = 2


class GatedPool3d(_GatedPoolNd):
    """3-D gated pooling (see :class:`GatedPool2d`): x (N, C, D, H, W), mask (KD, KH, KW)."""
    nd = 3
