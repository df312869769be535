"""DeconvNet projection (Zeiler and Fergus 2014, "Visualizing and understanding convolutional
networks", section 2.1): map one activation of one layer back to pixel space.

Keep one activation of the chosen feature map (its value), set every other activation of the
layer to zero, and send that back down through the layers beneath, each one reversed:

- max pooling -> max *unpooling* with the switches recorded in the forward pass (the
  positions of the maxima, ``MaxPoolCache.indices``): each value goes to its window's switch;
  where overlapping windows share a switch their values add (the adjoint of pooling).
  :func:`~convprop.functional.unpooling.max_unpool2d_forward` keeps one writer per switch
  instead, the last, which would drop the projected activation whenever a later window
  sharing its switch carries 0;
- ReLU -> ReLU of the reconstruction (the signal is kept positive on its way down);
- convolution -> transposed convolution with the same filters ("flipped vertically and
  horizontally", i.e. transposed): :func:`~convprop.functional.conv_transpose.
  conv_transpose2d_forward`, the bias left out;
- fully connected -> the transposed weight, flatten -> reshape; identity and (evaluation
  mode) dropout pass the signal through;
- local response normalisation passes it through too: the paper's layers include a
  normalisation across feature maps (a "local contrast operation"), and its deconvnet has no
  inverse for it, only unpooling, rectification and filtering (section 2.1). The projection
  of an AlexNet-style network keeps the switches its normalisation decided, not its
  derivative.

This is the explicit construction. Without local response normalisation it equals
back-propagating the one-hot activation with every ReLU under the "deconvnet" rule
(:func:`~convprop.layers.activation.relu_rule`, max pooling's ties="first"), which the tests
check, overlapping pooling windows included, and Captum's ``NeuronDeconvolution`` times the
activation. Layers with no DeconvNet inverse in the paper (batch norm, residual blocks, other
poolings, leaky ReLU and the other activations, whose rectification the paper does not
define) are rejected by name.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..functional.conv import _pads as conv_pads
from ..functional.conv_transpose import conv_transpose2d_forward
from ..layers.activation import ReLU
from ..layers.container import Sequential
from ..layers.conv import Conv2d
from ..layers.dropout import Dropout
from ..layers.linear import Linear
from ..layers.module import Module
from ..layers.normalization import LocalResponseNorm
from ..layers.pooling import MaxPool2d
from ..layers.reshape import Flatten, Identity
from ._tap import resolve_layer
from .attribution import _check_model_x

__all__ = ["Projection", "deconvnet_projection", "strongest_channels", "layer_path"]

_PASS = (Identity, Dropout, LocalResponseNorm)


class Projection(NamedTuple):
    """``image`` (N, C, H, W): each example's projection; ``position`` (N, ndim) int: where in
    the feature map the projected activation sits; ``activation`` (N,): its value."""

    image: np.ndarray
    position: np.ndarray
    activation: np.ndarray


def _leaves(m: Module) -> list[Module]:
    if isinstance(m, Sequential):
        return [leaf for c in m for leaf in _leaves(c)]
    return [m]


def layer_path(op: str, model: Module, layer) -> tuple[str, list[Module]]:
    """The chain of leaf modules from the input up to and including ``layer`` (the model
    must be nested ``Sequential``s down to there), and the layer's name."""
    name, target = resolve_layer(op, model, layer)
    want = set(map(id, _leaves(target)))
    leaves = _leaves(model)
    ends = [i for i, m in enumerate(leaves) if id(m) in want]
    if not ends:
        parts, block = name.split("."), model
        for i in range(len(parts)):
            if not isinstance(block, Sequential):
                break
            block = dict(block.named_children())[parts[i]]
        raise ValueError(f"{op}: layer {name!r} is not on the model's Sequential chain: it "
                         f"sits inside {'.'.join(parts[:i])!r}, a {type(block).__name__}, which "
                         "the DeconvNet cannot invert")
    path = leaves[: ends[-1] + 1]
    for m in path:
        if not isinstance(m, (Conv2d, ReLU, MaxPool2d, Flatten, Linear, *_PASS)):
            raise ValueError(f"{op}: cannot project through {type(m).__name__} (the DeconvNet "
                             "inverts Conv2d, ReLU, MaxPool2d, Linear and Flatten, and passes "
                             "Identity, Dropout and LocalResponseNorm)")
        if isinstance(m, Conv2d) and m.mode != "cross-correlation":
            raise ValueError(f"{op}: cannot project through a Conv2d of mode {m.mode!r}")
        if isinstance(m, MaxPool2d) and m.return_indices:
            raise ValueError(f"{op}: cannot project through a MaxPool2d with return_indices")
    return name, path


