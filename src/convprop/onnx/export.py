"""``export(model, path, input_shape)``: a convprop model as an ONNX file.

The exporter walks the module tree once with a sample batch (so every layer's input shape is
known: "same" paddings, channel counts of depthwise compositions, the linear maps of the
transform poolings are fixed at export time; only the batch axis stays dynamic). Each leaf
module is written by the function :data:`~.export_ops.EXPORTERS` registers for its type;
containers become their wiring (``Sequential`` a chain, ``Residual`` an ``Add``, ``Concat``
a ``Concat`` on axis 1). Node and tensor names are the modules' dotted paths (``3/Conv``,
``6.0.body.1/BatchNormalization``), initializers carry the ``state_dict`` names
(``3.weight``), the graph's input is ``input`` and its output ``output``.

The model is written as it computes in evaluation mode, in float32.
"""

from __future__ import annotations

import os

import numpy as np

from ..layers.container import Concat, Residual, Sequential
from ..layers.module import Module
from ._lib import ExportError, require_onnx

__all__ = ["export", "to_onnx", "DEFAULT_OPSET", "MIN_EXPORT_OPSET"]

DEFAULT_OPSET = 17
MIN_EXPORT_OPSET = 17


class Context:
    """The graph under construction: nodes, initializers, and a sample value per tensor."""

    def __init__(self, onnx, opset: int):
        self.onnx, self.opset = onnx, opset
        self.nodes, self.inits, self.sample = [], {}, {}
        self._used = set()
        self.native_indices = {}  # plane-index tensor -> (ONNX whole-tensor indices, size)

    def unique(self, name: str) -> str:
        base, k = name, 1
        while name in self._used:
            k += 1
            name = f"{base}_{k}"
        self._used.add(name)
        return name

    def const(self, name: str, value) -> str:
        """An initializer (float arrays as float32); returns its (unique) name."""
        a = np.asarray(value)
        if a.dtype.kind == "f":
            a = a.astype(np.float32)
        name = self.unique(name)
        self.inits[name] = self.onnx.numpy_helper.from_array(np.array(a, order="C"), name)
        return name

    def node(self, path: str, op: str, inputs, n_out: int = 1, **attrs):
        """Append node ``path/op``; returns its output name (a list when ``n_out`` > 1)."""
        name = self.unique(f"{path}/{op}" if path else op)
        outs = [name] + [self.unique(f"{name}:{i}") for i in range(1, n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), outs, name=name,
                                                    **attrs))
        return outs if n_out > 1 else outs[0]

    def reduce(self, path, op, x, axes, keepdims=1):
        """``op`` (ReduceMean, ReduceMax, ReduceSum) over ``axes``: an attribute before opset
        18 (13 for ReduceSum), an input from then on."""
        as_input = self.opset >= (13 if op == "ReduceSum" else 18)
        if as_input:
            return self.node(path, op, [x, self.const(f"{path}.axes", np.array(axes, np.int64))],
                             keepdims=keepdims)
        return self.node(path, op, [x], axes=list(axes), keepdims=keepdims)


def _flat(value):
    return list(value) if isinstance(value, tuple) else [value]


def emit(ctx: Context, module: Module, path: str, x):
    """Write ``module`` applied to tensor(s) ``x`` (a name or a tuple of names); returns the
    output name(s) and records their sample values."""
    if isinstance(module, Sequential):
        for name, child in module.named_children():
            x = emit(ctx, child, f"{path}.{name}" if path else name, x)
        return x
    if isinstance(module, (Residual, Concat)):
        if isinstance(x, tuple):
            raise ExportError(f"export: layer {path or '<root>'!r} ({type(module).__name__}) "
                              f"takes one tensor, got {len(x)}")
        outs = [emit(ctx, child, f"{path}.{name}" if path else name, x)
                for name, child in module.named_children()]
        if isinstance(module, Residual):
            y = ctx.node(path, "Add", outs)
        else:
            y = ctx.node(path, "Concat", outs, axis=1)
        ctx.sample[y] = (sum(ctx.sample[o] for o in outs) if isinstance(module, Residual)
                         else np.concatenate([ctx.sample[o] for o in outs], axis=1))
        return y
    from .graph import GraphModule
    if isinstance(module, GraphModule):
        xs = x if isinstance(x, tuple) else (x,)
        values = {spec.name: v for spec, v in zip(module.input_specs, xs)}
        for node in module.nodes:
            args = tuple(values[n] for n in node.inputs)
            out = emit(ctx, getattr(module, node.name),
                       f"{path}.{node.name}" if path else node.name,
                       args[0] if len(args) == 1 else args)
            outs = out if len(node.outputs) > 1 else (out,)
            values.update((n, o) for n, o in zip(node.outputs, outs) if n)
        ys = tuple(values[n] for n in module.output_names)
        return ys[0] if len(ys) == 1 else ys
    from .export_ops import EXPORTERS
    fn = next((EXPORTERS[t] for t in type(module).__mro__ if t in EXPORTERS), None)
    label = f"export: layer {path or '<root>'!r} ({type(module).__name__})"
    if fn is None:
        raise ExportError(f"{label} has no ONNX mapping (the layers convprop writes are the "
                          "keys of convprop.onnx.export_ops.EXPORTERS, and containers)")
    sample_in = tuple(ctx.sample[n] for n in x) if isinstance(x, tuple) else ctx.sample[x]
    try:
        y_sample = module.predict(sample_in)
    except (ValueError, TypeError) as e:
        raise ExportError(f"{label} fails on the sample input (give export a sample= that "
                          f"the model accepts): {e}") from None
    ctx.sample_out = np.asarray(y_sample[0] if isinstance(y_sample, tuple) else y_sample)
    try:
        y = fn(ctx, module, path or type(module).__name__, x)
    except ExportError as e:
        raise ExportError(f"{label} cannot be exported: {e}") from None
    for name, val in zip(_flat(y), _flat(y_sample)):
        ctx.sample[name] = np.asarray(val)
    return y


