"""Normalization modules: ``BatchNorm1d/2d/3d`` and ``LocalResponseNorm``."""

from __future__ import annotations


import numpy as np

from .. import functional as F
from .._checks import as_float_array, positive_int
from ..limits import check_array
from ._util import accumulate, check_input, float_dtype
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LocalResponseNorm"]


class _BatchNorm(Module):
    """Shared body of BatchNorm1d/2d/3d; subclasses set ``_op`` and ``_ndims``. The
    hyperparameters go through the kernel's own check (:func:`convprop.functional.
    batch_norm_args`), so module and kernel accept the same values."""

    _op = "BatchNorm"
    _ndims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *, dtype=np.float32):
        super().__init__()
        op = self._op
        self.num_features = positive_int(op, "num_features", num_features)
        self.momentum, self.eps = F.batch_norm_args(op, momentum, eps, momentum_none=True)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dt = float_dtype(op, dtype)
        c = self.num_features
        check_array(op, "each of the per-channel parameters", (c,), dt,
                    because=f"num_features={c}")
        if self.affine:
            self.weight = Parameter(np.ones(c, dtype=dt))
            self.bias = Parameter(np.zeros(c, dtype=dt))
        else:
            self.weight = self.bias = None
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, dtype=dt))
            self.register_buffer("running_var", np.ones(c, dtype=dt))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def forward(self, x, *, training: bool = False):
        op = self._op
        as_float_array(op, "x", x)
        if x.ndim not in self._ndims or x.shape[1] != self.num_features:
            want = " or ".join(f"{n}-D" for n in self._ndims)
            raise ValueError(f"{op}: x must be {want} with {self.num_features} channels on "
                             f"axis 1, got shape {x.shape}")
        check_input(op, x, (self.weight, self.bias))
        dt, c = x.dtype, self.num_features
        gamma = self.weight.value if self.affine else np.ones(c, dtype=dt)
        beta = self.bias.value if self.affine else np.zeros(c, dtype=dt)
        use_batch = training or not self.track_running_stats
        if self.track_running_stats:
            rm, rv = self.running_mean, self.running_var
            momentum = self.momentum
            if training:
                self.set_buffer("num_batches_tracked", self.num_batches_tracked + 1)
                if momentum is None:  # cumulative moving average, as in PyTorch
                    momentum = 1.0 / float(self.num_batches_tracked)
            else:
                momentum = 0.0  # unused: evaluation leaves the statistics alone
        else:
            rm = rv = None  # batch statistics always, nothing to update
            momentum = 0.0
        y, cache = F.batch_norm_forward(x, gamma, beta, rm, rv, training=use_batch,
                                        momentum=momentum, eps=self.eps)
        if training and self.track_running_stats:
            self.set_buffer("running_mean", cache.running_mean)
            self.set_buffer("running_var", cache.running_var)
        return y, cache

    def backward(self, dy, cache, *, need_dx: bool = True):
        dx, dgamma, dbeta = F.batch_norm_backward(dy, cache)
        if self.affine:
            accumulate(self.weight, dgamma)
            accumulate(self.bias, dbeta)
        return dx

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N,) or (N, L) per channel: x (N, C) or (N, C, L).

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the biased batch variance in
    training; the running variance is updated with the unbiased one, as in PyTorch.
    Buffers (PyTorch's state_dict names): running_mean, running_var, num_batches_tracked.
    """

    _op = "BatchNorm1d"
    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization per channel over (N, H, W): x (N, C, H, W).

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the biased batch variance in
    training; the running variance is updated with the unbiased one, as in PyTorch.
    Buffers (PyTorch's state_dict names): running_mean, running_var, num_batches_tracked.
    """

    _op = "BatchNorm2d"
    _ndims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalization per channel over (N, D, H, W): x (N, C, D, H, W), as
    ``torch.nn.BatchNorm3d`` (same statistics and buffers as BatchNorm2d)."""

    _op = "BatchNorm3d"
    _ndims = (5,)


class LocalResponseNorm(Module):
    """Local response normalization across channels, as ``torch.nn.LocalResponseNorm``:
    ``y_c = x_c / (k + alpha/size * sum_{c' near c} x_{c'}^2) ** beta``, x (N, C, ...)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = F.lrn_args("LocalResponseNorm", size, alpha,
                                                              beta, k)

    def forward(self, x, *, training: bool = False):
        return F.local_response_norm_forward(x, size=self.size, alpha=self.alpha,
                                             beta=self.beta, k=self.k)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.local_response_norm_backward(dy, cache)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
