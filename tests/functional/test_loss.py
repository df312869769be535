import math
import warnings

import numpy as np
import pytest
from contract import Kernel, raises

from convprop.functional import (mse_backward, mse_forward, softmax_cross_entropy_backward,
                                 softmax_cross_entropy_forward)
from convprop.reference import cross_entropy, mse


def ce_kernel(**kw):
    """softmax cross-entropy with inputs (logits, targets); targets are not differentiable."""
    return Kernel.of(softmax_cross_entropy_forward, softmax_cross_entropy_backward,
                     names=("logits",), **kw)


def mse_kernel(**kw):
    """mse with inputs (y, target); the target is not differentiable."""
    return Kernel.of(mse_forward, mse_backward, names=("y",), **kw)


def _dy(rng, reduction, shape):
    return rng.standard_normal(shape) if reduction == "none" else rng.standard_normal()


# ---- cross-entropy --------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("N,K", [(5, 4), (1, 3), (4, 1), (7, 10)])
def test_ce_forward_matches_loop(reduction, N, K, rng):
    logits = rng.standard_normal((N, K)) * 3
    t = rng.integers(0, K, N)
    loss, cache = softmax_cross_entropy_forward(logits, t, reduction=reduction)
    np.testing.assert_allclose(loss, cross_entropy(logits, t, reduction),
                               rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(cache.probs.sum(axis=1), 1.0, rtol=1e-14)
    if reduction != "none":
        assert isinstance(loss, np.ndarray) and loss.shape == () and loss.dtype == np.float64


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ce_gradcheck(reduction, rng):
    ce_kernel(reduction=reduction).check_gradient(
        [rng.standard_normal((4, 5)), np.array([0, 4, 2, 2])], rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ce_large_logits_stable(dtype, rng):
    logits = np.array([[1e4, 0.0, -1e4], [1e4, 1e4 - 2.0, 3.0], [-1e4, -1e4, -1e4]], dtype)
    t = np.array([1, 1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, cache = softmax_cross_entropy_forward(logits, t, reduction="none")
        g = softmax_cross_entropy_backward(np.ones(3, dtype), cache)
    expected = [1e4, 2.0 + math.log1p(math.exp(-2.0)), math.log(3.0)]
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    assert loss.dtype == dtype and g.dtype == dtype and np.all(np.isfinite(g))


@pytest.mark.parametrize("tdtype", [np.int8, np.uint8, np.int32, np.int64, np.uint64])
def test_ce_any_integer_targets(tdtype, rng):
    logits = rng.standard_normal((4, 3))
    t = np.array([0, 2, 1, 2], dtype=tdtype)
    loss, _ = softmax_cross_entropy_forward(logits, t, reduction="none")
    np.testing.assert_allclose(loss, cross_entropy(logits, t.astype(int)), rtol=1e-13)


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ce_dtype_and_hostile_inputs(dtype, reduction, rng):
    inputs = [rng.standard_normal((6, 5)), rng.integers(0, 5, 6)]
    kernel = ce_kernel(reduction=reduction)
    kernel.check_dtypes(inputs, rng, dtypes=(dtype,), rtol=1e-6, atol=1e-6)
    kernel.check_hostile([inputs[0].astype(dtype), inputs[1]], rng)


CE = "^softmax_cross_entropy"


def test_ce_errors(rng):
    z = rng.standard_normal((3, 4))
    with pytest.raises(ValueError, match=CE + r": targets .*\[0, 4\).*got 4 at index 1"):
        softmax_cross_entropy_forward(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"^softmax_cross_entropy: targets .*got -1 at index 2"):
        softmax_cross_entropy_forward(z, np.array([0, 1, -1]))
    with pytest.raises(TypeError, match=CE + r": targets must be an integer.*float64"):
        softmax_cross_entropy_forward(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=CE + r": targets must have shape \(3,\)"):
        softmax_cross_entropy_forward(z, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"^softmax_cross_entropy: logits must be 2-D"):
        softmax_cross_entropy_forward(z[0], np.array([0]))
    with pytest.raises(ValueError, match=CE + r": reduction must be one of.*'max'"):
        softmax_cross_entropy_forward(z, np.array([0, 1, 2]), reduction="max")
    _, cache = softmax_cross_entropy_forward(z, np.array([0, 1, 2]), reduction="none")
    with pytest.raises(ValueError, match=CE + r"_backward: dy must have shape \(3,\)"):
        softmax_cross_entropy_backward(1.0, cache)
    for reduction in ("mean", "none"):
        ce_kernel(reduction=reduction).check_type_errors([z, np.array([0, 1, 2])])
        ce_kernel(reduction=reduction).check_dy_errors([z, np.array([0, 1, 2])])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ce_parity_with_torch(reduction, torch, rng):
    logits = rng.standard_normal((6, 5)) * 5
    logits[0] += 1e4   # large logits too
    logits[1, 2] = -1e4
    t = rng.integers(0, 5, 6)
    dy = _dy(rng, reduction, (6,))
    loss, cache = softmax_cross_entropy_forward(logits, t, reduction=reduction)
    g = softmax_cross_entropy_backward(dy, cache)
    tz = torch.tensor(logits, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tz, torch.tensor(t), reduction=reduction)
    tl.backward(torch.tensor(dy, dtype=torch.float64))
    np.testing.assert_allclose(loss, tl.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(g, tz.grad.numpy(), rtol=0, atol=1e-10)


# ---- mean squared error ---------------------------------------------------------------
REDUCTIONS = ["mean", "sum", "half_sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2), (1,)])
def test_mse_forward_matches_loop(reduction, shape, rng):
    y, t = rng.standard_normal(shape), rng.standard_normal(shape)
    loss, _ = mse_forward(y, t, reduction=reduction)
    np.testing.assert_allclose(loss, mse(y, t, reduction), rtol=1e-13)
    if reduction != "none":
        assert isinstance(loss, np.ndarray) and loss.shape == ()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_gradcheck(reduction, rng):
    mse_kernel(reduction=reduction).check_gradient(
        [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))], rng)


def test_mse_half_sum_gradient_is_the_textbook_one(rng):
    y, t = rng.standard_normal(5), rng.standard_normal(5)
    _, cache = mse_forward(y, t, reduction="half_sum")
    np.testing.assert_allclose(mse_backward(1.0, cache), y - t, rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_mse_dtype_and_hostile_inputs(dtype, reduction, rng):
    y, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    kernel = mse_kernel(reduction=reduction)
    kernel.check_dtypes([y, t], rng, dtypes=(dtype,), rtol=1e-6, atol=1e-6)
    kernel.check_hostile([y.astype(dtype), t.astype(dtype)], rng)


def test_mse_errors():
    with pytest.raises(ValueError,
                       match=r"^mse: y and target must have the same shape.*\(2, 3\).*\(3, 2\)"):
        mse_forward(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"^mse: reduction must be one of.*'avg'"):
        mse_forward(np.zeros(2), np.zeros(2), reduction="avg")
    with raises("mse", "target must be float32 or float64", TypeError):
        mse_forward(np.zeros(2), np.zeros(2, np.int64))
    for reduction in REDUCTIONS:
        mse_kernel(reduction=reduction).check_type_errors([np.zeros(2), np.ones(2)])
        mse_kernel(reduction=reduction).check_dy_errors([np.zeros(2), np.ones(2)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_parity_with_torch(reduction, torch, rng):
    y, t = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 2))
    dy = _dy(rng, reduction, y.shape)
    loss, cache = mse_forward(y, t, reduction=reduction)
    g = mse_backward(dy, cache)
    ty = torch.tensor(y, requires_grad=True)
    if reduction == "half_sum":
        tl = torch.nn.functional.mse_loss(ty, torch.tensor(t), reduction="sum") / 2
    else:
        tl = torch.nn.functional.mse_loss(ty, torch.tensor(t), reduction=reduction)
    tl.backward(torch.tensor(dy, dtype=torch.float64))
    np.testing.assert_allclose(loss, tl.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(g, ty.grad.numpy(), rtol=0, atol=1e-10)
