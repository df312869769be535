"""conv1d / conv2d / conv3d through the kernel contract: loop oracle, float64 gradient check,
PyTorch parity, hostile inputs, dtypes, errors, over a grid of hard cases per dimension, each
computed in one block and in forced bands; then the engine's reused buffers."""

import re

import numpy as np
import pytest
from contract import Kernel, arrays, ntuple, on_zeros, raises

import convprop.functional as F
import convprop.functional._engine.correlate as conv_mod
import convprop.functional._engine.slide as slide_mod
import convprop.functional._engine.workspace as workspace_mod
from convprop import reference as R
from convprop.functional import conv2d_backward, conv2d_forward

OPS = {1: (F.conv1d_forward, F.conv1d_backward), 2: (F.conv2d_forward, F.conv2d_backward),
       3: (F.conv3d_forward, F.conv3d_backward)}

#: The engine path each case runs on: None = the one the engine picks (for these small
#: cases one block of im2col columns, or for a 3-D layer with depth stride and dilation 1
#: and one group, 2-D columns sliding along depth); "block" = one block, sliding disabled;
#: 1 and 2 = forced bands of that many output rows along the first spatial axis (halo rows
#: shared by neighbouring bands, strided and dilated windows crossing band edges, bands
#: wholly inside the padding). 3-D runs one-slice bands only: its numerical gradients are
#: the suite's most expensive, and the band logic along the first axis is the same code.
PATHS = {1: [None, 1, 2], 2: [None, 1, 2], 3: [None, "block", 1]}


