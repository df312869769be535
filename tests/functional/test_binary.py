"""Binarization kernels (BNN, Courbariaux, Hubara et al. 2016; XNOR-Net, Rastegari et al.
2016): the forward values against loop oracles, the straight-through estimator against its
definition, stochastic binarization reproducible from a Generator and with the hard-sigmoid
probabilities (a statistical test with a fixed seed), XNOR's alpha and its derivative."""

import numpy as np
import pytest
from contract import Kernel, raises

from convprop.functional.binary import (binarize_weight_backward, binarize_weight_forward,
                                        hard_sigmoid, sign_backward, sign_forward)
from convprop.gradcheck import numerical_vjp

# -- loop oracles -------------------------------------------------------------------------------


def loop_sign(x):
    out = np.empty(x.shape)
    for idx in np.ndindex(x.shape):
        out[idx] = 1.0 if x[idx] >= 0 else -1.0
    return out


def loop_stochastic_sign(x, u):
    """+1 where the draw u is below the hard sigmoid clip((x+1)/2, 0, 1), else -1."""
    out = np.empty(x.shape)
    for idx in np.ndindex(x.shape):
        p = min(max((float(x[idx]) + 1.0) / 2.0, 0.0), 1.0)
        out[idx] = 1.0 if u[idx] < p else -1.0
    return out


def loop_ste(dy, x):
    out = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        if abs(x[idx]) <= 1:
            out[idx] = dy[idx]
    return out


def loop_alpha(w):
    """Per output filter f: mean over its entries of |w|."""
    return np.array([sum(abs(v) for v in w[f].ravel()) / w[f].size for f in range(w.shape[0])])


# -- sign ---------------------------------------------------------------------------------------

