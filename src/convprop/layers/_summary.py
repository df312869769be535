"""``summary(model, input_shape)``: a per-layer table of output shapes and parameter counts."""

from __future__ import annotations

import numpy as np

from .module import Module

__all__ = ["layer_table", "summary"]


def layer_table(model: Module, input_shape) -> list[tuple[str, str, list, int]]:
    """Rows (dotted name, type with hyperparameters, output shapes, own parameter count) of
    every module below the root (the root itself when it has no children), in definition
    order, from one evaluation-mode forward pass on zeros of ``input_shape`` (batch included).

    A module called several times lists every output shape; a shared module is listed once."""
    return _trace(model, input_shape)[0]


def _trace(model: Module, input_shape):
    """(rows of :func:`layer_table`, the model's output shape)."""
    if not isinstance(model, Module):
        raise TypeError(f"summary: model must be a Module, got {type(model).__name__}")
    try:
        shape = tuple(int(s) for s in input_shape)
    except TypeError:
        raise TypeError(f"summary: input_shape must be a tuple of ints (batch included), "
                        f"got {input_shape!r}") from None
    if not shape or min(shape) < 1:
        raise ValueError(f"summary: input_shape must be non-empty positive sizes (batch "
                         f"included), got {shape}")
    params = model.parameters()
    dtype = params[0].value.dtype if params else np.float32
    mods = list(model.named_modules())
    rows = [(n, m) for n, m in mods if n] or mods
    shapes = {id(m): [] for _, m in mods}

    def hook(m):
        inner = m.forward

        def forward(x, *, training=False):
            y, c = inner(x, training=training)
            shapes[id(m)].append(tuple(np.shape(y)))
            return y, c
        return forward

    for _, m in mods:
        object.__setattr__(m, "forward", hook(m))
    try:
        model.forward(np.zeros(shape, dtype=dtype), training=False)
    finally:
        for _, m in mods:
            m.__dict__.pop("forward", None)
    seen, table = set(), []
    for name, m in rows:
        own = [p for p in m._parameters.values() if p is not None and id(p) not in seen]
        seen.update(id(p) for p in own)
        extra = m.extra_repr().replace("\n", " ")
        table.append((name or type(m).__name__, f"{type(m).__name__}({extra})",
                      shapes[id(m)], int(sum(p.value.size for p in own))))
    return table, shapes[id(model)][0]


def summary(model: Module, input_shape) -> str:
    """The table of :func:`layer_table` as text, with the input, output and total counts."""
    table, out = _trace(model, input_shape)
    head = ("Layer", "Type", "Output shape", "Params")
    body = [(n, t, " / ".join(str(s) for s in shp) or "-", f"{p:,}")
            for n, t, shp, p in table]
    w = [max(len(r[i]) for r in [head, *body]) for i in range(4)]

    def fmt(row):
        return (f"{row[0]:<{w[0]}}  {row[1]:<{w[1]}}  {row[2]:<{w[2]}}  "
                f"{row[3]:>{w[3]}}").rstrip()
    rule = "-" * (sum(w) + 6)
    total = model.num_parameters()
    lines = [fmt(head), rule, *(fmt(r) for r in body), rule,
             f"Input shape: {tuple(input_shape)}", f"Output shape: {out}",
             f"Total params: {total:,}"]
    return "\n".join(lines)

