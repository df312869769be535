"""Pooling modules in 1, 2 and 3 spatial dimensions (no parameters): max (with a tie
policy), average, sum (``SumPool``: average with ``divisor_override=1``), Lp (``LPPool``),
adaptive, global, and max unpooling.

Hyperparameters are checked once, by the kernels' :func:`~convprop.functional.pooling.
pool_args`. A max pooling built with ``return_indices=True`` returns ``(y, indices)`` as its
output (PyTorch's form) and takes the gradient of y alone in backward; a ``MaxUnpool`` takes
that pair (or ``forward(x, indices=...)``), so ``Sequential(MaxPool2d(2, return_indices=True),
MaxUnpool2d(2))`` chains.
"""

from __future__ import annotations

from .. import functional as F
from .._checks import boolean, ntuple, positive_int
from ..functional import lp_pooling
from ..functional.lp_pooling import norm_type_arg
from ..functional.pooling import pool_args, tie_policy
from .module import Module

__all__ = ["AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
           "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "GlobalAvgPool1d", "GlobalAvgPool2d", "GlobalAvgPool3d", "GlobalMaxPool1d",
           "GlobalMaxPool2d", "GlobalMaxPool3d", "LPPool1d", "LPPool2d", "LPPool3d",
           "MaxPool1d", "MaxPool2d", "MaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
           "SumPool1d", "SumPool2d", "SumPool3d"]


def _kernel(nd: int, kind: str, direction: str):
    return getattr(F, f"{kind}{nd}d_{direction}")


