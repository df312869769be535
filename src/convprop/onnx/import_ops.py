"""The import table: ONNX operator -> a convprop module, with each opset's attribute rules.

A builder takes ``(ctx, node)`` and returns ``(module, runtime_inputs)``: the module to run
and the names of the node's inputs it consumes at run time (weights, shape constants and
other initializers are absorbed into the module). It raises ``Unsupported(message)`` for an
attribute or input form convprop does not support; the loader adds the node's name and
operator. Rules per version: Slice/Pad/Unsqueeze/Squeeze/ReduceMean/Dropout move
attributes to inputs (opsets 10, 11, 13, 18, 12); Softmax before 13 flattens from its axis;
AveragePool's ``count_include_pad`` defaults to 0 and MaxPool's strides to 1; ``auto_pad``
SAME_* pads from each input's size (:class:`~convprop.layers.pad.SamePad`); asymmetric pads
become an explicit pad before the layer.
"""

from __future__ import annotations

import numpy as np

from ..layers import activation, dropout, reshape
from ..layers.onnx_nodes import (Binary, ConcatAxis, IntOp, ReduceMax, ReduceMean, ReduceSum,
                                 Softmax, Sum, Unary, Where)
from ..layers.onnx_shape import DynamicPad, Reshape, Reshaping, Slice, Transpose
from ..layers.pad import ConstantPad
from ._lib import Unsupported
from .evaluate import EVAL, _sized
from .import_layers import LAYER_IMPORTERS

__all__ = ["IMPORTERS", "int_op"]


def _unary(make):
    return lambda ctx, node: (make(node.attrs), [node.inputs[0]])


