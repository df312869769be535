"""Import builders for the layer operators: Conv, ConvTranspose, MaxPool, AveragePool,
LpPool, GlobalAveragePool, GlobalMaxPool, MaxUnpool, BatchNormalization, LRN, Gemm, MatMul,
MaxRoiPool, RoiAlign -> convprop's layers, with each opset's attribute rules (see
:mod:`.import_ops`, which holds the table and the elementwise and shape operators).
"""

from __future__ import annotations

import numpy as np

from ..layers import conv, linear, normalization, pooling, roi
from ..layers.container import Sequential
from ..layers.onnx_nodes import MatMulConst
from ..layers.onnx_shape import IndexedMaxPool, IndexedMaxUnpool, Reshape, RoiAlignNode, Transpose
from ..layers.pad import ConstantPad, PaddedAvgPool, SamePad
from ._lib import Unsupported

__all__ = ["LAYER_IMPORTERS"]


def _layer(family, name: str, nd: int):
    """convprop's ``{name}{nd}d`` class; Unsupported for a spatial rank it does not have."""
    cls = getattr(family, f"{name}{nd}d", None) if isinstance(nd, int) else None
    if cls is None:
        raise Unsupported(f"{nd} spatial axes: convprop's {name} takes 1 to 3")
    return cls


def _spatial(node):
    """kernel_shape, strides, dilations, begin pads, end pads and auto_pad of a window node
    (ONNX defaults: strides and dilations 1, pads 0)."""
    a = node.attrs
    k = a.get("kernel_shape")
    if k is None:
        raise Unsupported("kernel_shape is required")
    nd = len(k)
    pads = list(a.get("pads", [0] * 2 * nd))
    return (tuple(k), tuple(a.get("strides", [1] * nd)), tuple(a.get("dilations", [1] * nd)),
            tuple(pads[:nd]), tuple(pads[nd:]), a.get("auto_pad", "NOTSET"))


def _with_pads(ctx, node, make, kernel, stride, dilation, begin, end, auto_pad, value=0.0,
               allow_pad=True, ceil=False):
    """``make(padding, ceil_mode)`` preceded, when needed, by the explicit pad ONNX asks for
    (for ``ceil``, one that ends where ONNX's last ceil-mode window does, before a floor-mode
    ``make``: the pooled module alone cannot tell the input from a pad in front of it)."""
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return Sequential(SamePad(kernel, stride, dilation, auto_pad == "SAME_LOWER", value),
                          make((0,) * len(kernel), ceil))
    if auto_pad == "VALID":
        return make((0,) * len(kernel), ceil)
    if auto_pad != "NOTSET":
        raise Unsupported(f"auto_pad={auto_pad!r} is not one of NOTSET, VALID, SAME_UPPER, "
                          "SAME_LOWER")
    if begin == end and (allow_pad or not any(begin)):
        return make(begin, ceil)
    window = (kernel, stride, dilation) if ceil else None
    return Sequential(ConstantPad(begin, end, value, ceil_window=window),
                      make((0,) * len(kernel), False))


def _weights(ctx, node, i, what):
    v = ctx.const(node.inputs[i]) if len(node.inputs) > i and node.inputs[i] else None
    if v is None and len(node.inputs) > i and node.inputs[i]:
        raise Unsupported(f"the {what} (input {i}) is computed at run time; convprop needs "
                          "it as an initializer or constant")
    if v is not None and v.dtype not in (np.float32, np.float64):
        raise Unsupported(f"the {what} has dtype {v.dtype}; convprop computes in float32 or "
                          "float64")
    return v


def _conv(ctx, node):
    w = _weights(ctx, node, 1, "weight")
    if w is None:
        raise Unsupported("a Conv needs its weight input")
    b = _weights(ctx, node, 2, "bias")
    nd = w.ndim - 2
    node.attrs.setdefault("kernel_shape", list(w.shape[2:]))
    k, s, d, pb, pe, auto = _spatial(node)
    g = int(node.attrs.get("group", 1))
    cls = _layer(conv, "Conv", nd)

    def make(padding, ceil_mode):
        m = cls(w.shape[1] * g, w.shape[0], k, stride=s, padding=padding, dilation=d,
                groups=g, bias=b is not None, dtype=w.dtype)
        m.weight.value = w.copy()
        if b is not None:
            m.bias.value = b.copy()
        return m
    return _with_pads(ctx, node, make, k, s, d, pb, pe, auto), [node.inputs[0]]