EDGES = np.array([-2.0, -1.0, -1e-300, -0.0, 0.0, 1e-300, 0.5, 1.0, 1.0000001, 3.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sign_forward_matches_loop(dtype, rng):
    x = np.concatenate([rng.standard_normal(30) * 2, EDGES]).reshape(5, 8).astype(dtype)
    y, cache = sign_forward(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, loop_sign(x))
    assert set(np.unique(y)) <= {-1.0, 1.0}
    assert y[x == 0].min() == 1.0  # zero (and -0.0) map to +1, as BNN's eq. 1
    assert cache.draws is None


def test_ste_backward_is_its_definition(rng):
    x = np.concatenate([rng.standard_normal(30) * 1.5, EDGES]).reshape(2, 4, 5)
    dy = rng.standard_normal(x.shape)
    _, cache = sign_forward(x)
    dx = sign_backward(dy, cache)
    np.testing.assert_array_equal(dx, loop_ste(dy, x))
    assert dx[np.abs(x) == 1].tolist() == dy[np.abs(x) == 1].tolist()  # |r| <= 1 passes
    # the STE is the derivative of Htanh(x) = clip(x, -1, 1) away from its kinks
    smooth = (np.abs(np.abs(x) - 1) > 1e-3)
    num = numerical_vjp(lambda: np.clip(x, -1, 1), x, dy, 1e-6)
    np.testing.assert_allclose(dx[smooth], num[smooth], atol=1e-6)


def test_stochastic_sign_reproducible_and_matches_its_draws(rng):
    x = rng.standard_normal((6, 7)) * 1.5
    y1, c1 = sign_forward(x, stochastic=True, training=True, rng=np.random.default_rng(3))
    y2, _ = sign_forward(x, stochastic=True, training=True, rng=np.random.default_rng(3))
    y3, _ = sign_forward(x, stochastic=True, training=True, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(y1, y3)
    np.testing.assert_array_equal(y1, loop_stochastic_sign(x, c1.draws))
    np.testing.assert_array_equal(c1.draws, np.random.default_rng(3).random(x.shape))
    # the same draws in float32
    y4, _ = sign_forward(x.astype(np.float32), stochastic=True, training=True,
                         rng=np.random.default_rng(3))
    assert y4.dtype == np.float32
    # the backward is the same STE, and draws nothing
    dy = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(sign_backward(dy, c1), loop_ste(dy, x))


def test_stochastic_probabilities_are_the_hard_sigmoid():
    levels = np.array([-3.0, -1.0, -0.6, -0.2, 0.0, 0.3, 0.9, 1.0, 2.0])
    reps = 40000
    x = np.repeat(levels[:, None], reps, axis=1)
    y, _ = sign_forward(x, stochastic=True, training=True, rng=np.random.default_rng(12))
    freq = (y == 1).mean(axis=1)
    p = hard_sigmoid(levels)
    np.testing.assert_array_equal(p, [0, 0, 0.2, 0.4, 0.5, 0.65, 0.95, 1, 1])
    sigma = np.sqrt(p * (1 - p) / reps)
    assert np.all(np.abs(freq - p) <= 5 * sigma + 1e-12), (freq, p)
    assert freq[0] == 0 and freq[1] == 0 and freq[-1] == 1 and freq[-2] == 1


def test_stochastic_outside_training_is_deterministic(rng):
    x = rng.standard_normal((3, 4))
    y, cache = sign_forward(x, stochastic=True, training=False, rng=None)
    np.testing.assert_array_equal(y, loop_sign(x))
    assert cache.draws is None


@pytest.mark.parametrize("stochastic", [False, True])
def test_sign_hostile_and_errors(stochastic, rng):
    x = rng.standard_normal((3, 5))
    kern = Kernel("sign", lambda a: sign_forward(a, stochastic=stochastic, training=True,
                                                 rng=np.random.default_rng(1)), sign_backward)
    kern.check_hostile([x], rng)
    kern.check_type_errors([x])
    kern.check_dy_errors([x])
    with raises("sign", "rng must be a numpy.random.Generator when training", TypeError):
        sign_forward(x, stochastic=True, training=True, rng=None)
    with raises("sign", "stochastic must be a bool", TypeError):
        sign_forward(x, stochastic=1)
    with raises("sign", "training must be a bool", TypeError):
        sign_forward(x, training="yes")
    _, wc = binarize_weight_forward(np.zeros((2, 2)))
    with raises("sign_backward", "cache must be the SignCache", TypeError):
        sign_backward(x, wc)


# -- weights ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 6), (3, 2, 3, 3)])
@pytest.mark.parametrize("scale", ["none", "mean"])
def test_binarize_weight_forward_matches_loop(shape, scale, rng):
    w = rng.standard_normal(shape) * 0.8
    wb, cache = binarize_weight_forward(w, scale=scale)
    b = loop_sign(w)
    if scale == "none":
        np.testing.assert_array_equal(wb, b)
        assert cache.alpha is None
    else:
        alpha = loop_alpha(w)
        want = np.stack([alpha[f] * b[f] for f in range(shape[0])])
        np.testing.assert_allclose(wb, want, rtol=1e-14, atol=0)
        np.testing.assert_allclose(cache.alpha.ravel(), alpha, rtol=1e-14)


def loop_weight_grad(dy, w, scale):
    """The definition: dW_i = dy_i * alpha_f * 1_{|W_i|<=1} + sign(W_i)/n * sum_j dy_j B_j."""
    out = np.zeros(w.shape)
    b = loop_sign(w)
    for f in range(w.shape[0]):
        n = w[f].size
        alpha = loop_alpha(w)[f] if scale == "mean" else 1.0
        corr = sum(dy[f].ravel()[j] * b[f].ravel()[j] for j in range(n))
        for idx in np.ndindex(w[f].shape):
            g = dy[f][idx] * alpha if abs(w[f][idx]) <= 1 else 0.0
            if scale == "mean":
                g += np.sign(w[f][idx]) / n * corr
            out[f][idx] = g
    return out


@pytest.mark.parametrize("shape", [(4, 6), (3, 2, 3, 3)])
@pytest.mark.parametrize("scale", ["none", "mean"])
def test_binarize_weight_backward_is_its_definition(shape, scale, rng):
    w = rng.standard_normal(shape) * 1.2   # some |w| > 1: the STE cancels those
    dy = rng.standard_normal(shape)
    _, cache = binarize_weight_forward(w, scale=scale)
    dw = binarize_weight_backward(dy, cache)
    np.testing.assert_allclose(dw, loop_weight_grad(dy, w, scale), rtol=1e-12, atol=1e-14)


def test_alpha_term_is_the_true_derivative_of_alpha(rng):
    # with B held fixed, W~ = alpha(W) * B is differentiable: its numerical VJP is the
    # second term of the backward
    w = rng.standard_normal((3, 5)) + 0.1
    dy = rng.standard_normal(w.shape)
    wb, cache = binarize_weight_forward(w, scale="mean")
    b = cache.b.copy()
    num = numerical_vjp(lambda: np.abs(w).mean(axis=1, keepdims=True) * b, w, dy, 1e-6)
    full = binarize_weight_backward(dy, cache)
    ste_part = dy * cache.alpha * (np.abs(w) <= 1)
    np.testing.assert_allclose(full - ste_part, num, rtol=1e-7, atol=1e-9)


def test_stochastic_weights_reproducible(rng):
    w = rng.uniform(-1, 1, (5, 7))
    a, ca = binarize_weight_forward(w, stochastic=True, training=True,
                                    rng=np.random.default_rng(9))
    b, _ = binarize_weight_forward(w, stochastic=True, training=True,
                                   rng=np.random.default_rng(9))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, loop_stochastic_sign(w, ca.draws))
    c, _ = binarize_weight_forward(w, stochastic=True, training=False)
    np.testing.assert_array_equal(c, loop_sign(w))


@pytest.mark.parametrize("scale", ["none", "mean"])
def test_binarize_weight_hostile_dtypes_errors(scale, rng):
    w = rng.standard_normal((4, 3, 2, 2))
    kern = Kernel("binarize_weight", lambda a: binarize_weight_forward(a, scale=scale),
                  binarize_weight_backward, names=("w",))
    kern.check_hostile([w], rng)
    kern.check_dtypes([w], rng, rtol=1e-5, atol=1e-6)
    kern.check_type_errors([w])
    kern.check_dy_errors([w])
    with raises("binarize_weight", "scale must be one of"):
        binarize_weight_forward(w, scale="max")
    with raises("binarize_weight", r"w must be at least 2-D"):
        binarize_weight_forward(np.zeros(3))


@pytest.mark.parametrize("scale", ["none", "mean"])
def test_weight_ste_passes_at_the_clip_boundary(scale, rng):
    # clipping puts latent weights at exactly +-1 (BNN Algorithm 1): 1_{|W| <= 1} must let
    # their gradient through, or a clipped weight could never move back
    w = np.array([[-1.0, 1.0, 0.0, -0.0, 1.0000001, -3.0]])
    dy = rng.standard_normal(w.shape)
    _, cache = binarize_weight_forward(w, scale=scale)
    dw = binarize_weight_backward(dy, cache)
    np.testing.assert_allclose(dw, loop_weight_grad(dy, w, scale), rtol=1e-12, atol=1e-14)
    assert np.all(cache.pass_mask == [[True, True, True, True, False, False]])
