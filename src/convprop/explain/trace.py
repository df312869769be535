"""Explain mode: one training step of any model, layer by layer, as data.

``trace(model, x, target)`` runs one forward pass (every layer pushes its cache), the loss,
one backward pass (every layer pops its cache) and one gradient-descent update, on a *copy*
of the model, and returns a :class:`Trace`: per layer the net input or output it computed
(named in the textbook's notation: ``z`` for a weighted sum, ``a`` for an activation, ``p``
for a pooling...), what it pushed on the cache stack (the actual cache of its kernel, plus
readable views of it: max-pool switches as coordinates, the ReLU mask as 0/1, the dropout
mask), the delta it was handed on the way back, every parameter gradient and the update.
For a small layer the windows are shown one by one, computed by the loop tier
(:mod:`convprop.reference`) and checked against the fast kernel.

:func:`render_text` prints it (long tensors summarised: shape, norm, range and a few entries,
never dumped) and :meth:`Trace.to_dict` makes it JSON.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import numpy as np

from .. import reference as R
from ..layers.container import Sequential
from ..layers.loss import CrossEntropyLoss, Loss, MSELoss
from ..layers.module import Module

__all__ = ["Step", "Trace", "summarize", "trace"]

#: arrays up to this many elements are shown (and written to JSON) in full
FULL = 16
#: a layer's windows are shown one by one when it has at most this many outputs
MAX_WINDOWS = 16

# symbol and equation per module type: the output is sym{l}, the input the previous output
_AFFINE = {"Linear": "{o} = {i} W{l}^T + b{l}", "Conv1d": "{o} = {i} ⋆ W{l} + b{l}",
           "Conv2d": "{o} = {i} ⋆ W{l} + b{l}", "Conv3d": "{o} = {i} ⋆ W{l} + b{l}"}
_KINDS = {"ReLU": ("a", "{o} = max({i}, 0)"), "LeakyReLU": ("a", "{o} = leaky_relu({i})"),
          "Sigmoid": ("a", "{o} = σ({i}) = 1 / (1 + exp(-{i}))"),
          "Tanh": ("a", "{o} = tanh({i})"), "Flatten": ("f", "{o} = flatten({i})"),
          "Dropout": ("d", "{o} = {i} ⊙ m / (1 - p)"),
          "MaxPool1d": ("p", "{o} = maxpool({i})"), "MaxPool2d": ("p", "{o} = maxpool({i})"),
          "MaxPool3d": ("p", "{o} = maxpool({i})"), "AvgPool2d": ("p", "{o} = avgpool({i})"),
          "AdaptiveAvgPool2d": ("p", "{o} = adaptive_avgpool({i})"),
          "GlobalAvgPool2d": ("p", "{o} = mean of each plane of {i}"),
          "GlobalMaxPool2d": ("p", "{o} = max of each plane of {i}"),
          "LocalResponseNorm": ("n", "{o} = {i} / (k + α/n Σ_near {i}²)^β"),
          "BatchNorm2d": ("n", "{o} = γ (z - μ) / sqrt(σ² + ε) + β"),
          "BatchNorm1d": ("n", "{o} = γ (z - μ) / sqrt(σ² + ε) + β")}

_BLOCKS = {"Residual": "{o} = body({i}) + shortcut({i})",
           "Concat": "{o} = concat_k branch_k({i}) (along channels)"}


@dataclasses.dataclass
class Step:
    """One layer of the trace (arrays are float64 copies; ``pushed`` holds the cache)."""

    index: int                 # 1-based position in the forward order
    name: str                  # dotted name in model.named_modules()
    kind: str                  # the module's type name
    module: str                # its repr
    symbol_in: str
    symbol_out: str
    equation: str
    x: np.ndarray
    y: np.ndarray
    cache_type: str
    pushed: dict               # field -> value of the cache, plus readable views
    params: dict               # parameter name -> value before the update
    delta: np.ndarray | None = None    # dE/d(output), popped on the way back
    dx: np.ndarray | None = None       # dE/d(input), handed to the layer below
    grads: dict = dataclasses.field(default_factory=dict)   # this layer's share of dE/dw
    # the parameters after the update (a shared one at the first layer that uses it)
    updated: dict = dataclasses.field(default_factory=dict)
    windows: list | None = None        # small layers: each output's window, loop tier


@dataclasses.dataclass
class Trace:
    """One training step of a model on one batch, layer by layer."""

    model: str
    x: np.ndarray
    target: np.ndarray
    loss_name: str
    loss_equation: str
    prediction: np.ndarray
    loss: float
    dprediction: np.ndarray            # dE/d(model output), the first delta
    steps: list
    lr: float
    frozen: tuple
    loss_after: float                  # after the update: same x, target, mode and draws
    title: str = ""
    notes: list = dataclasses.field(default_factory=list)
    checks: list = dataclasses.field(default_factory=list)   # label, published, computed
    checks_source: str = ""            # where the checked digits come from

    def to_dict(self, full: int = FULL) -> dict:
        """JSON-ready: arrays up to ``full`` elements in full, longer ones summarised."""
        return _jsonable(dataclasses.asdict(self), full)

    def to_json(self, full: int = FULL, indent: int | None = 1) -> str:
        """Strict JSON (no NaN/Infinity tokens: non-finite numbers are the strings "nan",
        "inf", "-inf")."""
        return json.dumps(self.to_dict(full), indent=indent, allow_nan=False)


def summarize(a, full: int = FULL, head: int = 4) -> dict:
    """A long array as shape, norm, range and its first entries (and ``nonfinite``, the
    count of NaN/inf entries, when there are any); a short one in full."""
    a = np.asarray(a)
    if a.size <= full:
        return {"shape": list(a.shape), "values": a.tolist()}
    f = a.astype(np.float64).ravel()
    with np.errstate(invalid="ignore", over="ignore"):   # inf - inf in the mean: NaN, said
        out = {"shape": list(a.shape), "norm": float(np.linalg.norm(f)),
               "min": float(f.min()), "max": float(f.max()), "mean": float(f.mean()),
               "first": f[:head].tolist()}
    bad = int(np.count_nonzero(~np.isfinite(f)))
    return {**out, "nonfinite": bad} if bad else out


def _jsonable(v, full):
    if isinstance(v, np.ndarray):   # the summary's numbers go through the float rule below
        return _jsonable(summarize(v, full), full)
    if isinstance(v, dict):
        return {str(k): _jsonable(x, full) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, full) for x in v]
    if isinstance(v, (np.floating, float)):
        return float(v) if math.isfinite(v) else str(float(v))
    if isinstance(v, (np.integer, np.bool_)):
        return v.item()
    if v is None or isinstance(v, (bool, int, str)):
        return v
    return str(v)


# ----------------------------------------------------------------------------- the cache

def _fields(cache) -> dict:
    """A cache's fields by name: a NamedTuple, a dataclass, or a container of caches."""
    if hasattr(cache, "_fields"):
        return {f: getattr(cache, f) for f in cache._fields}
    if dataclasses.is_dataclass(cache):
        return {f.name: getattr(cache, f.name) for f in dataclasses.fields(cache)}
    return {}


