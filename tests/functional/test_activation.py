import warnings

import numpy as np
import pytest
from contract import Kernel, raises

from convprop.functional import (leaky_relu_backward, leaky_relu_forward, relu_backward,
                                 relu_forward, sigmoid_backward, sigmoid_forward,
                                 tanh_backward, tanh_forward)
from convprop.reference import activation

OPS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (lambda x: leaky_relu_forward(x, negative_slope=0.2), leaky_relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
}
NAMES = list(OPS)


def _input(rng, shape=(2, 3, 4, 5)):
    x = rng.standard_normal(shape)
    x.flat[::7] = 0.0  # exact zeros: the relu family's kink
    return x


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 3, 7), (5, 4), (6,)])
def test_forward_matches_loop(name, shape, rng):
    x = _input(rng, shape)
    y, _ = OPS[name][0](x)
    np.testing.assert_allclose(y, activation(name, x, negative_slope=0.2), rtol=1e-13, atol=1e-15)


def _kernel(name):
    return Kernel(name, *OPS[name])


@pytest.mark.parametrize("name", NAMES)
def test_backward_gradcheck(name, rng):
    x = rng.standard_normal((2, 3, 3, 4))
    x[np.abs(x) < 1e-3] = 0.5  # keep the central difference away from the relu kink
    _kernel(name).check_gradient([x], rng)


def test_relu_family_gradient_at_zero(rng):
    x = np.array([-1.0, 0.0, 2.0])
    dy = rng.standard_normal(3)
    np.testing.assert_array_equal(relu_backward(dy, relu_forward(x)[1]), [0.0, 0.0, dy[2]])
    dx = leaky_relu_backward(dy, leaky_relu_forward(x, negative_slope=0.3)[1])
    np.testing.assert_allclose(dx, [0.3 * dy[0], 0.3 * dy[1], dy[2]], rtol=1e-15)


def test_relu_caches_a_mask():
    _, cache = relu_forward(np.array([[-1.0, 0.0, 3.0]]))
    assert cache.mask.dtype == np.bool_
    np.testing.assert_array_equal(cache.mask, [[False, False, True]])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_hostile_inputs(name, dtype, rng):
    x = _input(rng)
    _kernel(name).check_dtypes([x], rng, dtypes=(dtype,), rtol=1e-6, atol=1e-7)
    _kernel(name).check_hostile([x.astype(dtype)], rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_stable_for_large_inputs(dtype):
    x = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, cache = sigmoid_forward(x)
        dx = sigmoid_backward(np.ones_like(x), cache)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    assert y[0] == 0.0 and y[-1] == 1.0 and y[3] == 0.5
    assert 0 < y[2] < 1e-20  # exp(-50): not flushed to 0, not 1 - 1


@pytest.mark.parametrize("name", NAMES)
def test_errors(name):
    kernel = _kernel(name)
    kernel.check_type_errors([np.arange(4.0)])
    kernel.check_dy_errors([np.zeros((2, 3))])
    _, cache = OPS[name][0](np.zeros((2, 3)))
    with raises(f"{name}_backward", r".*\(2, 3\).*\(3, 2\)"):
        OPS[name][1](np.zeros((3, 2)), cache)


def test_leaky_relu_slope_type():
    with raises("leaky_relu", "negative_slope", TypeError):
        leaky_relu_forward(np.zeros(2), negative_slope="0.1")


@pytest.mark.parametrize("name", NAMES)
def test_parity_with_torch(name, torch, rng):
    x = _input(rng) * 4
    dy = rng.standard_normal(x.shape)
    fwd, bwd = OPS[name]
    y, cache = fwd(x)
    dx = bwd(dy, cache)
    tf = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
          "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.2)}[name]
    tx = torch.tensor(x, requires_grad=True)
    ty = tf(tx)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=0, atol=1e-10)
