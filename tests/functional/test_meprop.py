"""meProp kernels (Sun et al. 2017; Wei et al. 2017): the top-k selection against a loop
oracle (ties to the lower index), the sparsified linear and conv2d backward against loop
oracles that zero all but the top-k entries of dy, and k = all against the full backward bit
for bit. meProp's backward is deliberately not the gradient of the forward, so there is no
numerical-gradient clause: the full backwards it reduces to are gradient-checked elsewhere."""

import numpy as np
import pytest
from contract import Kernel, raises

from convprop.functional.conv import conv2d_backward, conv2d_forward
from convprop.functional.linear import linear_backward, linear_forward
from convprop.functional.meprop import (conv2d_meprop_backward, linear_meprop_backward,
                                        topk_mask)

# -- loop oracles (nothing from convprop) ------------------------------------------------------


def loop_topk(a, k, unified=False):
    """Keep the k largest |a[n, j]| per row, or the k columns with the largest sum_n |a|;
    ties go to the lower index (a stable sort on -score)."""
    a = np.asarray(a, dtype=np.float64)
    n, u = a.shape
    keep = np.zeros((n, u), dtype=bool)
    if unified:
        score = [sum(abs(a[i, j]) for i in range(n)) for j in range(u)]
        cols = sorted(range(u), key=lambda j: (-score[j], j))[:k]
        keep[:, cols] = True
        return keep
    for i in range(n):
        for j in sorted(range(u), key=lambda j: (-abs(a[i, j]), j))[:k]:
            keep[i, j] = True
    return keep


def loop_linear_grads(x, w, dy, keep):
    """dx, dw from the zeroed dy (entries outside ``keep`` set to 0), db from the full dy."""
    n, d_in = x.shape
    d_out = w.shape[0]
    dx = np.zeros((n, d_in))
    dw = np.zeros((d_out, d_in))
    for i in range(n):
        for j in range(d_out):
            g = dy[i, j] if keep[i, j] else 0.0
            for c in range(d_in):
                dx[i, c] += g * w[j, c]
                dw[j, c] += g * x[i, c]
    db = np.array([sum(dy[i, j] for i in range(n)) for j in range(d_out)])
    return dx, dw, db


def loop_conv_grads(x, w, dy, stride, pad):
    """dx, dw of cross-correlation (groups 1, dilation 1) for the given dy, by loops."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    dxp = np.zeros_like(xp)
    dw = np.zeros(w.shape)
    for i in range(n):
        for o in range(f):
            for p in range(dy.shape[2]):
                for q in range(dy.shape[3]):
                    g = dy[i, o, p, q]
                    win = (slice(p * stride, p * stride + kh), slice(q * stride, q * stride + kw))
                    dw[o] += g * xp[i][(slice(None), *win)]
                    dxp[i][(slice(None), *win)] += g * w[o]
    return dxp[:, :, pad:pad + h, pad:pad + wd], dw


def loop_channel_keep(dy, k, unified):
    """(N, C) keep of the channels by the L1 norm of each channel's gradient map."""
    n, c = dy.shape[:2]
    scores = np.array([[np.abs(dy[i, o]).sum() for o in range(c)] for i in range(n)])
    return loop_topk(scores, k, unified)


# -- the selection -------------------------------------------------------------------------------


@pytest.mark.parametrize("unified", [False, True])
@pytest.mark.parametrize("k", [1, 3, 7, 8])
def test_topk_mask_matches_loop(k, unified, rng):
    a = rng.standard_normal((5, 8))
    keep = topk_mask(a, k, unified=unified)
    np.testing.assert_array_equal(keep, loop_topk(a, k, unified))
    assert (keep.sum(axis=1) == k).all()
    if unified:
        assert (keep == keep[0]).all()