def _shapes(input_shape) -> list[tuple]:
    """One shape, or a list of shapes for a model fed a tuple (e.g. RoI pooling's (x, boxes))."""
    if isinstance(input_shape, (list, tuple)) and input_shape and all(
            isinstance(s, (list, tuple)) for s in input_shape):
        shapes = [tuple(s) for s in input_shape]
    else:
        shapes = [tuple(input_shape)]
    for s in shapes:
        if len(s) < 2 or not all(isinstance(d, (int, np.integer)) and d >= 1 for d in s):
            raise ValueError(f"export: input_shape must be (N, C, ...) positive ints (or a "
                             f"list of such shapes), got {input_shape!r}")
    return shapes


def to_onnx(model: Module, input_shape, *, opset: int = DEFAULT_OPSET,
            sample=None, graph_name: str | None = None):
    """The ``onnx.ModelProto`` of ``model`` (see :func:`export`). ``sample``: the input
    (or list of inputs) the shapes are traced with; default uniform in [0.1, 1)."""
    onnx = require_onnx("export")
    if not isinstance(model, Module):
        raise TypeError(f"export: model must be a convprop Module, got {type(model).__name__}")
    latest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not (
            MIN_EXPORT_OPSET <= opset <= latest):
        raise ValueError(f"export: opset must be an int from {MIN_EXPORT_OPSET} to {latest} "
                         f"(the installed onnx's newest), got {opset!r}")
    shapes = _shapes(input_shape)
    model = _float32_copy(model)
    ctx = Context(onnx, opset)
    rng = np.random.default_rng(0)
    names = ["input"] if len(shapes) == 1 else [f"input{i}" for i in range(len(shapes))]
    if sample is None:  # positive: alpha and stochastic pooling want a positive input
        sample = [rng.uniform(0.1, 1.0, s).astype(np.float32) for s in shapes]
    elif len(shapes) == 1:
        sample = [sample]
    for n, v in zip(names, sample):
        ctx.sample[n] = np.asarray(v, dtype=np.float32) if np.asarray(v).dtype.kind == "f" \
            else np.asarray(v)
        ctx._used.add(n)
    x = names[0] if len(names) == 1 else tuple(names)
    y = _flat(emit(ctx, model, "", x))
    out_names = ["output"] if len(y) == 1 else [f"output{i}" for i in range(len(y))]
    for src, dst in zip(y, out_names):
        ctx.nodes.append(onnx.helper.make_node("Identity", [src], [dst], name=f"{dst}/Identity"))
    h = onnx.helper

    def info(name, arr, batch="N"):
        elem = onnx.helper.np_dtype_to_tensor_dtype(np.asarray(arr).dtype)
        dims = [batch] + list(np.shape(arr)[1:])
        return h.make_tensor_value_info(name, elem, dims)

    inputs = [info(n, ctx.sample[n], "N" if i == 0 else f"N{i}") for i, n in enumerate(names)]
    outputs = [info(d, ctx.sample[s]) for s, d in zip(y, out_names)]
    if len(names) > 1:  # e.g. RoI pooling: the output's first axis follows the boxes
        outputs = [info(d, ctx.sample[s], "K") for s, d in zip(y, out_names)]
    graph = h.make_graph(ctx.nodes, graph_name or type(model).__name__, inputs, outputs,
                         initializer=list(ctx.inits.values()))
    opsets = [h.make_opsetid("", opset)]
    proto = h.make_model(graph, opset_imports=opsets, producer_name="convprop")
    proto.ir_version = h.find_min_ir_version_for(opsets)  # the oldest runtimes that can
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:  # ValidationError, InferenceError: not ValueErrors
        raise ExportError(f"export: the graph written for {type(model).__name__} fails "
                          f"onnx.checker (a convprop export bug; please report it): "
                          f"{type(e).__name__}: {str(e).strip()[:500]}") from None
    return proto


def export(model: Module, path, input_shape, *, opset: int = DEFAULT_OPSET,
           sample=None) -> str:
    """Write ``model`` (evaluation mode, float32) to ``path`` as ONNX; returns the path.

    Args:
        model: any convprop module (containers included).
        path: the .onnx file to write (written atomically).
        input_shape: the input's shape (N, C, ...); N becomes the dynamic batch axis
            ``N``. A model fed a tuple (RoI pooling's ``(x, boxes)``) takes a list of shapes.
        opset: ONNX opset, 17 (default) up to the installed onnx's newest.
        sample: an input (list of inputs) to trace shapes with, for models that do not
            accept the default positive uniform batch (RoI pooling's boxes).

    Raises ExportError naming the layer that has no ONNX form and why; the file is checked
    with ``onnx.checker`` (full check, shape inference included) before it is written.
    """
    proto = to_onnx(model, input_shape, opset=opset, sample=sample)
    from ..io.atomic import atomic_open
    with atomic_open(os.fspath(path), "wb", suffix=".onnx") as f:
        f.write(proto.SerializeToString())
    return os.fspath(path)


def _float32_copy(model: Module) -> Module:
    """``model`` itself when it is float32, else a float32 deep copy (the caller's model is
    never changed)."""
    if all(p.value.dtype == np.float32 for p in model.parameters()):
        return model
    import copy
    return copy.deepcopy(model).astype(np.float32)
