import math
import warnings

import numpy as np
import pytest
from helpers import hostile, readonly

from convprop.functional import (leaky_relu_backward, leaky_relu_forward, relu_backward,
                                 relu_forward, sigmoid_backward, sigmoid_forward,
                                 tanh_backward, tanh_forward)
from convprop.gradcheck import check_kernel


# ---- independent loop references (nothing from convprop) ------------------------------
def ref_elementwise(x, f):
    out = np.empty(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        out[idx] = f(float(x[idx]))
    return out


REFS = {
    "relu": lambda v: v if v > 0 else 0.0,
    "leaky_relu": lambda v: v if v > 0 else 0.2 * v,
    "sigmoid": lambda v: 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v)),
    "tanh": math.tanh,
}
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
    np.testing.assert_allclose(y, ref_elementwise(x, REFS[name]), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_backward_gradcheck(name, rng):
    x = rng.standard_normal((2, 3, 3, 4))
    x[np.abs(x) < 1e-3] = 0.5  # keep the central difference away from the relu kink
    fwd, bwd = OPS[name]
    report = check_kernel(fwd, bwd, [x], names=["x"], rng=rng)
    assert report.passed, str(report)


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
    x = _input(rng).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    fwd, bwd = OPS[name]
    y_ref, c_ref = fwd(x.copy())
    dx_ref = bwd(dy.copy(), c_ref)
    y, cache = fwd(hostile(x))
    dx = bwd(hostile(dy), cache)
    assert y.dtype == dtype and dx.dtype == dtype
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    x_ro, dy_ro = readonly(x), readonly(dy)
    _, cache = fwd(x_ro)
    bwd(dy_ro, cache)
    np.testing.assert_array_equal(x_ro, x)
    np.testing.assert_array_equal(dy_ro, dy)


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
    fwd, bwd = OPS[name]
    op = name.split("_")[0]
    with pytest.raises(TypeError, match=rf"^{op}.*float32 or float64"):
        fwd(np.arange(4))
    with pytest.raises(TypeError, match=rf"^{op}.*ndarray"):
        fwd([1.0, 2.0])
    _, cache = fwd(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=rf"^{name}_backward.*\(2, 3\).*\(3, 2\)"):
        bwd(np.zeros((3, 2)), cache)


def test_leaky_relu_slope_type():
    with pytest.raises(TypeError, match="^leaky_relu: negative_slope"):
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
