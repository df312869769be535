"""``GraphModule``: an imported ONNX graph that is not a chain, as a module of named nodes.

Each node is a child module (its name the ONNX node's name, made attribute-safe) applied to
the tensors its ``inputs`` name; forward runs the nodes in topological order and keeps every
node's cache; backward walks them in reverse, adding the gradients of a tensor that feeds
several nodes (fan-out) and handing each node the gradient of its first output (the only
differentiable one of a multi-output node, e.g. MaxPool's values beside its Indices).
Integer tensors (shape arithmetic) carry no gradient. ``ImportedSequential`` is the chain
form: a :class:`~convprop.layers.Sequential` that checks the input shape the file declares.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

from ..layers.container import Sequential
from ..layers.module import Module

__all__ = ["GraphModule", "GraphNode", "ImportedSequential", "InputSpec", "check_inputs"]


class GraphNode(NamedTuple):
    name: str          # the attribute name of the child module
    onnx_name: str     # the node's name in the file
    op: str            # its ONNX operator
    inputs: tuple      # tensor names consumed at run time
    outputs: tuple     # tensor names produced ('' for an unused optional output)


class InputSpec(NamedTuple):
    name: str
    shape: tuple       # ints, or None for a dynamic axis (e.g. the batch)


def check_inputs(op: str, specs, xs) -> None:
    """Each input against its declared rank and static sizes (a ValueError naming it)."""
    for spec, x in zip(specs, xs):
        shape = np.shape(x)
        ok = len(shape) == len(spec.shape) and all(
            s is None or s == n for s, n in zip(spec.shape, shape))
        if not ok:
            want = tuple("N" if s is None else s for s in spec.shape)
            raise ValueError(f"{op}: input {spec.name!r} must have shape {want} (N any), got "
                             f"{shape}")


def attribute_name(name: str, taken: set) -> str:
    """An ONNX node name as a child-module name: no dots or slashes, unique."""
    base = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_") or "node"
    out, k = base, 1
    while out in taken:
        k += 1
        out = f"{base}_{k}"
    taken.add(out)
    return out


class GraphModule(Module):
    """Nodes (child modules) wired by tensor names; see the module docstring.

    ``forward(x)`` takes one array (one graph input) or a tuple in the order of
    ``input_specs``, and returns one array or a tuple in the order of ``output_names``."""

    def __init__(self, nodes, input_specs, output_names, modules):
        super().__init__()
        object.__setattr__(self, "nodes", list(nodes))
        object.__setattr__(self, "input_specs", list(input_specs))
        object.__setattr__(self, "output_names", list(output_names))
        for node, m in zip(self.nodes, modules):
            setattr(self, node.name, m)

    def forward(self, x, *, training: bool = False):
        xs = x if isinstance(x, tuple) else (x,)
        if len(xs) != len(self.input_specs):
            raise ValueError(f"GraphModule: expected {len(self.input_specs)} inputs "
                             f"{[s.name for s in self.input_specs]}, got {len(xs)}")
        check_inputs("GraphModule", self.input_specs, xs)
        values = {s.name: v for s, v in zip(self.input_specs, xs)}
        caches = []
        for node in self.nodes:
            args = [values[n] for n in node.inputs]
            arg = args[0] if len(args) == 1 else tuple(args)
            y, c = getattr(self, node.name).forward(arg, training=training)
            outs = y if len(node.outputs) > 1 else (y,)
            for name, v in zip(node.outputs, outs):
                if name:
                    values[name] = v
            caches.append(c)
        ys = tuple(values[n] for n in self.output_names)
        shapes = {n: (np.shape(v), np.asarray(v).dtype) for n, v in values.items()}
        return (ys[0] if len(ys) == 1 else ys), (caches, shapes)

    def backward(self, dy, cache, *, need_dx: bool = True):
        caches, shapes = cache
        dys = dy if isinstance(dy, tuple) else (dy,)
        grads = {}

        def add(name, g):
            if g is None or shapes[name][1].kind != "f":
                return
            grads[name] = g if name not in grads else grads[name] + g
        for name, g in zip(self.output_names, dys):
            add(name, g)
        for node, c in zip(reversed(self.nodes), reversed(caches)):
            g = grads.pop(node.outputs[0], None)
            if g is None:
                continue  # nothing downstream depends on it differentiably
            dx = getattr(self, node.name).backward(g, c, need_dx=True)
            dxs = dx if isinstance(dx, tuple) else (dx,) + (None,) * (len(node.inputs) - 1)
            for name, d in zip(node.inputs, dxs):
                add(name, d)
        out = []
        for s in self.input_specs:
            g = grads.get(s.name)
            out.append(np.zeros(shapes[s.name][0], shapes[s.name][1]) if g is None and
                       shapes[s.name][1].kind == "f" else g)
        return out[0] if len(out) == 1 else tuple(out)

    def extra_repr(self) -> str:
        return (f"inputs={[s.name for s in self.input_specs]}, outputs={self.output_names}, "
                f"{len(self.nodes)} nodes")


class ImportedSequential(Sequential):
    """A :class:`Sequential` imported from an ONNX chain; checks the declared input shape
    and keeps the ONNX node names in ``onnx_names``."""

    def __init__(self, *modules, input_spec: InputSpec, onnx_names=()):
        super().__init__(*modules)
        object.__setattr__(self, "input_spec", input_spec)
        object.__setattr__(self, "onnx_names", list(onnx_names))

    def forward(self, x, *, training: bool = False):
        check_inputs("ImportedSequential", [self.input_spec], [x])
        return super().forward(x, training=training)