def _readable(v, depth=0):
    """The cache as nested dicts/lists of arrays and plain values (never a copy of data
    the kernel did not keep)."""
    if isinstance(v, np.ndarray) or v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.dtype):
        return str(v)
    f = _fields(v)
    if f:
        out = {"type": type(v).__name__}
        out.update({k: _readable(x, depth + 1) for k, x in f.items()} if depth < 8 else {})
        return out
    if isinstance(v, (list, tuple)):
        return [_readable(x, depth + 1) for x in v] if depth < 8 else f"<{len(v)} caches>"
    return str(v)


def _views(cache, y) -> dict:
    """What a reader wants to see of a cache: switches, masks, as plain arrays."""
    name = type(cache).__name__
    views = {}
    if name.startswith("MaxPool") and hasattr(cache, "indices"):
        plane = cache.x_shape[2:]
        coords = np.stack(np.unravel_index(cache.indices, plane), axis=-1)
        views["switches"] = coords          # (N, C, *O, nd): the winner of each window
    elif name in ("ReluCache", "LeakyReluCache"):
        views["mask"] = np.asarray(cache.mask).astype(np.uint8)   # 1[z > 0]
    elif name == "DropoutCache":
        views["mask"] = (np.ones(cache.shape, np.uint8) if cache.mask is None
                         else np.asarray(cache.mask).astype(np.uint8))
    return views


