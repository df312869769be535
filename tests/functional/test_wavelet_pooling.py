"""Wavelet pooling (Williams and Li 2018) through the kernel contract: a loop oracle of the
paper's algorithm (periodic DWT by its sum formula, second level decomposed, first-level
details discarded, inverted one level), Haar == 2 x average pooling, linearity, the adjoint
test, gradient checks of the exact rule, the paper's backward rule against its own loop
oracle, hostile inputs, dtypes, errors."""

import numpy as np
import pytest
from contract import Kernel, raises

from convprop import reference as R
from convprop.functional.wavelet_pooling import (wavelet_pool2d_backward,
                                                 wavelet_pool2d_forward)

WAVELETS = list(R.WAVELET_FILTERS)
SHAPES = [(2, 3, 8, 12), (1, 1, 4, 4), (1, 2, 12, 8), (2, 1, 16, 4)]


def kernel(**kw):
    return Kernel.of(wavelet_pool2d_forward, wavelet_pool2d_backward, **kw)


# ----------------------------------------------------------------------------- forward

@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_loop(wavelet, shape, rng):
    kernel(wavelet=wavelet).check_forward([rng.standard_normal(shape)],
                                          lambda x: R.wavelet_pool(x, wavelet),
                                          rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("shape", SHAPES)
def test_haar_is_twice_average_pooling(shape, rng):
    """Orthonormal Haar: LL1 = (block sum) * (1/sqrt2)^2 = 2 * (2x2 mean). Equal to rounding."""
    x = rng.standard_normal(shape)
    n, c, h, w = shape
    avg = x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
    y, _ = wavelet_pool2d_forward(x, wavelet="haar")
    np.testing.assert_allclose(y, 2 * avg, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("wavelet", WAVELETS)
def test_output_is_the_first_level_approximation(wavelet, rng):
    """Perfect reconstruction: inverting the full second level gives LL1 back."""
    x = rng.standard_normal((2, 2, 8, 12))
    y, _ = wavelet_pool2d_forward(x, wavelet=wavelet)
    ll1 = R.per_plane(lambda p: R.dwt2(p, wavelet)[0], x, (4, 6))
    np.testing.assert_allclose(y, ll1, rtol=1e-12, atol=1e-13)


def test_db2_differs_from_haar(rng):
    x = rng.standard_normal((1, 1, 8, 8))
    assert not np.allclose(wavelet_pool2d_forward(x, wavelet="db2")[0],
                           wavelet_pool2d_forward(x, wavelet="haar")[0])


def test_haar_matches_pywavelets_when_installed(rng):
    pywt = pytest.importorskip("pywt", reason="PyWavelets not installed")
    x = rng.standard_normal((1, 2, 8, 12))
    y, _ = wavelet_pool2d_forward(x, wavelet="haar")
    for c in range(2):
        ca, _ = pywt.dwt2(x[0, c], "haar", mode="periodization")
        np.testing.assert_allclose(y[0, c], ca, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("wavelet", WAVELETS)
def test_linearity(wavelet, rng):
    u, v = rng.standard_normal((2, 2, 3, 8, 12))
    f = lambda a: wavelet_pool2d_forward(a, wavelet=wavelet)[0]  # noqa: E731
    np.testing.assert_allclose(f(1.5 * u - 0.25 * v), 1.5 * f(u) - 0.25 * f(v),
                               rtol=1e-12, atol=1e-13)


# ----------------------------------------------------------------------------- backward

@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("shape", SHAPES)
def test_exact_rule_is_the_adjoint(wavelet, shape, rng):
    """<f(u), v> == <u, f^T(v)> for the default (exact) backward."""
    u = rng.standard_normal(shape)
    fu, cache = wavelet_pool2d_forward(u, wavelet=wavelet)
    v = rng.standard_normal(fu.shape)
    lhs, rhs = np.vdot(fu, v), np.vdot(u, wavelet_pool2d_backward(v, cache))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))


@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("shape", SHAPES)
def test_exact_rule_gradcheck(wavelet, shape, rng):
    kernel(wavelet=wavelet).check_gradient([rng.standard_normal(shape)], rng)


@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("shape", SHAPES)
def test_paper_rule_matches_loop(wavelet, shape, rng):
    x = rng.standard_normal(shape)
    _, cache = wavelet_pool2d_forward(x, wavelet=wavelet, backward_rule="paper")
    dy = rng.standard_normal((shape[0], shape[1], shape[2] // 2, shape[3] // 2))
    np.testing.assert_allclose(wavelet_pool2d_backward(dy, cache),
                               R.wavelet_pool_paper_backward(dy, wavelet), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("wavelet", WAVELETS)
def test_paper_rule_is_exact_plus_upsampled_details(wavelet, rng):
    """paper dx - exact dx == IDWT(0, up(lh), up(hl), up(hh)): the paper's rule is not the
    gradient of the forward for a general dy."""
    x = rng.standard_normal((2, 2, 8, 12))
    _, ce = wavelet_pool2d_forward(x, wavelet=wavelet)
    _, cp = wavelet_pool2d_forward(x, wavelet=wavelet, backward_rule="paper")
    dy = rng.standard_normal((2, 2, 4, 6))
    diff = wavelet_pool2d_backward(dy, cp) - wavelet_pool2d_backward(dy, ce)

    def plane(p):
        _, lh, hl, hh = R.dwt2(p, wavelet)
        up = lambda a: np.repeat(np.repeat(a, 2, 0), 2, 1)  # noqa: E731
        return R.idwt2(np.zeros((4, 6)), up(lh), up(hl), up(hh), wavelet)
    np.testing.assert_allclose(diff, R.per_plane(plane, dy, (8, 12)), rtol=1e-12, atol=1e-12)
    assert np.linalg.norm(diff) > 0.1 * np.linalg.norm(dy)


def test_paper_rule_agrees_when_dy_has_no_detail(rng):
    """Haar: a dy constant on aligned 2x2 blocks has no first-level detail."""
    x = rng.standard_normal((1, 2, 8, 8))
    _, ce = wavelet_pool2d_forward(x)
    _, cp = wavelet_pool2d_forward(x, backward_rule="paper")
    dy = np.repeat(np.repeat(rng.standard_normal((1, 2, 2, 2)), 2, 2), 2, 3)
    np.testing.assert_allclose(wavelet_pool2d_backward(dy, cp),
                               wavelet_pool2d_backward(dy, ce), rtol=1e-13, atol=1e-13)


# ----------------------------------------------------------------------------- contract

@pytest.mark.parametrize("rule", ["exact", "paper"])
@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_hostile_input(wavelet, rule, dtype, rng):
    k = kernel(wavelet=wavelet, backward_rule=rule)
    x = rng.standard_normal((2, 3, 8, 12))
    k.check_dtypes([x], rng, dtypes=(dtype,))
    k.check_dtypes([x], rng, rtol=1e-5, atol=1e-5)
    k.check_hostile([x.astype(dtype)], rng)


def test_errors():
    op = "wavelet_pool2d"
    with raises(op, "x must be 4-D"):
        wavelet_pool2d_forward(np.zeros((2, 8, 8)))
    for bad in ((1, 1, 6, 8), (1, 1, 8, 10), (1, 1, 0, 8), (1, 1, 2, 2)):
        with raises(op, "x's height and width must be positive multiples of 4"):
            wavelet_pool2d_forward(np.zeros(bad))
    with raises(op, "wavelet must be one of"):
        wavelet_pool2d_forward(np.zeros((1, 1, 4, 4)), wavelet="db4")
    with raises(op, "backward_rule must be one of"):
        wavelet_pool2d_forward(np.zeros((1, 1, 4, 4)), backward_rule="adjoint")
    x = np.zeros((1, 2, 8, 4))
    kernel().check_type_errors([x])
    kernel().check_dy_errors([x])
    kernel(backward_rule="paper").check_dy_errors([x])