def case(n, c, sp, c_out, k, s=1, p=0, d=1, g=1):
    """x (n, c, *sp) and w (c_out, c/g, *k) with conv{len(sp)}d's keyword arguments."""
    return dict(x=(n, c, *sp), w=(c_out, c // g, *ntuple(k, len(sp))),
                kw=dict(stride=s, padding=p, dilation=d, groups=g))


CASES = {
    1: {
        "overlap_pad1": case(2, 3, (7,), 4, 3, p=1),
        "pad0": case(2, 2, (6,), 3, 3),
        "pad_gt1_stride2": case(2, 2, (7,), 3, 3, s=2, p=2),
        "non_tiling": case(1, 2, (8,), 2, 3, s=3),
        "kernel1_stride2_pad": case(2, 3, (5,), 2, 1, s=2, p=1),
        "stride_gt_kernel": case(2, 2, (9,), 2, 2, s=3, p=1),
        "dilation": case(2, 2, (9,), 3, 3, p=1, d=2),
        "groups2": case(2, 4, (6,), 6, 3, p=1, g=2),
        "depthwise": case(2, 3, (6,), 3, 3, s=2, p=1, g=3),
        "batch1_channel1": case(1, 1, (5,), 1, 3, p=1),
        "pad_beyond_window": case(1, 2, (3,), 2, 2, p=3),
        "same_even_kernel": case(2, 2, (6,), 3, 4, p="same"),
        "same_dilated": case(1, 2, (5,), 2, 3, p="same", d=2),
        "valid": case(2, 2, (6,), 2, 3, p="valid"),
    },
    2: {
        "overlap_pad1": case(2, 3, (7, 6), 4, 3, p=1),
        "pad0": case(2, 2, (6, 6), 3, 3),
        "pad_gt1_stride2": case(2, 2, (7, 5), 3, 3, s=2, p=2),
        "non_tiling": case(1, 2, (8, 7), 2, 3, s=3),
        "kernel1": case(2, 3, (4, 5), 2, 1),
        "kernel1_stride2_pad": case(2, 3, (5, 5), 2, 1, s=2, p=1),
        "stride_gt_kernel": case(2, 2, (9, 8), 2, 2, s=3, p=1),
        "stride2_k5_small_out": case(2, 2, (7, 8), 3, 5, s=2, p=1),
        "dilation": case(2, 2, (9, 8), 3, 3, p=1, d=2),
        "dilation_wide": case(2, 2, (5, 12), 3, 3, p=2, d=2),
        "groups2": case(2, 4, (6, 5), 6, 3, p=1, g=2),
        "depthwise": case(2, 3, (5, 6), 3, 3, s=2, p=1, g=3),
        "batch1_channel1": case(1, 1, (5, 5), 1, 3, p=1),
        "non_square_all": case(2, 2, (7, 9), 3, (3, 2), s=(2, 1), p=(1, 0), d=(2, 1)),
        "pad_beyond_window": case(1, 2, (3, 3), 2, 2, p=3),
        "same_even_kernel": case(2, 2, (5, 6), 3, (4, 2), p="same"),
        "same_dilated": case(1, 2, (6, 5), 2, 3, p="same", d=(2, 3)),
        "valid": case(2, 2, (5, 6), 2, 3, p="valid"),
    },
    3: {
        "overlap_pad1": case(2, 2, (4, 5, 3), 3, 3, p=1),
        "pad0": case(1, 2, (4, 4, 5), 2, 2),
        "pad_gt1_stride2": case(1, 2, (5, 4, 3), 2, 3, s=2, p=2),
        "non_tiling": case(1, 2, (5, 6, 4), 2, 2, s=3),
        "kernel1_stride2_pad": case(2, 3, (3, 4, 3), 2, 1, s=2, p=1),
        "dilation": case(1, 2, (5, 5, 4), 2, 2, p=1, d=2),
        "groups2": case(2, 4, (3, 4, 3), 4, 2, p=1, g=2),
        "depthwise": case(1, 3, (4, 3, 4), 3, 3, s=2, p=1, g=3),
        "batch1_channel1": case(1, 1, (3, 4, 5), 1, 3, p=1),
        "non_cubic_all": case(2, 2, (5, 4, 6), 3, (3, 1, 2), s=(2, 1, 3), p=(1, 0, 1),
                              d=(1, 2, 1)),
        "same_even_kernel": case(1, 2, (4, 3, 5), 2, (2, 3, 4), p="same"),
        "same_dilated": case(1, 2, (4, 5, 3), 2, 3, p="same", d=(1, 2, 1)),
        "valid": case(2, 2, (4, 4, 4), 2, 3, p="valid"),
        "depth1": case(2, 2, (1, 4, 5), 3, (1, 3, 3), p=(0, 1, 1)),
    },
}
ALL = [(nd, name) for nd in CASES for name in CASES[nd]]
IDS = [f"{nd}d-{name}" for nd, name in ALL]


def on_paths(cases):
    """Parametrize (nd, name, path) over ``cases`` (nd, name), each on every path of its
    dimension."""
    grid = [(nd, name, path) for nd, name in cases for path in PATHS[nd]]
    return pytest.mark.parametrize("nd,name,path", grid,
                                   ids=[f"{nd}d-{name}-{path}" for nd, name, path in grid])


def _make(rng, nd, name, dtype=np.float64, bias=True):
    c = CASES[nd][name]
    x, w, b = arrays(rng, c["x"], c["w"], (c["w"][0],) if bias else None, dtype=dtype)
    return [x, w, b], c["kw"]


def _kernel(nd, kw, **more):
    fwd, bwd = OPS[nd]
    return Kernel.of(fwd, bwd, names=("x", "w", "b"), **kw, **more)


def _path(monkeypatch, x, w, kw, path):
    """Make the convolution of this case take ``path`` (see :data:`PATHS`)."""
    if path is None:
        return
    monkeypatch.setattr(slide_mod, "SLIDE_MAX_BYTES", -1)
    if path == "block":
        return
    out = OPS[x.ndim - 2][0](x, w, None, **kw)[0].shape[3:]
    row_bytes = x.shape[1] * np.prod(w.shape[2:]) * np.prod(out) * x.shape[0] * x.itemsize
    monkeypatch.setattr(conv_mod, "BAND_BYTES", int(path * row_bytes))
    monkeypatch.setattr(conv_mod, "BAND_ABOVE", 0)


@on_paths(ALL)
def test_forward_matches_loop(nd, name, path, rng, monkeypatch):
    inputs, kw = _make(rng, nd, name)
    _path(monkeypatch, *inputs[:2], kw, path)
    y = _kernel(nd, kw).check_forward(inputs, lambda x, w, b: R.conv(x, w, b, **kw))[0]
    work = OPS[nd][0](*inputs, **kw)[1].work
    ho = y.shape[2]
    if path is not None:
        assert not work.sliding
        rows = None if path == "block" else path
        assert len(work.bands) == (0 if rows is None or rows >= ho else -(-ho // rows))
    assert (work.cols is None) == (len(work.bands) > 0)


@on_paths(ALL)
def test_backward_gradcheck(nd, name, path, rng, monkeypatch):
    inputs, kw = _make(rng, nd, name)
    _path(monkeypatch, *inputs[:2], kw, path)
    _kernel(nd, kw).check_gradient(inputs, rng)


@on_paths([(1, "dilation"), (2, "groups2"), (3, "overlap_pad1"), (3, "non_cubic_all")])
def test_need_dx_false_skips_dx_only(nd, name, path, rng, monkeypatch):
    inputs, kw = _make(rng, nd, name)
    _path(monkeypatch, *inputs[:2], kw, path)
    fwd, bwd = OPS[nd]
    y, cache = fwd(*inputs, **kw)
    dy = rng.standard_normal(y.shape)
    _, dw, db = bwd(dy, cache)
    dx, dw2, db2 = bwd(dy, cache, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_backward_without_bias(nd, rng):
    (x, w, _), kw = _make(rng, nd, "groups2", bias=False)
    y, cache = OPS[nd][0](x, w, None, **kw)
    dx, dw, db = OPS[nd][1](rng.standard_normal(y.shape), cache)
    assert db is None and dx.shape == x.shape and dw.shape == w.shape
    _kernel(nd, kw).check_gradient([x, w, None], rng)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@on_paths(ALL)
def test_torch_parity_float64(nd, name, path, rng, torch, monkeypatch):
    inputs, kw = _make(rng, nd, name)
    _path(monkeypatch, *inputs[:2], kw, path)
    (y,), grads, dy = _kernel(nd, kw).run(inputs, rng=rng)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in inputs)
    ty = getattr(torch.nn.functional, f"conv{nd}d")(tx, tw, tb, **kw)
    ty.backward(torch.tensor(dy))
    for ours, theirs in zip((y, *grads), (ty.detach(), tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-10)


@on_paths([(1, "overlap_pad1"), (1, "groups2"), (2, "overlap_pad1"), (2, "kernel1"),
           (2, "groups2"), (2, "non_square_all"), (3, "overlap_pad1"), (3, "non_cubic_all")])
def test_hostile_inputs_give_same_result_and_stay_untouched(nd, name, path, rng, monkeypatch):
    inputs, kw = _make(rng, nd, name)
    _path(monkeypatch, *inputs[:2], kw, path)
    _kernel(nd, kw).check_hostile(inputs, rng, rtol=1e-13, atol=1e-13)  # GEMM rounding


DTYPE_CASES = [(1, "groups2"), (2, "overlap_pad1"), (2, "kernel1"), (2, "depthwise"),
               (3, "non_cubic_all")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd,name", DTYPE_CASES, ids=[f"{n}d-{c}" for n, c in DTYPE_CASES])
def test_dtype_is_kept(nd, name, dtype, rng):
    inputs, kw = _make(rng, nd, name)
    _kernel(nd, kw).check_dtypes(inputs, rng, dtypes=(dtype,))


def _call(nd, x=None, w=None, b=(4,), **kw):
    """conv{nd}d_forward on zeros (default x (2, 3, 5, ...), w (4, 3, 3, ...), b (4,))."""
    x = (2, 3, *(5,) * nd) if x is None else x
    w = (4, 3, *(3,) * nd) if w is None else w
    return on_zeros(OPS[nd][0], [x, w, b], **kw)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_errors(nd):
    op, sp = f"conv{nd}d", (5,) * nd
    k3 = (3,) * nd
    many = "a pair" if nd == 2 else f"a tuple of {nd}"
    last = {1: "L", 2: "W", 3: "W"}[nd]
    x4, w = (2, 4, *sp), (4, 3, *k3)
    cases = [
        (dict(x=(3, *sp)), rf"x must be {nd + 2}-D"),
        (dict(w=(4, 3, *k3[1:])), rf"w must be {nd + 2}-D"),
        (dict(x=x4), rf"x has 4 channels but w expects 3 \(x.shape={re.escape(str(x4))}, "
                     rf"w.shape={re.escape(str(w))}"),
        (dict(x=x4, groups=2), "x has 4 channels but w expects 6"),
        (dict(x=x4, w=(3, 2, *k3), b=(3,), groups=2), "groups=2 must divide"),
        (dict(groups=0), "groups must be >= 1"),
        (dict(b=(3,)), r"b must have shape \(4,\)"),
        (dict(b=(4, 1)), r"b must have shape \(4,\)"),
        (dict(stride=0), "stride must be >= 1"),
        (dict(dilation=(1,) * (nd - 1) + (0,)), "dilation must be >= 1"),
        (dict(padding=-1), "padding must be >= 0"),
        (dict(padding="full"), f"padding must be an int, {many}, 'valid' or 'same'"),
        (dict(padding="same", stride=2), "padding='same' needs stride 1"),
        (dict(x=(0, 3, *sp)), "all sizes must be positive"),
        (dict(x=(2, 3, *(9,) * (nd - 1), 4), w=(4, 3, *(1,) * (nd - 1), 7), padding=1),
         f"the 7-wide window .* does not fit the padded input along {last}"),
        (dict(x=(2, 3, *(4,) * nd), dilation=2), "the 5-wide window .* dilation 2"),
        (dict(mode="convolve"), r"mode must be one of \['cross-correlation', 'convolution'\]"),
    ]
    for kw, match in cases:
        with raises(op, match):
            _call(nd, **kw)
    with raises(op, f"stride must be an int or {many} of ints", TypeError):
        _call(nd, stride=1.0)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_type_and_backward_errors(nd, rng):
    inputs, kw = _make(rng, nd, "pad0")
    _kernel(nd, kw).check_type_errors(inputs)
    _kernel(nd, kw).check_dy_errors(inputs)


# ---- the engine's bands and reused buffers ----------------------------------------------

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


@pytest.mark.parametrize("nd,name", [(1, "dilation"), (3, "non_cubic_all"), (3, "overlap_pad1")])
def test_banded_equals_one_block(nd, name, rng, monkeypatch):
    """1-D and 3-D bands (along L, along the output depth), need_dx on and off."""
    inputs, kw = _make(rng, nd, name)
    fwd, bwd = OPS[nd]
    y, cache = fwd(*inputs, **kw)
    dy = rng.standard_normal(y.shape)
    want = (y, *bwd(dy, cache))
    assert cache.cols is not None and not cache.bands
    monkeypatch.setattr(slide_mod, "SLIDE_MAX_BYTES", -1)  # 3-D: bands, not depth slides
    monkeypatch.setattr(conv_mod, "BAND_BYTES", 1)  # one output row (slab) per band
    monkeypatch.setattr(conv_mod, "BAND_ABOVE", 0)
    y2, cache2 = fwd(*inputs, **kw)
    assert cache2.cols is None and len(cache2.bands) == y.shape[2] > 1
    got = (y2, *bwd(dy, cache2))
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)
    dx, dw, db = bwd(dy, cache2, need_dx=False)
    assert dx is None
    np.testing.assert_allclose(dw, want[2], rtol=1e-12, atol=1e-12)


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
