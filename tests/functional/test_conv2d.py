import numpy as np
import pytest
from helpers import hostile, readonly

import convprop.functional._engine.correlate as conv_mod
import convprop.functional._engine.workspace as workspace_mod
from convprop.functional import conv2d_backward, conv2d_forward
from convprop.gradcheck import check_kernel

#: Output rows per band: None = the columns in one block (what these small cases get by
#: default), 1 and 2 = forced bands (halo rows shared by neighbouring bands, strided and
#: dilated windows crossing band edges, bands wholly inside the padding).
BANDINGS = [None, 1, 2]


# ---- independent loop reference (nothing from convprop) --------------------------------
def ref_conv2d(x, w, b, stride, pads, dilation, groups):
    """Direct loops over every output element; ``pads`` = (top, bottom, left, right)."""
    n, c, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = stride, dilation, pads
    xp = np.zeros((n, c, h + pt + pb, wd + pl + pr))
    xp[:, :, pt:pt + h, pl:pl + wd] = x
    ho = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, c_out, ho, wo))
    og = c_out // groups
    for bi in range(n):
        for o in range(c_out):
            c0 = (o // og) * cg
            for p in range(ho):
                for q in range(wo):
                    acc = 0.0 if b is None else b[o]
                    for ci in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                acc += w[o, ci, i, j] * xp[bi, c0 + ci, p * sh + i * dh,
                                                           q * sw + j * dw]
                    y[bi, o, p, q] = acc
    return y


def _pads(padding, kernel, dilation):
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        th, tw = (d * (k - 1) for k, d in zip(kernel, dilation))
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return (ph, ph, pw, pw)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# (N, C_in, H, W, C_out, kernel, stride, padding, dilation, groups)
CASES = {
    "overlap_pad1": (2, 3, 7, 6, 4, 3, 1, 1, 1, 1),
    "pad0": (2, 2, 6, 6, 3, 3, 1, 0, 1, 1),
    "pad_gt1_stride2": (2, 2, 7, 5, 3, 3, 2, 2, 1, 1),
    "non_tiling": (1, 2, 8, 7, 2, 3, 3, 0, 1, 1),
    "kernel1": (2, 3, 4, 5, 2, 1, 1, 0, 1, 1),
    "kernel1_stride2_pad": (2, 3, 5, 5, 2, 1, 2, 1, 1, 1),
    "stride_gt_kernel": (2, 2, 9, 8, 2, 2, 3, 1, 1, 1),
    "stride2_k5_small_out": (2, 2, 7, 8, 3, 5, 2, 1, 1, 1),
    "dilation": (2, 2, 9, 8, 3, 3, 1, 1, 2, 1),
    "dilation_wide": (2, 2, 5, 12, 3, 3, 1, 2, 2, 1),
    "groups2": (2, 4, 6, 5, 6, 3, 1, 1, 1, 2),
    "depthwise": (2, 3, 5, 6, 3, 3, 2, 1, 1, 3),
    "batch1_channel1": (1, 1, 5, 5, 1, 3, 1, 1, 1, 1),
    "non_square_all": (2, 2, 7, 9, 3, (3, 2), (2, 1), (1, 0), (2, 1), 1),
    "pad_beyond_window": (1, 2, 3, 3, 2, 2, 1, 3, 1, 1),
    "same_even_kernel": (2, 2, 5, 6, 3, (4, 2), 1, "same", 1, 1),
    "same_dilated": (1, 2, 6, 5, 2, 3, 1, "same", (2, 3), 1),
    "valid": (2, 2, 5, 6, 2, 3, 1, "valid", 1, 1),
}


def _make(rng, case, dtype=np.float64, bias=True):
    n, c, h, wd, co, k, s, p, d, g = case
    k = _pair(k)
    x = rng.standard_normal((n, c, h, wd)).astype(dtype)
    w = rng.standard_normal((co, c // g, *k)).astype(dtype)
    b = rng.standard_normal(co).astype(dtype) if bias else None
    return x, w, b, dict(stride=s, padding=p, dilation=d, groups=g)


def _band(monkeypatch, x, w, kw, rows):
    """Make conv2d split this case into bands of ``rows`` output rows (None: one block)."""
    if rows is None:
        return
    wo = conv2d_forward(x, w, None, **kw)[0].shape[3]
    row_bytes = x.shape[1] * w.shape[2] * w.shape[3] * wo * x.shape[0] * x.itemsize
    monkeypatch.setattr(conv_mod, "BAND_BYTES", rows * row_bytes)
    monkeypatch.setattr(conv_mod, "BAND_ABOVE", 0)


@pytest.mark.parametrize("rows", BANDINGS)
@pytest.mark.parametrize("name", list(CASES))
def test_forward_matches_loop(name, rows, rng, monkeypatch):
    x, w, b, kw = _make(rng, CASES[name])
    _band(monkeypatch, x, w, kw, rows)
    y, cache = conv2d_forward(x, w, b, **kw)
    ho = y.shape[2]
    assert len(cache.bands) == (0 if rows is None or rows >= ho else -(-ho // rows))
    assert (cache.cols is None) == (len(cache.bands) > 0)
    ref = ref_conv2d(x, w, b, _pair(kw["stride"]),
                     _pads(kw["padding"], w.shape[2:], _pair(kw["dilation"])),
                     _pair(kw["dilation"]), kw["groups"])
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rows", BANDINGS)
@pytest.mark.parametrize("name", list(CASES))
def test_backward_gradcheck(name, rows, rng, monkeypatch):
    x, w, b, kw = _make(rng, CASES[name])
    _band(monkeypatch, x, w, kw, rows)
    report = check_kernel(lambda x, w, b: conv2d_forward(x, w, b, **kw), conv2d_backward,
                          [x, w, b], names=["x", "w", "b"], rng=rng)
    assert report.passed, str(report)


def test_backward_without_bias(rng):
    x, w, _, kw = _make(rng, CASES["groups2"], bias=False)
    y, cache = conv2d_forward(x, w, None, **kw)
    dx, dw, db = conv2d_backward(rng.standard_normal(y.shape), cache)
    assert db is None and dx.shape == x.shape and dw.shape == w.shape
    report = check_kernel(lambda x, w: conv2d_forward(x, w, None, **kw), conv2d_backward,
                          [x, w], names=["x", "w"], rng=rng)
    assert report.passed, str(report)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("rows", BANDINGS)
@pytest.mark.parametrize("name", list(CASES))
def test_torch_parity_float64(name, rows, rng, torch, monkeypatch):
    x, w, b, kw = _make(rng, CASES[name])
    _band(monkeypatch, x, w, kw, rows)
    y, cache = conv2d_forward(x, w, b, **kw)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv2d_backward(dy, cache)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    ty.backward(torch.tensor(dy))
    for ours, theirs in [(y, ty.detach()), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)]:
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("rows", BANDINGS)
@pytest.mark.parametrize("name", ["overlap_pad1", "kernel1", "groups2", "non_square_all"])
def test_hostile_inputs_give_same_result_and_stay_untouched(name, rows, rng, monkeypatch):
    x, w, b, kw = _make(rng, CASES[name])
    _band(monkeypatch, x, w, kw, rows)
    y, cache = conv2d_forward(x, w, b, **kw)
    dy = rng.standard_normal(y.shape)
    want = (y, *conv2d_backward(dy, cache))
    hx, hw, hb, hdy = hostile(x), hostile(w), readonly(b), hostile(dy)
    y2, cache2 = conv2d_forward(hx, hw, hb, **kw)
    got = (y2, *conv2d_backward(hdy, cache2))
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=1e-13, atol=1e-13)
    for h, orig in [(hx, x), (hw, w), (hb, b), (hdy, dy)]:
        np.testing.assert_array_equal(h, orig)


def test_chained_convs_accept_channel_major_views(rng):
    """y is a (N, C, H, W) view of channel-major memory; feeding it on must agree with C order."""
    x, w, b, kw = _make(rng, CASES["overlap_pad1"])
    w2 = rng.standard_normal((2, 4, 3, 3))
    y, _ = conv2d_forward(x, w, b, **kw)
    z, cache = conv2d_forward(y, w2, None, padding=1)
    z_ref, cache_ref = conv2d_forward(np.ascontiguousarray(y), w2, None, padding=1)
    np.testing.assert_allclose(z, z_ref, rtol=1e-13, atol=1e-13)
    dz = rng.standard_normal(z.shape)
    for a, e in zip(conv2d_backward(dz, cache), conv2d_backward(dz, cache_ref)):
        if a is not None:
            np.testing.assert_allclose(a, e, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["overlap_pad1", "kernel1", "depthwise"])
def test_dtype_is_kept(name, dtype, rng):
    x, w, b, kw = _make(rng, CASES[name], dtype=dtype)
    y, cache = conv2d_forward(x, w, b, **kw)
    grads = conv2d_backward(rng.standard_normal(y.shape).astype(dtype), cache)
    assert y.dtype == dtype and all(g.dtype == dtype for g in grads)
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, conv2d_forward(x64, w64, b64, **kw)[0], rtol=tol, atol=tol)


def _err(match, exc=ValueError, x=(2, 3, 5, 5), w=(4, 3, 3, 3), b=(4,), dtypes=None, **kw):
    dx, dw, db = dtypes or (np.float64,) * 3
    xa = np.zeros(x, dx) if isinstance(x, tuple) else x
    wa = np.zeros(w, dw)
    ba = None if b is None else np.zeros(b, db)
    with pytest.raises(exc, match=match):
        conv2d_forward(xa, wa, ba, **kw)


def test_errors():
    _err(r"^conv2d: x must be 4-D", x=(3, 5, 5))
    _err(r"^conv2d: w must be 4-D", w=(4, 3, 3))
    _err(r"^conv2d: x has 4 channels but w expects 3 \(x.shape=\(2, 4, 5, 5\), "
         r"w.shape=\(4, 3, 3, 3\)", x=(2, 4, 5, 5))
    _err(r"^conv2d: x has 4 channels but w expects 6", x=(2, 4, 5, 5), groups=2)
    _err(r"^conv2d: groups=2 must divide", x=(2, 4, 5, 5), w=(3, 2, 3, 3), b=(3,), groups=2)
    _err(r"^conv2d: groups must be >= 1", groups=0)
    _err(r"^conv2d: all arrays must share one dtype", TypeError,
         dtypes=(np.float32, np.float64, np.float64))
    _err(r"^conv2d: x must be float32 or float64", TypeError, x=np.zeros((2, 3, 5, 5), int))
    _err(r"^conv2d: x must be a numpy.ndarray", TypeError, x=[[1.0]])
    _err(r"^conv2d: b must have shape \(4,\)", b=(3,))
    _err(r"^conv2d: b must have shape \(4,\)", b=(4, 1))
    _err(r"^conv2d: stride must be >= 1", stride=0)
    _err(r"^conv2d: dilation must be >= 1", dilation=(1, 0))
    _err(r"^conv2d: padding must be >= 0", padding=-1)
    _err(r"^conv2d: padding must be an int, a pair, 'valid' or 'same'", padding="full")
    _err(r"^conv2d: padding='same' needs stride 1", padding="same", stride=2)
    _err(r"^conv2d: all sizes must be positive", x=(0, 3, 5, 5))
    _err(r"^conv2d: the 7-wide window .* does not fit the padded input along W",
         x=(2, 3, 9, 4), w=(4, 3, 1, 7), padding=1)
    _err(r"^conv2d: the 5-wide window .* dilation 2", x=(2, 3, 4, 4), dilation=2)


def test_backward_errors(rng):
    x, w, b, kw = _make(rng, CASES["pad0"])
    y, cache = conv2d_forward(x, w, b, **kw)
    with pytest.raises(ValueError, match=r"^conv2d_backward: dy must have shape \(2, 3, 4, 4\)"):
        conv2d_backward(np.zeros((2, 3, 4, 5)), cache)
    with pytest.raises(TypeError, match=r"^conv2d_backward: dy must have the forward dtype"):
        conv2d_backward(np.zeros(y.shape, np.float32), cache)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_banded_chain_matches_one_block(rng, monkeypatch, dtype):
    """Two banded convs share the reused column buffer: forward both, backward both (the
    second's backward in between must not disturb the first's), skip dx on the first."""
    x = rng.standard_normal((3, 2, 9, 7)).astype(dtype)
    w1 = rng.standard_normal((4, 2, 3, 3)).astype(dtype)
    w2 = rng.standard_normal((3, 4, 3, 3)).astype(dtype)

    def run():
        y1, c1 = conv2d_forward(x, w1, None, padding=1, stride=(2, 1))
        y2, c2 = conv2d_forward(y1, w2, None, padding=2, dilation=2)
        dy1, dw2, _ = conv2d_backward(np.ones(y2.shape, dtype), c2)
        dx, dw1, _ = conv2d_backward(dy1, c1, need_dx=False)
        return dx, (y2, dy1, dw2, dw1), (c1, c2)

    dx_ref, want, caches = run()
    assert all(c.cols is not None for c in caches)
    monkeypatch.setattr(conv_mod, "BAND_BYTES", 1)  # one output row per band
    monkeypatch.setattr(conv_mod, "BAND_ABOVE", 0)
    dx, got, caches = run()
    assert dx is None and dx_ref is None
    assert all(c.cols is None and len(c.bands) > 1 for c in caches)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for a, e in zip(got, want):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, e, rtol=tol, atol=tol)


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (1, 1, 0), (2, 2, 0)])
def test_results_never_alias_the_reused_buffers(rng, k, s, p):
    """conv2d's input gradient and conv_transpose2d's output come out of col2im from a
    reused per-thread column buffer: a later call must not change an earlier result."""
    from convprop.functional import conv_transpose2d_forward

    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, k, k))
    y, cache = conv2d_forward(x, w, None, stride=s, padding=p)
    dx1, _, _ = conv2d_backward(rng.standard_normal(y.shape), cache)
    t1, _ = conv_transpose2d_forward(y, w, None, stride=s, padding=p)
    keep = dx1.copy(), t1.copy()
    conv2d_backward(rng.standard_normal(y.shape), cache)
    conv_transpose2d_forward(rng.standard_normal(y.shape), w, None, stride=s, padding=p)
    np.testing.assert_array_equal(dx1, keep[0])
    np.testing.assert_array_equal(t1, keep[1])


