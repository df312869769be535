"""Attribution: which input pixels (or which positions of a layer) a class score depends on.

``attribute(model, x, target, method=..., **options)`` returns attributions shaped like the
input, (N, C, H, W), as Captum does, for any convprop model (a ``Module`` whose forward maps
x to class scores (N, K)) and batch. ``target`` is one class for every example or one per
example. The *score* is the unnormalised class score, the model's output before any softmax
(Simonyan et al. 2013). Every method runs the model's own ``forward(x, training=False)`` and
``backward`` (evaluation mode: batch norm uses its running statistics, dropout is off), and
none of them touches a ``Parameter.grad`` (see :func:`~convprop.explain._tap.scratch_grads`).

Methods (``METHODS``):

- ``"gradient"``: d score / dx (Simonyan, Vedaldi and Zisserman 2013, "Deep inside
  convolutional networks"); :func:`saliency_map` then takes max |.| over channels, their
  eq. (2's) map. Captum: ``Saliency(abs=False)``.
- ``"guided"``: guided backpropagation (Springenberg et al. 2014): every ReLU back-propagates
  ``[x > 0] [dy > 0] dy``. Captum: ``GuidedBackprop``.
- ``"deconvnet"``: every ReLU back-propagates ``[dy > 0] dy`` (Zeiler and Fergus 2014).
  Captum: ``Deconvolution``. For the projection of one activation see
  :mod:`convprop.explain.deconvnet`.
- ``"gradcam"`` (``layer=`` required): Grad-CAM (Selvaraju et al. 2017): with A the layer's
  output (N, K, h, w) and G = d score / dA, ``alpha_k = mean_ij G_kij`` and
  ``map = relu(sum_k alpha_k A_k)``, shape (N, 1, h, w): the layer's spatial shape.
  ``relu=False`` keeps the negative part (Captum's ``LayerGradCam`` default).
- ``"guided_gradcam"`` (``layer=`` required): guided backpropagation times the Grad-CAM map
  up-sampled to the input's size (``interpolate="bilinear"``, the paper's choice, or
  "nearest", Captum's default). Captum: ``GuidedGradCam``.
- ``"smoothgrad"``: the mean of ``base`` attributions (default "gradient") over ``n_samples``
  copies of x with Gaussian noise of std ``noise_level * (max(x_n) - min(x_n))`` per example
  (Smilkov et al. 2017, who found 10-20 % best; default 0.15, 50 samples). ``rng``: a numpy
  Generator; None means ``default_rng(0)``, so a call is reproducible.
- ``"integrated_gradients"``: ``(x - baseline) * integral_0^1 d score/dx (baseline +
  a (x - baseline)) da`` (Sundararajan et al. 2017), the integral by ``integration``
  ("gausslegendre", Captum's default, or "riemann_left" / "riemann_right" /
  "riemann_middle" / "riemann_trapezoid") over ``steps`` points (default 50); ``baseline``:
  None (zeros), a number, or an array broadcastable to x. The attributions of an example sum
  to ``score(x) - score(baseline)`` up to the quadrature error (completeness).
  "riemann_trapezoid" is the trapezoid rule (weights 1/(steps-1), halved at the ends);
  Captum's weights 1/steps, halved at the ends, which sum to (steps-1)/steps.
- ``"cues"``: forward and backward cues saliency (Imamoglu et al. 2017), a map (N, 1, H, W)
  at the input's size: see :func:`convprop.explain.cues.cues` for its options and the
  choices made where the paper leaves them open.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._checks import boolean, finite_number, positive_int
from ..layers.activation import relu_rule
from ..layers.module import Module
from ._tap import resolve_layer, scratch_grads, tap
from .resample import INTERPOLATION, interpolate

__all__ = ["METHODS", "attribute", "saliency_map", "class_scores", "score_gradient"]

METHODS = ("gradient", "guided", "deconvnet", "gradcam", "guided_gradcam", "smoothgrad",
           "integrated_gradients", "cues")
_RULE_OF = {"gradient": "gradient", "guided": "guided", "deconvnet": "deconvnet"}
_INTEGRATION = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle",
                "riemann_trapezoid")


# ------------------------------------------------------------------------ shared plumbing

def _check_model_x(op: str, model, x) -> np.ndarray:
    if not isinstance(model, Module):
        raise TypeError(f"{op}: model must be a convprop Module, got {type(model).__name__}")
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: x must be a float32 or float64 numpy.ndarray, got "
                        f"{type(x).__name__} {getattr(x, 'dtype', '')}".rstrip())
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"{op}: x must be a batch (N, C, ...) with N >= 1, got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():   # the score would be NaN while the map back-propagated to x stays finite
        count, first = int(bad.sum()), int(np.argwhere(bad)[0][0])
        raise ValueError(f"{op}: x holds {count} NaN or infinite value{'s' * (count > 1)} "
                         f"(example {first})")
    params = model.parameters()
    if params and params[0].value.dtype != x.dtype:
        raise TypeError(f"{op}: x has dtype {x.dtype} but the model's parameters are "
                        f"{params[0].value.dtype}; cast x or call model.astype({x.dtype})")
    return x


def _targets(op: str, target, n: int) -> np.ndarray:
    """``target`` as an int64 array of length n (range checked later, against K)."""
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        return np.full(n, int(target), dtype=np.int64)
    t = np.asarray(target)
    if t.dtype.kind not in "iu" or t.ndim != 1 or len(t) != n:
        raise TypeError(f"{op}: target must be an int or one int per example ({n}), got "
                        f"{target!r}")
    return t.astype(np.int64)


def _check_scores(op: str, y, t: np.ndarray) -> None:
    if not isinstance(y, np.ndarray) or y.ndim != 2:
        raise ValueError(f"{op}: the model must output class scores (N, K), got "
                         f"{getattr(y, 'shape', type(y).__name__)}")
    k = y.shape[1]
    bad = t[(t < 0) | (t >= k)]
    if bad.size:
        raise ValueError(f"{op}: target {int(bad[0])} is out of range for a model with {k} "
                         f"classes (0..{k - 1})")


def class_scores(model: Module, x: np.ndarray) -> np.ndarray:
    """The unnormalised class scores (N, K) in evaluation mode."""
    return model.forward(x, training=False)[0]


def score_gradient(model: Module, x: np.ndarray, target, *, rule: str = "gradient",
                   seed: np.ndarray | None = None, op: str = "attribute") -> np.ndarray:
    """d score / dx with every ReLU back-propagating by ``rule``; the upstream gradient at
    the output is the one-hot of ``target`` (or ``seed``, an (N, K) array, when given).
    Parameter gradients are left untouched."""
    t = _targets(op, target, x.shape[0])
    with scratch_grads(model), relu_rule(model, rule):
        y, cache = model.forward(x, training=False)
        _check_scores(op, y, t)
        if seed is not None and np.shape(seed) != y.shape:
            raise ValueError(f"{op}: seed must have the scores' shape {y.shape}, got "
                             f"{np.shape(seed)}")
        dy = _one_hot(y, t) if seed is None else np.asarray(seed, dtype=y.dtype)
        return model.backward(dy, cache)


def _one_hot(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    dy = np.zeros_like(y)
    dy[np.arange(len(t)), t] = 1
    return dy


def _layer_pass(op, model, x, target, layer, rule="gradient"):
    """(A, dA, dx): the layer's output, the score's gradient there, and the input gradient,
    all from one forward and one backward with ReLUs under ``rule``."""
    name, module = resolve_layer(op, model, layer)
    t = _targets(op, target, x.shape[0])
    with scratch_grads(model), relu_rule(model, rule), tap(module, name) as rec:
        y, cache = model.forward(x, training=False)
        _check_scores(op, y, t)
        dx = model.backward(_one_hot(y, t), cache)
    a, g = rec.single(op)
    if not isinstance(a, np.ndarray) or a.ndim < 3:
        raise ValueError(f"{op}: layer {name!r} must output spatial maps (N, C, h, w), got "
                         f"shape {getattr(a, 'shape', None)}")
    return a, g, dx


def _options(op: str, method: str, options: dict, allowed: dict) -> dict:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"{op}: method {method!r} takes no option {unknown[0]!r} (its options: "
                        f"{', '.join(sorted(allowed)) or 'none'})")
    return {**allowed, **options}


# ------------------------------------------------------------------------------ methods

def _gradcam_map(a, g, relu):
    alpha = g.mean(axis=tuple(range(2, g.ndim)), keepdims=True)
    cam = (alpha * a).sum(axis=1, keepdims=True)
    return np.maximum(cam, 0) if relu else cam


def _gradcam(model, x, target, o):
    relu = boolean("attribute", "relu", o["relu"])
    a, g, _ = _layer_pass("attribute", model, x, target, o["layer"])
    return _gradcam_map(a, g, relu)


def _guided_gradcam(model, x, target, o):
    if o["interpolate"] not in INTERPOLATION:
        raise ValueError(f"attribute: interpolate must be one of {INTERPOLATION}, got "
                         f"{o['interpolate']!r}")
    a, g, _ = _layer_pass("attribute", model, x, target, o["layer"])
    if x.ndim != 4 or a.ndim != 4:
        raise ValueError(f"attribute: guided_gradcam needs 2-D images and a 2-D layer, got x "
                         f"{x.shape} and the layer's output {a.shape}")
    cam = interpolate(_gradcam_map(a, g, True), x.shape[2:], o["interpolate"])
    return score_gradient(model, x, target, rule="guided") * cam


def _smoothgrad(model, x, target, o):
    n = positive_int("attribute", "n_samples", o["n_samples"])
    level = finite_number("attribute", "noise_level", o["noise_level"], low=0.0)
    base = o["base"]
    if base not in _RULE_OF:
        raise ValueError(f"attribute: smoothgrad base must be one of {tuple(_RULE_OF)}, got "
                         f"{base!r}")
    rng = np.random.default_rng(0) if o["rng"] is None else o["rng"]
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"attribute: rng must be a numpy.random.Generator or None, got "
                        f"{type(rng).__name__}")
    axes = tuple(range(1, x.ndim))
    span = (x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True)) * level
    total = np.zeros_like(x)
    for _ in range(n):
        noisy = x + (rng.standard_normal(x.shape) * span).astype(x.dtype)
        total += score_gradient(model, noisy, target, rule=_RULE_OF[base])
    return total / x.dtype.type(n)


def ig_points(steps: int, integration: str) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, weights) of the path integral's quadrature on [0, 1] (Captum's rules)."""
    if integration not in _INTEGRATION:
        raise ValueError(f"attribute: integration must be one of {_INTEGRATION}, got "
                         f"{integration!r}")
    if integration == "gausslegendre":
        nodes, w = np.polynomial.legendre.leggauss(steps)
        return 0.5 * (nodes + 1), 0.5 * w
    if integration == "riemann_trapezoid":
        if steps < 2:
            raise ValueError("attribute: riemann_trapezoid needs steps >= 2")
        w = np.full(steps, 1 / (steps - 1))
        w[[0, -1]] /= 2
        return np.linspace(0, 1, steps), w
    start = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[integration]
    return (np.arange(steps) + start) / steps, np.full(steps, 1 / steps)


