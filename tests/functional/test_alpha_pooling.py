"""Alpha-integration pooling (Eom and Choi 2018) through the kernel contract: a loop oracle of
Amari's alpha-mean, the special cases (arithmetic mean at alpha = -1, geometric mean at
alpha = 1, harmonic at alpha = 3, the approach to the maximum as alpha -> -inf and to the
minimum as alpha -> +inf), float64 gradients for x and alpha (per layer and per channel,
overlapping windows, non-tiling windows, at and near the alpha = 1 limit), hostile inputs,
dtypes, errors."""


import numpy as np
import pytest
from contract import Kernel, raises

from convprop.functional.alpha_pooling import alpha_pool2d_backward, alpha_pool2d_forward
from convprop.reference import alpha_pool


def kernel(**kw):
    return Kernel.of(alpha_pool2d_forward, alpha_pool2d_backward, names=("x", "alpha"), **kw)


def positive(rng, shape):
    return rng.uniform(0.3, 2.0, shape)


# shape, kernel_size, stride
GEOMETRY = [((2, 3, 6, 6), 2, None),           # tiling
            ((2, 2, 7, 5), 3, 2),              # overlapping and non-tiling
            ((1, 1, 4, 5), (2, 3), 1),         # batch 1, channel 1, non-square, stride 1
            ((1, 2, 5, 7), (3, 2), (1, 2)),
            ((2, 2, 3, 3), 3, None)]           # one window
GIDS = [f"{s}-k{k}-s{st}" for s, k, st in GEOMETRY]
ALPHAS = [-1.0, 0.4, 1.0, 3.0, -7.5, 6.0]


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("shape,ks,st", GEOMETRY, ids=GIDS)
def test_forward_matches_loop(shape, ks, st, alpha, rng):
    x, a = positive(rng, shape), np.array(alpha)
    kernel(kernel_size=ks, stride=st).check_forward(
        [x, a], lambda x, a: alpha_pool(x, a, ks, st), rtol=1e-12, atol=1e-13)


def test_per_channel_alpha_matches_loop(rng):
    x, a = positive(rng, (2, 3, 6, 5)), np.array([-1.0, 1.0, 2.5])
    kernel(kernel_size=2, stride=1).check_forward(
        [x, a], lambda x, a: alpha_pool(x, a, 2, 1), rtol=1e-12, atol=1e-13)


# ----------------------------------------------------------------------------- special cases

def test_alpha_minus_one_is_the_arithmetic_mean(rng):
    x = positive(rng, (2, 3, 6, 4))
    y, _ = alpha_pool2d_forward(x, np.array(-1.0), kernel_size=2)
    np.testing.assert_allclose(y, x.reshape(2, 3, 3, 2, 2, 2).mean(axis=(3, 5)), rtol=1e-14)


def test_alpha_one_is_the_geometric_mean(rng):
    x = positive(rng, (2, 3, 6, 4))
    y, _ = alpha_pool2d_forward(x, np.array(1.0), kernel_size=2)
    gm = np.exp(np.log(x).reshape(2, 3, 3, 2, 2, 2).mean(axis=(3, 5)))
    np.testing.assert_allclose(y, gm, rtol=1e-14)
    for eps in (1e-9, -1e-7, 1e-4):  # continuous through the alpha = 1 limit
        ye, _ = alpha_pool2d_forward(x, np.array(1.0 + eps), kernel_size=2)
        np.testing.assert_allclose(ye, gm, rtol=2 * abs(eps))