def _down(m: Module, r: np.ndarray, x_in: np.ndarray, cache) -> np.ndarray:
    """One layer of the DeconvNet: the reconstruction r at m's output -> at m's input."""
    if isinstance(m, ReLU):
        return np.maximum(r, 0)
    if isinstance(m, MaxPool2d):   # unpooling: to the switches, shared ones adding
        n, c = r.shape[:2]
        up = np.zeros((n, c, x_in.shape[2] * x_in.shape[3]), dtype=r.dtype)
        np.add.at(up, (np.arange(n)[:, None, None], np.arange(c)[None, :, None],
                       cache.indices.reshape(n, c, -1)), r.reshape(n, c, -1))
        return up.reshape(x_in.shape)
    if isinstance(m, Conv2d):
        # onto the padded input (any padding: a number, "valid", "same" with its odd extra
        # pixel after), then the padding cropped off
        pads = conv_pads(m.padding, m.kernel_size, m.dilation)
        full = [n + lo + hi for n, (lo, hi) in zip(x_in.shape[2:], pads)]
        base = [(n - 1) * s + d * (k - 1) + 1 for n, s, d, k in zip(
            r.shape[2:], m.stride, m.dilation, m.kernel_size)]
        up = conv_transpose2d_forward(r, m.weight.value, None, stride=m.stride, padding=0,
                                      output_padding=tuple(int(t - b) for t, b in
                                                           zip(full, base)),
                                      dilation=m.dilation, groups=m.groups)[0]
        (top, _), (left, _) = pads
        return up[:, :, top:top + x_in.shape[2], left:left + x_in.shape[3]]
    if isinstance(m, Linear):
        return r @ m.weight.value
    if isinstance(m, Flatten):
        return r.reshape(x_in.shape)
    return r  # Identity, Dropout (evaluation mode), LocalResponseNorm (the paper's choice)


def _forward_path(path, x):
    inputs, caches = [], []
    h = x
    for m in path:
        inputs.append(h)
        h, c = m.forward(h, training=False)
        caches.append(c)
    return h, inputs, caches


def deconvnet_projection(model: Module, x: np.ndarray, layer, channel: int, *,
                         position=None) -> Projection:
    """Project one activation of feature map ``channel`` of ``layer`` back to pixel space.

    Args:
        model: nested ``Sequential``s of Conv2d / ReLU / MaxPool2d / Linear / Flatten /
            Identity / Dropout / LocalResponseNorm down to ``layer``.
        x: (N, C, H, W) in the model's dtype.
        layer: a module of the model or its dotted name.
        channel: the feature map (a unit, for a fully connected layer).
        position: None (each example's strongest activation of that map, the first on a
            tie), or one index tuple into the map's spatial axes for every example.
    Returns:
        :class:`Projection`: the reconstructions (x's shape), positions and activations.
    """
    op = "deconvnet_projection"
    x = _check_model_x(op, model, x)
    name, path = layer_path(op, model, layer)
    a, inputs, caches = _forward_path(path, x)
    if not isinstance(channel, (int, np.integer)) or isinstance(channel, bool) or not (
            0 <= channel < a.shape[1]):
        raise ValueError(f"{op}: channel must be an int in 0..{a.shape[1] - 1} (layer {name!r} "
                         f"has {a.shape[1]} feature maps), got {channel!r}")
    maps = a[:, channel].reshape(a.shape[0], -1)
    spatial = a.shape[2:]
    if position is None:
        flat = maps.argmax(axis=1)
    else:
        pos = tuple(position) if isinstance(position, (tuple, list)) else (position,)
        if len(pos) != len(spatial) or not all(
                isinstance(p, (int, np.integer)) and 0 <= p < s for p, s in zip(pos, spatial)):
            raise ValueError(f"{op}: position must index the feature map of shape {spatial}, "
                             f"got {position!r}")
        flat = np.full(a.shape[0], np.ravel_multi_index(pos, spatial) if spatial else 0)
    n = np.arange(a.shape[0])
    values = maps[n, flat]
    r = np.zeros_like(a)
    r.reshape(a.shape[0], a.shape[1], -1)[n, channel, flat] = values
    for m, x_in, c in zip(reversed(path), reversed(inputs), reversed(caches)):
        r = _down(m, r, x_in, c)
    where = np.stack(np.unravel_index(flat, spatial), axis=1) if spatial else flat[:, None] * 0
    return Projection(r, where.astype(np.int64), values)


def strongest_channels(model: Module, x: np.ndarray, layer, k: int = 9) -> np.ndarray:
    """The ``k`` feature maps of ``layer`` with the largest maximum activation for the single
    example ``x`` (1, C, H, W), strongest first (ties: lower channel first)."""
    op = "strongest_channels"
    x = _check_model_x(op, model, x)
    if x.shape[0] != 1:
        raise ValueError(f"{op}: x must hold one example (1, C, H, W), got {x.shape}")
    _, path = layer_path(op, model, layer)
    a = _forward_path(path, x)[0][0]
    peak = a.reshape(a.shape[0], -1).max(axis=1)
    return np.argsort(-peak, kind="stable")[: max(1, min(int(k), a.shape[0]))]
