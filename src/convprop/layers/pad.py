"""Padding modules: ``ConstantPad`` (given pads per side, asymmetric allowed), ``SamePad``
(ONNX's ``auto_pad`` SAME_UPPER / SAME_LOWER, computed from each input's size) and
``PaddedAvgPool`` (average pooling over explicitly padded windows, with or without the
padding in the divisor). They let an imported ONNX graph express pads that convprop's
symmetric ``padding`` arguments cannot; the padded layer then runs with padding 0.

Backward of a pad is the slice of ``dy`` that covers the input (the pad's adjoint).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import functional as F
from .._checks import as_float_array, boolean, ntuple
from .module import Module

__all__ = ["ConstantPad", "PaddedAvgPool", "SamePad", "ceil_end_pads", "same_pads"]


class PadCache(NamedTuple):
    inner: tuple     # the slices of the padded array that hold the input


def _pad(op, x, begin, end, value):
    """``x`` padded by ``begin``/``end`` on its trailing ``len(begin)`` axes."""
    x = as_float_array(op, "x", x)
    lead = x.ndim - len(begin)
    if lead < 0:
        raise ValueError(f"{op}: x has {x.ndim} axes but the pads cover {len(begin)}, "
                         f"got shape {x.shape}")
    width = [(0, 0)] * lead + list(zip(begin, end))
    y = np.pad(x, width, mode="constant", constant_values=x.dtype.type(value))
    inner = tuple(slice(b, b + n) for (b, _), n in zip(width, x.shape))
    return y, PadCache(inner)


def same_pads(size, kernel, stride, dilation, lower: bool) -> tuple[tuple, tuple]:
    """ONNX ``auto_pad`` SAME_*: pad so that ``out = ceil(size / stride)``; the odd extra
    pixel goes after (SAME_UPPER) or before (SAME_LOWER)."""
    begin, end = [], []
    for n, k, s, d in zip(size, kernel, stride, dilation):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        small = total // 2
        begin.append(total - small if lower else small)
        end.append(small if lower else total - small)
    return tuple(begin), tuple(end)


def ceil_end_pads(size, kernel, stride, dilation, begin, end) -> tuple:
    """The end pads after which a *floor*-mode window op (kernel, stride, dilation, no
    padding of its own) gives the windows of ONNX's ``ceil_mode=1`` with pads
    ``begin``/``end``: ``out = ceil((n + begin + end - ((k - 1) d + 1)) / s) + 1``, less
    one when that last window would start in the end padding (ONNX Runtime's and PyTorch's
    rule: windows may start in the input or the begin padding only). The padded length
    becomes ``(out - 1) s + (k - 1) d + 1`` (at least ``n + begin``): windows that overhang
    the given end padding reach into extra padding that the caller treats as absent."""
    out_end = []
    for n, k, s, d, b, e in zip(size, kernel, stride, dilation, begin, end):
        span = (k - 1) * d + 1
        out = -(-(n + b + e - span) // s) + 1
        if (out - 1) * s >= n + b:
            out -= 1
        out_end.append(max((out - 1) * s + span - n - b, 0))
    return tuple(out_end)


class ConstantPad(Module):
    """Pad the last ``len(begin)`` axes with ``value``: ``begin[i]`` before and ``end[i]``
    after (ONNX ``Pad`` in constant mode, ``pads = begin + end``). Pads are >= 0.

    ``ceil_window=(kernel_size, stride, dilation)``: the pad before a floor-mode window op
    that stands for ONNX's ``ceil_mode=1`` with these pads; the end pads are then
    :func:`ceil_end_pads` of each input's size (a max pooling pads with -inf, so the extra
    positions never win)."""

    def __init__(self, begin, end, value: float = 0.0, ceil_window=None):
        super().__init__()
        begin, end = tuple(int(b) for b in begin), tuple(int(e) for e in end)
        if len(begin) != len(end) or min(begin + end, default=0) < 0:
            raise ValueError(f"ConstantPad: begin and end must be equally long and >= 0, got "
                             f"{begin} and {end}")
        if ceil_window is not None:
            ceil_window = tuple(ntuple("ConstantPad", "ceil_window", w, len(begin))
                                for w in ceil_window)
        self.begin, self.end, self.value = begin, end, float(value)
        self.ceil_window = ceil_window

    def forward(self, x, *, training: bool = False):
        end = self.end
        if self.ceil_window is not None:
            end = ceil_end_pads(np.shape(x)[-len(end):], *self.ceil_window, self.begin, end)
        return _pad("ConstantPad", x, self.begin, end, self.value)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return dy[cache.inner]

    def extra_repr(self) -> str:
        return (f"begin={self.begin}, end={self.end}, value={self.value}"
                + (f", ceil_window={self.ceil_window}" if self.ceil_window else ""))


class SamePad(Module):
    """ONNX ``auto_pad="SAME_UPPER"`` / ``"SAME_LOWER"`` before a window op of
    ``kernel_size``, ``stride``, ``dilation`` on x (N, C, *spatial); pads from each input."""

    def __init__(self, kernel_size, stride=1, dilation=1, lower: bool = False,
                 value: float = 0.0):
        super().__init__()
        nd = len(kernel_size)
        self.kernel_size = ntuple("SamePad", "kernel_size", kernel_size, nd)
        self.stride = ntuple("SamePad", "stride", stride, nd)
        self.dilation = ntuple("SamePad", "dilation", dilation, nd)
        self.lower, self.value = boolean("SamePad", "lower", lower), float(value)

    def forward(self, x, *, training: bool = False):
        x = as_float_array("SamePad", "x", x)
        b, e = same_pads(x.shape[2:], self.kernel_size, self.stride, self.dilation, self.lower)
        return _pad("SamePad", x, b, e, self.value)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return dy[cache.inner]

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"{'SAME_LOWER' if self.lower else 'SAME_UPPER'}")


class PaddedAvgPoolCache(NamedTuple):
    sum_cache: object
    divisor: np.ndarray
    inner: tuple


class PaddedAvgPool(Module):
    """Average pooling with pads given per side (``pads=(begin, end)``) or ``"same_upper"``
    / ``"same_lower"``: ``y = window_sum(pad(x)) / divisor``, the divisor the count of
    window positions inside the padded input (``count_include_pad``) or inside x itself.
    A ``ceil_mode`` window that overhangs the padded input counts only what it covers
    (ONNX Runtime's and PyTorch's rule)."""

    def __init__(self, kernel_size, stride, pads, ceil_mode: bool = False,
                 count_include_pad: bool = False):
        super().__init__()
        nd = len(kernel_size)
        self.kernel_size = ntuple("PaddedAvgPool", "kernel_size", kernel_size, nd)
        self.stride = ntuple("PaddedAvgPool", "stride", stride, nd)
        if isinstance(pads, str):
            if pads not in ("same_upper", "same_lower"):
                raise ValueError(f"PaddedAvgPool: pads must be (begin, end) or 'same_upper'/"
                                 f"'same_lower', got {pads!r}")
        else:
            pads = (tuple(int(p) for p in pads[0]), tuple(int(p) for p in pads[1]))
        self.pads = pads
        self.ceil_mode = boolean("PaddedAvgPool", "ceil_mode", ceil_mode)
        self.count_include_pad = boolean("PaddedAvgPool", "count_include_pad",
                                         count_include_pad)

    def _sum(self, x):
        nd = len(self.kernel_size)
        return getattr(F, f"avg_pool{nd}d_forward")(
            x, kernel_size=self.kernel_size, stride=self.stride, divisor_override=1)

    def forward(self, x, *, training: bool = False):
        x = as_float_array("PaddedAvgPool", "x", x)
        if isinstance(self.pads, str):
            b, e = same_pads(x.shape[2:], self.kernel_size, self.stride,
                             (1,) * len(self.kernel_size), self.pads == "same_lower")
        else:
            b, e = self.pads
        nd = len(self.kernel_size)
        # ceil_mode: floor-mode windows over extra end padding the divisor leaves out
        e2 = ceil_end_pads(x.shape[2:], self.kernel_size, self.stride, (1,) * nd, b, e) \
            if self.ceil_mode else e
        xp, pc = _pad("PaddedAvgPool", x, b, e2, 0.0)
        s, sc = self._sum(xp)
        plane = np.zeros((1, 1) + xp.shape[2:], dtype=x.dtype)
        counted = pc.inner[2:] if not self.count_include_pad else tuple(
            slice(0, bi + n + ei) for bi, n, ei in zip(b, x.shape[2:], e))
        plane[(slice(None), slice(None)) + counted] = 1
        divisor = self._sum(plane)[0]
        return s / divisor, PaddedAvgPoolCache(sc, divisor, pc.inner)

    def backward(self, dy, cache, *, need_dx: bool = True):
        nd = len(self.kernel_size)
        dxp = getattr(F, f"avg_pool{nd}d_backward")(dy / cache.divisor, cache.sum_cache)
        return dxp[cache.inner]

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, pads={self.pads}, "
                f"ceil_mode={self.ceil_mode}, count_include_pad={self.count_include_pad}")
