"""Containers: ``Sequential``, ``Residual`` and ``Concat`` (modules made of modules).

A container's cache holds its children's caches; it never writes into a child's output or
into an upstream gradient, because a child (``Identity``, ``Flatten``) may hand back the very
array it received.
"""

from __future__ import annotations

import numpy as np

from .module import Module
from .reshape import Identity

__all__ = ["Concat", "Residual", "Sequential"]


def _check_module(op: str, what: str, m) -> Module:
    if not isinstance(m, Module):
        raise TypeError(f"{op}: {what} must be a Module, got {type(m).__name__}")
    return m


class Sequential(Module):
    """Children applied in order; named "0", "1", ...; cache = list of the child caches."""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), _check_module("Sequential", f"argument {i}", m))

    def append(self, module: Module) -> Sequential:
        setattr(self, str(len(self)), _check_module("Sequential", "module", module))
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules.values()))

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(*mods[idx])
        return mods[idx]

    def forward(self, x, *, training: bool = False):
        caches = []
        for m in self._modules.values():
            x, c = m.forward(x, training=training)
            caches.append(c)
        return x, caches

    def backward(self, dy, cache, *, need_dx: bool = True):
        mods = list(self._modules.values())
        if not isinstance(cache, list) or len(cache) != len(mods):
            raise ValueError(f"Sequential: cache must be the list of {len(mods)} child caches "
                             f"returned by forward, got {type(cache).__name__}")
        for i in range(len(mods) - 1, -1, -1):
            dy = mods[i].backward(dy, cache[i], need_dx=need_dx or i > 0)
        return dy


class Residual(Module):
    """``y = body(x) + shortcut(x)``; the shortcut is the identity unless given (e.g. a
    strided 1x1 ``Conv2d`` when the body changes the shape). The two input gradients add at
    the fan-out. Children "body" and "shortcut"."""

    def __init__(self, body: Module, shortcut: Module | None = None):
        super().__init__()
        self.body = _check_module("Residual", "body", body)
        self.shortcut = Identity() if shortcut is None else _check_module(
            "Residual", "shortcut", shortcut)

    def forward(self, x, *, training: bool = False):
        yb, cb = self.body.forward(x, training=training)
        ys, cs = self.shortcut.forward(x, training=training)
        if yb.shape != ys.shape:
            raise ValueError(f"Residual: body output shape {yb.shape} does not match shortcut "
                             f"output shape {ys.shape} (input shape {x.shape}); give a "
                             "shortcut that maps the input to the body's output shape")
        return yb + ys, (cb, cs)

    def backward(self, dy, cache, *, need_dx: bool = True):
        cb, cs = cache
        dx_body = self.body.backward(dy, cb, need_dx=need_dx)
        dx_short = self.shortcut.backward(dy, cs, need_dx=need_dx)
        return dx_body + dx_short if need_dx else None


class Concat(Module):
    """Branches applied to the same input, outputs joined along the channel axis 1
    (inception style). Backward splits ``dy`` by the branches' channel counts and sums the
    branches' input gradients. Children "0", "1", ..."""

    def __init__(self, *branches: Module):
        super().__init__()
        if not branches:
            raise ValueError("Concat: expected at least one branch, got none")
        for i, m in enumerate(branches):
            setattr(self, str(i), _check_module("Concat", f"branch {i}", m))

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules.values()))

    def __getitem__(self, idx: int) -> Module:
        return list(self._modules.values())[idx]

    def forward(self, x, *, training: bool = False):
        ys, caches = [], []
        for i, m in enumerate(self._modules.values()):
            y, c = m.forward(x, training=training)
            if y.ndim < 2 or (ys and (y.shape[:1] + y.shape[2:]
                                      != ys[0].shape[:1] + ys[0].shape[2:])):
                raise ValueError(f"Concat: branch outputs must agree on every axis but 1, got "
                                 f"{[a.shape for a in ys + [y]]} (branch {i} differs)")
            ys.append(y)
            caches.append(c)
        bounds = np.cumsum([y.shape[1] for y in ys])[:-1]
        return np.concatenate(ys, axis=1), (caches, bounds)

    def backward(self, dy, cache, *, need_dx: bool = True):
        caches, bounds = cache
        dx = None
        for m, c, d in zip(self._modules.values(), caches, np.split(dy, bounds, axis=1)):
            g = m.backward(d, c, need_dx=need_dx)
            if need_dx:
                dx = g if dx is None else dx + g
        return dx
