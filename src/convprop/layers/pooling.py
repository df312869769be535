"""Pooling modules in 1, 2 and 3 spatial dimensions (no parameters): max and average (sum
pooling through ``divisor_override=1``), adaptive, global, and max unpooling.

Hyperparameters are checked once, by the kernels' :func:`~convprop.functional.pooling.
pool_args`. A max pooling built with ``return_indices=True`` returns ``(y, indices)`` as its
output (PyTorch's form) and takes the gradient of y alone in backward; a ``MaxUnpool`` takes
that pair (or ``forward(x, indices=...)``), so ``Sequential(MaxPool2d(2, return_indices=True),
MaxUnpool2d(2))`` chains.
"""

from __future__ import annotations

from .. import functional as F
from .._checks import boolean, ntuple, positive_int
from ..functional.pooling import pool_args
from .module import Module

__all__ = ["AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
           "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "GlobalAvgPool1d", "GlobalAvgPool2d", "GlobalAvgPool3d", "GlobalMaxPool1d",
           "GlobalMaxPool2d", "GlobalMaxPool3d", "MaxPool1d", "MaxPool2d", "MaxPool3d",
           "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"]


def _kernel(nd: int, kind: str, direction: str):
    return getattr(F, f"{kind}{nd}d_{direction}")


class _MaxPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        op = type(self).__name__
        self.kernel_size, self.stride, self.padding, self.dilation = pool_args(
            op, self._nd, kernel_size, stride, padding, dilation)
        self.return_indices = boolean(op, "return_indices", return_indices)
        self.ceil_mode = boolean(op, "ceil_mode", ceil_mode)

    def forward(self, x, *, training: bool = False):
        y, cache = _kernel(self._nd, "max_pool", "forward")(
            x, kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
            dilation=self.dilation, ceil_mode=self.ceil_mode)
        return ((y, cache.indices) if self.return_indices else y), cache

    def backward(self, dy, cache, *, need_dx: bool = True):
        return _kernel(self._nd, "max_pool", "backward")(dy, cache)

    def extra_repr(self) -> str:
        s = (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
             f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")
        return s + (", return_indices=True" if self.return_indices else "")


class MaxPool1d(_MaxPoolNd):
    """Max pooling over KL windows, as ``torch.nn.MaxPool1d``: x (N, C, L) -> y (N, C, Lo)."""

    _nd = 1


class MaxPool2d(_MaxPoolNd):
    """Max pooling over (KH, KW) windows, as ``torch.nn.MaxPool2d`` (padding counts as -inf).

    x (N, C, H, W) -> y (N, C, Ho, Wo); ``stride`` defaults to ``kernel_size``. On a tie the
    first maximum in row-major window order alone gets the gradient (PyTorch's rule).
    ``return_indices=True``: the output is ``(y, indices)``, indices flat into each H*W plane.
    """

    _nd = 2


class MaxPool3d(_MaxPoolNd):
    """Max pooling over (KD, KH, KW) windows, as ``torch.nn.MaxPool3d``: x (N, C, D, H, W)."""

    _nd = 3


class _AvgPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__()
        op = type(self).__name__
        self.kernel_size, self.stride, self.padding, _ = pool_args(
            op, self._nd, kernel_size, stride, padding)
        self.ceil_mode = boolean(op, "ceil_mode", ceil_mode)
        self.count_include_pad = boolean(op, "count_include_pad", count_include_pad)
        self.divisor_override = None if divisor_override is None else positive_int(
            op, "divisor_override", divisor_override)

    def forward(self, x, *, training: bool = False):
        return _kernel(self._nd, "avg_pool", "forward")(
            x, kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
            ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
            divisor_override=self.divisor_override)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return _kernel(self._nd, "avg_pool", "backward")(dy, cache)

    def extra_repr(self) -> str:
        s = (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
             f"ceil_mode={self.ceil_mode}, count_include_pad={self.count_include_pad}")
        if self.divisor_override is not None:
            s += f", divisor_override={self.divisor_override}"
        return s


class AvgPool1d(_AvgPoolNd):
    """Average pooling over KL windows, as ``torch.nn.AvgPool1d``: x (N, C, L)."""

    _nd = 1


class AvgPool2d(_AvgPoolNd):
    """Average pooling over (KH, KW) windows, as ``torch.nn.AvgPool2d``.

    x (N, C, H, W) -> y (N, C, Ho, Wo); with ``count_include_pad`` the zero padding counts in
    the divisor (PyTorch's default); ``divisor_override`` replaces the divisor (1: sum
    pooling).
    """

    _nd = 2


class AvgPool3d(_AvgPoolNd):
    """Average pooling over (KD, KH, KW) windows, as ``torch.nn.AvgPool3d``: x (N, C, D, H, W)."""

    _nd = 3


class _AdaptivePoolNd(Module):
    _nd = 2
    _kind = "adaptive_avg_pool"

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        op = type(self).__name__
        if isinstance(output_size, (tuple, list)) and len(output_size) == self._nd:
            self.output_size = tuple(None if v is None else positive_int(op, "output_size", v)
                                     for v in output_size)
        else:
            self.output_size = ntuple(op, "output_size", output_size, self._nd)
        self.return_indices = boolean(op, "return_indices", return_indices)
        if self.return_indices and self._kind != "adaptive_max_pool":
            raise ValueError(f"{op}: return_indices is only for adaptive max pooling")

    def forward(self, x, *, training: bool = False):
        y, cache = _kernel(self._nd, self._kind, "forward")(x, output_size=self.output_size)
        return ((y, cache.indices) if self.return_indices else y), cache

    def backward(self, dy, cache, *, need_dx: bool = True):
        return _kernel(self._nd, self._kind, "backward")(dy, cache)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}" + (
            ", return_indices=True" if self.return_indices else "")


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    """Average pooling to a fixed output length (PyTorch's bins), as
    ``torch.nn.AdaptiveAvgPool1d``: x (N, C, L) -> y (N, C, output_size)."""

    _nd = 1


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    """Average pooling to a fixed output size (PyTorch's bins), as
    ``torch.nn.AdaptiveAvgPool2d``: x (N, C, H, W) -> y (N, C, *output_size)."""

    _nd = 2


