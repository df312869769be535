"""Dense pixelwise forward and backward: a patch classifier run over a whole image at once.

Li, Zhao and Wang, "Highly efficient forward and backward propagation of convolutional
neural networks for pixelwise classification" (arXiv:1412.4526, 2014). A patch classifier
applied to the patch around every pixel recomputes the overlapping patches' features again
and again. :func:`to_dense` rewrites it so that one pass over the image computes each
feature once: every convolution and pooling gets stride 1, and its kernel becomes
"d-regularly sparse" (dilated by d, the product of the strides before it), so that the
feature maps of all patches sit interleaved in one map; the first fully connected layer
becomes a convolution with the same kind of sparse kernel, the later ones 1x1
convolutions. The result equals patch-by-patch scanning exactly (up to float rounding in
the sums' order). Training on a subset of the pixels masks the error map at the last layer
(:class:`PixelCrossEntropyLoss` with negative labels for the pixels left out): one backward
gives the sum of the per-patch gradients at any number of sampled pixels.

Patch convention: the patch of pixel (i, j) of an H x W image is rows ``i - top ..
i - top + P - 1`` (and likewise columns) of the image zero-padded by ``top = (P - 1) // 2``
before and ``P - 1 - top`` after, so odd P centres the pixel and even P puts it just above
left of the centre. :func:`image_patches` builds exactly these patches (the loop oracle).

What densifies: Conv2d (padding 0: a zero padding inside the patch classifier pads each
patch's own border, which no single pass can reproduce; any stride, dilation, groups),
MaxPool2d and AvgPool2d (padding 0, no ceil_mode), element-wise activations (ReLU,
LeakyReLU, Sigmoid, Tanh, Identity, the deterministic binary Sign), Flatten followed by
Linear, Linear on a 1x1 map, and nested Sequentials. Anything else is a ValueError naming
the layer: batch norm, dropout, LRN, ... (the output for a patch depends on more than the
patch's window or on random draws), a Conv2d/Linear with a meProp backward (its top-k would
run over every pixel's gradient at once, not per patch), and subclasses of the layers above
such as BinaryConv2d / BinaryLinear (the dense convolution would use their latent weight and
the plain backward, not the subclass's forward and backward).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import functional as F
from .._checks import check_dy, positive_int
from ..layers.activation import LeakyReLU, ReLU, Sigmoid, Tanh
from ..layers.binary import Sign
from ..layers.container import Sequential
from ..layers.conv import Conv2d
from ..layers.linear import Linear
from ..layers.loss import Loss
from ..layers.module import Module
from ..layers.pooling import AvgPool2d, MaxPool2d
from ..layers.reshape import Flatten, Identity

__all__ = ["DenseNet", "PixelCrossEntropyLoss", "image_patches", "patch_pads", "to_dense"]

_ELEMENTWISE = (ReLU, LeakyReLU, Sigmoid, Tanh, Identity)
#: Layers rewritten by to_dense, matched by exact type: a subclass may change the forward.
_REWRITTEN = (Conv2d, Linear, MaxPool2d, AvgPool2d)


def _refuse(op: str, i: int, m: Module) -> str | None:
    """Why layer i cannot be densified although it is an instance of a supported type."""
    name = type(m).__name__
    if isinstance(m, _REWRITTEN) and type(m) not in _REWRITTEN:
        return (f"{op}: layer {i} ({name}) cannot be densified: it subclasses "
                f"{next(c for c in _REWRITTEN if isinstance(m, c)).__name__} and its own "
                f"forward/backward would be replaced by the plain one")
    if getattr(m, "meprop_k", None) is not None:
        return (f"{op}: layer {i} ({name}) uses a meProp backward, whose top-k would run "
                f"over all pixels at once: cannot be densified (set meprop_k=None)")
    if isinstance(m, Sign) and m.stochastic:
        return (f"{op}: layer {i} (Sign) is stochastic: each patch would draw its own "
                f"binarization, which one dense pass cannot reproduce")
    return None


def patch_pads(patch_size: int) -> tuple[int, int]:
    """(before, after) zero padding that gives every pixel its P x P patch."""
    top = (patch_size - 1) // 2
    return top, patch_size - 1 - top


def image_patches(x: np.ndarray, patch_size: int) -> np.ndarray:
    """Every pixel's patch: x (N, C, H, W) -> (N*H*W, C, P, P), in (n, i, j) order (a copy)."""
    P = positive_int("image_patches", "patch_size", patch_size)
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"image_patches: x must be (N, C, H, W), got shape {x.shape}")
    a, b = patch_pads(P)
    xp = np.pad(x, ((0, 0), (0, 0), (a, b), (a, b)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (P, P), axis=(2, 3))
    N, C, H, W = x.shape
    return np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(N * H * W, C, P, P)


class _DenseConv(Module):
    """A Conv2d or Linear of the patch classifier as a stride-1 convolution with a dilated
    kernel; it shares the source's Parameters (the source is its child)."""

    def __init__(self, source: Module, dilation: tuple, w_shape: tuple, groups=1,
                 mode="cross-correlation"):
        super().__init__()
        self.source = source
        self.dilation, self.w_shape, self.groups, self.mode = dilation, w_shape, groups, mode

    def forward(self, x, *, training: bool = False):
        s = self.source
        b = s.bias.value if s.bias is not None else None
        return F.conv2d_forward(x, s.weight.value.reshape(self.w_shape), b, stride=1,
                                dilation=self.dilation, groups=self.groups, mode=self.mode)

    def backward(self, dy, cache, *, need_dx: bool = True):
        dx, dw, db = F.conv2d_backward(dy, cache, need_dx=need_dx)
        s = self.source
        s.weight.grad += dw.reshape(s.weight.shape)
        if s.bias is not None:
            s.bias.grad += db
        return dx

    def extra_repr(self) -> str:
        return f"{type(self.source).__name__} as weight {self.w_shape}, dilation={self.dilation}"


class _DenseAvgPool(Module):
    """Average pooling with stride 1 and a dilated window: a depthwise convolution with the
    constant kernel 1/divisor (no parameters)."""

    def __init__(self, channels: int, kernel: tuple, dilation: tuple, divisor: int, dtype):
        super().__init__()
        self.dilation = dilation
        self._w = np.full((channels, 1, *kernel), 1.0 / divisor, dtype=dtype)

    def forward(self, x, *, training: bool = False):
        return F.conv2d_forward(x, self._w.astype(x.dtype, copy=False), None, stride=1,
                                dilation=self.dilation, groups=self._w.shape[0])

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.conv2d_backward(dy, cache)[0]


class DenseCache(NamedTuple):
    x_shape: tuple
    dtype: np.dtype
    out_shape: tuple        # the layers' full output before cropping to (H, W)
    caches: list


class DenseNet(Module):
    """The densified network: ``forward(x (N, C, H, W)) -> (N, K, H, W)`` with
    ``y[n, :, i, j] = patch_model(patch of pixel (i, j))``; ``backward(dy (N, K, H, W))``
    adds into the patch classifier's own Parameters and returns dx (N, C, H, W)."""

    def __init__(self, layers: list, patch_size: int, in_channels: int, source: Module):
        super().__init__()
        self.layers = Sequential(*layers)
        self.patch_size, self.in_channels = patch_size, in_channels
        object.__setattr__(self, "source", source)

    def forward(self, x, *, training: bool = False):
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"DenseNet: x must be (N, {self.in_channels}, H, W), got shape "
                             f"{x.shape}")
        a, b = patch_pads(self.patch_size)
        xp = np.pad(x, ((0, 0), (0, 0), (a, b), (a, b)))
        y, caches = self.layers.forward(xp, training=training)
        H, W = x.shape[2:]
        return y[:, :, :H, :W], DenseCache(x.shape, y.dtype, y.shape, caches)

    def backward(self, dy, cache, *, need_dx: bool = True):
        if not isinstance(cache, DenseCache):
            raise TypeError(f"DenseNet.backward: cache must be the DenseCache that forward "
                            f"returned, got {type(cache).__name__}")
        N, _, H, W = cache.x_shape
        dy = check_dy("DenseNet.backward", dy, (N, cache.out_shape[1], H, W), cache.dtype)
        full = np.zeros(cache.out_shape, dy.dtype)
        full[:, :, :H, :W] = dy
        dxp = self.layers.backward(full, cache.caches, need_dx=need_dx)
        if not need_dx:
            return None
        a, _ = patch_pads(self.patch_size)
        return dxp[:, :, a:a + H, a:a + W]

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, in_channels={self.in_channels}"


