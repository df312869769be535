import numpy as np
import pytest
from helpers import hostile, readonly

from convprop.functional import (conv2d_forward, conv_transpose2d_backward,
                                 conv_transpose2d_forward)
from convprop.gradcheck import check_kernel


# ---- independent loop reference (nothing from convprop) --------------------------------
def ref_conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups):
    """Every input pixel scatters a weighted kernel into an uncropped buffer; then crop."""
    n, c_in, h, wd = x.shape
    _, og, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    wo = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    full = np.zeros((n, og * groups, ho + 2 * ph + sh + dh * kh, wo + 2 * pw + sw + dw * kw))
    cg = c_in // groups
    for bi in range(n):
        for c in range(c_in):
            o0 = (c // cg) * og
            for p in range(h):
                for q in range(wd):
                    for o in range(og):
                        for i in range(kh):
                            for j in range(kw):
                                full[bi, o0 + o, p * sh + i * dh, q * sw + j * dw] += \
                                    x[bi, c, p, q] * w[c, o, i, j]
    y = full[:, :, ph:ph + ho, pw:pw + wo].copy()
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# (N, C_in, H, W, C_out, kernel, stride, padding, output_padding, dilation, groups)
CASES = {
    "s1_p1": (2, 3, 4, 5, 4, 3, 1, 1, 0, 1, 1),
    "s2_k4_p1": (2, 3, 4, 3, 2, 4, 2, 1, 0, 1, 1),
    "s2_outpad": (2, 2, 3, 4, 3, 3, 2, 1, 1, 1, 1),
    "stride_gt_kernel": (2, 2, 3, 3, 2, 2, 3, 0, 2, 1, 1),
    "s2_k5_small_in": (2, 2, 3, 2, 2, 5, 2, 1, 0, 1, 1),
    "kernel1": (2, 3, 4, 4, 2, 1, 1, 0, 0, 1, 1),
    "kernel1_stride2": (1, 2, 3, 3, 2, 1, 2, 0, 1, 1, 1),
    "dilation_outpad": (2, 2, 3, 4, 2, 3, 1, 0, 2, 3, 1),
    "dilation_outpad_wide": (2, 2, 4, 8, 3, 2, 1, 0, 1, 2, 1),
    "groups2": (2, 4, 3, 4, 6, 3, 2, 1, 1, 1, 2),
    "depthwise": (2, 3, 4, 3, 3, 3, 1, 1, 0, 1, 3),
    "batch1_channel1": (1, 1, 3, 3, 1, 3, 2, 0, 0, 1, 1),
    "non_square_all": (2, 2, 3, 4, 3, (3, 2), (2, 3), (1, 0), (1, 2), (2, 1), 1),
    "big_padding": (1, 2, 5, 5, 2, 3, 1, 2, 0, 1, 1),
}


def _make(rng, case, dtype=np.float64, bias=True):
    n, c, h, wd, co, k, s, p, op, d, g = case
    x = rng.standard_normal((n, c, h, wd)).astype(dtype)
    w = rng.standard_normal((c, co // g, *_pair(k))).astype(dtype)
    b = rng.standard_normal(co).astype(dtype) if bias else None
    return x, w, b, dict(stride=s, padding=p, output_padding=op, dilation=d, groups=g)


@pytest.mark.parametrize("name", list(CASES))
def test_forward_matches_loop(name, rng):
    x, w, b, kw = _make(rng, CASES[name])
    y, _ = conv_transpose2d_forward(x, w, b, **kw)
    ref = ref_conv_transpose2d(x, w, b, *(_pair(kw[k]) for k in
                                          ("stride", "padding", "output_padding", "dilation")),
                               kw["groups"])
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_backward_gradcheck(name, rng):
    x, w, b, kw = _make(rng, CASES[name])
    report = check_kernel(lambda x, w, b: conv_transpose2d_forward(x, w, b, **kw),
                          conv_transpose2d_backward, [x, w, b], names=["x", "w", "b"],
                          rng=rng)
    assert report.passed, str(report)


@pytest.mark.parametrize("name", list(CASES))
def test_adjoint_of_conv2d(name, rng):
    """<conv2d(u, w), v> == <u, conv_transpose2d(v, w)> for the same w and geometry."""
    x, w, _, kw = _make(rng, CASES[name])
    conv_kw = {k: kw[k] for k in ("stride", "padding", "dilation", "groups")}
    y, _ = conv_transpose2d_forward(x, w, None, **kw)
    u = rng.standard_normal(y.shape)
    cu, _ = conv2d_forward(u, w, None, **conv_kw)
    # conv2d sees output_padding // stride extra rows/columns that the transpose never fills
    lhs = np.sum(cu[:, :, :x.shape[2], :x.shape[3]] * x)
    rhs = np.sum(u * y)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


def test_backward_without_bias(rng):
    x, w, _, kw = _make(rng, CASES["groups2"], bias=False)
    y, cache = conv_transpose2d_forward(x, w, None, **kw)
    assert conv_transpose2d_backward(rng.standard_normal(y.shape), cache)[2] is None
    report = check_kernel(lambda x, w: conv_transpose2d_forward(x, w, None, **kw),
                          conv_transpose2d_backward, [x, w], names=["x", "w"], rng=rng)
    assert report.passed, str(report)


@pytest.mark.parametrize("name", list(CASES))
def test_torch_parity_float64(name, rng, torch):
    x, w, b, kw = _make(rng, CASES[name])
    y, cache = conv_transpose2d_forward(x, w, b, **kw)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv_transpose2d_backward(dy, cache)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, **kw)
    ty.backward(torch.tensor(dy))
    for ours, theirs in [(y, ty.detach()), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)]:
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", ["s2_k4_p1", "kernel1", "groups2"])
def test_hostile_inputs_give_same_result_and_stay_untouched(name, rng):
    x, w, b, kw = _make(rng, CASES[name])
    y, cache = conv_transpose2d_forward(x, w, b, **kw)
    dy = rng.standard_normal(y.shape)
    want = (y, *conv_transpose2d_backward(dy, cache))
    hx, hw, hb, hdy = hostile(x), hostile(w), readonly(b), hostile(dy)
    y2, cache2 = conv_transpose2d_forward(hx, hw, hb, **kw)
    got = (y2, *conv_transpose2d_backward(hdy, cache2))
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=1e-13, atol=1e-13)
    for h, orig in [(hx, x), (hw, w), (hb, b), (hdy, dy)]:
        np.testing.assert_array_equal(h, orig)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype, rng):
    x, w, b, kw = _make(rng, CASES["groups2"], dtype=dtype)
    y, cache = conv_transpose2d_forward(x, w, b, **kw)
    grads = conv_transpose2d_backward(rng.standard_normal(y.shape).astype(dtype), cache)
    assert y.dtype == dtype and all(g.dtype == dtype for g in grads)


