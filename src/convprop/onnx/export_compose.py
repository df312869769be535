"""Layers without an ONNX operator, written as compositions of standard operators that
compute their evaluation-time function exactly:

- sum pooling, ``divisor_override`` and ``ceil_mode`` average pooling: a depthwise ``Conv``
  with a ones kernel (the window sum) times a constant map of 1/divisor taken from
  convprop's own kernel, so every divisor rule (padding counted or not, windows cut by
  ``ceil_mode``) is reproduced, not re-derived;
- Lp pooling: ``Pow`` -> the window sum -> ``Pow(1/p)`` (p = inf: ``MaxPool`` of ``Abs``);
  not ONNX's ``LpPool``, which ONNX Runtime 1.32 computes up to 1e-4 off (measured);
- adaptive average, wavelet and DFT pooling: linear per plane for a fixed input size, so a
  ``MatMul`` by the operator's matrix (probed from convprop's kernel on the unit images;
  DFT: the real and imaginary parts, then the magnitude);
- stochastic pooling at evaluation (``sum a^2 / sum a``, 0 for an all-zero window), Yu's
  mixed pooling at evaluation (the majority branch per channel), Lee's mixed max-average
  and gated pooling, alpha-integration pooling (``Pow``/``AveragePool``; the geometric
  mean at alpha = 1 as ``Exp(AveragePool(Log x))``);
- LeNet-5's ScaledTanh, Subsampling2d (a depthwise conv), MaskedConv2d (a Conv of
  ``w * mask``) and EuclideanRBF (``ReduceSum((x - codes)^2)``).
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..functional.dft_pooling import dft_pool2d_forward  # noqa: F401 (the definition probed)
from ..functional.wavelet_pooling import wavelet_pool2d_forward
from ..layers import lenet_classic, pooling, research_pooling, transform_pooling

__all__ = ["COMPOSED", "avg_pool", "window_sum"]


def _i64(*v):
    return np.array(v, np.int64)


def window_sum(ctx, path, x, kernel, stride, pads_begin, pads_end, weight=None):
    """Depthwise ``Conv``: the sum over each window (or ``weight``-weighted, (C, 1, *k))."""
    c = ctx.sample[x].shape[1]
    w = np.ones((c, 1, *kernel), np.float32) if weight is None else weight
    return ctx.node(path, "Conv", [x, ctx.const(f"{path}.window", w)], group=int(c),
                    kernel_shape=[int(k) for k in kernel], strides=[int(s) for s in stride],
                    pads=[int(p) for p in (*pads_begin, *pads_end)])


def avg_pool(ctx, path, x, kernel, stride, padding, ceil_mode, count_include_pad,
             divisor_override, module):
    """Average pooling as convprop computes it (see the module docstring)."""
    if divisor_override is None and not ceil_mode:
        return ctx.node(path, "AveragePool", [x], kernel_shape=[int(k) for k in kernel],
                        strides=[int(s) for s in stride], pads=[int(p) for p in padding] * 2,
                        count_include_pad=int(count_include_pad))
    size = ctx.sample[x].shape[2:]
    nd = len(size)
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
              count_include_pad=count_include_pad)
    ones = np.ones((1, 1, *size))
    avg = getattr(F, f"avg_pool{nd}d_forward")
    mean = avg(ones, divisor_override=divisor_override, **kw)[0]
    total = avg(ones, divisor_override=1, **kw)[0]
    out = mean.shape[2:]
    ends = [max(p, (o - 1) * s + k - n - p)
            for o, s, k, n, p in zip(out, stride, kernel, size, padding)]
    s = window_sum(ctx, path, x, kernel, stride, padding, ends)
    scale = mean / total
    scale = np.float32(scale.flat[0]) if np.allclose(scale, scale.flat[0], rtol=0, atol=0) \
        else scale.astype(np.float32)
    return ctx.node(path, "Mul", [s, ctx.const(f"{path}.inv_divisor", scale)])


def _lp_pool(ctx, m, path, x):
    p = float(m.norm_type)
    if np.isinf(p):
        return ctx.node(path, "MaxPool", [ctx.node(path, "Abs", [x])],
                        kernel_shape=list(m.kernel_size), strides=list(m.stride),
                        ceil_mode=int(m.ceil_mode))
    xp = x if p == 1 else ctx.node(path, "Mul", [x, x]) if p == 2 else ctx.node(
        path, "Pow", [x, ctx.const(f"{path}.p", np.float32(p))])
    zero = (0,) * len(m.kernel_size)
    ctx.sample.setdefault(xp, ctx.sample[x])  # avg_pool reads only its shape
    mean = avg_pool(ctx, path, xp, m.kernel_size, m.stride, zero, m.ceil_mode, True, None, m)
    s = ctx.node(path, "Mul", [mean, ctx.const(f"{path}.area",
                                               np.float32(np.prod(m.kernel_size)))])
    return s if p == 1 else ctx.node(path, "Pow", [s, ctx.const(f"{path}.inv_p",
                                                                np.float32(1 / p))])


def linear_plane(ctx, path, x, fn, parts=1):
    """A map that is linear on each (C-independent) plane as ``MatMul`` by its matrix, probed
    from ``fn`` (unit images (HW, 1, *size) float64 -> (HW, 1, *out)). ``parts`` > 1: fn
    returns that many maps (e.g. real and imaginary part); a list of outputs is returned."""
    size = ctx.sample[x].shape[2:]
    n = int(np.prod(size))
    eye = np.eye(n).reshape(n, 1, *size)
    ys = fn(eye) if parts > 1 else [fn(eye)]
    out = ys[0].shape[2:]
    flat = ctx.node(path, "Reshape", [x, ctx.const(f"{path}.flat", _i64(0, 0, -1))])
    shape = ctx.const(f"{path}.out_shape", _i64(0, 0, *out))
    res = []
    for i, y in enumerate(ys):
        mat = ctx.const(f"{path}.matrix{i if parts > 1 else ''}", y.reshape(n, -1))
        res.append(ctx.node(path, "Reshape", [ctx.node(path, "MatMul", [flat, mat]), shape]))
    return res if parts > 1 else res[0]


def _adaptive_avg(ctx, m, path, x):
    nd = len(m.output_size)
    fn = getattr(F, f"adaptive_avg_pool{nd}d_forward")
    return linear_plane(ctx, path, x, lambda e: fn(e, output_size=m.output_size)[0])


def _wavelet(ctx, m, path, x):
    return linear_plane(ctx, path, x, lambda e: wavelet_pool2d_forward(
        e, wavelet=m.wavelet, backward_rule="exact")[0])


def _dft(ctx, m, path, x):
    kh, kw = m.output_size

    def parts(e):
        h, w = e.shape[2:]
        f = np.fft.fft2(e)[:, :, :kh, :kw] / (h * w)
        return [f.real, f.imag]
    re, im = linear_plane(ctx, path, x, parts, parts=2)
    sq = ctx.node(path, "Add", [ctx.node(path, "Mul", [re, re]), ctx.node(path, "Mul", [im, im])])
    return ctx.node(path, "Sqrt", [sq])


def _pools(ctx, path, x, kernel, stride, padding=None):
    padding = (0,) * len(kernel) if padding is None else padding
    kw = dict(kernel_shape=[int(k) for k in kernel], strides=[int(s) for s in stride],
              pads=[int(p) for p in padding] * 2)
    return (ctx.node(path, "MaxPool", [x], **kw),
            ctx.node(path, "AveragePool", [x], count_include_pad=1, **kw))


def _mix(ctx, path, mx, av, a):
    """``avg + a * (max - avg)``, a a scalar or one per channel."""
    a = np.asarray(a, np.float32)
    nd = ctx.sample[mx].ndim - 2 if mx in ctx.sample else 2
    a = a.reshape((1, -1) + (1,) * nd) if a.size > 1 else np.float32(a.reshape(-1)[0])
    d = ctx.node(path, "Sub", [mx, av])
    return ctx.node(path, "Add", [av, ctx.node(path, "Mul", [d, ctx.const(f"{path}.a", a)])])


def _mixed(ctx, m, path, x):
    lam = np.asarray(m.eval_lambda)
    if lam.all() or not lam.any():
        pool = "MaxPool" if lam.all() else "AveragePool"
        extra = {} if lam.all() else {"count_include_pad": 1}
        return ctx.node(path, pool, [x], kernel_shape=list(m.kernel_size),
                        strides=list(m.stride), pads=list(m.padding) * 2, **extra)
    mx, av = _pools(ctx, path, x, m.kernel_size, m.stride, m.padding)
    ctx.sample[mx] = np.empty((1,) * ctx.sample[x].ndim)  # _mix reads its rank
    return _mix(ctx, path, mx, av, lam)


def _mixed_maxavg(ctx, m, path, x):
    mx, av = _pools(ctx, path, x, m.kernel_size, m.stride)
    ctx.sample[mx] = np.empty((1,) * ctx.sample[x].ndim)  # _mix reads its rank
    return _mix(ctx, path, mx, av, m.a)


def _gated(ctx, m, path, x):
    c = ctx.sample[x].shape[1]
    w = m.weight.value
    w = np.broadcast_to(w, (c, *m.kernel_size)).reshape(c, 1, *m.kernel_size)
    zero = (0,) * len(m.kernel_size)
    gate = ctx.node(path, "Sigmoid", [window_sum(ctx, path, x, m.kernel_size, m.stride,
                                                 zero, zero, weight=w)])
    mx, av = _pools(ctx, path, x, m.kernel_size, m.stride)
    d = ctx.node(path, "Sub", [mx, av])
    return ctx.node(path, "Add", [av, ctx.node(path, "Mul", [d, gate])])


def _stochastic(ctx, m, path, x):
    k, s = m.kernel_size, m.stride
    zero = (0,) * len(k)
    s1 = window_sum(ctx, path, x, k, s, zero, zero)
    sq = ctx.node(path, "Mul", [x, x])
    ctx.sample[sq] = ctx.sample[x]  # window_sum reads only its shape
    s2 = window_sum(ctx, path, sq, k, s, zero, zero)
    zero = ctx.const(f"{path}.zero", np.float32(0))
    empty = ctx.node(path, "Equal", [s1, zero])
    safe = ctx.node(path, "Where", [empty, ctx.const(f"{path}.one", np.float32(1)), s1])
    return ctx.node(path, "Where", [empty, zero, ctx.node(path, "Div", [s2, safe])])


def _alpha(ctx, m, path, x):
    alpha = np.float32(m.alpha.value.reshape(-1)[0])
    p = (np.float32(1) - alpha) / np.float32(2)
    kw = dict(kernel_shape=list(m.kernel_size), strides=list(m.stride))
    if p == 0:  # the geometric mean
        return ctx.node(path, "Exp", [ctx.node(path, "AveragePool", [
            ctx.node(path, "Log", [x])], **kw)])
    xp = ctx.node(path, "Pow", [x, ctx.const(f"{path}.p", np.float32(p))])
    mean = ctx.node(path, "AveragePool", [xp], **kw)
    return ctx.node(path, "Pow", [mean, ctx.const(f"{path}.inv_p", np.float32(1 / p))])


def _scaled_tanh(ctx, m, path, x):
    t = ctx.node(path, "Tanh", [ctx.node(path, "Mul", [x, ctx.const(
        f"{path}.slope", np.float32(m.slope))])])
    return ctx.node(path, "Mul", [t, ctx.const(f"{path}.amplitude", np.float32(m.amplitude))])


def _subsampling(ctx, m, path, x):
    c = m.channels
    w = np.broadcast_to(m.weight.value.reshape(c, 1, 1, 1), (c, 1, 2, 2)).copy()
    return ctx.node(path, "Conv", [x, ctx.const(f"{path}.weight", w),
                                   ctx.const(f"{path}.bias", m.bias.value)],
                    group=int(c), kernel_shape=[2, 2], strides=[2, 2])


def _masked_conv(ctx, m, path, x):
    return ctx.node(path, "Conv", [x, ctx.const(f"{path}.weight", m.weight.value * m.mask),
                                   ctx.const(f"{path}.bias", m.bias.value)],
                    kernel_shape=list(m.kernel_size))


def _rbf(ctx, m, path, x):
    u = ctx.node(path, "Unsqueeze", [x, ctx.const(f"{path}.axis", _i64(1))])
    d = ctx.node(path, "Sub", [u, ctx.const(f"{path}.codes", m.codes)])
    return ctx.reduce(path, "ReduceSum", ctx.node(path, "Mul", [d, d]), [2], keepdims=0)


COMPOSED = {
    pooling._LPPoolNd: _lp_pool,
    pooling.AdaptiveAvgPool1d: _adaptive_avg,
    pooling.AdaptiveAvgPool2d: _adaptive_avg,
    pooling.AdaptiveAvgPool3d: _adaptive_avg,
    transform_pooling.WaveletPool2d: _wavelet,
    transform_pooling.DFTPool2d: _dft,
    transform_pooling.AlphaPool2d: _alpha,
    research_pooling._StochasticPoolNd: _stochastic,
    research_pooling._MixedPoolNd: _mixed,
    research_pooling._MixedMaxAvgPoolNd: _mixed_maxavg,
    research_pooling._GatedPoolNd: _gated,
    lenet_classic.ScaledTanh: _scaled_tanh,
    lenet_classic.Subsampling2d: _subsampling,
    lenet_classic.MaskedConv2d: _masked_conv,
    lenet_classic.EuclideanRBF: _rbf,
}
