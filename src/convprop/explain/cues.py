"""Forward and backward cues saliency (Imamoglu, Zhang, Shimoda, Fang and Shi, "Saliency
detection by forward and backward cues in deep-CNN", ICIP 2017, arXiv:1703.00152).

The idea: a layer's forward feature maps say *what is there*; the error signal propagated
back from the top says *what the decision used*. At each chosen layer l (output A_l, the
backward signal reaching it G_l) the cue map is ``sum_c A_l[c] * relu(G_l)[c]``; the maps of
all layers are up-sampled to the image, weighted and added, optionally multiplied by a
centre prior, and blurred:

    S = blur( prior * sum_l w_l * up( sum_c A_l * relu(G_l) ) )

The backward signal is rectified *at each chosen layer* (its negative part set to zero) before
it continues down, so the signal a lower layer receives was built from positive evidence only.

The paper's full text was not within reach when this was written; the equation above is
taken from the authors' own published code for the paper's top-down part
(Saliency_BackwardForwardFeatures_VGG16, "revised code for the top-down saliency computation
part", read for this implementation; nothing copied) and its README. That code covers the
paper's top-down saliency; whatever else the paper's full model adds is not implemented
here. The choices, each following that code unless said otherwise:

- Layers: they use VGG-16's pool2..pool5 outputs with weights 0.1, 0.5, 1.0, 0.1. Here
  ``layers`` may name any modules (dotted names or the modules); by default the outputs of
  every max-pooling module, or, in a network without one (ResNet), the last top-level child
  at each spatial resolution; ``weights`` default to 1 each.
- Top signal: their code starts the backward pass from the network's own output vector
  (``dy = y``, class-agnostic). ``backward_from="output"`` does that; the default
  ``"target"`` starts from the target class's one-hot (dy = e_k), so the map explains one
  class like every other method of :func:`~convprop.explain.attribute`.
- Up-sampling: bilinear (OpenCV's default resize). Blur: a Gaussian of std ``sigma`` pixels,
  default 2 * H / 224 (their 11-tap sigma-2 kernel at 224 x 224, scaled to the image).
- Centre prior: their ``0.75 |r / r_max - 1| + 0.25`` (r: distance to the image centre),
  which their README calls optional; off by default (``center_bias=True`` applies it).
- Output: the unnormalised map (N, 1, H, W); they min-max normalise for display, which the
  pictures here do too.
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np

from .._checks import boolean, finite_number
from ..layers.container import Sequential
from ..layers.module import Module
from ..layers.pooling import MaxPool1d, MaxPool2d, MaxPool3d
from ._tap import resolve_layer, scratch_grads, tap
from .attribution import _check_model_x, _check_scores, _one_hot, _targets
from .resample import gaussian_blur, interpolate

__all__ = ["cues", "default_cue_layers", "center_prior"]


def default_cue_layers(model: Module, x: np.ndarray) -> list[str]:
    """The layers :func:`cues` uses when none are given: every max pooling's output, else
    the last top-level child of a ``Sequential`` at each spatial resolution (4-D outputs)."""
    pools = [n for n, m in model.named_modules() if isinstance(m, (MaxPool1d, MaxPool2d,
                                                                   MaxPool3d))]
    if pools:
        return pools
    if not isinstance(model, Sequential):
        raise ValueError("cues: the model has no max pooling and is not a Sequential; name "
                         "the cue layers with layers=[...]")
    last, h = {}, x
    for name, m in model.named_children():
        h, _ = m.forward(h, training=False)
        if isinstance(h, np.ndarray) and h.ndim == 4:
            last[h.shape[2:]] = name
    if not last:
        raise ValueError("cues: no layer of the model outputs spatial maps; name the cue "
                         "layers with layers=[...]")
    return list(last.values())


def center_prior(shape: tuple, dtype=np.float64) -> np.ndarray:
    """The authors' centre bias ``0.75 |r / r_max - 1| + 0.25`` over an (H, W) grid: 1 at
    the centre, 0.25 at the farthest pixel."""
    h, w = shape
    yy, xx = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    r = np.hypot(yy, xx)
    r = r / r.max() if r.max() > 0 else r
    return (0.75 * np.abs(r - 1) + 0.25).astype(dtype)


def cues(model: Module, x: np.ndarray, target, *, layers=None, weights=None,
         backward_from: str = "target", sigma=None, center_bias: bool = False) -> np.ndarray:
    """Forward and backward cues saliency (N, 1, H, W) of ``x`` (N, C, H, W); see the module
    docstring for the equation and the choices. ``layers``: names or modules (default
    :func:`default_cue_layers`); ``weights``: one number per layer (default 1 each);
    ``backward_from``: "target" or "output"; ``sigma``: blur std in pixels (None: 2 H/224,
    0: none); ``center_bias``: multiply by :func:`center_prior`."""
    op = "cues"
    x = _check_model_x(op, model, x)
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be a batch of 2-D images (N, C, H, W), got {x.shape}")
    if backward_from not in ("target", "output"):
        raise ValueError(f"{op}: backward_from must be 'target' or 'output', got "
                         f"{backward_from!r}")
    center_bias = boolean(op, "center_bias", center_bias)
    if layers is None:
        layers = default_cue_layers(model, x)
    if isinstance(layers, (str, Module)) or not len(layers):
        raise TypeError(f"{op}: layers must be a non-empty list of modules or names, got "
                        f"{layers!r}")
    resolved = [resolve_layer(op, model, layer) for layer in layers]
    if len({id(m) for _, m in resolved}) != len(resolved):
        raise ValueError(f"{op}: layers name a module twice: {[n for n, _ in resolved]}")
    if weights is None:
        weights = [1.0] * len(resolved)
    if not isinstance(weights, (list, tuple, np.ndarray)) or len(weights) != len(resolved):
        raise ValueError(f"{op}: weights must give one number per layer ({len(resolved)}), "
                         f"got {weights!r}")
    weights = [finite_number(op, f"weights[{i}]", w) for i, w in enumerate(weights)]
    h, w = x.shape[2:]
    sigma = 2.0 * h / 224 if sigma is None else finite_number(op, "sigma", sigma, low=0.0)
    t = _targets(op, target, x.shape[0])

    def rectify(dy):
        return np.maximum(dy, 0)

    with scratch_grads(model), ExitStack() as stack:
        recs = [stack.enter_context(tap(m, n, edit_dy=rectify)) for n, m in resolved]
        y, cache = model.forward(x, training=False)
        _check_scores(op, y, t)
        model.backward(_one_hot(y, t) if backward_from == "target" else y.copy(), cache)
    total = np.zeros((x.shape[0], 1, h, w), dtype=x.dtype)
    for rec, wt in zip(recs, weights):
        a, g = rec.single(op)
        if not isinstance(a, np.ndarray) or a.ndim != 4:
            raise ValueError(f"{op}: layer {rec.name!r} must output spatial maps (N, C, h, w), "
                             f"got shape {getattr(a, 'shape', None)}")
        cue = (a * g).sum(axis=1, keepdims=True)  # g is already rectified by the tap
        total += x.dtype.type(wt) * interpolate(cue, (h, w), "bilinear")
    if center_bias:
        total = total * center_prior((h, w), x.dtype)
    return gaussian_blur(total, sigma)