def _integrated_gradients(model, x, target, o):
    steps = positive_int("attribute", "steps", o["steps"])
    alphas, weights = ig_points(steps, o["integration"])
    b = o["baseline"]
    if b is None:
        b = np.zeros_like(x)
    elif isinstance(b, numbers.Real) and not isinstance(b, bool):
        b = np.full_like(x, finite_number("attribute", "baseline", b))
    else:
        b = np.asarray(b)
        if b.dtype.kind not in "biuf":
            raise TypeError(f"attribute: baseline must be None, a number or an array of "
                            f"numbers, got {b.dtype}")
        try:
            b = np.broadcast_to(b, x.shape).astype(x.dtype)
        except ValueError:
            raise ValueError(f"attribute: baseline of shape {b.shape} does not broadcast to "
                             f"x's shape {x.shape}") from None
        if not np.isfinite(b).all():
            raise ValueError("attribute: baseline holds NaN or infinite values")
    total = np.zeros_like(x)
    for a, w in zip(alphas, weights):
        point = b + x.dtype.type(a) * (x - b)
        total += x.dtype.type(w) * score_gradient(model, point, target)
    return (x - b) * total


def _rule_method(rule):
    return lambda model, x, target, o: score_gradient(model, x, target, rule=rule)


def _cues(model, x, target, o):
    from .cues import cues
    return cues(model, x, target, **o)