def test_alpha_three_is_the_harmonic_mean(rng):
    x = positive(rng, (1, 2, 4, 4))
    y, _ = alpha_pool2d_forward(x, np.array(3.0), kernel_size=2)
    hm = 1 / (1 / x).reshape(1, 2, 2, 2, 2, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(y, hm, rtol=1e-13)


def test_approaches_the_maximum_and_the_minimum(rng):
    """(mean x^p)^(1/p) lies in [K^(-1/p) max, max] for p > 0: it tends to the maximum as
    alpha -> -inf (and to the minimum as alpha -> +inf), without overflow."""
    x = positive(rng, (2, 3, 6, 6)) * 50
    blocks = x.reshape(2, 3, 3, 2, 3, 2)
    mx, mn = blocks.max(axis=(3, 5)), blocks.min(axis=(3, 5))
    prev = None
    for alpha in (-1.0, -9.0, -99.0, -999.0, -1e5):
        y, _ = alpha_pool2d_forward(x, np.array(alpha), kernel_size=2)
        p = (1 - alpha) / 2
        assert np.all(y <= mx * (1 + 1e-12)) and np.all(y >= mx * 4 ** (-1 / p) * (1 - 1e-12))
        if prev is not None:
            assert np.all(y >= prev * (1 - 1e-12))  # monotone in p
        prev = y
    np.testing.assert_allclose(prev, mx, rtol=3e-5)  # within log(4)/p
    y, _ = alpha_pool2d_forward(x, np.array(1e5), kernel_size=2)
    np.testing.assert_allclose(y, mn, rtol=3e-5)


# ----------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("alpha", [-1.0, 0.4, 1.0, 1.0 + 3e-6, 1.0 - 2e-4, 3.0, -7.5, 6.0])
@pytest.mark.parametrize("shape,ks,st", GEOMETRY, ids=GIDS)
def test_gradcheck_x_and_alpha(shape, ks, st, alpha, rng):
    kernel(kernel_size=ks, stride=st).check_gradient([positive(rng, shape), np.array(alpha)],
                                                     rng)


@pytest.mark.parametrize("alpha_shape", [(1,), (3,)])
def test_gradcheck_alpha_shapes(alpha_shape, rng):
    a = np.array([-1.0, 1.0, 2.0])[:alpha_shape[0]]
    kernel(kernel_size=(2, 3), stride=(1, 2)).check_gradient(
        [positive(rng, (2, 3, 5, 7)), a], rng)


def test_alpha_gradient_at_one_is_half_the_variance_of_log_x(rng):
    """d y / d alpha = -(y/2) d log y / dp and d log y / dp -> Var(log x)/2 at p = 0."""
    x = positive(rng, (1, 1, 2, 2))
    y, cache = alpha_pool2d_forward(x, np.array(1.0), kernel_size=2)
    _, da = alpha_pool2d_backward(np.ones_like(y), cache)
    assert da.shape == ()
    np.testing.assert_allclose(da, -y[0, 0, 0, 0] / 2 * np.log(x).var() / 2, rtol=1e-12)


# ----------------------------------------------------------------------------- contract

@pytest.mark.parametrize("alpha", [np.array(0.3), np.array([-1.0, 1.0, 2.0])])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_hostile_input(alpha, dtype, rng):
    k = kernel(kernel_size=3, stride=2)
    x = positive(rng, (2, 3, 7, 6))
    k.check_dtypes([x, alpha], rng, dtypes=(dtype,))
    k.check_dtypes([x, alpha], rng, rtol=1e-4, atol=1e-5)
    k.check_hostile([x.astype(dtype), alpha.astype(dtype)], rng)


def test_errors():
    op = "alpha_pool2d"
    x, a = np.ones((1, 2, 4, 4)), np.array(0.0)
    with raises(op, "x must be 4-D"):
        alpha_pool2d_forward(np.ones((2, 4, 4)), a, kernel_size=2)
    for bad in (0.0, -1.0, np.nan):
        xb = x.copy()
        xb[0, 1, 2, 3] = bad
        with raises(op, "x must be positive"):
            alpha_pool2d_forward(xb, a, kernel_size=2)
    with raises(op, "alpha must have shape"):
        alpha_pool2d_forward(x, np.zeros(3), kernel_size=2)
    with raises(op, "alpha must be finite"):
        alpha_pool2d_forward(x, np.array(np.inf), kernel_size=2)
    with raises(op, "kernel_size must be >= 1"):
        alpha_pool2d_forward(x, a, kernel_size=0)
    with raises(op, "stride must be >= 1"):
        alpha_pool2d_forward(x, a, kernel_size=2, stride=(1, 0))
    with raises(op, "kernel_size must be an int or a pair", TypeError):
        alpha_pool2d_forward(x, a, kernel_size=2.0)
    with raises(op, r"kernel_size \(5, 2\) is larger than"):
        alpha_pool2d_forward(x, a, kernel_size=(5, 2))
    k = kernel(kernel_size=2)
    k.check_type_errors([x, a])
    k.check_type_errors([x, np.zeros(2)])
    k.check_dy_errors([x, a])


def test_per_channel_alphas_on_every_evaluation_path(rng):
    """One call whose channels take the series (alpha ~ 1), the log1p/expm1 (|p| < 1/4) and
    the log-sum-exp paths equals one call per channel with that alpha alone, forward and
    backward (each channel's evaluation is independent of the others')."""
    x = rng.random((2, 5, 6, 5)) * 3 + 0.05
    alpha = np.array([1.0, 1 + 1e-7, 0.7, -1.0, 9.0])      # p = 0, ~0, 0.15, 1, -4
    y, cache = alpha_pool2d_forward(x, alpha, kernel_size=2, stride=(2, 1))
    dy = rng.standard_normal(y.shape)
    dx, dalpha = alpha_pool2d_backward(dy, cache)
    for ch, a in enumerate(alpha):
        yc, cc = alpha_pool2d_forward(x[:, ch:ch + 1], np.array(a), kernel_size=2,
                                      stride=(2, 1))
        dxc, dac = alpha_pool2d_backward(dy[:, ch:ch + 1], cc)
        np.testing.assert_allclose(y[:, ch:ch + 1], yc, rtol=1e-13)
        np.testing.assert_allclose(dx[:, ch:ch + 1], dxc, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dalpha[ch], dac, rtol=1e-10, atol=1e-14)
