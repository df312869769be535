"""Elementwise activation modules: ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``."""

from __future__ import annotations

import numbers

from .. import functional as F
from .module import Module

__all__ = ["LeakyReLU", "ReLU", "Sigmoid", "Tanh"]


class ReLU(Module):
    """y = max(x, 0); the gradient at x = 0 is 0 (as in PyTorch)."""

    def forward(self, x, *, training: bool = False):
        return F.relu_forward(x)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.relu_backward(dy, cache)


class LeakyReLU(Module):
    """y = x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        if not isinstance(negative_slope, numbers.Real) or isinstance(negative_slope, bool):
            raise TypeError(f"LeakyReLU: negative_slope must be a real number, "
                            f"got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def forward(self, x, *, training: bool = False):
        return F.leaky_relu_forward(x, negative_slope=self.negative_slope)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.leaky_relu_backward(dy, cache)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x))."""

    def forward(self, x, *, training: bool = False):
        return F.sigmoid_forward(x)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.sigmoid_backward(dy, cache)


class Tanh(Module):
    """y = tanh(x)."""

    def forward(self, x, *, training: bool = False):
        return F.tanh_forward(x)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.tanh_backward(dy, cache)
