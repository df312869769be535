"""Synchronized batch normalization: the statistics of the global batch, over every rank.

In data-parallel training each rank sees ``n_r`` of the batch's ``n`` examples; per-rank batch
norm (the default) normalizes with the rank's own statistics, which differ from the
one-process run and get noisy when ``n_r`` is small. :class:`SyncBatchNorm` allreduces them:

- forward (training): the per-channel count and sum, then the sum of squared deviations
  from the global mean (two allreduces of C + 1 and C values: the two-pass variance, as the
  one-process kernel computes it), give the global mean and biased variance; the running
  statistics are updated with the unbiased global variance, identically on every rank;
- backward: with ``M`` values per channel over all ranks (``m_r`` here) and the rank's
  upstream gradient ``dy_r`` of its own mean loss, the one-process formula in the global
  scale is ``dx = gamma inv_std / M (M dy - sum dy - xhat sum dy xhat)`` with the sums over
  every rank of ``dy`` rescaled to the global mean loss (``dy_r m_r / M``). Converting back
  to the rank's scale gives ``dx_r = gamma inv_std (dy_r - (B + xhat G) / m_r)`` with ``B``
  and ``G`` the allreduced ``sum(dy_r) m_r / M`` and ``sum(dy_r xhat) m_r / M``: one
  allreduce of 2C values. The parameter gradients stay the rank's own sums, which
  :class:`~convprop.distributed.DataParallel` weights by ``n_r / n`` like every gradient.

With one process it equals :class:`~convprop.layers.BatchNorm2d` (and 1d/3d: it accepts every
rank they do). A rank running a placeholder example (``comm.placeholder``) contributes
nothing to the sums.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..functional.normalization import BatchNormCache, _channel_dot, _channel_sum
from ..layers._util import accumulate
from ..layers.normalization import _BatchNorm
from .comm import Comm, world

__all__ = ["SyncBatchNorm", "SyncBatchNormCache"]


class SyncBatchNormCache(NamedTuple):
    xhat: np.ndarray
    inv_std: np.ndarray   # (C,)
    gamma: np.ndarray     # (C,)
    m_local: int          # values per channel on this rank (0 for a placeholder)
    m_total: int          # over every rank


class SyncBatchNorm(_BatchNorm):
    """Batch normalization with statistics over every rank of ``comm`` (default
    :func:`~convprop.distributed.world`), for inputs (N, C), (N, C, L), (N, C, H, W) or
    (N, C, D, H, W). Arguments and buffers as :class:`~convprop.layers.BatchNorm2d`;
    evaluation uses the running statistics, which are identical on every rank."""

    _op = "SyncBatchNorm"
    _ndims = (2, 3, 4, 5)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *, dtype=np.float32,
                 comm: Comm | None = None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats,
                         dtype=dtype)
        self.comm = world() if comm is None else comm

    @classmethod
    def convert(cls, module, comm: Comm | None = None):
        """Replace every BatchNorm1d/2d/3d inside ``module`` (in place) by a SyncBatchNorm
        with the same hyperparameters, parameters and buffers; returns ``module`` (or the
        replacement when ``module`` itself is a batch norm)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, cls):
            new = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats, comm=comm,
                      dtype=(module.weight.value.dtype if module.affine else np.float32))
            new.load_state_dict(module.state_dict())
            return new
        for name, child in list(module.named_children()):
            setattr(module, name, cls.convert(child, comm))
        return module

    def forward(self, x, *, training: bool = False):
        if not training and self.track_running_stats:
            return super().forward(x, training=False)
        op = self._op
        if getattr(x, "ndim", 0) not in self._ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{op}: x must be 2-D to 5-D with {self.num_features} channels on "
                             f"axis 1, got shape {getattr(x, 'shape', type(x).__name__)}")
        comm, c, dt = self.comm, self.num_features, x.dtype
        keep = 0.0 if comm.placeholder else 1.0
        m_local = 0 if comm.placeholder else x.size // c
        head = np.empty(c + 1, np.float64)
        head[:c] = _channel_sum(x) * keep
        head[c] = m_local
        comm.allreduce_(head)
        m = int(head[c])
        if m <= 1:
            raise ValueError(f"{op}: expected more than 1 value per channel over all ranks "
                             f"when training, got {m}")
        mean = head[:c] / m
        bshape = (1, c) + (1,) * (x.ndim - 2)
        xc = x - mean.reshape(bshape).astype(dt)
        ss = _channel_dot(xc, xc).astype(np.float64) * keep
        var = comm.allreduce_(np.ascontiguousarray(ss)) / m
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(dt)
        if self.track_running_stats:
            self.set_buffer("num_batches_tracked", self.num_batches_tracked + 1)
            mom = self.momentum if self.momentum is not None else \
                1.0 / float(self.num_batches_tracked)
            rm, rv = self.running_mean, self.running_var
            self.set_buffer("running_mean", ((1 - mom) * rm + mom * mean).astype(rm.dtype))
            self.set_buffer("running_var",
                            ((1 - mom) * rv + mom * var * m / (m - 1)).astype(rv.dtype))
        gamma = self.weight.value if self.affine else np.ones(c, dt)
        beta = self.bias.value if self.affine else np.zeros(c, dt)
        xhat = xc * inv_std.reshape(bshape)
        y = xhat * gamma.reshape(bshape) + beta.reshape(bshape)
        return y, SyncBatchNormCache(xhat, inv_std, gamma, m_local, m)

    def backward(self, dy, cache, *, need_dx: bool = True):
        if isinstance(cache, BatchNormCache):  # evaluation: the per-rank affine map
            return super().backward(dy, cache, need_dx=need_dx)
        if not isinstance(cache, SyncBatchNormCache):
            raise TypeError(f"{self._op}.backward: cache must be the SyncBatchNormCache of its "
                            f"forward, got {type(cache).__name__}")
        xhat, c = cache.xhat, cache.gamma.shape[0]
        dbeta = _channel_sum(dy).astype(np.float64)
        dgamma = _channel_dot(dy, xhat).astype(np.float64)
        if self.affine:
            accumulate(self.weight, dgamma.astype(xhat.dtype))
            accumulate(self.bias, dbeta.astype(xhat.dtype))
        if not need_dx:
            # the other ranks still expect this rank in the allreduce
            self.comm.allreduce_(np.zeros(2 * c))
            return None
        scale = cache.m_local / cache.m_total
        sums = np.concatenate([dbeta, dgamma]) * scale
        self.comm.allreduce_(sums)
        bshape = (1, c) + (1,) * (xhat.ndim - 2)
        if cache.m_local == 0:  # a placeholder: weight 0, its dx is never used
            return np.zeros_like(dy)
        dt = xhat.dtype
        b = (sums[:c] / cache.m_local).astype(dt).reshape(bshape)
        g = (sums[c:] / cache.m_local).astype(dt).reshape(bshape)
        return (cache.gamma * cache.inv_std).reshape(bshape) * (dy - b - xhat * g)
