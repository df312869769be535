"""Wavelet pooling (Williams and Li 2018) through the kernel contract: a loop oracle of the
paper's algorithm (periodic DWT by its sum formula, second level decomposed, first-level
details discarded, inverted one level), Haar == 2 x average pooling, linearity, the adjoint
test, gradient checks of the exact rule, the paper's backward rule against its own loop
oracle, hostile inputs, dtypes, errors."""

import math

import numpy as np
import pytest
from contract import Kernel, raises

from convprop.functional.wavelet_pooling import (wavelet_pool2d_backward,
                                                 wavelet_pool2d_forward)

S2, S3 = math.sqrt(2), math.sqrt(3)
FILTERS = {"haar": [1 / S2, 1 / S2],
           "db2": [(1 + S3) / (4 * S2), (3 + S3) / (4 * S2), (3 - S3) / (4 * S2),
                   (1 - S3) / (4 * S2)]}
WAVELETS = list(FILTERS)
SHAPES = [(2, 3, 8, 12), (1, 1, 4, 4), (1, 2, 12, 8), (2, 1, 16, 4)]


def kernel(**kw):
    return Kernel.of(wavelet_pool2d_forward, wavelet_pool2d_backward, **kw)


# ----------------------------------------------------------------------------- loop oracle

def _hg(wavelet):
    h = FILTERS[wavelet]
    return h, [(-1) ** m * h[len(h) - 1 - m] for m in range(len(h))]


def dwt1(v, wavelet):
    """a[k] = sum_m h[m] v[(2k+m) mod n], d likewise with g (periodic extension)."""
    h, g = _hg(wavelet)
    n = len(v)
    a, d = [0.0] * (n // 2), [0.0] * (n // 2)
    for k in range(n // 2):
        for m in range(len(h)):
            a[k] += h[m] * v[(2 * k + m) % n]
            d[k] += g[m] * v[(2 * k + m) % n]
    return a, d


def idwt1(a, d, wavelet):
    """The transpose of dwt1: each coefficient spread back along its filter."""
    h, g = _hg(wavelet)
    n = 2 * len(a)
    v = [0.0] * n
    for k in range(n // 2):
        for m in range(len(h)):
            v[(2 * k + m) % n] += h[m] * a[k] + g[m] * d[k]
    return v


def dwt2(x, wavelet):
    """One 2-D level of a (H, W) plane: rows (axis 0) then columns; LL, LH, HL, HH."""
    hgt, wid = x.shape
    lo, hi = np.zeros((hgt // 2, wid)), np.zeros((hgt // 2, wid))
    for j in range(wid):
        lo[:, j], hi[:, j] = dwt1(list(x[:, j]), wavelet)
    out = []
    for half in (lo, hi):
        a, d = np.zeros((hgt // 2, wid // 2)), np.zeros((hgt // 2, wid // 2))
        for i in range(hgt // 2):
            a[i], d[i] = dwt1(list(half[i]), wavelet)
        out += [a, d]
    return out  # LL, LH, HL, HH


def idwt2(ll, lh, hl, hh, wavelet):
    hgt, wid = 2 * ll.shape[0], 2 * ll.shape[1]
    lo, hi = np.zeros((hgt // 2, wid)), np.zeros((hgt // 2, wid))
    for i in range(hgt // 2):
        lo[i] = idwt1(list(ll[i]), list(lh[i]), wavelet)
        hi[i] = idwt1(list(hl[i]), list(hh[i]), wavelet)
    x = np.zeros((hgt, wid))
    for j in range(wid):
        x[:, j] = idwt1(list(lo[:, j]), list(hi[:, j]), wavelet)
    return x


def per_plane(fn, a, out_shape):
    n, c = a.shape[:2]
    out = np.zeros((n, c, *out_shape))
    for i in range(n):
        for j in range(c):
            out[i, j] = fn(np.asarray(a[i, j], np.float64))
    return out


def oracle_forward(x, wavelet):
    """The paper's algorithm step by step: level 1 (details discarded), level 2, inverse."""
    def plane(p):
        ll1 = dwt2(p, wavelet)[0]
        return idwt2(*dwt2(ll1, wavelet), wavelet)
    return per_plane(plane, x, (x.shape[2] // 2, x.shape[3] // 2))


def oracle_paper_backward(dy, wavelet):
    """The paper's rule: DWT of dy, detail subbands upsampled (nearest neighbour) as new
    first-level details, two-level inverse."""
    def up(a):
        return np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)

    def plane(p):
        a, lh, hl, hh = dwt2(p, wavelet)
        return idwt2(idwt2(a, lh, hl, hh, wavelet), up(lh), up(hl), up(hh), wavelet)
    return per_plane(plane, dy, (2 * dy.shape[2], 2 * dy.shape[3]))


# ----------------------------------------------------------------------------- forward

@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_loop(wavelet, shape, rng):
    kernel(wavelet=wavelet).check_forward([rng.standard_normal(shape)],
                                          lambda x: oracle_forward(x, wavelet),
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
    ll1 = per_plane(lambda p: dwt2(p, wavelet)[0], x, (4, 6))
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
                               oracle_paper_backward(dy, wavelet), rtol=1e-12, atol=1e-12)


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
        _, lh, hl, hh = dwt2(p, wavelet)
        up = lambda a: np.repeat(np.repeat(a, 2, 0), 2, 1)  # noqa: E731
        return idwt2(np.zeros((4, 6)), up(lh), up(hl), up(hh), wavelet)
    np.testing.assert_allclose(diff, per_plane(plane, dy, (8, 12)), rtol=1e-12, atol=1e-12)
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
