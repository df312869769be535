"""Transform-based and learned-mean pooling modules (2-D): wavelet pooling (Williams and Li
2018), DFT magnitude pooling (Ryu, Yang and Lim 2018) and alpha-integration pooling (Eom and
Choi 2018, a trainable alpha per layer). Each delegates to its kernel pair in
``convprop.functional`` (``wavelet_pooling``, ``dft_pooling``, ``alpha_pooling``), whose
docstrings hold the equations and the choices the papers leave open.
"""

from __future__ import annotations

import numpy as np

from .._checks import pair, real_number
from ..functional.alpha_pooling import alpha_pool2d_backward, alpha_pool2d_forward
from ..functional.dft_pooling import dft_pool2d_backward, dft_pool2d_forward
from ..functional.wavelet_pooling import (wavelet_args, wavelet_pool2d_backward,
                                          wavelet_pool2d_forward)
from ._util import accumulate, check_input, float_dtype
from .module import Module, Parameter

__all__ = ["AlphaPool2d", "DFTPool2d", "WaveletPool2d"]


class WaveletPool2d(Module):
    """Wavelet pooling: the second-level DWT with the first-level details discarded, inverted
    one level (x (N, C, H, W) -> y (N, C, H/2, W/2), H and W multiples of 4; periodic
    boundary). ``wavelet``: ``"haar"`` (then y is 2 x 2x2 average pooling) or ``"db2"``;
    ``backward_rule``: ``"exact"`` (the forward's adjoint, default) or ``"paper"`` (the
    paper's rule, which adds the gradient's upsampled detail subbands; not a gradient)."""

    def __init__(self, wavelet: str = "haar", backward_rule: str = "exact"):
        super().__init__()
        op = "WaveletPool2d"
        self.wavelet, self.backward_rule = wavelet_args(op, wavelet, backward_rule)

    def forward(self, x, *, training: bool = False):
        return wavelet_pool2d_forward(x, wavelet=self.wavelet, backward_rule=self.backward_rule)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return wavelet_pool2d_backward(dy, cache)

    def extra_repr(self) -> str:
        return f"wavelet={self.wavelet!r}, backward_rule={self.backward_rule!r}"


class DFTPool2d(Module):
    """DFT magnitude pooling: ``|fft2(x) / (H W)|`` on the top-left (lowest non-negative
    frequencies) ``output_size`` block of each map; invariant to circular shifts.
    x (N, C, H, W) -> y (N, C, KH, KW)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = pair("DFTPool2d", "output_size", output_size)

    def forward(self, x, *, training: bool = False):
        return dft_pool2d_forward(x, output_size=self.output_size)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return dft_pool2d_backward(dy, cache)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AlphaPool2d(Module):
    """Alpha-integration pooling: Amari's alpha-mean ``((1/K) sum x^p)^(1/p)``,
    ``p = (1 - alpha)/2``, over (KH, KW) windows, with one trainable ``alpha`` (shape (1,))
    for the layer: alpha = -1 average pooling, 1 the geometric mean, -> -inf max pooling.

    x (N, C, H, W), strictly positive (a ValueError otherwise) -> y (N, C, Ho, Wo); ``stride``
    defaults to ``kernel_size``; no padding. ``alpha_init`` defaults to -1 (the layer starts
    as average pooling)."""

    def __init__(self, kernel_size, stride=None, alpha_init: float = -1.0, *,
                 dtype=np.float32):
        super().__init__()
        op = "AlphaPool2d"
        self.kernel_size = pair(op, "kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else pair(op, "stride", stride)
        a = real_number(op, "alpha_init", alpha_init)
        if not np.isfinite(a):
            raise ValueError(f"{op}: alpha_init must be finite, got {alpha_init}")
        self.alpha = Parameter(np.array([a], dtype=float_dtype(op, dtype)))

    def forward(self, x, *, training: bool = False):
        check_input("AlphaPool2d", x, (self.alpha,))
        return alpha_pool2d_forward(x, self.alpha.value, kernel_size=self.kernel_size,
                                    stride=self.stride)

    def backward(self, dy, cache, *, need_dx: bool = True):
        dx, dalpha = alpha_pool2d_backward(dy, cache)
        accumulate(self.alpha, dalpha)
        return dx

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"alpha={float(self.alpha.value[0]):.4g}")
