"""Pooling modules: ``MaxPool2d``, ``AvgPool2d``, ``GlobalAvgPool2d`` (no parameters)."""

from __future__ import annotations

from .. import functional as F
from .._checks import pair
from .module import Module

__all__ = ["AvgPool2d", "GlobalAvgPool2d", "MaxPool2d"]


class MaxPool2d(Module):
    """Max pooling over (KH, KW) windows, as ``torch.nn.MaxPool2d`` (padding counts as -inf).

    x (N, C, H, W) -> y (N, C, Ho, Wo); ``stride`` defaults to ``kernel_size``. On a tie the
    first maximum in row-major window order alone gets the gradient (PyTorch's rule).
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode: bool = False):
        super().__init__()
        op = "MaxPool2d"
        self.kernel_size = pair(op, "kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else pair(op, "stride", stride)
        self.padding = pair(op, "padding", padding, minimum=0)
        self.dilation = pair(op, "dilation", dilation)
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x, *, training: bool = False):
        return F.max_pool2d_forward(x, kernel_size=self.kernel_size, stride=self.stride,
                                    padding=self.padding, dilation=self.dilation,
                                    ceil_mode=self.ceil_mode)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.max_pool2d_backward(dy, cache)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Average pooling over (KH, KW) windows, as ``torch.nn.AvgPool2d``.

    x (N, C, H, W) -> y (N, C, Ho, Wo); with ``count_include_pad`` the zero padding counts in
    the divisor (PyTorch's default).
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__()
        op = "AvgPool2d"
        self.kernel_size = pair(op, "kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else pair(op, "stride", stride)
        self.padding = pair(op, "padding", padding, minimum=0)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x, *, training: bool = False):
        return F.avg_pool2d_forward(x, kernel_size=self.kernel_size, stride=self.stride,
                                    padding=self.padding, ceil_mode=self.ceil_mode,
                                    count_include_pad=self.count_include_pad)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.avg_pool2d_backward(dy, cache)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}, count_include_pad={self.count_include_pad}")


class GlobalAvgPool2d(Module):
    """Mean over the spatial axes: x (N, C, H, W) -> y (N, C)."""

    def forward(self, x, *, training: bool = False):
        return F.global_avg_pool2d_forward(x)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.global_avg_pool2d_backward(dy, cache)