# ----------------------------------------------------------------------------- windows

def _conv_windows(mod, x, y):
    if (getattr(mod, "mode", "cross-correlation") != "cross-correlation" or mod.groups != 1
            or isinstance(mod.padding, str) or x.ndim != 4 or x.shape[0] != 1
            or y[0].size > MAX_WINDOWS):
        return None
    w = mod.weight.value.astype(np.float64)
    b = None if mod.bias is None else mod.bias.value.astype(np.float64)
    kw = dict(stride=mod.stride, padding=mod.padding, dilation=mod.dilation)
    ref = R.conv(x, w, b, **kw)
    pads = R.conv_pads(mod.padding, mod.kernel_size, mod.dilation)
    xp = np.pad(x, [(0, 0), (0, 0), *pads])
    out = []
    for o, i, j in np.ndindex(*y.shape[1:]):
        r0, c0 = i * mod.stride[0], j * mod.stride[1]
        rs = slice(r0, r0 + mod.dilation[0] * (mod.kernel_size[0] - 1) + 1, mod.dilation[0])
        cs = slice(c0, c0 + mod.dilation[1] * (mod.kernel_size[1] - 1) + 1, mod.dilation[1])
        out.append({"out": [o, i, j], "rows": [rs.start - pads[0][0], rs.stop - pads[0][0]],
                    "cols": [cs.start - pads[1][0], cs.stop - pads[1][0]],
                    "patch": xp[0, :, rs, cs], "weights": w[o], "bias": 0.0 if b is None
                    else float(b[o]), "value": float(ref[0, o, i, j]),
                    "agrees": bool(np.isclose(ref[0, o, i, j], y[0, o, i, j], rtol=1e-5,
                                              atol=1e-6))})
    return out


def _pool_windows(mod, x, y):
    if x.ndim != 4 or x.shape[0] != 1 or y[0].size > MAX_WINDOWS:
        return None
    is_max = type(mod).__name__.startswith("MaxPool")
    kw = dict(kernel_size=mod.kernel_size, stride=mod.stride, padding=mod.padding,
              ceil_mode=mod.ceil_mode)
    if is_max:
        ref, idx = R.max_pool(x, dilation=mod.dilation, **kw)
        wins = R.pool_windows(x.shape, dilation=mod.dilation, **kw)
    else:
        ref, idx = R.avg_pool(x, count_include_pad=mod.count_include_pad,
                              divisor_override=mod.divisor_override, **kw), None
        wins = R.pool_windows(x.shape, **kw)
    out = []
    for c in range(y.shape[1]):
        for o, members in wins.items():
            e = {"out": [c, *o], "members": [list(m) for m in members],
                 "values": [float(x[(0, c, *m)]) for m in members],
                 "value": float(ref[(0, c, *o)]),
                 "agrees": bool(np.isclose(ref[(0, c, *o)], y[(0, c, *o)], rtol=1e-5,
                                           atol=1e-6))}
            if is_max:
                e["switch"] = [int(v) for v in np.unravel_index(idx[(0, c, *o)], x.shape[2:])]
            out.append(e)
    return out