def test_workspace_is_reused_below_its_bound_and_fresh_above(monkeypatch):
    a = workspace_mod.workspace("test", (3, 4), np.float32)
    b = workspace_mod.workspace("test", (2, 5), np.float32)
    assert np.shares_memory(a, b)  # reused, as the banded tests above run it
    c = workspace_mod.workspace("test", (3, 4), np.float64)
    assert not np.shares_memory(a, c) and c.dtype == np.float64  # another dtype: replaced
    monkeypatch.setattr(workspace_mod, "WORKSPACE_BYTES", 16)
    d = workspace_mod.workspace("test", (3, 4), np.float64)
    assert not np.shares_memory(c, d)  # over the bound: a fresh array, nothing kept


def test_banded_convs_in_concurrent_threads_match_serial(rng, monkeypatch):
    """The reused column buffers are per thread: two threads running banded convs at once
    get exactly the results of running them one after the other."""
    import sys
    import threading

    monkeypatch.setattr(conv_mod, "BAND_ABOVE", 0)
    monkeypatch.setattr(conv_mod, "BAND_BYTES", 1)
    jobs = [(rng.standard_normal((8, 6, 12, 10)), rng.standard_normal((8, 6, 3, 3)),
             rng.standard_normal((8, 8, 12, 10))) for _ in range(4)]

    def run(x, w, dy):
        y, cache = conv2d_forward(x, w, None, padding=1)
        return (y, *conv2d_backward(dy, cache)[:2])

    want = [run(*j) for j in jobs]
    got = [None] * len(jobs)

    def work(i):
        for _ in range(20):
            got[i] = run(*jobs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads between almost every bytecode
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    for g, e in zip(got, want):
        for a, b in zip(g, e):
            np.testing.assert_array_equal(a, b)
