"""One op in a different number of dimensions is the same op: a singleton spatial axis with a
size-1 window along it changes nothing. A 3-D op over a depth-1 volume equals the 2-D op,
and a 2-D op over an H=1 image equals the 1-D op, forward and every gradient."""

import numpy as np
import pytest

import convprop.functional as F

DIMS = [(3, 2), (2, 1)]  # (higher, lower): the higher op gets a singleton axis 2


def lift(a):
    """``a`` (N, C, *S) with a singleton spatial axis in front: (N, C, 1, *S)."""
    return a[:, :, None]


def _ops(kind, nd):
    return getattr(F, f"{kind}{nd}d_forward"), getattr(F, f"{kind}{nd}d_backward")


def _same_op(kind, hi, lo, inputs, kw_hi, kw_lo, rng, *, lifted=(0,), grads_lifted=(0,),
             extras=None):
    """Run the ``lo``-d op on ``inputs`` and the ``hi``-d op on them with a singleton axis
    (inputs at positions ``lifted``); compare outputs, extras and gradients."""
    fh, bh = _ops(kind, hi)
    fl, bl = _ops(kind, lo)
    y_lo, c_lo = fl(*inputs, **kw_lo)
    hi_in = [lift(a) if i in lifted else a for i, a in enumerate(inputs)]
    y_hi, c_hi = fh(*hi_in, **kw_hi)
    np.testing.assert_allclose(y_hi, lift(y_lo) if y_lo.ndim > 2 else y_lo, rtol=1e-13,
                               atol=1e-13)
    if extras:
        np.testing.assert_array_equal(extras(c_hi), lift(extras(c_lo)))
    dy = rng.standard_normal(y_lo.shape)
    g_lo = bl(dy, c_lo)
    g_hi = bh(lift(dy) if y_lo.ndim > 2 else dy, c_hi)
    g_lo = g_lo if isinstance(g_lo, tuple) else (g_lo,)
    g_hi = g_hi if isinstance(g_hi, tuple) else (g_hi,)
    for i, (a, e) in enumerate(zip(g_hi, g_lo)):
        if e is None:
            assert a is None
            continue
        np.testing.assert_allclose(a, lift(e) if i in grads_lifted else e, rtol=1e-13,
                                   atol=1e-13)


def _lifted_kw(kw_lo, keys, zero=("padding", "output_padding")):
    """The higher op's arguments: each of ``keys`` (tuples) gets a leading 1, or 0 for the
    paddings, on the new singleton axis."""
    return {k: ((0 if k in zero else 1), *v) if k in keys and isinstance(v, tuple) else v
            for k, v in kw_lo.items()}