def _windows(mod, x, y):
    kind = type(mod).__name__
    if kind == "Conv2d":
        return _conv_windows(mod, x, y)
    if kind in ("MaxPool2d", "AvgPool2d"):
        return _pool_windows(mod, x, y)
    return None


# ----------------------------------------------------------------------------- the step

def _layers(model: Module, prefix: str = ""):
    """(dotted name, module) in forward order: Sequential containers are opened, any other
    module (a leaf, a residual block, an inception block) is one step."""
    if isinstance(model, Sequential):
        for name, m in model.named_children():
            yield from _layers(m, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix or type(model).__name__, model


def _default_loss(target, model=None) -> Loss:
    """The model's own criterion when it defines one (LeNet-5 as published: eq. 9 on its RBF
    penalties), else cross-entropy for integer targets and MSE for real ones."""
    if model is not None and getattr(model, "criterion", None) is not None:
        return model.criterion()
    t = np.asarray(target)
    return CrossEntropyLoss() if np.issubdtype(t.dtype, np.integer) else MSELoss()


def _loss_equation(loss: Loss) -> str:
    if isinstance(loss, CrossEntropyLoss):
        return {"mean": "E = mean_n (log Σ_k exp(z_nk) - z_n,t_n)",
                "sum": "E = Σ_n (log Σ_k exp(z_nk) - z_n,t_n)"}.get(loss.reduction, "E")
    if isinstance(loss, MSELoss):
        return {"half_sum": "E = 1/2 Σ (t - o)²", "sum": "E = Σ (t - o)²",
                "mean": "E = mean (t - o)²"}.get(loss.reduction, "E")
    return "E = " + type(loss).__name__


def trace(model: Module, x, target, *, loss: Loss | None = None, lr: float = 0.1,
          frozen=(), training: bool = True) -> Trace:
    """One forward, backward and SGD step of ``model`` on ``x``, recorded layer by layer.

    Args:
        model: any convprop model (a ``Sequential`` is opened layer by layer; other blocks
            are single steps whose nested caches are shown as they are). Never modified:
            the step runs on a copy.
        x: the input batch (N, ...), cast to the model's parameter dtype.
        target: class indices (N,) for a classifier, or an array shaped like the output.
        loss: the loss module; default cross-entropy for integer targets, else MSE (mean).
        lr: the learning rate of the update ``w <- w - lr dE/dw``.
        frozen: parameter names (dotted, as ``named_parameters()``) left out of the update.
        training: the mode of the forward (True: dropout draws its mask, batch norm uses
            the batch statistics).
    A ReLU set to another backward rule (guided, deconvnet) back-propagates by the gradient
    here (the copy's rule is reset; ``notes`` says so).
    Returns: a :class:`Trace`. Raises ValueError for an input or target that does not fit.
    """
    if not isinstance(model, Module):
        raise TypeError(f"trace: model must be a convprop Module, got {type(model).__name__}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr >= 0):
        raise ValueError(f"trace: lr must be a finite number >= 0, got {lr!r}")
    net = copy.deepcopy(model)
    net.zero_grad()
    notes = []
    for name, m in net.named_modules():   # a training step follows the true gradient
        if getattr(m, "rule", "gradient") != "gradient":
            notes.append(f"layer {name or 'model'} back-propagates by the {m.rule!r} rule; "
                         "the trace uses the gradient")
            m.rule = "gradient"
    params = dict(net.named_parameters())
    unknown = sorted(set(frozen) - set(params))
    if unknown:
        raise ValueError(f"trace: frozen names no parameter of the model: {unknown} "
                         f"(parameters: {sorted(params)})")
    # the loss after the update is taken in the same mode, with the same dropout draws and
    # batch-norm statistics as before it: keep the generators' states and the buffers
    rngs = {id(m): m.rng.bit_generator.state for m in net.modules()
            if isinstance(getattr(m, "rng", None), np.random.Generator)}
    buffers = [(m, b, np.array(getattr(m, b), copy=True)) for m in net.modules()
               for b in m._buffers]
    dtype = next(iter(params.values())).value.dtype if params else np.float64
    x = np.asarray(x, dtype=dtype)
    loss = _default_loss(target, model) if loss is None else loss
    layers = list(_layers(net))
    owner = {id(p): f"{n}.{k}" if n else k for n, m in net.named_modules()
             for k, p in m._parameters.items() if p is not None}
    steps, caches, a, count, used = [], [], x, 0, set()
    sym = "x"
    for i, (name, mod) in enumerate(layers, 1):
        kind = type(mod).__name__
        if kind in _AFFINE:
            count += 1
            letter, eq = "z", _AFFINE[kind]
        elif kind in _KINDS:
            letter, eq = _KINDS[kind]
        else:   # a block (residual, inception) or an op without a textbook letter
            count += 1
            letter, eq = "h", _BLOCKS.get(kind, "{o} = " + kind + "({i})")
        out_sym = f"{letter}{count}"
        while out_sym in used:   # e.g. two activations in a row: a1, a1'
            out_sym += "'"
        used.add(out_sym)
        try:
            y, cache = mod.forward(a, training=training)
        except (ValueError, TypeError) as e:
            raise ValueError(f"trace: layer {name} ({kind}) rejects its input of shape "
                             f"{np.shape(a)}: {e}") from None
        own = {k: p.value.astype(np.float64) for k, p in mod.named_parameters()}
        steps.append(Step(i, name, kind, repr(mod), sym, out_sym,
                          eq.format(o=out_sym, i=sym, l=count), np.array(a, np.float64),
                          np.array(y, np.float64), type(cache).__name__,
                          {**_views(cache, y), "cache": _readable(cache)}, own,
                          windows=_windows(mod, np.asarray(a, np.float64),
                                           np.asarray(y, np.float64))))
        caches.append(cache)
        a, sym = y, out_sym
    target = np.asarray(target)
    if target.dtype.kind == "f":   # a regression target in the model's dtype
        target = target.astype(np.asarray(a).dtype)
    try:
        value, loss_cache = loss.forward(a, target)
    except (ValueError, TypeError) as e:
        raise ValueError(f"trace: the target does not fit the model's output of shape "
                         f"{np.shape(a)}: {e}") from None
    dy = loss.backward(1.0, loss_cache)
    first = np.array(dy, np.float64)
    for step, (name, mod), cache in zip(reversed(steps), reversed(layers), reversed(caches)):
        step.delta = np.array(dy, np.float64)
        before = {k: p.grad.copy() for k, p in mod.named_parameters()}
        dy = mod.backward(dy, cache, need_dx=True)
        step.dx = None if dy is None else np.array(dy, np.float64)
        for k, p in mod.named_parameters():   # this layer's share of the gradient
            step.grads[k] = (p.grad - before[k]).astype(np.float64)
    for full, p in params.items():   # the update, then the loss it gives
        if full not in frozen:
            p.value = (p.value - p.value.dtype.type(lr) * p.grad).astype(p.value.dtype)
    shown = set()   # a shared parameter's update (from its whole gradient) is listed once
    for step, (_, mod) in zip(steps, layers):
        for k, p in mod.named_parameters():
            if owner[id(p)] not in frozen and id(p) not in shown:
                shown.add(id(p))
                step.updated[k] = p.value.astype(np.float64)
    for m in net.modules():
        if id(m) in rngs:
            m.rng.bit_generator.state = rngs[id(m)]
    for m, b, v in buffers:
        m.set_buffer(b, v)
    after = float(loss.forward(net.forward(x, training=training)[0], target)[0])
    return Trace(repr(model), np.array(x, np.float64), target, repr(loss),
                 _loss_equation(loss), np.array(a, np.float64), float(value), first, steps,
                 float(lr), tuple(frozen), after, notes=notes)
