"""Lp pooling in 1, 2 and 3 dimensions: a loop oracle, gradient checks, the zero-sum rule,
the p = 1 (sum pooling) and p -> inf (max pooling) limits, hostile inputs and dtypes through
the kernel contract, errors, and float64 parity with PyTorch."""

import itertools
import math

import numpy as np
import pytest
from contract import Kernel, raises

from convprop.functional import lp_pooling as LP
from convprop.functional import pooling as P
from convprop.reference import lp_pool

LPK = {nd: (getattr(LP, f"lp_pool{nd}d_forward"), getattr(LP, f"lp_pool{nd}d_backward"))
       for nd in (1, 2, 3)}
MAX = {nd: (getattr(P, f"max_pool{nd}d_forward"), getattr(P, f"max_pool{nd}d_backward"))
       for nd in (1, 2, 3)}
AVG = {nd: (getattr(P, f"avg_pool{nd}d_forward"), getattr(P, f"avg_pool{nd}d_backward"))
       for nd in (1, 2, 3)}


def lp_kernel(nd, **kw):
    return Kernel.of(*LPK[nd], **kw)


# (x shape, kernel, stride, ceil_mode)
CASES = [
    ((2, 3, 8), 2, None, False),
    ((2, 2, 9), 3, 2, False),                      # stride < kernel: overlap
    ((1, 1, 7), 3, 1, False),
    ((2, 2, 7), 2, 2, True),                       # ceil_mode: a cut-short last window
    ((1, 3, 9), 2, 3, False),                      # gaps
    ((2, 3, 8, 8), 2, None, False),
    ((2, 2, 7, 9), 3, 2, False),
    ((1, 1, 7, 7), 3, 1, False),
    ((2, 2, 7, 6), (2, 3), (2, 1), True),
    ((2, 2, 5, 6), 1, 1, False),                   # kernel 1
    ((1, 2, 8, 7), 3, 2, True),
    ((2, 2, 4, 4, 4), 2, None, False),
    ((1, 2, 5, 4, 6), 3, 2, True),
    ((1, 1, 4, 5, 4), (2, 1, 3), (1, 2, 1), False),
]
IDS = [f"{c[0]}-k{c[1]}-s{c[2]}-ceil{int(c[3])}" for c in CASES]
NORMS = [1, 2, 3, 1.5, 0.7, 6.0]


def _positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