def _flat(m: Module) -> list:
    if isinstance(m, Sequential):
        return [leaf for child in m for leaf in _flat(child)]
    return [m]


def _no_pad(op, i, m, padding, extra=""):
    if padding == "valid":          # no padding, spelled as in torch
        return
    if isinstance(padding, str) or any(padding):
        raise ValueError(f"{op}: layer {i} ({type(m).__name__}) has padding {padding!r} and "
                         f"cannot be densified: a patch classifier's padding pads each "
                         f"patch's own border{extra}")


def to_dense(model: Module, patch_size: int, *, in_channels: int | None = None) -> DenseNet:
    """Rewrite the patch classifier ``model`` ((N, C, P, P) -> (N, K)) into a
    :class:`DenseNet` that gives its output at every pixel in one pass (see the module
    docstring). The DenseNet shares ``model``'s Parameters: training it trains ``model``."""
    op = "to_dense"
    P = positive_int(op, "patch_size", patch_size)
    layers = _flat(model)
    params = model.parameters()
    dtype = params[0].value.dtype if params else np.float64
    if in_channels is None:
        first = next((m for m in layers if isinstance(m, Conv2d)), None)
        if first is None:
            raise ValueError(f"{op}: pass in_channels= (the model has no Conv2d to read it from)")
        in_channels = first.in_channels
    h = np.zeros((1, in_channels, P, P), dtype)     # the patch's feature map, layer by layer
    d = (1, 1)                                       # spacing of one patch's features
    out, pending_flat = [], None
    for i, m in enumerate(layers):
        name = type(m).__name__
        why = _refuse(op, i, m)
        if why is not None:
            raise ValueError(why)
        if isinstance(m, Conv2d):
            _no_pad(op, i, m, m.padding)
            out.append(_DenseConv(m, tuple(a * b for a, b in zip(m.dilation, d)),
                                  m.weight.shape, m.groups, m.mode))
            d = tuple(a * b for a, b in zip(d, m.stride))
        elif isinstance(m, MaxPool2d):
            _no_pad(op, i, m, m.padding)
            if m.ceil_mode or m.return_indices:
                raise ValueError(f"{op}: layer {i} (MaxPool2d) with ceil_mode or "
                                 f"return_indices cannot be densified")
            out.append(MaxPool2d(m.kernel_size, stride=1, ties=m.ties,
                                 dilation=tuple(a * b for a, b in zip(m.dilation, d))))
            d = tuple(a * b for a, b in zip(d, m.stride))
        elif isinstance(m, AvgPool2d):
            _no_pad(op, i, m, m.padding)
            if m.ceil_mode:
                raise ValueError(f"{op}: layer {i} (AvgPool2d) with ceil_mode cannot be "
                                 f"densified")
            div = m.divisor_override or int(np.prod(m.kernel_size))
            out.append(_DenseAvgPool(h.shape[1], m.kernel_size, d, div, dtype))
            d = tuple(a * b for a, b in zip(d, m.stride))
        elif isinstance(m, (*_ELEMENTWISE, Sign)):
            out.append(m)
        elif isinstance(m, Flatten):
            pending_flat = h.shape[1:]
        elif isinstance(m, Linear):
            C, hh, ww = pending_flat if pending_flat is not None else (h.shape[1], 1, 1)
            if pending_flat is None and h.ndim == 4 and h.shape[2:] != (1, 1):
                raise ValueError(f"{op}: layer {i} (Linear) follows a {h.shape[2:]} map "
                                 f"without a Flatten")
            out.append(_DenseConv(m, d, (m.out_features, C, hh, ww)))
            d = (1, 1) if (hh, ww) == (1, 1) else d
            pending_flat = None
        else:
            raise ValueError(f"{op}: layer {i} ({name}) cannot be densified: its output for a "
                             f"patch depends on more than the patch's window (supported: "
                             f"Conv2d, MaxPool2d, AvgPool2d without padding, element-wise "
                             f"activations, deterministic Sign, Flatten + Linear)")
        if isinstance(m, Linear):
            h = m.predict(h.reshape(1, -1)).reshape(1, -1, 1, 1)
        elif not isinstance(m, Flatten):
            h = m.predict(h)
    if pending_flat is not None and pending_flat[1:] != (1, 1):
        raise ValueError(f"{op}: the model ends in a Flatten of a {pending_flat[1:]} map: its "
                         f"output is not one vector per patch")
    if h.shape[2:] != (1, 1):
        raise ValueError(f"{op}: the model maps a {P}x{P} patch to a {h.shape[2:]} map, not one "
                         f"output vector (patch_size too large for the classifier?)")
    return DenseNet(out, P, in_channels, model)


