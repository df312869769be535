"""Binarized layers: ``BinaryLinear``, ``BinaryConv2d`` and the ``Sign`` activation
(BinaryConnect / BNN, Courbariaux, Hubara et al. 2016; XNOR-Net, Rastegari et al. 2016), over
the kernels of :mod:`convprop.functional.binary`.

A binary layer keeps a *latent* real-valued weight (its Parameter, which the optimizer
updates) and uses its binarization ``W~ = alpha * sign(W)`` in the forward; the backward
takes the gradient w.r.t. W~ back to W through the straight-through estimator. Compose them
as the papers do: BNN is ``BinaryLinear -> BatchNorm1d -> Sign -> BinaryLinear ...``;
XNOR-Net is ``Sign -> BinaryConv2d(weight_scale="mean")``; a Binary-Weight-Network is
``BinaryConv2d(weight_scale="mean")`` on real inputs. Biases stay real.

Clipping the latent weights to [-1, 1] (BNN Algorithm 1: ``W <- Clip(W - eta g, -1, 1)``)
is a step *after* the optimizer's update, so it lives beside the optimizer, not in the
forward (a forward never writes its parameters, and evaluating a loaded checkpoint must not
change it): call :func:`clip_latent_weights` after each ``optimizer.step()`` in a hand-written
loop, or pass :class:`ClipLatentWeights` to ``fit(callbacks=...)``, which does it at the end of
every batch. Construction clips the initial weights too.

:func:`pack_binary_weights` exports the binary weights as bits (``np.packbits``), with the
per-filter alphas in float32, for the memory a deployed network would take.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import functional as F
from .._checks import boolean, one_of
from ..functional.binary import (BINARY_WEIGHT_SCALES, binarize_weight_backward,
                                 binarize_weight_forward, sign_backward, sign_forward)
from ._util import accumulate, check_input
from .conv import Conv2d
from .linear import Linear
from .module import Module

__all__ = ["BinaryConv2d", "BinaryLinear", "ClipLatentWeights", "Sign", "clip_latent_weights",
           "pack_binary_weights"]


def _rng_arg(op: str, rng) -> np.random.Generator:
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"{op}: rng must be a numpy.random.Generator or None, "
                        f"got {type(rng).__name__}")
    return np.random.default_rng() if rng is None else rng


class BinaryCache(NamedTuple):
    """The wrapped layer kernel's cache and the weight binarization's cache."""

    layer: object
    weight: object


class Sign(Module):
    """Binary activation ``y = Sign(x)`` (+1 for x >= 0, else -1) with the straight-through
    estimator ``dx = dy * 1_{|x| <= 1}``; ``stochastic=True``: in training, +1 with
    probability ``clip((x + 1) / 2, 0, 1)``, drawn from the module's Generator ``rng``."""

    def __init__(self, stochastic: bool = False, *, rng: np.random.Generator | None = None):
        super().__init__()
        self.stochastic = boolean("Sign", "stochastic", stochastic)
        self.rng = _rng_arg("Sign", rng)

    def forward(self, x, *, training: bool = False):
        return sign_forward(x, stochastic=self.stochastic, training=training, rng=self.rng)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return sign_backward(dy, cache)

    def extra_repr(self) -> str:
        return "stochastic=True" if self.stochastic else ""


class _Binary:
    """The shared part of the binary layers: settings, the binarized forward and the STE
    backward around the float layer's kernel pair."""

    def _binary_setup(self, op, weight_scale, stochastic, rng):
        self.weight_scale = one_of(op, "weight_scale", weight_scale, BINARY_WEIGHT_SCALES)
        self.stochastic = boolean(op, "stochastic", stochastic)
        self.rng = _rng_arg(op, rng)
        self.weight.value = np.clip(self.weight.value, -1, 1)

    def binary_weight(self, *, training: bool = False) -> np.ndarray:
        """The weight the forward uses, ``alpha * sign(W)`` (deterministic unless
        ``stochastic`` and training)."""
        return binarize_weight_forward(self.weight.value, scale=self.weight_scale,
                                       stochastic=self.stochastic, training=training,
                                       rng=self.rng)[0]

    def forward(self, x, *, training: bool = False):
        check_input(type(self).__name__, x, (self.weight, self.bias))
        wb, wcache = binarize_weight_forward(self.weight.value, scale=self.weight_scale,
                                             stochastic=self.stochastic, training=training,
                                             rng=self.rng)
        b = self.bias.value if self.bias is not None else None
        y, cache = self._binary_kernel(x, wb, b)
        return y, BinaryCache(cache, wcache)

    def backward(self, dy, cache, *, need_dx: bool = True):
        dx, dwb, db = self._binary_backward(dy, cache.layer, need_dx)
        accumulate(self.weight, binarize_weight_backward(dwb, cache.weight))
        accumulate(self.bias, db)
        return dx if need_dx else None

    def _binary_repr(self) -> str:
        s = ""
        if self.weight_scale != "none":
            s += f", weight_scale={self.weight_scale!r}"
        if self.stochastic:
            s += ", stochastic=True"
        return s


