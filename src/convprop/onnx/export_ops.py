"""The export table: convprop layer type -> the ONNX nodes that compute it in evaluation mode.

Layers ONNX has an operator for map to it (Conv, ConvTranspose, MaxPool with its Indices,
AveragePool, GlobalAveragePool, GlobalMaxPool, MaxUnpool, MaxRoiPool, RoiAlign,
BatchNormalization, LRN, Gemm, Relu, LeakyRelu, Sigmoid, Tanh, Dropout, Flatten, Softmax,
Identity, Pad, Slice). Layers without one are compositions of standard operators
(:mod:`.export_compose`). Every function takes ``(ctx, module, path, x)`` and returns the
output tensor name(s); ``ctx.sample[x]`` is the layer's sample input.
"""

from __future__ import annotations

import numpy as np

from ..functional.conv import _pads as conv_pads
from ..functional.conv import flip_kernel
from ..layers import activation, conv, dropout, linear, normalization, pooling, reshape, roi
from ..layers import binary, shortcut
from ._lib import ExportError
from .export_compose import COMPOSED, avg_pool
from .export_nodes import NODE_EXPORTERS

__all__ = ["EXPORTERS"]


def _ints(t):
    return [int(v) for v in t]


def _conv(ctx, m, path, x, weight=None):
    w = m.weight.value if weight is None else weight
    if m.mode == "convolution":
        w = flip_kernel(w)
    ins = [x, ctx.const(f"{path}.weight", w)]
    if m.bias is not None:
        ins.append(ctx.const(f"{path}.bias", m.bias.value))
    if m._transposed:
        pads = [(p, p) for p in m.padding]
    else:
        pads = conv_pads(m.padding, m.kernel_size, m.dilation)
    pads = [p[0] for p in pads] + [p[1] for p in pads]
    op = "ConvTranspose" if m._transposed else "Conv"
    extra = {"output_padding": _ints(m.output_padding)} if m._transposed else {}
    return ctx.node(path, op, ins, kernel_shape=_ints(m.kernel_size), strides=_ints(m.stride),
                    pads=_ints(pads), dilations=_ints(m.dilation), group=int(m.groups),
                    **extra)


def _max_pool(ctx, m, path, x):
    pads = _ints(m.padding) * 2
    kw = dict(kernel_shape=_ints(m.kernel_size), strides=_ints(m.stride), pads=pads,
              dilations=_ints(m.dilation), ceil_mode=int(m.ceil_mode))
    if m.ceil_mode:
        # ceil_mode as floor mode over end pads that stop at convprop's last window: ONNX's
        # MaxPool before opset 22 does not drop a window that starts in the end padding
        # (onnx's shape inference then refuses the file; onnxruntime drops it anyway)
        from ..layers.pad import ceil_end_pads
        p = _ints(m.padding)
        end = ceil_end_pads(ctx.sample[x].shape[2:], _ints(m.kernel_size), _ints(m.stride),
                            _ints(m.dilation), p, p)
        if all(e < k for e, k in zip(end, kw["kernel_shape"])):  # onnxruntime: pad < kernel
            kw.update(pads=p + list(end), ceil_mode=0)
    if not m.return_indices:
        return ctx.node(path, "MaxPool", [x], **kw)
    y, native = ctx.node(path, "MaxPool", [x], n_out=2, **kw)
    # ONNX indexes the whole (N, C, *spatial) tensor, convprop (and PyTorch) each plane
    plane = int(np.prod(ctx.sample[x].shape[2:]))
    idx = ctx.node(path, "Mod", [native, ctx.const(f"{path}.plane_size",
                                                   np.array(plane, np.int64))])
    ctx.native_indices[idx] = (native, ctx.sample[x].shape[2:])
    return y, idx


def _whole_indices(ctx, path, values, idx, nc, out_plane):
    """Per-plane indices -> ONNX's whole-tensor ones for an output of ``out_plane`` elements
    per plane: ``idx + (n C + c) out_plane``; ``nc`` is the tensor [N, C] (N at run time)."""
    nd = ctx.sample[values].ndim
    c = ctx.sample[values].shape[1]
    ones = ctx.node(path, "ConstantOfShape", [nc], value=ctx.onnx.helper.make_tensor(
        "one", ctx.onnx.TensorProto.INT64, [1], [1]))
    flat = ctx.node(path, "Reshape", [ones, ctx.const(f"{path}.flat", np.array([-1]))])
    count = ctx.node(path, "CumSum", [flat, ctx.const(f"{path}.axis", np.array(0))])
    plane_no = ctx.node(path, "Sub", [count, ctx.const(f"{path}.one", np.array(1))])
    grid = ctx.node(path, "Reshape", [plane_no, ctx.const(
        f"{path}.grid", np.array([-1, c] + [1] * (nd - 2)))])
    offsets = ctx.node(path, "Mul", [grid, ctx.const(f"{path}.out_plane",
                                                     np.array(out_plane, np.int64))])
    return ctx.node(path, "Add", [idx, offsets])