_NO_LAYER = object()
_METHODS = {
    "gradient": (_rule_method("gradient"), {}),
    "guided": (_rule_method("guided"), {}),
    "deconvnet": (_rule_method("deconvnet"), {}),
    "gradcam": (_gradcam, {"layer": _NO_LAYER, "relu": True}),
    "guided_gradcam": (_guided_gradcam, {"layer": _NO_LAYER, "interpolate": "bilinear"}),
    "smoothgrad": (_smoothgrad, {"n_samples": 50, "noise_level": 0.15, "base": "gradient",
                                 "rng": None}),
    "integrated_gradients": (_integrated_gradients, {"baseline": None, "steps": 50,
                                                     "integration": "gausslegendre"}),
    "cues": (_cues, {"layers": None, "weights": None, "backward_from": "target",
                     "sigma": None, "center_bias": False}),
}


def attribute(model: Module, x: np.ndarray, target, method: str = "gradient",
              **options) -> np.ndarray:
    """Attributions of the class score ``target`` to the input ``x`` by ``method``.

    Args:
        model: a convprop Module mapping x to class scores (N, K).
        x: (N, C, H, W) (or any (N, C, ...) batch for the non-layer methods), in the
            model's dtype. Never written.
        target: one class index for every example, or a sequence of N indices.
        method: one of :data:`METHODS` (see the module docstring).
        **options: the method's options: ``layer`` (a module of the model or its dotted
            name) for "gradcam" / "guided_gradcam", ``relu``, ``interpolate``, ``n_samples``,
            ``noise_level``, ``base``, ``rng``, ``baseline``, ``steps``, ``integration``, and
            for "cues" ``layers``, ``weights``, ``backward_from``, ``sigma``, ``center_bias``.
    Returns:
        x's shape and dtype for "gradient", "guided", "deconvnet", "guided_gradcam",
        "smoothgrad" and "integrated_gradients"; (N, 1, h, w) at the layer's spatial shape
        for "gradcam"; (N, 1, H, W) for "cues".
    """
    x = _check_model_x("attribute", model, x)
    if method not in _METHODS:
        raise ValueError(f"attribute: unknown method {method!r}; methods are "
                         f"{', '.join(METHODS)}")
    fn, allowed = _METHODS[method]
    o = _options("attribute", method, options, allowed)
    if o.get("layer", None) is _NO_LAYER:
        raise TypeError(f"attribute: method {method!r} needs layer= (a module of the model or "
                        "its dotted name from named_modules())")
    return fn(model, x, target, o)


def saliency_map(attributions: np.ndarray, reduce: str = "max_abs") -> np.ndarray:
    """Reduce attributions (N, C, ...) over the channel axis to maps (N, ...).

    ``reduce``: "max_abs" (default; Simonyan et al. 2013: ``max_c |a_c|``), "abs_sum"
    (``sum_c |a_c|``) or "sum" (signed, e.g. for Grad-CAM or Integrated Gradients, whose
    sign means something). No normalisation: the values keep their units (score per input
    unit), so maps of one method can be compared across examples."""
    if not isinstance(attributions, np.ndarray) or attributions.ndim < 2:
        raise ValueError(f"saliency_map: attributions must be an array (N, C, ...), got "
                         f"{getattr(attributions, 'shape', type(attributions).__name__)}")
    if reduce == "max_abs":
        return np.abs(attributions).max(axis=1)
    if reduce == "abs_sum":
        return np.abs(attributions).sum(axis=1)
    if reduce == "sum":
        return attributions.sum(axis=1)
    raise ValueError(f"saliency_map: reduce must be 'max_abs', 'abs_sum' or 'sum', got "
                     f"{reduce!r}")
