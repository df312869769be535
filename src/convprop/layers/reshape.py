"""Shape modules: ``Flatten`` and ``Identity``."""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["Flatten", "Identity"]


class Flatten(Module):
    """(N, ...) -> (N, prod(...)), as ``torch.nn.Flatten()`` (start_dim=1)."""

    def forward(self, x, *, training: bool = False):
        return F.flatten_forward(x)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.flatten_backward(dy, cache)


class Identity(Module):
    """y = x (the same array, never a copy: callers must not write into it)."""

    def forward(self, x, *, training: bool = False):
        return x, None

    def backward(self, dy, cache, *, need_dx: bool = True):
        return dy