def _max_unpool(ctx, m, path, x):
    if not isinstance(x, tuple) or len(x) != 2:
        raise ExportError("MaxUnpool needs the (values, indices) pair of a max pooling with "
                          "return_indices=True in the same model")
    values, idx = x
    native = ctx.native_indices.get(idx)
    out_shape = m.predict((ctx.sample[values], ctx.sample[idx])).shape
    kw = dict(kernel_shape=_ints(m.kernel_size), strides=_ints(m.stride),
              pads=_ints(m.padding) * 2)
    if native is not None and tuple(native[1]) == tuple(out_shape[2:]):
        return ctx.node(path, "MaxUnpool", [values, native[0]], **kw)
    nc = ctx.node(path, "Slice", [ctx.node(path, "Shape", [values]),
                                  ctx.const(f"{path}.zero", np.array([0])),
                                  ctx.const(f"{path}.two", np.array([2]))])
    whole = _whole_indices(ctx, path, values, idx, nc, int(np.prod(out_shape[2:])))
    size = ctx.node(path, "Concat", [nc, ctx.const(f"{path}.size", np.array(
        out_shape[2:], np.int64))], axis=0)
    return ctx.node(path, "MaxUnpool", [values, whole, size], **kw)


def _avg_pool(ctx, m, path, x):
    return avg_pool(ctx, path, x, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                    m.count_include_pad, m.divisor_override, m)


def _global(op):
    def fn(ctx, m, path, x):
        return ctx.node(path, "Flatten", [ctx.node(path, op, [x])], axis=1)
    return fn