def _err(match, exc=ValueError, x=(2, 3, 4, 4), w=(3, 2, 3, 3), b=(2,), dtypes=None, **kw):
    dx, dw, db = dtypes or (np.float64,) * 3
    xa = np.zeros(x, dx) if isinstance(x, tuple) else x
    ba = None if b is None else np.zeros(b, db)
    with pytest.raises(exc, match=match):
        conv_transpose2d_forward(xa, np.zeros(w, dw), ba, **kw)


def test_errors():
    _err(r"^conv_transpose2d: x must be 4-D", x=(3, 4, 4))
    _err(r"^conv_transpose2d: w must be 4-D", w=(3, 2, 3))
    _err(r"^conv_transpose2d: x has 4 channels but w expects 3", x=(2, 4, 4, 4))
    _err(r"^conv_transpose2d: groups=2 must divide C_in=3", groups=2, b=(4,))
    _err(r"^conv_transpose2d: all arrays must share one dtype", TypeError,
         dtypes=(np.float64, np.float32, np.float64))
    _err(r"^conv_transpose2d: x must be float32 or float64", TypeError,
         x=np.zeros((2, 3, 4, 4), np.int64))
    _err(r"^conv_transpose2d: b must have shape \(2,\)", b=(3,))
    _err(r"^conv_transpose2d: output_padding must be smaller than stride or dilation",
         stride=2, output_padding=2)
    _err(r"^conv_transpose2d: output_padding must be smaller", output_padding=1)
    _err(r"^conv_transpose2d: output size must be positive", x=(2, 3, 1, 1), padding=2)
    _err(r"^conv_transpose2d: padding must be >= 0", padding=-1)
    _err(r"^conv_transpose2d: stride must be >= 1", stride=0)
    _err(r"^conv_transpose2d: all sizes must be positive", w=(3, 0, 3, 3))


def test_backward_errors(rng):
    x, w, b, kw = _make(rng, CASES["s1_p1"])
    y, cache = conv_transpose2d_forward(x, w, b, **kw)
    with pytest.raises(ValueError, match=r"^conv_transpose2d_backward: dy must have"):
        conv_transpose2d_backward(np.zeros((1, *y.shape[1:])), cache)
    with pytest.raises(TypeError, match=r"^conv_transpose2d_backward: dy must have the"):
        conv_transpose2d_backward(y.astype(np.float32), cache)