CONV_CASES = [
    dict(stride=1, padding=1),
    dict(stride=2, padding=2, dilation=2, groups=2),
    dict(padding="same"),
    dict(padding="valid", stride=3),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("hi,lo", DIMS)
@pytest.mark.parametrize("kw", CONV_CASES)
def test_conv(hi, lo, kw, rng):
    x = rng.standard_normal((2, 4, *(7, 6)[:lo]))
    w = rng.standard_normal((6, 4 // kw.get("groups", 1), *(3, 2)[:lo]))
    b = rng.standard_normal(6)
    keys = ("stride", "padding", "dilation")
    kw_lo = {k: (v,) * lo if k in keys and isinstance(v, int) else v for k, v in kw.items()}
    _same_op("conv", hi, lo, [x, w, b], _lifted_kw(kw_lo, keys), kw_lo, rng, lifted=(0, 1),
             grads_lifted=(0, 1))


@pytest.mark.parametrize("hi,lo", DIMS)
@pytest.mark.parametrize("kw", [dict(stride=2, padding=1, output_padding=1),
                                dict(dilation=2, groups=2)])
def test_conv_transpose(hi, lo, kw, rng):
    g = kw.get("groups", 1)
    x = rng.standard_normal((2, 4, *(4, 3)[:lo]))
    w = rng.standard_normal((4, 3, *(3, 2)[:lo]))
    b = rng.standard_normal(3 * g)
    keys = ("stride", "padding", "output_padding", "dilation")
    kw_lo = {k: (v,) * lo if k in keys else v for k, v in kw.items()}
    _same_op("conv_transpose", hi, lo, [x, w, b], _lifted_kw(kw_lo, keys), kw_lo, rng,
             lifted=(0, 1), grads_lifted=(0, 1))


@pytest.mark.parametrize("hi,lo", DIMS)
@pytest.mark.parametrize("kw", [dict(kernel_size=3, stride=2, padding=1, dilation=2,
                                     ceil_mode=True),
                                dict(kernel_size=2)])
def test_max_pool(hi, lo, kw, rng):
    x = rng.standard_normal((2, 3, *(9, 8)[:lo]))
    keys = ("kernel_size", "stride", "padding", "dilation")
    kw_lo = {k: (v,) * lo if k in keys else v for k, v in kw.items()}
    _same_op("max_pool", hi, lo, [x], _lifted_kw(kw_lo, keys), kw_lo, rng,
             extras=lambda c: c.indices)


@pytest.mark.parametrize("hi,lo", DIMS)
@pytest.mark.parametrize("kw", [dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                     count_include_pad=False),
                                dict(kernel_size=2, padding=1),
                                dict(kernel_size=3, stride=1, divisor_override=2)])
def test_avg_pool(hi, lo, kw, rng):
    x = rng.standard_normal((2, 3, *(9, 8)[:lo]))
    keys = ("kernel_size", "stride", "padding")
    kw_lo = {k: (v,) * lo if k in keys else v for k, v in kw.items()}
    _same_op("avg_pool", hi, lo, [x], _lifted_kw(kw_lo, keys), kw_lo, rng)


@pytest.mark.parametrize("hi,lo", DIMS)
@pytest.mark.parametrize("kind", ["adaptive_avg_pool", "adaptive_max_pool"])
@pytest.mark.parametrize("out", [3, 5])
def test_adaptive_pool(hi, lo, kind, out, rng):
    x = rng.standard_normal((2, 3, *(7, 4)[:lo]))
    extras = (lambda c: c.indices) if "max" in kind else None
    _same_op(kind, hi, lo, [x], dict(output_size=(1, *(out,) * lo)),
             dict(output_size=(out,) * lo), rng, extras=extras)


@pytest.mark.parametrize("hi,lo", DIMS)
@pytest.mark.parametrize("kind", ["global_avg_pool", "global_max_pool"])
def test_global_pool(hi, lo, kind, rng):
    x = rng.standard_normal((2, 3, *(7, 4)[:lo]))
    _same_op(kind, hi, lo, [x], {}, {}, rng)


@pytest.mark.parametrize("hi,lo", DIMS)
def test_max_unpool(hi, lo, rng):
    x = rng.standard_normal((2, 3, *(8, 7)[:lo]))
    _, cache = _ops("max_pool", lo)[0](x, kernel_size=3, stride=2, padding=1)
    v = rng.standard_normal(cache.indices.shape)
    kw_lo = dict(kernel_size=(3,) * lo, stride=(2,) * lo, padding=(1,) * lo,
                 output_size=x.shape[2:])
    kw_hi = dict(_lifted_kw(kw_lo, kw_lo), output_size=(1, *x.shape[2:]))
    _same_op("max_unpool", hi, lo, [v, cache.indices], kw_hi, kw_lo, rng, lifted=(0, 1))


@pytest.mark.parametrize("shape", [(4, 3, 5), (4, 3, 5, 6)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(shape, training, rng):
    x = rng.standard_normal(shape)
    g, b, rm = (rng.standard_normal(3) for _ in range(3))
    rv = rng.random(3) + 0.5
    y, c = F.batch_norm_forward(x, g, b, rm, rv, training=training)
    y2, c2 = F.batch_norm_forward(lift(x), g, b, rm, rv, training=training)
    np.testing.assert_allclose(y2, lift(y), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(c2.running_var, c.running_var, rtol=1e-13)
    dy = rng.standard_normal(shape)
    for a, e in zip(F.batch_norm_backward(lift(dy), c2), F.batch_norm_backward(dy, c)):
        np.testing.assert_allclose(a, lift(e) if e.ndim > 1 else e, rtol=1e-12, atol=1e-13)