@pytest.mark.parametrize("p", NORMS + [math.inf])
@pytest.mark.parametrize("shape,k,s,ceil", CASES, ids=IDS)
def test_lp_pool_forward_matches_loop(rng, shape, k, s, ceil, p):
    kw = dict(norm_type=p, kernel_size=k, stride=s, ceil_mode=ceil)
    x = rng.standard_normal(shape) if p in (1, 2, math.inf) else _positive(rng, shape)
    lp_kernel(len(shape) - 2, **kw).check_forward(
        [x], lambda a: lp_pool(a, **kw), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("p", NORMS)
@pytest.mark.parametrize("shape,k,s,ceil", CASES, ids=IDS)
def test_lp_pool_gradcheck(rng, shape, k, s, ceil, p):
    x = _positive(rng, (1,) + shape[1:])
    if p in (1, 2, 3):  # integer p: negative inputs too (odd p: window sums stay positive)
        x = x * rng.choice([-1, 1], x.shape) if p != 3 else x - 0.3
    lp_kernel(len(shape) - 2, norm_type=p, kernel_size=k, stride=s,
              ceil_mode=ceil).check_gradient([x], rng)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lp_pool_inf_gradcheck_and_sign(rng, nd):
    """p = inf is max pooling of |x|: away from ties its gradient is the switch's sign."""
    n = 4 ** nd * 2
    x = (rng.permutation(n) * 0.05 + 0.1).reshape((1, 2) + (4,) * nd) * rng.choice([-1, 1], n
                                                                                 ).reshape(
        (1, 2) + (4,) * nd)
    lp_kernel(nd, norm_type=math.inf, kernel_size=2).check_gradient([x], rng)


# ----------------------------------------------------------------------------- limits

@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("k,s", [(2, None), (3, 1), (3, 2)])
def test_lp_pool_p1_is_sum_pooling(rng, nd, k, s):
    x = rng.standard_normal((2, 3) + (7,) * nd)
    y, cache = LPK[nd][0](x, norm_type=1, kernel_size=k, stride=s)
    ys, cs = AVG[nd][0](x, kernel_size=k, stride=s, divisor_override=1)
    np.testing.assert_allclose(y, ys, rtol=1e-12, atol=1e-13)
    dy = rng.standard_normal(y.shape)
    dx, dxs = LPK[nd][1](dy, cache), AVG[nd][1](dy, cs)
    # the gradient is dy to every element, except windows whose sum is exactly 0
    np.testing.assert_allclose(dx, dxs, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lp_pool_large_p_tends_to_max_pooling(rng, nd):
    x = rng.permutation(2 * 3 * 6 ** nd).reshape((2, 3) + (6,) * nd) * 0.01 + 1.0
    kw = dict(kernel_size=3, stride=2)
    ym, cm = MAX[nd][0](x, **kw)
    errs, gerrs = [], []
    for p in (4, 16, 64, 256):
        y, cache = LPK[nd][0](x, norm_type=p, **kw)
        # max <= y <= K**(1/p) * max
        assert np.all(y >= ym * (1 - 1e-12))
        assert np.all(y <= ym * 3 ** (nd / p) * (1 + 1e-12))
        errs.append(np.abs(y / ym - 1).max())
    assert all(a > b for a, b in zip(errs, errs[1:])) and errs[-1] < 0.01, errs
    # the gradient too, on windows whose values stay 0.1 apart (one window per channel)
    k = 3 ** nd
    xg = (np.stack([rng.permutation(k) for _ in range(6)]) * 0.1 + 1).reshape(
        (2, 3) + (3,) * nd)
    ym, cm = MAX[nd][0](xg, kernel_size=3)
    dy = rng.standard_normal(ym.shape)
    dxm = MAX[nd][1](dy, cm)
    for p in (4, 16, 64, 256):
        gerrs.append(np.abs(LPK[nd][1](dy, LPK[nd][0](xg, norm_type=p, kernel_size=3)[1])
                            - dxm).max())
    assert all(a > b for a, b in zip(gerrs, gerrs[1:])), gerrs
    assert gerrs[-1] < 0.01 * np.abs(dy).max(), gerrs
    y, cache = LPK[nd][0](xg, norm_type=math.inf, kernel_size=3)
    np.testing.assert_array_equal(y, ym)
    np.testing.assert_array_equal(LPK[nd][1](dy, cache), dxm)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lp_pool_inf_is_max_pooling_of_abs(rng, nd):
    x = rng.integers(-3, 4, (2, 2) + (5,) * nd).astype(float)  # ties and zeros
    y, cache = LPK[nd][0](x, norm_type=math.inf, kernel_size=2, ceil_mode=True)
    ym, cm = MAX[nd][0](np.abs(x), kernel_size=2, ceil_mode=True)
    np.testing.assert_array_equal(y, ym)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(LPK[nd][1](dy, cache), MAX[nd][1](dy, cm) * np.sign(x))


# ----------------------------------------------------------------------------- zero windows

@pytest.mark.parametrize("p", [1, 2, 3, 1.5])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lp_pool_zero_sum_window_has_zero_gradient(rng, nd, p):
    x = _positive(rng, (1, 2) + (4,) * nd)
    x[0, 0] = 0.0  # every window of channel 0 sums to 0
    if p == 1:
        x[0, 1, ..., :2] = np.array([-1.0, 1.0])  # and windows of +1 -1 with p = 1
    y, cache = LPK[nd][0](x, norm_type=p, kernel_size=2)
    dy = rng.standard_normal(y.shape)
    dx = LPK[nd][1](dy, cache)
    assert np.all(y[0, 0] == 0) and np.all(dx[0, 0] == 0)
    assert np.all(np.isfinite(dx))
    if p == 1:
        assert np.all(dx[0, 1, ..., :2] == 0)


def test_lp_pool_p_below_one_at_a_zero_input():
    """d(x**p)/dx is infinite at 0 for p < 1: inf in a window with a nonzero sum, NaN (0 *
    inf) in a window whose sum is 0, PyTorch's values."""
    x = np.array([[[0.0, 0.0, 1.0, 0.0]]])
    y, cache = LP.lp_pool1d_forward(x, norm_type=0.5, kernel_size=2)
    np.testing.assert_array_equal(y, [[[0.0, 1.0]]])
    dx = LP.lp_pool1d_backward(np.ones_like(y), cache)
    assert np.isnan(dx[0, 0, :2]).all() and dx[0, 0, 2] == 1.0 and dx[0, 0, 3] == np.inf


# ----------------------------------------------------------------------------- contract

HOSTILE_SHAPES = {1: (2, 3, 7), 2: (2, 3, 7, 6), 3: (2, 2, 5, 4, 3)}


@pytest.mark.parametrize("p", [1, 2, 2.5, math.inf])
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lp_pool_dtype_kept_and_hostile_input(rng, nd, p, dtype):
    kernel = lp_kernel(nd, norm_type=p, kernel_size=3, stride=2, ceil_mode=True)
    x = _positive(rng, HOSTILE_SHAPES[nd])
    kernel.check_dtypes([x], rng, dtypes=(dtype,), rtol=1e-6, atol=1e-6)
    kernel.check_hostile([x.astype(dtype)], rng)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lp_pool_float32_close_to_float64(rng, nd):
    kernel = lp_kernel(nd, norm_type=3, kernel_size=2, stride=1)
    kernel.check_dtypes([_positive(rng, HOSTILE_SHAPES[nd])], rng, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lp_pool_cache_does_not_alias_input(rng, nd):
    x = _positive(rng, (1, 2) + (4,) * nd)
    y, cache = LPK[nd][0](x, norm_type=2, kernel_size=2)
    dy = rng.standard_normal(y.shape)
    dx = LPK[nd][1](dy, cache)
    x[...] = 0.0
    np.testing.assert_array_equal(LPK[nd][1](dy, cache), dx)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lp_pool_errors(nd):
    fwd, bwd = LPK[nd]
    name, sp = f"lp_pool{nd}d", (6,) * nd
    x = np.zeros((1, 1, *sp))
    for exc, match, arg, kw in [
        (ValueError, f"x must be {nd + 2}-D", np.zeros((1, *sp)), dict(norm_type=2,
                                                                      kernel_size=2)),
        (ValueError, r"norm_type must be > 0 \(or inf\), got 0", x, dict(norm_type=0,
                                                                         kernel_size=2)),
        (ValueError, "norm_type must be > 0", x, dict(norm_type=-2, kernel_size=2)),
        (ValueError, "norm_type must be > 0", x, dict(norm_type=-math.inf, kernel_size=2)),
        (ValueError, "norm_type must be > 0", x, dict(norm_type=math.nan, kernel_size=2)),
        (TypeError, "norm_type must be a real number", x, dict(norm_type="2", kernel_size=2)),
        (TypeError, "norm_type must be a real number", x, dict(norm_type=True,
                                                               kernel_size=2)),
        (ValueError, "kernel_size must be >= 1", x, dict(norm_type=2, kernel_size=0)),
        (ValueError, "stride must be >= 1", x, dict(norm_type=2, kernel_size=2, stride=0)),
        (ValueError, "the 7-wide window", x, dict(norm_type=2, kernel_size=7)),
        (TypeError, "ceil_mode must be a bool", x, dict(norm_type=2, kernel_size=2,
                                                        ceil_mode=1)),
    ]:
        with raises(name, match, exc):
            fwd(arg, **kw)
    for p in (2, math.inf):
        kernel = lp_kernel(nd, norm_type=p, kernel_size=2)
        kernel.check_type_errors([x])
        kernel.check_dy_errors([x])


# ----------------------------------------------------------------------------- PyTorch parity

# (batch, channels, spatial length per axis, kernel, stride, ceil_mode); per-axis tuples cut
# to the dimension
PARITY = [(2, 3, 7, 3, 2, True), (1, 2, 8, 2, None, False), (2, 2, 6, (3, 2, 2), (1, 2, 3), True)]


def _parity_grid():
    for nd, (n, c, length, k, s, ceil) in itertools.product((1, 2, 3), PARITY):
        def cut(v):  # torch's lp_pool1d takes ints only
            return v if not isinstance(v, tuple) else v[0] if nd == 1 else v[:nd]
        yield nd, (n, c) + (length,) * nd, cut(k), cut(s), ceil


@pytest.mark.parametrize("p", [1, 2, 3, 0.5, 1.5, 4.0, math.inf])
def test_lp_pool_torch_parity(torch, rng, p):
    """Forward and backward in float64, with zero windows, zero inputs and (integer p)
    negative inputs, NaN where PyTorch gives NaN."""
    for nd, shape, k, s, ceil in _parity_grid():
        x = rng.standard_normal(shape) if p in (1, 2, 3, math.inf) else _positive(rng, shape)
        x[0, 0] = 0.0
        x[..., 1] = 0.0
        y, cache = LPK[nd][0](x, norm_type=p, kernel_size=k, stride=s, ceil_mode=ceil)
        tx = torch.tensor(x, requires_grad=True)
        ty = getattr(torch.nn.functional, f"lp_pool{nd}d")(tx, float(p), k, s, ceil)
        dy = rng.standard_normal(y.shape)
        ty.backward(torch.tensor(dy))
        msg = f"nd={nd} p={p} k={k} s={s} ceil={ceil}"
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-14,
                                   equal_nan=True, err_msg=msg)
        np.testing.assert_allclose(LPK[nd][1](dy, cache), tx.grad.numpy(), rtol=1e-10,
                                   atol=1e-12, equal_nan=True, err_msg=msg)