def test_ties_go_to_the_lower_index():
    a = np.array([[1.0, -1.0, 1.0, 0.5, -1.0],
                  [0.0, 0.0, 0.0, 0.0, 0.0],
                  [2.0, 1.0, 3.0, 1.0, 1.0]])
    keep = topk_mask(a, 2)
    np.testing.assert_array_equal(keep, [[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [1, 0, 1, 0, 0]])
    np.testing.assert_array_equal(keep, loop_topk(a, 2))
    # unified: column sums 3, 2, 4, 1.5, 2 -> columns 2, 0, then the tie 1 vs 4 -> 1
    uk = topk_mask(a, 3, unified=True)
    np.testing.assert_array_equal(uk[0], [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(uk, loop_topk(a, 3, True))


def test_many_ties_deterministic(rng):
    a = rng.integers(-2, 3, (6, 40)).astype(np.float64)
    for k in (1, 5, 17, 39):
        for unified in (False, True):
            np.testing.assert_array_equal(topk_mask(a, k, unified=unified),
                                          loop_topk(a, k, unified))


# -- linear --------------------------------------------------------------------------------------


@pytest.mark.parametrize("unified", [False, True])
@pytest.mark.parametrize("k", [1, 2, 5])
def test_linear_matches_loop_oracle(k, unified, rng):
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((6, 5)), rng.standard_normal(6)
    y, cache = linear_forward(x, w, b)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = linear_meprop_backward(dy, cache, k=k, unified=unified)
    keep = loop_topk(dy, k, unified)
    for got, want in zip((dx, dw, db), loop_linear_grads(x, w, dy, keep)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # outputs no example kept get an exactly zero weight-gradient row
    assert (dw[~keep.any(axis=0)] == 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("unified", [False, True])
def test_linear_k_all_is_the_full_backward_bit_for_bit(unified, dtype, rng):
    x, w, b = (a.astype(dtype) for a in (rng.standard_normal((7, 5)), rng.standard_normal((6, 5)),
                                         rng.standard_normal(6)))
    y, cache = linear_forward(x, w, b)
    dy = rng.standard_normal(y.shape).astype(dtype)
    for need_dx in (True, False):
        got = linear_meprop_backward(dy, cache, k=6, unified=unified, need_dx=need_dx)
        want = linear_backward(dy, cache, need_dx=need_dx)
        for g, e in zip(got, want):
            if e is None:
                assert g is None
            else:
                assert g.dtype == dtype
                np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("k", [2, 5, 6, 9])
def test_linear_both_product_paths(k, rng):
    # a batch of one: the kept columns are exactly k, so k <= 5 multiplies only those
    # columns and k > 5 (more than half of 10) the full products of the zeroed dy
    x, w = rng.standard_normal((1, 5)), rng.standard_normal((10, 5))
    y, cache = linear_forward(x, w)
    dy = rng.standard_normal(y.shape)
    got = linear_meprop_backward(dy, cache, k=k)
    want = loop_linear_grads(x, w, dy, loop_topk(dy, k))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)


def test_linear_no_bias_and_need_dx(rng):
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    y, cache = linear_forward(x, w)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = linear_meprop_backward(dy, cache, k=2, need_dx=False)
    assert dx is None and db is None
    np.testing.assert_allclose(dw, loop_linear_grads(x, w, dy, loop_topk(dy, 2))[1],
                               rtol=1e-12, atol=1e-12)


def _linear_kernel(k, unified):
    return Kernel("linear", linear_forward,
                  lambda dy, c: linear_meprop_backward(dy, c, k=k, unified=unified),
                  names=("x", "w", "b"))


@pytest.mark.parametrize("unified", [False, True])
def test_linear_hostile_and_dtypes(unified, rng):
    inputs = [rng.standard_normal((4, 6)), rng.standard_normal((5, 6)), rng.standard_normal(5)]
    kern = _linear_kernel(2, unified)
    kern.check_hostile(inputs, rng)
    kern.check_dtypes(inputs, rng)


def test_linear_errors(rng):
    y, cache = linear_forward(rng.standard_normal((3, 4)), rng.standard_normal((5, 4)))
    dy = np.zeros(y.shape)
    op = "linear_meprop_backward"
    with raises(op, r"k must be <= the number of outputs D_out \(5\), got 6"):
        linear_meprop_backward(dy, cache, k=6)
    with raises(op, "k must be >= 1"):
        linear_meprop_backward(dy, cache, k=0)
    with raises(op, "k must be an int", TypeError):
        linear_meprop_backward(dy, cache, k=2.5)
    with raises(op, "unified must be a bool", TypeError):
        linear_meprop_backward(dy, cache, k=2, unified="yes")
    _, conv_cache = conv2d_forward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 2, 2)), None)
    with raises(op, "cache must be the LinearCache", TypeError):
        linear_meprop_backward(dy, conv_cache, k=2)
    with raises(op, r"dy must have shape \(3, 5\)"):
        linear_meprop_backward(np.zeros((3, 4)), cache, k=2)
    with raises(op, "dy must have the forward dtype", TypeError):
        linear_meprop_backward(dy.astype(np.float32), cache, k=2)
    with raises("topk_mask", "a must be a 2-D float"):
        topk_mask(np.zeros(3), 1)


# -- conv2d --------------------------------------------------------------------------------------

CONV_CASES = [  # (N, C_in, H, W, C_out, K, stride, pad)
    (2, 3, 6, 5, 5, 3, 1, 1),
    (3, 2, 7, 7, 4, 3, 2, 0),
    (1, 1, 5, 4, 3, 2, 1, 1),
]


@pytest.mark.parametrize("unified", [False, True])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_channel_topk_matches_loop_oracle(case, unified, rng):
    n, c, h, wd, f, kk, s, p = case
    x, w, b = rng.standard_normal((n, c, h, wd)), rng.standard_normal((f, c, kk, kk)), \
        rng.standard_normal(f)
    y, cache = conv2d_forward(x, w, b, stride=s, padding=p)
    dy = rng.standard_normal(y.shape)
    for k in (1, 2):
        keep = loop_channel_keep(dy, k, unified)
        sparse = dy * keep[:, :, None, None]
        dx, dw, db = conv2d_meprop_backward(dy, cache, k=k, unified=unified)
        want_dx, want_dw = loop_conv_grads(x, w, sparse, s, p)
        np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dw, want_dw, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)
        assert (dw[~keep.any(axis=0)] == 0).all()