class BinaryLinear(_Binary, Linear):
    """``y = x @ W~.T + b`` with ``W~ = alpha * sign(W)`` of the latent weight W
    (out_features, in_features): ``weight_scale="none"`` (BNN, alpha = 1) or ``"mean"``
    (XNOR-Net/BWN, alpha = mean |W| per output unit); ``stochastic=True`` binarizes W
    stochastically in training (BinaryConnect), from the Generator ``rng``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 weight_scale: str = "none", stochastic: bool = False,
                 init="torch", rng: np.random.Generator | None = None, dtype=np.float32):
        Linear.__init__(self, in_features, out_features, bias, init=init, rng=rng,
                        dtype=dtype)
        self._binary_setup("BinaryLinear", weight_scale, stochastic, rng)

    def _binary_kernel(self, x, wb, b):
        return F.linear_forward(x, wb, b)

    def _binary_backward(self, dy, cache, need_dx):
        return F.linear_backward(dy, cache, need_dx=need_dx)

    def extra_repr(self) -> str:
        return Linear.extra_repr(self) + self._binary_repr()


class BinaryConv2d(_Binary, Conv2d):
    """2-D convolution with the binarized latent weight ``W~ = alpha * sign(W)``
    (out_channels, in_channels/groups, KH, KW); ``weight_scale="mean"``: XNOR-Net's
    ``alpha_f = mean |W[f]|`` per output filter. Other arguments as :class:`Conv2d`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, *,
                 weight_scale: str = "none", stochastic: bool = False, init="torch",
                 rng: np.random.Generator | None = None, dtype=np.float32,
                 mode: str = "cross-correlation"):
        Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                        dilation, groups, bias, init=init, rng=rng, dtype=dtype, mode=mode)
        self._binary_setup("BinaryConv2d", weight_scale, stochastic, rng)

    def _binary_kernel(self, x, wb, b):
        return F.conv2d_forward(x, wb, b, **self._kernel_args())

    def _binary_backward(self, dy, cache, need_dx):
        return F.conv2d_backward(dy, cache, need_dx=need_dx)

    def extra_repr(self) -> str:
        return Conv2d.extra_repr(self) + self._binary_repr()


def _binary_layers(model: Module):
    if not isinstance(model, Module):
        raise TypeError(f"clip_latent_weights: model must be a Module, "
                        f"got {type(model).__name__}")
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _Binary)]


def clip_latent_weights(model: Module) -> int:
    """Clip the latent weight of every binary layer of ``model`` to [-1, 1] (a new array
    bound to ``weight.value``; optimizer state is untouched). Call it after each optimizer
    step. Returns the number of layers clipped."""
    layers = _binary_layers(model)
    for _, m in layers:
        m.weight.value = np.clip(m.weight.value, -1, 1)
    return len(layers)


class ClipLatentWeights:
    """``fit`` callback: :func:`clip_latent_weights` at the start of training and after
    every optimizer step (the ``on_batch_end`` hook). Every other ``on_*`` hook of
    :class:`convprop.train.Callback` is a no-op, answered by ``__getattr__`` so that hooks
    the loop gains later need no change here (the layer tier does not import the training
    package)."""

    def on_train_begin(self, state) -> None:
        clip_latent_weights(state.model)

    def on_batch_end(self, state, batch) -> None:
        clip_latent_weights(state.model)

    def __getattr__(self, name):
        if name.startswith("on_"):
            return _no_op
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")


def _no_op(*args, **kwargs) -> None:
    return None


def pack_binary_weights(model: Module) -> dict:
    """The deployable form of every binary layer's weight: ``{name + ".bits": uint8 array of
    np.packbits(sign(W) > 0) (+1 -> bit 1), name + ".shape": int64 shape, and with
    weight_scale="mean" name + ".alpha": float32 (C_out,)}``. Biases and the other layers'
    parameters are not included. Unpack with ``np.unpackbits(bits, count=prod(shape))``."""
    out = {}
    for name, m in _binary_layers(model):
        w = m.weight.value
        out[f"{name}.bits"] = np.packbits((w >= 0).ravel())
        out[f"{name}.shape"] = np.array(w.shape, dtype=np.int64)
        if m.weight_scale == "mean":
            out[f"{name}.alpha"] = np.abs(w).reshape(w.shape[0], -1).mean(axis=1).astype(
                np.float32)
    return out