def _conv_transpose(ctx, node):
    w = _weights(ctx, node, 1, "weight")
    b = _weights(ctx, node, 2, "bias")
    nd = w.ndim - 2
    node.attrs.setdefault("kernel_shape", list(w.shape[2:]))
    k, s, d, pb, pe, auto = _spatial(node)
    if "output_shape" in node.attrs:
        raise Unsupported("output_shape is not supported (give pads and output_padding)")
    if auto not in ("NOTSET", "VALID") or pb != pe:
        raise Unsupported(f"auto_pad={auto!r} with pads {list(pb + pe)}: convprop's transposed "
                          "convolution takes equal pads per side")
    g = int(node.attrs.get("group", 1))
    m = _layer(conv, "ConvTranspose", nd)(
        w.shape[0], w.shape[1] * g, k, stride=s, padding=pb,
        output_padding=tuple(node.attrs.get("output_padding", [0] * nd)), groups=g,
        bias=b is not None, dilation=d, dtype=w.dtype)
    m.weight.value = w.copy()
    if b is not None:
        m.bias.value = b.copy()
    return m, [node.inputs[0]]


def _fits(begin, kernel):
    return all(p <= k // 2 for p, k in zip(begin, kernel))


def _max_pool(ctx, node):
    k, s, d, pb, pe, auto = _spatial(node)
    nd = len(k)
    indices = len(node.outputs) > 1 and bool(node.outputs[1])
    ceil = bool(node.attrs.get("ceil_mode", 0))
    cls = _layer(pooling, "MaxPool", nd)
    direct = auto in ("NOTSET", "VALID") and pb == pe and _fits(pb, k)
    if indices and not direct:
        raise Unsupported("Indices with auto_pad SAME_*, asymmetric pads or pads over half "
                          "the kernel are not supported")
    pool = _with_pads(ctx, node, lambda p, c: cls(k, s, p, d, return_indices=indices,
                                                  ceil_mode=c),
                      k, s, d, pb, pe, auto, value=-np.inf, allow_pad=_fits(pb, k), ceil=ceil)
    if indices:
        pool = IndexedMaxPool(pool, int(node.attrs.get("storage_order", 0)))
    return pool, [node.inputs[0]]


def _avg_pool(ctx, node):
    k, s, d, pb, pe, auto = _spatial(node)
    if any(v != 1 for v in d):
        raise Unsupported(f"dilations {list(d)}: convprop's average pooling has none")
    nd = len(k)
    ceil = bool(node.attrs.get("ceil_mode", 0))
    include = bool(node.attrs.get("count_include_pad", 0))
    if auto in ("NOTSET", "VALID") and (pb == pe and _fits(pb, k) or auto == "VALID"):
        p = pb if auto == "NOTSET" else (0,) * nd
        return _layer(pooling, "AvgPool", nd)(k, s, p, ceil_mode=ceil,
                                                 count_include_pad=include), [node.inputs[0]]
    if auto not in ("NOTSET", "SAME_UPPER", "SAME_LOWER"):
        raise Unsupported(f"auto_pad={auto!r} is not supported")
    pads = auto.lower() if auto != "NOTSET" else (pb, pe)
    return PaddedAvgPool(k, s, pads, ceil, include), [node.inputs[0]]


def _global(kind):
    def build(ctx, node):
        r = ctx.rank(node.inputs[0], node)
        nd = r - 2
        m = _layer(pooling, f"Global{kind}Pool", nd)()
        return Sequential(m, Reshape((0, 0) + (1,) * nd)), [node.inputs[0]]
    return build


def _max_unpool(ctx, node):
    k, s, d, pb, pe, auto = _spatial(node)
    if pb != pe:
        raise Unsupported(f"asymmetric pads {list(pb + pe)} are not supported")
    m = _layer(pooling, "MaxUnpool", len(k))(k, s, pb)
    return IndexedMaxUnpool(m), [n for n in node.inputs if n]


def _batch_norm(ctx, node):
    a = node.attrs
    if a.get("training_mode", 0) or (len(node.outputs) > 1 and any(node.outputs[1:])):
        raise Unsupported("training_mode (or its running-statistics outputs) is not "
                          "supported: import the evaluation graph")
    if a.get("spatial", 1) != 1:
        raise Unsupported("spatial=0 (per-element statistics) is not supported")
    scale, bias, mean, var = (_weights(ctx, node, i, n) for i, n in enumerate(
        ("scale", "B", "mean", "var"), start=1))
    r = ctx.rank(node.inputs[0], node)
    cls = {2: normalization.BatchNorm1d, 3: normalization.BatchNorm1d,
           4: normalization.BatchNorm2d, 5: normalization.BatchNorm3d}.get(r)
    if cls is None:
        raise Unsupported(f"input of rank {r}: convprop's batch norm takes rank 2 to 5")
    m = cls(scale.shape[0], eps=float(a.get("epsilon", 1e-5)),
            momentum=round(1.0 - float(a.get("momentum", 0.9)), 12), dtype=scale.dtype)
    m.weight.value, m.bias.value = scale.copy(), bias.astype(scale.dtype)
    m.set_buffer("running_mean", mean.astype(scale.dtype))
    m.set_buffer("running_var", var.astype(scale.dtype))
    return m, [node.inputs[0]]


def _lrn(ctx, node):
    a = node.attrs
    return normalization.LocalResponseNorm(int(a["size"]), alpha=a.get("alpha", 1e-4),
                                           beta=a.get("beta", 0.75), k=a.get("bias", 1.0)), \
        [node.inputs[0]]


def _gemm(ctx, node):
    a = node.attrs
    b = _weights(ctx, node, 1, "B matrix")
    if b is None or b.ndim != 2:
        raise Unsupported("B must be a 2-D initializer")
    c = _weights(ctx, node, 2, "C bias")
    w = b if a.get("transB", 0) else b.T     # (out, in)
    w = (w * a.get("alpha", 1.0)).astype(b.dtype)
    m = linear.Linear(w.shape[1], w.shape[0], bias=c is not None, dtype=b.dtype)
    m.weight.value = w
    if c is not None:
        if c.size not in (1, w.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
            raise Unsupported(f"C of shape {c.shape}: convprop takes a bias of shape "
                              f"({w.shape[0]},), (1, {w.shape[0]}) or a scalar")
        m.bias.value = (np.broadcast_to(c.reshape(-1), (w.shape[0],)) * a.get(
            "beta", 1.0)).astype(b.dtype)
    if a.get("transA", 0):
        return Sequential(Transpose((1, 0)), m), [node.inputs[0]]
    return m, [node.inputs[0]]


def _matmul(ctx, node):
    b = ctx.const(node.inputs[1])
    if b is None or b.ndim != 2 or ctx.const(node.inputs[0]) is not None:
        raise Unsupported("only x @ W with W a 2-D initializer is supported")
    r = ctx.shapes.get(node.inputs[0], (None, 0))[0]
    if r is None or len(r) != 2:
        return MatMulConst(b), [node.inputs[0]]
    m = linear.Linear(b.shape[0], b.shape[1], bias=False, dtype=b.dtype)
    m.weight.value = b.T.copy()
    return m, [node.inputs[0]]


def _lp_pool(ctx, node):
    k, s, d, pb, pe, auto = _spatial(node)
    p = int(node.attrs.get("p", 2))
    if p % 2 or auto not in ("NOTSET", "VALID") or any(pb + pe) or node.attrs.get(
            "ceil_mode", 0) or any(v != 1 for v in d):
        raise Unsupported(f"p={p} with pads/auto_pad/ceil_mode/dilations: convprop imports "
                          "LpPool with an even p (|x|^p = x^p), no padding, floor mode")
    return _layer(pooling, "LPPool", len(k))(p, k, s), [node.inputs[0]]


def _max_roi_pool(ctx, node):
    a = node.attrs
    return roi.RoIPool(tuple(a["pooled_shape"]), float(a.get("spatial_scale", 1.0))), \
        list(node.inputs[:2])


def _roi_align(ctx, node):
    a = node.attrs
    if a.get("mode", "avg") != "avg":
        raise Unsupported(f"mode={a['mode']!r}: convprop's RoIAlign averages")
    ctm = a.get("coordinate_transformation_mode", "half_pixel" if ctx.opset >= 16
                else "output_half_pixel")
    m = roi.RoIAlign((int(a.get("output_height", 1)), int(a.get("output_width", 1))),
                     float(a.get("spatial_scale", 1.0)), int(a.get("sampling_ratio", 0)),
                     aligned=(ctm == "half_pixel"))
    return RoiAlignNode(m), list(node.inputs[:3])


LAYER_IMPORTERS = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "MaxPool": _max_pool,
    "AveragePool": _avg_pool, "LpPool": _lp_pool, "GlobalAveragePool": _global("Avg"),
    "GlobalMaxPool": _global("Max"), "MaxUnpool": _max_unpool,
    "BatchNormalization": _batch_norm, "LRN": _lrn, "Gemm": _gemm, "MatMul": _matmul,
    "MaxRoiPool": _max_roi_pool, "RoiAlign": _roi_align,
}