@pytest.mark.parametrize("unified", [False, True])
def test_conv_element_topk_matches_loop_oracle(unified, rng):
    x, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3))
    y, cache = conv2d_forward(x, w, None, padding=1)
    dy = rng.standard_normal(y.shape)
    for k in (1, 5, 40):
        keep = loop_topk(dy.reshape(2, -1), k, unified).reshape(dy.shape)
        dx, dw, db = conv2d_meprop_backward(dy, cache, k=k, unified=unified,
                                            granularity="element")
        want_dx, want_dw = loop_conv_grads(x, w, dy * keep, 1, 1)
        np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dw, want_dw, rtol=1e-12, atol=1e-12)
        assert db is None


@pytest.mark.parametrize("granularity", ["channel", "element"])
@pytest.mark.parametrize("unified", [False, True])
def test_conv_k_all_is_the_full_backward_bit_for_bit(granularity, unified, rng):
    x, w, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), \
        rng.standard_normal(4)
    y, cache = conv2d_forward(x, w, b, stride=2, padding=1)
    dy = rng.standard_normal(y.shape)
    k = 4 if granularity == "channel" else dy[0].size
    for need_dx in (True, False):
        got = conv2d_meprop_backward(dy, cache, k=k, unified=unified, granularity=granularity,
                                     need_dx=need_dx)
        for g, e in zip(got, conv2d_backward(dy, cache, need_dx=need_dx)):
            if e is None:
                assert g is None
            else:
                np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("unified", [False, True])
def test_conv_groups_and_true_convolution_equal_the_zeroed_full_backward(unified, rng):
    # groups > 1 (masked full product) and mode="convolution" (flipped dw) against the
    # full backward of the zeroed dy
    for kw in (dict(groups=2), dict(mode="convolution", dilation=2, padding=2)):
        x, w = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 4 // kw.get(
            "groups", 1), 3, 3))
        y, cache = conv2d_forward(x, w, rng.standard_normal(6), **kw)
        dy = rng.standard_normal(y.shape)
        keep = loop_channel_keep(dy, 2, unified)[:, :, None, None]
        got = conv2d_meprop_backward(dy, cache, k=2, unified=unified)
        want = conv2d_backward(dy * keep, cache)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got[2], dy.sum(axis=(0, 2, 3)), rtol=1e-12)


@pytest.mark.parametrize("granularity", ["channel", "element"])
def test_conv_hostile_and_dtypes(granularity, rng):
    inputs = [rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((5, 3, 3, 3)),
              rng.standard_normal(5)]
    kern = Kernel("conv2d", lambda x, w, b: conv2d_forward(x, w, b, padding=1),
                  lambda dy, c: conv2d_meprop_backward(dy, c, k=2, granularity=granularity),
                  names=("x", "w", "b"))
    kern.check_hostile(inputs, rng)
    kern.check_dtypes(inputs, rng)


def test_conv_errors(rng):
    y, cache = conv2d_forward(rng.standard_normal((2, 3, 5, 5)),
                              rng.standard_normal((4, 3, 3, 3)), None)
    dy = np.zeros(y.shape)
    op = "conv2d_meprop_backward"
    with raises(op, r"k must be <= the number of output channels \(4\), got 5"):
        conv2d_meprop_backward(dy, cache, k=5)
    with raises(op, r"k must be <= the number of output elements per example \(36\)"):
        conv2d_meprop_backward(dy, cache, k=37, granularity="element")
    with raises(op, "granularity must be one of"):
        conv2d_meprop_backward(dy, cache, k=1, granularity="pixel")
    _, lin = linear_forward(np.zeros((2, 3)), np.zeros((4, 3)))
    with raises(op, "cache must be the ConvCache", TypeError):
        conv2d_meprop_backward(dy, lin, k=1)
    from convprop.functional.conv import conv1d_forward
    _, c1 = conv1d_forward(np.zeros((1, 1, 5)), np.zeros((2, 1, 3)), None)
    with raises(op, "cache must come from conv2d_forward"):
        conv2d_meprop_backward(np.zeros((1, 2, 3)), c1, k=1)
    with raises(op, r"dy must have shape \(2, 4, 3, 3\)"):
        conv2d_meprop_backward(np.zeros((2, 4, 3, 4)), cache, k=1)


@pytest.mark.parametrize("unified", [False, True])
def test_conv_banded_engine_path(unified, rng, monkeypatch):
    """Large layers run in bands of output rows (their columns rebuilt in backward): the
    live-filter products must take that path too."""
    import convprop.functional._engine.correlate as corr
    monkeypatch.setattr(corr, "BAND_ABOVE", 0)
    monkeypatch.setattr(corr, "BAND_BYTES", 1)     # one output row per band
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((5, 3, 3, 3))
    y, cache = conv2d_forward(x, w, None, stride=2, padding=1)
    assert cache.work.bands
    dy = rng.standard_normal(y.shape)
    keep = loop_channel_keep(dy, 1, unified)
    dx, dw, _ = conv2d_meprop_backward(dy, cache, k=1, unified=unified)
    want_dx, want_dw = loop_conv_grads(x, w, dy * keep[:, :, None, None], 2, 1)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-12, atol=1e-12)