class PixelCrossEntropyLoss(Loss):
    """Softmax cross-entropy at the selected pixels of a dense output: logits (N, K, H, W),
    labels (N, H, W) integers, a negative label leaving that pixel out (the paper's mask on
    the error map: the backward is zero there). "mean" averages over the selected pixels,
    "sum" adds them (the sum of the patch-by-patch losses)."""

    _reductions = ("mean", "sum")

    def forward(self, pred, target):
        pred, target = np.asarray(pred), np.asarray(target)
        if pred.ndim != 4 or target.shape != (pred.shape[0], *pred.shape[2:]):
            raise ValueError(f"PixelCrossEntropyLoss: need logits (N, K, H, W) and labels "
                             f"(N, H, W), got {pred.shape} and {target.shape}")
        if target.dtype.kind not in "iu":
            raise TypeError(f"PixelCrossEntropyLoss: labels must be integers, got "
                            f"{target.dtype}")
        K = pred.shape[1]
        bad = np.argwhere(target >= K)
        if bad.size:
            raise ValueError(f"PixelCrossEntropyLoss: labels must be < {K} (the classes) or "
                             f"negative (masked), got {target[tuple(bad[0])]} at pixel "
                             f"(n, i, j) = {tuple(int(v) for v in bad[0])}")
        rows = pred.transpose(0, 2, 3, 1).reshape(-1, K)
        sel = np.flatnonzero(target.reshape(-1) >= 0)
        if sel.size == 0:
            raise ValueError("PixelCrossEntropyLoss: no pixel is selected (all labels < 0)")
        loss, c = F.softmax_cross_entropy_forward(rows[sel], target.reshape(-1)[sel],
                                                  reduction=self.reduction)
        return loss, (pred.shape, sel, c)

    def backward(self, dy, cache, *, need_dx: bool = True):
        shape, sel, c = cache
        N, K, H, W = shape
        g = np.zeros((N * H * W, K), c.probs.dtype)
        g[sel] = F.softmax_cross_entropy_backward(dy, c)
        return g.reshape(N, H, W, K).transpose(0, 3, 1, 2)
