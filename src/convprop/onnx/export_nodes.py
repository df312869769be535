"""Export of the modules that imported ONNX graphs are made of
(:mod:`convprop.layers.onnx_nodes`, :mod:`~convprop.layers.onnx_shape`,
:mod:`convprop.layers.pad`), so an imported network can
be fine-tuned and written again, and of the graph containers (``ImportedSequential`` is a
``Sequential``; ``GraphModule`` writes its nodes by their tensor names)."""

from __future__ import annotations

import numpy as np

from ..layers import onnx_nodes as N
from ..layers import onnx_shape as S
from ..layers import pad as P
from ._lib import ExportError

__all__ = ["NODE_EXPORTERS"]

_OPS = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow"}


def _binary(ctx, m, path, x):
    if m.constant is None:
        return ctx.node(path, _OPS[m.op], list(x))
    c = m.constant.value if hasattr(m.constant, "value") else m.constant
    c = ctx.const(f"{path}.constant", np.asarray(c))
    return ctx.node(path, _OPS[m.op], [c, x] if m.constant_first else [x, c])


def _sum(ctx, m, path, x):
    xs = list(x) if isinstance(x, tuple) else [x]
    if m.constant is not None:
        xs.append(ctx.const(f"{path}.constant", m.constant))
    return ctx.node(path, "Sum", xs)


def _softmax(ctx, m, path, x):
    if m.coerce_2d:
        raise ExportError("Softmax over flattened trailing axes (opset < 13) has no opset-17 "
                          "operator")
    return ctx.node(path, "Softmax", [x], axis=int(m.axis))


def _reshape(ctx, m, path, x):
    if m.shape is None:
        return ctx.node(path, "Reshape", list(x), allowzero=int(m.allowzero))
    return ctx.node(path, "Reshape", [x, ctx.const(f"{path}.shape", np.array(m.shape, np.int64))],
                    allowzero=int(m.allowzero))


def _reshaping(ctx, m, path, x):
    shape = np.array((0,) + ctx.sample_out.shape[1:], np.int64)
    return ctx.node(path, "Reshape", [x, ctx.const(f"{path}.shape", shape)])


def _pad(ctx, m, path, x):
    r = ctx.sample[x].ndim
    lead = r - len(m.begin)
    end = m.end
    if getattr(m, "ceil_window", None):  # the sizes are fixed at export time
        end = P.ceil_end_pads(ctx.sample[x].shape[lead:], *m.ceil_window, m.begin, end)
    pads = np.array([0] * lead + list(m.begin) + [0] * lead + list(end), np.int64)
    return ctx.node(path, "Pad", [x, ctx.const(f"{path}.pads", pads),
                                  ctx.const(f"{path}.value", np.float32(m.value))])


def _same_pad(ctx, m, path, x):
    b, e = P.same_pads(ctx.sample[x].shape[2:], m.kernel_size, m.stride, m.dilation, m.lower)
    return _pad(ctx, P.ConstantPad(b, e, m.value), path, x)


def _padded_avg_pool(ctx, m, path, x):
    """ONNX's AveragePool takes pads per side itself (SAME_* fixed from the sample's size)."""
    nd = len(m.kernel_size)
    b, e = m.pads if not isinstance(m.pads, str) else P.same_pads(
        ctx.sample[x].shape[2:], m.kernel_size, m.stride, (1,) * nd, m.pads == "same_lower")
    return ctx.node(path, "AveragePool", [x], kernel_shape=list(m.kernel_size),
                    strides=list(m.stride), pads=list(b) + list(e),
                    ceil_mode=int(m.ceil_mode), count_include_pad=int(m.count_include_pad))


def _slice(ctx, m, path, x):
    ins = [x] + [ctx.const(f"{path}.{n}", np.array(v, np.int64)) for n, v in (
        ("starts", m.starts), ("ends", m.ends), ("axes", m.axes), ("steps", m.steps))]
    return ctx.node(path, "Slice", ins)


NODE_EXPORTERS = {
    S.Slice: _slice,
    N.Binary: _binary, N.Sum: _sum, N.Softmax: _softmax, S.Reshape: _reshape,
    S.Reshaping: _reshaping,
    N.ConcatAxis: lambda ctx, m, path, x: ctx.node(path, "Concat", list(x), axis=m.axis),
    S.Transpose: lambda ctx, m, path, x: ctx.node(path, "Transpose", [x], perm=m.perm and
                                                   list(m.perm)),
    N.ReduceMean: lambda ctx, m, path, x: ctx.reduce(
        path, "ReduceMean", x, list(m.axes) if m.axes is not None else
        list(range(ctx.sample[x].ndim)), int(m.keepdims)),
    N.ReduceMax: lambda ctx, m, path, x: ctx.reduce(
        path, "ReduceMax", x, list(m.axes) if m.axes is not None else
        list(range(ctx.sample[x].ndim)), int(m.keepdims)),
    N.MatMulConst: lambda ctx, m, path, x: ctx.node(path, "MatMul", [x, ctx.const(
        f"{path}.weight", m.weight.value)]),
    P.ConstantPad: _pad, P.SamePad: _same_pad, P.PaddedAvgPool: _padded_avg_pool,
}
