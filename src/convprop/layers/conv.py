"""Convolution modules in 1, 2 and 3 spatial dimensions: ``Conv1d/2d/3d`` and
``ConvTranspose1d/2d/3d``, over the kernels of :mod:`convprop.functional.conv` and
:mod:`convprop.functional.conv_transpose`.

The hyperparameters are checked once, by the kernels' own :func:`~convprop.functional.conv.
conv_args` (so module and kernel cannot disagree), and the weight and bias are set up by one
base class for all six modules.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._checks import boolean, ntuple, one_of, positive_int
from ..functional.conv import conv_args
from ..functional.meprop import MEPROP_GRANULARITIES, conv2d_meprop_backward
from ._util import accumulate, check_input, float_dtype
from .init import init_weight_and_bias
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d"]


class _ConvNd(Module):
    """Shared set-up and backward of the six convolution modules."""

    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, init, rng, dtype, mode, output_padding=None):
        super().__init__()
        op = type(self).__name__
        self.in_channels = positive_int(op, "in_channels", in_channels)
        self.out_channels = positive_int(op, "out_channels", out_channels)
        self.kernel_size = ntuple(op, "kernel_size", kernel_size, self._nd)
        a = conv_args(op, self._nd, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, mode=mode, output_padding=output_padding)
        if self.in_channels % a.groups or self.out_channels % a.groups:
            raise ValueError(f"{op}: in_channels and out_channels must be divisible by groups, "
                             f"got in_channels={self.in_channels}, out_channels="
                             f"{self.out_channels}, groups={a.groups}")
        self.stride, self.padding, self.dilation = a.stride, a.padding, a.dilation
        self.groups, self.mode = a.groups, a.mode
        if self._transposed:
            self.output_padding = a.output_padding
            w_shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        else:
            w_shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        w, b = init_weight_and_bias(op, init, w_shape, self.out_channels if bias else None,
                                    rng, float_dtype(op, dtype))
        self.weight = Parameter(w)
        self.bias = Parameter(b) if b is not None else None

    def _kernel_args(self) -> dict:
        kw = dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                  groups=self.groups, mode=self.mode)
        if self._transposed:
            kw["output_padding"] = self.output_padding
        return kw

    def forward(self, x, *, training: bool = False):
        check_input(type(self).__name__, x, (self.weight, self.bias))
        b = self.bias.value if self.bias is not None else None
        return self._forward(x, self.weight.value, b, **self._kernel_args())

    def backward(self, dy, cache, *, need_dx: bool = True):
        dx, dw, db = self._backward(dy, cache, need_dx=need_dx)
        accumulate(self.weight, dw)
        accumulate(self.bias, db)
        return dx if need_dx else None

    def extra_repr(self) -> str:
        one, zero = (1,) * self._nd, (0,) * self._nd
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != zero:
            s += f", padding={self.padding!r}"
        if self._transposed and self.output_padding != zero:
            s += f", output_padding={self.output_padding}"
        if self.dilation != one:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.mode != "cross-correlation":
            s += f", mode={self.mode!r}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, *, init="torch",
                 rng: np.random.Generator | None = None, dtype=np.float32,
                 mode: str = "cross-correlation"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, init, rng, dtype, mode)


class _ConvTranspose(_ConvNd):
    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1, *,
                 init="torch", rng: np.random.Generator | None = None, dtype=np.float32,
                 mode: str = "cross-correlation"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, init, rng, dtype, mode, output_padding)


class Conv1d(_Conv):
    """1-D convolution ``y = x ⋆ w + b``, as ``torch.nn.Conv1d``: x (N, in_channels, L) ->
    y (N, out_channels, Lo); weight (out_channels, in_channels/groups, KL). Padding: an int,
    a 1-tuple, "valid" or "same"; ``mode="convolution"`` flips the kernel (true convolution).
    """

    _nd = 1
    _forward = staticmethod(F.conv1d_forward)
    _backward = staticmethod(F.conv1d_backward)


class Conv2d(_Conv):
    """2-D convolution (cross-correlation) ``y = x ⋆ w + b``, as ``torch.nn.Conv2d``.

    Args: x (N, in_channels, H, W) -> y (N, out_channels, Ho, Wo); weight
    (out_channels, in_channels/groups, KH, KW), bias (out_channels,). Zero padding: an int,
    a pair, or "valid" / "same" (stride 1; the odd extra pixel goes bottom/right, as PyTorch).
    ``mode="convolution"``: true convolution (the kernel reversed along KH and KW).

    meProp (Wei et al. 2017, :func:`convprop.functional.meprop.conv2d_meprop_backward`):
    with ``meprop_k`` set, the backward keeps, per example, the ``meprop_k`` output channels
    with the largest ``sum_{h,w} |dy|`` (``meprop_granularity="element"``: the meprop_k
    largest single entries of the example's (C_out, Ho, Wo) gradient); ``meprop_unified``:
    one selection for the whole batch. db uses the full dy. None: the ordinary backward.
    """

    _nd = 2
    _forward = staticmethod(F.conv2d_forward)
    _backward = staticmethod(F.conv2d_backward)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, *, init="torch",
                 rng: np.random.Generator | None = None, dtype=np.float32,
                 mode: str = "cross-correlation", meprop_k: int | None = None,
                 meprop_unified: bool = False, meprop_granularity: str = "channel"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, init=init, rng=rng, dtype=dtype, mode=mode)
        one_of("Conv2d", "meprop_granularity", meprop_granularity, MEPROP_GRANULARITIES)
        if meprop_k is not None:
            meprop_k = positive_int("Conv2d", "meprop_k", meprop_k)
            if meprop_granularity == "channel" and meprop_k > self.out_channels:
                raise ValueError(f"Conv2d: meprop_k must be <= out_channels "
                                 f"({self.out_channels}), got {meprop_k}")
        self.meprop_k = meprop_k
        self.meprop_unified = boolean("Conv2d", "meprop_unified", meprop_unified)
        self.meprop_granularity = meprop_granularity

    def backward(self, dy, cache, *, need_dx: bool = True):
        if self.meprop_k is None:
            return super().backward(dy, cache, need_dx=need_dx)
        dx, dw, db = conv2d_meprop_backward(
            dy, cache, k=self.meprop_k, unified=self.meprop_unified,
            granularity=self.meprop_granularity, need_dx=need_dx)
        accumulate(self.weight, dw)
        accumulate(self.bias, db)
        return dx if need_dx else None

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.meprop_k is not None:
            s += f", meprop_k={self.meprop_k}"
            if self.meprop_unified:
                s += ", meprop_unified=True"
            if self.meprop_granularity != "channel":
                s += f", meprop_granularity={self.meprop_granularity!r}"
        return s


class Conv3d(_Conv):
    """3-D convolution ``y = x ⋆ w + b``, as ``torch.nn.Conv3d``: x (N, in_channels, D, H, W)
    -> y (N, out_channels, Do, Ho, Wo); weight (out_channels, in_channels/groups, KD, KH, KW).
    """

    _nd = 3
    _forward = staticmethod(F.conv3d_forward)
    _backward = staticmethod(F.conv3d_backward)


class ConvTranspose1d(_ConvTranspose):
    """Transposed 1-D convolution, as ``torch.nn.ConvTranspose1d``: x (N, in_channels, L) ->
    y (N, out_channels, (L-1)*stride - 2*padding + dilation*(KL-1) + output_padding + 1)."""

    _nd = 1
    _forward = staticmethod(F.conv_transpose1d_forward)
    _backward = staticmethod(F.conv_transpose1d_backward)


class ConvTranspose2d(_ConvTranspose):
    """Transposed 2-D convolution (the input gradient of ``Conv2d``), as
    ``torch.nn.ConvTranspose2d``.

    Args: x (N, in_channels, H, W) -> y (N, out_channels, Ho, Wo) with
    ``Ho = (H-1)*stride - 2*padding + dilation*(KH-1) + output_padding + 1``; weight
    (in_channels, out_channels/groups, KH, KW), bias (out_channels,). dx and dw share one
    im2col of dy, so ``need_dx=False`` saves nothing.
    """

    _nd = 2
    _forward = staticmethod(F.conv_transpose2d_forward)
    _backward = staticmethod(F.conv_transpose2d_backward)


class ConvTranspose3d(_ConvTranspose):
    """Transposed 3-D convolution, as ``torch.nn.ConvTranspose3d``: x (N, in_channels, D, H, W)
    -> y (N, out_channels, Do, Ho, Wo); weight (in_channels, out_channels/groups, KD, KH, KW)."""

    _nd = 3
    _forward = staticmethod(F.conv_transpose3d_forward)
    _backward = staticmethod(F.conv_transpose3d_backward)