class AdaptiveAvgPool3d(_AdaptivePoolNd):
    """Average pooling to a fixed output size, as ``torch.nn.AdaptiveAvgPool3d``."""

    _nd = 3


class AdaptiveMaxPool1d(_AdaptivePoolNd):
    """Max pooling to a fixed output length, as ``torch.nn.AdaptiveMaxPool1d``
    (``return_indices`` as for MaxPool1d)."""

    _nd, _kind = 1, "adaptive_max_pool"


class AdaptiveMaxPool2d(_AdaptivePoolNd):
    """Max pooling to a fixed output size, as ``torch.nn.AdaptiveMaxPool2d``; the first
    maximum of each bin gets the gradient (overlapping bins add)."""

    _nd, _kind = 2, "adaptive_max_pool"


class AdaptiveMaxPool3d(_AdaptivePoolNd):
    """Max pooling to a fixed output size, as ``torch.nn.AdaptiveMaxPool3d``."""

    _nd, _kind = 3, "adaptive_max_pool"


class _GlobalPoolNd(Module):
    _nd = 2
    _kind = "global_avg_pool"

    def forward(self, x, *, training: bool = False):
        return _kernel(self._nd, self._kind, "forward")(x)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return _kernel(self._nd, self._kind, "backward")(dy, cache)


class GlobalAvgPool1d(_GlobalPoolNd):
    """Mean over L: x (N, C, L) -> y (N, C)."""

    _nd = 1


class GlobalAvgPool2d(_GlobalPoolNd):
    """Mean over the spatial axes: x (N, C, H, W) -> y (N, C)."""

    _nd = 2


class GlobalAvgPool3d(_GlobalPoolNd):
    """Mean over the spatial axes: x (N, C, D, H, W) -> y (N, C)."""

    _nd = 3


class GlobalMaxPool1d(_GlobalPoolNd):
    """Maximum over L: x (N, C, L) -> y (N, C); the first maximum gets the gradient."""

    _nd, _kind = 1, "global_max_pool"


class GlobalMaxPool2d(_GlobalPoolNd):
    """Maximum over (H, W): x (N, C, H, W) -> y (N, C); the first maximum gets the gradient."""

    _nd, _kind = 2, "global_max_pool"


class GlobalMaxPool3d(_GlobalPoolNd):
    """Maximum over (D, H, W): x (N, C, D, H, W) -> y (N, C)."""

    _nd, _kind = 3, "global_max_pool"


class _MaxUnpoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        op = type(self).__name__
        self.kernel_size, self.stride, self.padding, _ = pool_args(
            op, self._nd, kernel_size, stride, padding)

    def forward(self, x, *, training: bool = False, indices=None, output_size=None):
        if isinstance(x, tuple):
            if indices is not None or len(x) != 2:
                raise TypeError(f"{type(self).__name__}: give either a (values, indices) pair "
                                f"or values with indices=, got a tuple of {len(x)} and "
                                f"indices={'set' if indices is not None else None}")
            x, indices = x
        if indices is None:
            raise TypeError(f"{type(self).__name__}: indices are required (the switches of "
                            "a max pooling with return_indices=True)")
        return _kernel(self._nd, "max_unpool", "forward")(
            x, indices, kernel_size=self.kernel_size, stride=self.stride,
            padding=self.padding, output_size=output_size)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return _kernel(self._nd, "max_unpool", "backward")(dy, cache)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """Max unpooling, as ``torch.nn.MaxUnpool1d``: values and indices (N, C, L) -> y
    (N, C, (L-1)*stride - 2*padding + kernel_size), zero but at the indices."""

    _nd = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """Max unpooling, as ``torch.nn.MaxUnpool2d``: the partial inverse of ``MaxPool2d``
    (values put back at the switches the pooling recorded, zeros elsewhere)."""

    _nd = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """Max unpooling, as ``torch.nn.MaxUnpool3d``: values and indices (N, C, D, H, W)."""

    _nd = 3