def _dropout(ctx, node):
    if len(node.outputs) > 1 and node.outputs[1]:
        raise Unsupported("the mask output is not supported")
    ratio = node.attrs.get("ratio", 0.5)
    if ctx.opset >= 12:
        r = ctx.const(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
        ratio = 0.5 if r is None else float(r)
        t = ctx.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
        if t is not None and bool(t):
            raise Unsupported("training_mode=True: import the evaluation graph")
    return dropout.Dropout(float(ratio)), [node.inputs[0]]


def _softmax(ctx, node):
    old = ctx.opset < 13
    return Softmax(node.attrs.get("axis", 1 if old else -1), coerce_2d=old), [node.inputs[0]]


def _flatten(ctx, node):
    axis = int(node.attrs.get("axis", 1))
    if axis == 1:
        return reshape.Flatten(), [node.inputs[0]]
    # axis in [-r, r]: the rows are the product of the axes before it (axis r: (size, 1))
    return Reshaping("Flatten", lambda x: x.reshape(
        int(np.prod(x.shape[:axis + x.ndim if axis < 0 else axis])), -1)), [node.inputs[0]]


def _consts_and_runtime(ctx, node):
    vals = [None if not n else ctx.const(n) for n in node.inputs]
    runtime = [n for n, v in zip(node.inputs, vals) if n and v is None]
    return vals, runtime


def int_op(ctx, node):
    """``node`` evaluated by :data:`~.evaluate.EVAL` at run time, without gradient."""
    vals, runtime = _consts_and_runtime(ctx, node)
    fn, attrs, opset = EVAL[node.op], dict(node.attrs), ctx.opset
    names = list(node.inputs)

    def run(*xs):
        it = iter(xs)
        full = [None if not n else (next(it) if v is None else v)
                for n, v in zip(names, vals)]
        out = fn(full, attrs, opset)
        return out[0] if len(out) == 1 else tuple(out)
    return IntOp(node.op, run), runtime


def _binary(op):
    def build(ctx, node):
        vals, runtime = _consts_and_runtime(ctx, node)
        if len(runtime) == 2:
            return Binary(op), runtime
        i = 0 if vals[0] is not None else 1
        return Binary(op, vals[i], constant_first=(i == 0),
                      trainable=ctx.is_init(node.inputs[i])), runtime
    return build


def _sum(ctx, node):
    vals, runtime = _consts_and_runtime(ctx, node)
    consts = [v for v in vals if v is not None]
    return Sum(sum(consts[1:], consts[0]) if consts else None), runtime


def _concat(ctx, node):
    vals, runtime = _consts_and_runtime(ctx, node)
    if len(runtime) != len(node.inputs):
        raise Unsupported("Concat of computed float tensors with constants is not supported")
    return ConcatAxis(int(node.attrs["axis"])), runtime


def _reshape(ctx, node):
    shape = ctx.const(node.inputs[1]) if ctx.opset >= 5 else np.array(node.attrs["shape"])
    allow = bool(node.attrs.get("allowzero", 0))
    if shape is None:
        return Reshape(None, allow), [node.inputs[0], node.inputs[1]]
    return Reshape(shape.reshape(-1), allow), [node.inputs[0]]


def _view(ctx, node):
    """Unsqueeze / Squeeze / Cast on floats: EVAL's function with a reshape backward."""
    vals, runtime = _consts_and_runtime(ctx, node)
    if runtime != [node.inputs[0]]:
        raise Unsupported("axes computed at run time are not supported")
    fn, attrs, opset = EVAL[node.op], dict(node.attrs), ctx.opset
    return Reshaping(node.op, lambda x: fn([x] + vals[1:], attrs, opset)[0]), runtime


def _slice(ctx, node):
    vals, runtime = _consts_and_runtime(ctx, node)
    if runtime != [node.inputs[0]]:
        raise Unsupported("starts/ends computed at run time are not supported")
    if ctx.opset < 10:
        a = node.attrs
        return Slice(a["starts"], a["ends"], a.get("axes")), runtime
    rest = [None if v is None else np.asarray(v).reshape(-1) for v in vals[1:]] + [None] * 4
    return Slice(rest[0], rest[1], rest[2], rest[3]), runtime


def _transpose(ctx, node):
    return Transpose(node.attrs.get("perm")), [node.inputs[0]]


def _pad(ctx, node):
    a = node.attrs
    if a.get("mode", "constant") != "constant":
        raise Unsupported(f"mode={a['mode']!r}: convprop pads with a constant only")
    if ctx.opset < 11:
        pads, value = a["pads"], a.get("value", 0.0)
    else:
        if len(node.inputs) > 3 and node.inputs[3]:
            raise Unsupported("the axes input is not supported")
        pads = ctx.const(node.inputs[1])
        v = ctx.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
        if pads is None or (v is None and len(node.inputs) > 2 and node.inputs[2]):
            return DynamicPad(), [n for n in node.inputs if n]
        value = 0.0 if v is None else float(np.asarray(v).reshape(-1)[0])
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    if min(pads, default=0) < 0:
        raise Unsupported(f"negative pads {pads} (cropping) are not supported")
    r = len(pads) // 2
    shape = ctx.shapes.get(node.inputs[0], (None, 0))[0]
    if shape is not None and len(shape) == r:  # the size per example, whatever the file says
        _sized("Pad", [(d or 1) + b + e for d, b, e in zip(shape[1:], pads[1:r], pads[r + 1:])])
    return ConstantPad(pads[:r], pads[r:], value), [node.inputs[0]]


def _reduce(cls, since):
    return lambda ctx, node: _reduce_mean(ctx, node, cls, since)


def _reduce_mean(ctx, node, cls=ReduceMean, since=18):
    if ctx.opset < since:
        axes = node.attrs.get("axes")
    else:
        axes = ctx.const(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
        if axes is None and len(node.inputs) > 1 and node.inputs[1]:
            raise Unsupported("axes computed at run time are not supported")
        if axes is None and node.attrs.get("noop_with_empty_axes", 0):
            return Reshaping("Identity", lambda x: x), [node.inputs[0]]
    return cls(None if axes is None else list(np.asarray(axes).reshape(-1)),
               bool(node.attrs.get("keepdims", 1))), [node.inputs[0]]


def _where(ctx, node):
    vals, runtime = _consts_and_runtime(ctx, node)
    if vals[0] is not None:
        raise Unsupported("a constant condition is not supported")
    return Where({i: v for i, v in enumerate(vals) if i and v is not None}), runtime


IMPORTERS = {
    **LAYER_IMPORTERS,
    "Relu": _unary(lambda a: activation.ReLU()),
    "LeakyRelu": _unary(lambda a: activation.LeakyReLU(a.get("alpha", 0.01))),
    "Sigmoid": _unary(lambda a: activation.Sigmoid()),
    "Tanh": _unary(lambda a: activation.Tanh()),
    "Identity": _unary(lambda a: reshape.Identity()),
    "Softmax": _softmax, "Dropout": _dropout, "Flatten": _flatten,
    "Add": _binary("add"), "Sub": _binary("sub"), "Mul": _binary("mul"),
    "Div": _binary("div"), "Pow": _binary("pow"), "Sum": _sum, "Concat": _concat,
    "Reshape": _reshape,
    "Unsqueeze": _view, "Squeeze": _view, "Cast": _view, "Slice": _slice,
    "Transpose": _transpose, "Pad": _pad, "ReduceMean": _reduce_mean,
    "ReduceSum": _reduce(ReduceSum, 13), "ReduceMax": _reduce(ReduceMax, 18), "Where": _where,
    "Abs": _unary(lambda a: Unary("abs")), "Neg": _unary(lambda a: Unary("neg")),
    "Exp": _unary(lambda a: Unary("exp")), "Log": _unary(lambda a: Unary("log")),
    "Sqrt": _unary(lambda a: Unary("sqrt")),
}