def _adaptive_max(ctx, m, path, x):
    size = ctx.sample[x].shape[2:]
    out = [s if o is None else o for s, o in zip(size, m.output_size)]
    if m.return_indices:
        raise ExportError("its indices (return_indices=True) have no ONNX form")
    if not any(s % o for s, o in zip(size, out)):  # equal bins: one MaxPool
        k = [s // o for s, o in zip(size, out)]
        return ctx.node(path, "MaxPool", [x], kernel_shape=k, strides=k)
    # PyTorch's bins [floor(i L / O), ceil((i + 1) L / O)): a ReduceMax per bin, joined
    nd = len(size)
    big = np.iinfo(np.int64).max

    def bins(axis, prefix):
        if axis == nd:
            starts = [b[0] for b in prefix]
            ends = [b[1] for b in prefix]
            sl = ctx.node(path, "Slice", [x, ctx.const(f"{path}.starts", np.array(starts)),
                                          ctx.const(f"{path}.ends", np.array(ends)),
                                          ctx.const(f"{path}.axes", np.arange(2, 2 + nd))])
            return ctx.reduce(path, "ReduceMax", sl, list(range(2, 2 + nd)))
        n, o = size[axis], out[axis]
        parts = [bins(axis + 1, prefix + [(i * n // o, min(-(-(i + 1) * n // o), big))])
                 for i in range(o)]
        return parts[0] if len(parts) == 1 else ctx.node(path, "Concat", parts, axis=2 + axis)
    return bins(0, [])


def _batch_norm(ctx, m, path, x):
    c = m.num_features
    g = m.weight.value if m.affine else np.ones(c, np.float32)
    b = m.bias.value if m.affine else np.zeros(c, np.float32)
    if not m.track_running_stats:  # evaluation uses the batch's own statistics
        nd = ctx.sample[x].ndim
        axes = [0] + list(range(2, nd))
        shape = (c,) + (1,) * (nd - 2)
        mean = ctx.reduce(path, "ReduceMean", x, axes)
        d = ctx.node(path, "Sub", [x, mean])
        var = ctx.reduce(path, "ReduceMean", ctx.node(path, "Mul", [d, d]), axes)
        den = ctx.node(path, "Sqrt", [ctx.node(path, "Add", [var, ctx.const(
            f"{path}.eps", np.float32(m.eps))])])
        y = ctx.node(path, "Div", [d, den])
        y = ctx.node(path, "Mul", [y, ctx.const(f"{path}.weight", g.reshape(shape))])
        return ctx.node(path, "Add", [y, ctx.const(f"{path}.bias", b.reshape(shape))])
    ins = [x] + [ctx.const(f"{path}.{n}", v) for n, v in (
        ("weight", g), ("bias", b), ("running_mean", m.running_mean),
        ("running_var", m.running_var))]
    return ctx.node(path, "BatchNormalization", ins, epsilon=float(m.eps))


def _lrn(ctx, m, path, x):
    return ctx.node(path, "LRN", [x], size=int(m.size), alpha=float(m.alpha),
                    beta=float(m.beta), bias=float(m.k))


def _linear(ctx, m, path, x, weight=None):
    ins = [x, ctx.const(f"{path}.weight", m.weight.value if weight is None else weight)]
    if m.bias is not None:
        ins.append(ctx.const(f"{path}.bias", m.bias.value))
    return ctx.node(path, "Gemm", ins, transB=1)


def _binary(ctx, m, path, x):
    """BinaryLinear / BinaryConv2d at evaluation: Gemm / Conv with the weight the forward
    uses, alpha * sign(W) (never the latent real weight the optimizer trains)."""
    w = m.binary_weight(training=False)
    return (_linear if isinstance(m, linear.Linear) else _conv)(ctx, m, path, x, weight=w)


def _sign(ctx, m, path, x):
    """Sign at evaluation, +1 for x >= 0 (ONNX's Sign gives 0 at 0): Where(x < 0, -1, 1)."""
    neg = ctx.node(path, "Less", [x, ctx.const(f"{path}.zero", np.float32(0))])
    return ctx.node(path, "Where", [neg, ctx.const(f"{path}.minus_one", np.float32(-1)),
                                    ctx.const(f"{path}.one", np.float32(1))])


def _simple(op, **attrs):
    def fn(ctx, m, path, x):
        kw = {k: (v(m) if callable(v) else v) for k, v in attrs.items()}
        return ctx.node(path, op, [x], **kw)
    return fn


def _dropout(ctx, m, path, x):
    return ctx.node(path, "Dropout", [x, ctx.const(f"{path}.ratio", np.float32(m.p))])


def _pad_shortcut(ctx, m, path, x):
    c = ctx.sample[x].shape[1]
    big = np.iinfo(np.int64).max
    xs = ctx.node(path, "Slice", [x, ctx.const(f"{path}.starts", np.array([0, 0], np.int64)),
                                  ctx.const(f"{path}.ends", np.array([big, big], np.int64)),
                                  ctx.const(f"{path}.axes", np.array([2, 3], np.int64)),
                                  ctx.const(f"{path}.steps", np.full(2, m.stride, np.int64))])
    before = (m.out_channels - c) // 2
    after = m.out_channels - c - before
    pads = np.array([0, before, 0, 0, 0, after, 0, 0], np.int64)
    return ctx.node(path, "Pad", [xs, ctx.const(f"{path}.pads", pads)], mode="constant")


def _roi_pool(ctx, m, path, x):
    if not isinstance(x, tuple) or len(x) != 2:
        raise ExportError("RoI pooling takes the pair (x, boxes): export it as the model's "
                          "first layer with input_shape=[x_shape, boxes_shape]")
    return ctx.node(path, "MaxRoiPool", list(x), pooled_shape=_ints(m.output_size),
                    spatial_scale=float(m.spatial_scale))


def _roi_align(ctx, m, path, x):
    if not isinstance(x, tuple) or len(x) != 2:
        raise ExportError("RoI Align takes the pair (x, boxes): export it as the model's "
                          "first layer with input_shape=[x_shape, boxes_shape]")
    feats, boxes = x

    def cols(lo, hi):
        return ctx.node(path, "Slice", [boxes, ctx.const(f"{path}.start", np.array([lo])),
                                        ctx.const(f"{path}.end", np.array([hi])),
                                        ctx.const(f"{path}.axis", np.array([1]))])
    bidx = ctx.node(path, "Cast", [ctx.node(path, "Squeeze", [cols(0, 1), ctx.const(
        f"{path}.sq", np.array([1]))])], to=7)  # INT64
    mode = "half_pixel" if m.aligned else "output_half_pixel"
    ph, pw = m.output_size
    return ctx.node(path, "RoiAlign", [feats, cols(1, 5), bidx], mode="avg",
                    output_height=int(ph), output_width=int(pw),
                    sampling_ratio=int(m.sampling_ratio), spatial_scale=float(m.spatial_scale),
                    coordinate_transformation_mode=mode)


EXPORTERS = {
    conv._ConvNd: _conv,
    pooling._MaxPoolNd: _max_pool,
    pooling._MaxUnpoolNd: _max_unpool,
    pooling._AvgPoolNd: _avg_pool,
    pooling.GlobalAvgPool1d: _global("GlobalAveragePool"),
    pooling.GlobalAvgPool2d: _global("GlobalAveragePool"),
    pooling.GlobalAvgPool3d: _global("GlobalAveragePool"),
    pooling.GlobalMaxPool1d: _global("GlobalMaxPool"),
    pooling.GlobalMaxPool2d: _global("GlobalMaxPool"),
    pooling.GlobalMaxPool3d: _global("GlobalMaxPool"),
    pooling.AdaptiveMaxPool1d: _adaptive_max,
    pooling.AdaptiveMaxPool2d: _adaptive_max,
    pooling.AdaptiveMaxPool3d: _adaptive_max,
    normalization._BatchNorm: _batch_norm,
    normalization.LocalResponseNorm: _lrn,
    linear.Linear: _linear,
    binary._Binary: _binary,   # before Linear / Conv2d in a binary layer's MRO
    binary.Sign: _sign,
    activation.ReLU: _simple("Relu"),
    activation.LeakyReLU: _simple("LeakyRelu", alpha=lambda m: float(m.negative_slope)),
    activation.Sigmoid: _simple("Sigmoid"),
    activation.Tanh: _simple("Tanh"),
    dropout.Dropout: _dropout,
    reshape.Flatten: _simple("Flatten", axis=1),
    reshape.Identity: _simple("Identity"),
    shortcut.PadShortcut: _pad_shortcut,
    roi.RoIPool: _roi_pool,
    roi.RoIAlign: _roi_align,
}
EXPORTERS.update(COMPOSED)
EXPORTERS.update(NODE_EXPORTERS)
