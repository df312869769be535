"""``PadShortcut``: ResNet's option-A shortcut (subsample, zero-pad channels) as a module."""

from __future__ import annotations

from .. import functional as F
from .._checks import positive_int
from .module import Module

__all__ = ["PadShortcut"]


class PadShortcut(Module):
    """Option-A shortcut (He et al. 2016): subsample by ``stride`` and zero-pad the channels
    to ``out_channels`` (:func:`convprop.functional.pad_shortcut_forward`); no parameters."""

    def __init__(self, out_channels: int, stride: int = 2):
        super().__init__()
        self.out_channels = positive_int("PadShortcut", "out_channels", out_channels)
        self.stride = positive_int("PadShortcut", "stride", stride)

    def forward(self, x, *, training: bool = False):
        return F.pad_shortcut_forward(x, out_channels=self.out_channels, stride=self.stride)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.pad_shortcut_backward(dy, cache)

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}, stride={self.stride}"
