"""Taps: watch (or edit) what one module of a model sees in an attribution pass.

A tap replaces a module's ``forward`` / ``backward`` by wrappers on the *instance* for the
duration of a ``with`` block (the class is untouched, the module's own methods are put back
on leaving, also after an exception), records the module's output and the upstream gradient
``dy`` that reaches it, and may rewrite that ``dy`` before the module back-propagates it
(the forward and backward cues method rectifies it). Containers call their children's
``forward``/``backward`` attributes, so a tap works at any depth of a model.

Also here: :func:`scratch_grads`, which keeps every ``Parameter.grad`` of a model out of an
attribution pass, and :func:`resolve_layer`, the one place a ``layer=`` argument (a module or
its dotted name from ``named_modules()``) is checked.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..layers.module import Module

__all__ = ["Tap", "tap", "scratch_grads", "resolve_layer"]


@dataclass
class Tap:
    """What a tapped module saw: its outputs and the (possibly rewritten) gradients of them,
    one entry per call."""

    name: str
    outputs: list = field(default_factory=list)
    grads: list = field(default_factory=list)

    def single(self, op: str) -> tuple[np.ndarray, np.ndarray]:
        """(output, dy) of a module that ran exactly once; a ValueError otherwise."""
        if len(self.outputs) != 1 or len(self.grads) != 1:
            raise ValueError(f"{op}: layer {self.name!r} ran {len(self.outputs)} times in the "
                             f"forward pass (and received {len(self.grads)} gradients); a "
                             "layer method needs a layer that runs exactly once")
        return self.outputs[0], self.grads[0]


@contextmanager
def tap(module: Module, name: str = "", edit_dy=None):
    """Record ``module``'s outputs and incoming gradients; ``edit_dy(dy) -> dy`` (optional)
    rewrites each gradient before the module uses it (and before it is recorded)."""
    rec = Tap(name)
    own = {k: module.__dict__[k] for k in ("forward", "backward") if k in module.__dict__}
    fwd, bwd = module.forward, module.backward

    def forward(x, *, training: bool = False):
        y, cache = fwd(x, training=training)
        rec.outputs.append(y)
        return y, cache

    def backward(dy, cache, *, need_dx: bool = True):
        if edit_dy is not None:
            dy = edit_dy(dy)
        rec.grads.append(dy)
        return bwd(dy, cache, need_dx=need_dx)

    object.__setattr__(module, "forward", forward)
    object.__setattr__(module, "backward", backward)
    try:
        yield rec
    finally:
        for k in ("forward", "backward"):
            module.__dict__.pop(k, None)
            if k in own:
                object.__setattr__(module, k, own[k])


@contextmanager
def scratch_grads(model: Module):
    """Give every parameter a fresh zero ``grad`` for the block and put the original arrays
    back afterwards (untouched, the same objects), so an attribution pass, which runs the
    model's backward, leaves the training state exactly as it found it."""
    params = model.parameters()
    saved = [p.grad for p in params]
    try:
        for p in params:
            p.grad = np.zeros_like(p.value)
        yield
    finally:
        for p, g in zip(params, saved):
            p.grad = g


def resolve_layer(op: str, model: Module, layer) -> tuple[str, Module]:
    """``layer`` (a module of ``model`` or its dotted name in ``model.named_modules()``) as
    ``(name, module)``; a clear error naming the argument otherwise."""
    named = list(model.named_modules())
    if isinstance(layer, str):
        for n, m in named:
            if n == layer and n:
                return n, m
        names = [n for n, _ in named if n]
        shown = ", ".join(repr(n) for n in names[:12]) + (", ..." if len(names) > 12 else "")
        raise ValueError(f"{op}: layer {layer!r} is not a module of the model; its layer "
                         f"names are {shown}")
    if isinstance(layer, Module):
        for n, m in named:
            if m is layer:
                if not n:
                    raise ValueError(f"{op}: layer must be a module inside the model, got the "
                                     "model itself")
                return n, m
        raise ValueError(f"{op}: layer {type(layer).__name__} is not a module of the model")
    raise TypeError(f"{op}: layer must be a Module of the model or its dotted name from "
                    f"named_modules(), got {type(layer).__name__}")