class _MaxPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False, *,
                 ties: str = "first"):
        super().__init__()
        op = type(self).__name__
        self.kernel_size, self.stride, self.padding, self.dilation = pool_args(
            op, self._nd, kernel_size, stride, padding, dilation)
        self.return_indices = boolean(op, "return_indices", return_indices)
        self.ceil_mode = boolean(op, "ceil_mode", ceil_mode)
        self.ties = tie_policy(op, ties)

    def forward(self, x, *, training: bool = False):
        y, cache = _kernel(self._nd, "max_pool", "forward")(
            x, kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
            dilation=self.dilation, ceil_mode=self.ceil_mode, ties=self.ties)
        return ((y, cache.indices) if self.return_indices else y), cache

    def backward(self, dy, cache, *, need_dx: bool = True):
        return _kernel(self._nd, "max_pool", "backward")(dy, cache)

    def extra_repr(self) -> str:
        s = (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
             f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")
        s += ", return_indices=True" if self.return_indices else ""
        return s + (f", ties={self.ties!r}" if self.ties != "first" else "")


class MaxPool1d(_MaxPoolNd):
    """Max pooling over KL windows, as ``torch.nn.MaxPool1d``: x (N, C, L) -> y (N, C, Lo)."""

    _nd = 1


class MaxPool2d(_MaxPoolNd):
    """Max pooling over (KH, KW) windows, as ``torch.nn.MaxPool2d`` (padding counts as -inf).

    x (N, C, H, W) -> y (N, C, Ho, Wo); ``stride`` defaults to ``kernel_size``. On a tie the
    first maximum in row-major window order alone gets the gradient (PyTorch's rule), unless
    ``ties="split"`` (shared equally) or ``"all"`` (each gets all of it, as a naive mask; not
    a gradient) says otherwise: see :func:`~convprop.functional.max_pool2d_forward`.
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


class _SumPoolNd(_AvgPoolNd):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding, ceil_mode, divisor_override=1)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, ceil_mode={self.ceil_mode}")


class SumPool1d(_SumPoolNd):
    """Sum over KL windows: x (N, C, L) -> y (N, C, Lo); ``AvgPool1d`` with
    ``divisor_override=1`` (PyTorch has no sum-pooling module)."""

    _nd = 1


class SumPool2d(_SumPoolNd):
    """Sum over (KH, KW) windows (zero padding adds nothing): x (N, C, H, W) -> y (N, C, Ho,
    Wo). PyTorch has no module for it: this is ``AvgPool2d(..., divisor_override=1)``, the
    subsampling of LeNet-5 before its trainable coefficient. Backward: dy to every element
    of the window (overlaps add)."""

    _nd = 2


class SumPool3d(_SumPoolNd):
    """Sum over (KD, KH, KW) windows: x (N, C, D, H, W); ``AvgPool3d`` with
    ``divisor_override=1``."""

    _nd = 3


class _LPPoolNd(Module):
    _nd = 2

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode: bool = False):
        super().__init__()
        op = type(self).__name__
        self.norm_type = norm_type_arg(op, norm_type)
        self.kernel_size, self.stride, _, _ = pool_args(op, self._nd, kernel_size, stride, 0)
        self.ceil_mode = boolean(op, "ceil_mode", ceil_mode)

    def forward(self, x, *, training: bool = False):
        return getattr(lp_pooling, f"lp_pool{self._nd}d_forward")(
            x, norm_type=self.norm_type, kernel_size=self.kernel_size, stride=self.stride,
            ceil_mode=self.ceil_mode)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return getattr(lp_pooling, f"lp_pool{self._nd}d_backward")(dy, cache)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPoolNd):
    """Power-average pooling, as ``torch.nn.LPPool1d``: x (N, C, L) -> y (N, C, Lo)."""

    _nd = 1


class LPPool2d(_LPPoolNd):
    """Power-average pooling, as ``torch.nn.LPPool2d``: ``y = (sum over the window of x**p)
    ** (1/p)``, p = ``norm_type`` (1: sum pooling; inf: max pooling of |x|); the gradient
    is 0 where a window's sum is 0 (see :func:`~convprop.functional.lp_pooling.
    lp_pool2d_forward`). x (N, C, H, W) -> y (N, C, Ho, Wo), no padding."""

    _nd = 2


class LPPool3d(_LPPoolNd):
    """Power-average pooling, as ``torch.nn.LPPool3d``: x (N, C, D, H, W)."""

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


class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    _kind = "adaptive_max_pool"

    def __init__(self, output_size, return_indices: bool = False, *, ties: str = "first"):
        super().__init__(output_size, return_indices)
        self.ties = tie_policy(type(self).__name__, ties)

    def forward(self, x, *, training: bool = False):
        y, cache = _kernel(self._nd, self._kind, "forward")(x, output_size=self.output_size,
                                                            ties=self.ties)
        return ((y, cache.indices) if self.return_indices else y), cache

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", ties={self.ties!r}" if self.ties != "first" else "")


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Max pooling to a fixed output length, as ``torch.nn.AdaptiveMaxPool1d``
    (``return_indices`` and ``ties`` as for AdaptiveMaxPool2d)."""

    _nd = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Max pooling to a fixed output size, as ``torch.nn.AdaptiveMaxPool2d``; the first
    maximum of each bin gets the gradient (overlapping bins add), unless ``ties="split"``
    (shared equally) or ``"all"`` (each gets all of it, as a naive mask; not a gradient)
    says otherwise: see :func:`~convprop.functional.adaptive_max_pool2d_forward`.
    ``return_indices=True``: the output is ``(y, indices)`` (PyTorch's, the first maxima,
    under every policy)."""

    _nd = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Max pooling to a fixed output size, as ``torch.nn.AdaptiveMaxPool3d`` (``ties`` as for
    AdaptiveMaxPool2d)."""

    _nd = 3


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


class _GlobalMaxPoolNd(_GlobalPoolNd):
    _kind = "global_max_pool"

    def __init__(self, *, ties: str = "first"):
        super().__init__()
        self.ties = tie_policy(type(self).__name__, ties)

    def forward(self, x, *, training: bool = False):
        return _kernel(self._nd, self._kind, "forward")(x, ties=self.ties)

    def extra_repr(self) -> str:
        return f"ties={self.ties!r}" if self.ties != "first" else ""


class GlobalMaxPool1d(_GlobalMaxPoolNd):
    """Maximum over L: x (N, C, L) -> y (N, C); the first maximum gets the gradient (``ties``
    as for GlobalMaxPool2d)."""

    _nd = 1


class GlobalMaxPool2d(_GlobalMaxPoolNd):
    """Maximum over (H, W): x (N, C, H, W) -> y (N, C); the first maximum gets the gradient,
    unless ``ties="split"`` (shared equally among the plane's tied maxima) or ``"all"`` (each
    gets all of it): see :func:`~convprop.functional.global_max_pool2d_forward`."""

    _nd = 2


class GlobalMaxPool3d(_GlobalMaxPoolNd):
    """Maximum over (D, H, W): x (N, C, D, H, W) -> y (N, C) (``ties`` as for
    GlobalMaxPool2d)."""

    _nd = 3


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
