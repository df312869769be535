"""Flatten kernel: loop reference, gradient check, non-contiguous input, errors, PyTorch parity."""

import numpy as np
import pytest
from contract import Kernel, raises
from helpers import hostile

from convprop import reference as R
from convprop.functional import flatten_backward, flatten_forward

FLATTEN = Kernel("flatten", flatten_forward, flatten_backward)


def ref_flatten(x):
    return R.flatten(x).astype(x.dtype)  # the loop reference, in x's dtype (exact)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (3, 7), (2, 3, 2)])
def test_forward_matches_loop_and_gradcheck(rng, shape):
    x = rng.standard_normal(shape)
    FLATTEN.check_forward([x], ref_flatten, rtol=0, atol=0)
    FLATTEN.check_gradient([x], rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_contiguous_and_readonly(rng, dtype):
    x = rng.standard_normal((2, 3, 4, 5))
    FLATTEN.check_dtypes([x], rng, dtypes=(dtype,), rtol=1e-6, atol=1e-6)
    x = x.astype(dtype)
    FLATTEN.check_hostile([x], rng)
    views = [hostile(x), np.moveaxis(np.moveaxis(x, 1, 3).copy(), 3, 1)]  # strided, NHWC memory
    for v in views:
        y, cache = flatten_forward(v)
        np.testing.assert_array_equal(y, ref_flatten(x))
        assert y.dtype == dtype
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx = flatten_backward(hostile(dy), cache)
        assert dx.dtype == dtype and dx.shape == x.shape
        np.testing.assert_array_equal(dx.reshape(2, -1), dy)
    np.testing.assert_array_equal(views[0], x)


def test_errors():
    with raises("flatten", "x must have at least 2 axes"):
        flatten_forward(np.zeros(4))
    FLATTEN.check_type_errors([np.zeros((2, 2))])
    FLATTEN.check_dy_errors([np.zeros((2, 3, 4))])
    _, cache = flatten_forward(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"^flatten_backward: dy must have shape \(2, 12\)"):
        flatten_backward(np.zeros((2, 11)), cache)
    with pytest.raises(ValueError, match=r"^flatten_backward: dy must be 2-D"):
        flatten_backward(np.zeros((2, 3, 4)), cache)


def test_torch_parity(torch, rng):
    x = rng.standard_normal((3, 2, 4, 5))
    y, cache = flatten_forward(x)
    dy = rng.standard_normal(y.shape)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.flatten(tx, 1)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(flatten_backward(dy, cache), tx.grad.numpy(), rtol=0, atol=1e-10)
