"""DFT magnitude pooling (Ryu, Yang and Lim 2018) through the kernel contract: the DFT by its
sum formula as the loop oracle, invariance under circular shifts, output_size 1 as global
average pooling of a non-negative map, the float64 gradient away from |F| = 0, the
subgradient 0 at |F| = 0, hostile inputs, dtypes, errors."""

import numpy as np
import pytest
from contract import Kernel, raises

from convprop.functional.dft_pooling import dft_pool2d_backward, dft_pool2d_forward
from convprop.reference import dft_pool


def kernel(**kw):
    return Kernel.of(dft_pool2d_forward, dft_pool2d_backward, **kw)


CASES = [((2, 3, 6, 5), (3, 4)), ((1, 1, 4, 4), 2), ((1, 2, 3, 7), (3, 7)), ((2, 1, 5, 8), 1),
         ((1, 2, 1, 6), (1, 3))]
IDS = [f"{s}->{o}" for s, o in CASES]


@pytest.mark.parametrize("shape,out", CASES, ids=IDS)
def test_forward_matches_sum_formula(shape, out, rng):
    kernel(output_size=out).check_forward([rng.standard_normal(shape)],
                                          lambda x: dft_pool(x, out), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("shape,out", CASES, ids=IDS)
def test_invariant_under_circular_shifts(shape, out, rng):
    x = rng.standard_normal(shape)
    y, _ = dft_pool2d_forward(x, output_size=out)
    for sh in [(1, 0), (0, 2), (3, -1), (shape[2] - 1, shape[3] + 2)]:
        ys, _ = dft_pool2d_forward(np.roll(x, sh, axis=(2, 3)), output_size=out)
        np.testing.assert_allclose(ys, y, rtol=1e-13, atol=1e-14)


def test_not_invariant_to_non_translations(rng):
    """Shape-aware, unlike global average pooling: permuting rows changes the output."""
    x = rng.standard_normal((1, 1, 6, 6))
    perm = x[..., rng.permutation(6), :]
    assert not np.allclose(dft_pool2d_forward(perm, output_size=3)[0],
                           dft_pool2d_forward(x, output_size=3)[0])


def test_output_size_one_is_global_average_of_non_negative_maps(rng):
    x = rng.random((2, 3, 5, 4))
    y, _ = dft_pool2d_forward(x, output_size=1)
    np.testing.assert_allclose(y[..., 0, 0], x.mean(axis=(2, 3)), rtol=1e-13)


@pytest.mark.parametrize("shape,out", CASES, ids=IDS)
def test_gradcheck(shape, out, rng):
    # a positive offset keeps F[0, 0] away from 0; random maps keep the others away from 0
    x = rng.standard_normal(shape) + 0.5
    y, _ = dft_pool2d_forward(x, output_size=out)
    assert y.min() > 1e-3, "the test input must stay away from |F| = 0"
    kernel(output_size=out).check_gradient([x], rng)


def test_zero_magnitude_gets_zero_gradient(rng):
    """A zero-mean map has F[0, 0] = 0: that output passes no gradient (subgradient 0)."""
    v = rng.integers(-3, 4, (1, 1, 4, 6)).astype(np.float64)
    x = v - np.roll(v, 1, axis=3)  # integer values summing to exactly 0
    y, cache = dft_pool2d_forward(x, output_size=1)
    assert y[0, 0, 0, 0] < 1e-15
    np.testing.assert_array_equal(dft_pool2d_backward(np.ones((1, 1, 1, 1)), cache), 0.0)
    z, cz = dft_pool2d_forward(np.zeros((1, 2, 4, 4)), output_size=(2, 3))
    np.testing.assert_array_equal(z, 0.0)
    np.testing.assert_array_equal(dft_pool2d_backward(np.ones((1, 2, 2, 3)), cz), 0.0)


def test_gradient_of_the_mean_cell(rng):
    """For a positive map, y[0, 0] is the mean, whose gradient is 1/(HW) everywhere."""
    x = rng.random((1, 1, 3, 5)) + 0.1
    _, cache = dft_pool2d_forward(x, output_size=1)
    np.testing.assert_allclose(dft_pool2d_backward(np.full((1, 1, 1, 1), 2.0), cache),
                               np.full(x.shape, 2.0 / 15), rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_hostile_input(dtype, rng):
    k = kernel(output_size=(3, 2))
    x = rng.standard_normal((2, 3, 6, 5)) + 0.5
    k.check_dtypes([x], rng, dtypes=(dtype,))
    k.check_dtypes([x], rng, rtol=1e-4, atol=1e-5)
    k.check_hostile([x.astype(dtype)], rng)


def test_errors():
    op = "dft_pool2d"
    with raises(op, "x must be 4-D"):
        dft_pool2d_forward(np.zeros((2, 4, 4)), output_size=2)
    with raises(op, "output_size must be >= 1"):
        dft_pool2d_forward(np.zeros((1, 1, 4, 4)), output_size=0)
    with raises(op, "output_size must be an int or a pair", TypeError):
        dft_pool2d_forward(np.zeros((1, 1, 4, 4)), output_size=(1, 2, 3))
    with raises(op, r"output_size must not exceed x's spatial size \(4, 3\)"):
        dft_pool2d_forward(np.zeros((1, 1, 4, 3)), output_size=(2, 4))
    x = np.zeros((1, 2, 4, 5))
    kernel(output_size=2).check_type_errors([x])
    kernel(output_size=2).check_dy_errors([x])
