"""Linear kernel: loop reference, gradient check, hostile input, errors, PyTorch parity."""

import numpy as np
import pytest
from contract import Kernel, raises

from convprop.functional import linear_backward, linear_forward
from convprop.reference import linear

LINEAR = Kernel("linear", linear_forward, linear_backward, ("x", "w", "b"))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n,d_in,d_out", [(4, 5, 3), (1, 1, 1), (1, 7, 2), (3, 2, 6)])
def test_forward_matches_loop_and_gradcheck(rng, bias, n, d_in, d_out):
    x, w = rng.standard_normal((n, d_in)), rng.standard_normal((d_out, d_in))
    b = rng.standard_normal(d_out) if bias else None
    LINEAR.check_forward([x, w, b], linear)
    LINEAR.check_gradient([x, w, b], rng)


def test_db_none_without_bias(rng):
    x, w = rng.standard_normal((2, 3)), rng.standard_normal((4, 3))
    y, cache = linear_forward(x, w, None)
    dx, dw, db = linear_backward(rng.standard_normal(y.shape), cache)
    assert db is None and dx.shape == x.shape and dw.shape == w.shape


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_hostile_input(rng, dtype, bias):
    x, w = rng.standard_normal((5, 6)), rng.standard_normal((3, 6))
    inputs = [x, w, rng.standard_normal(3) if bias else None]
    LINEAR.check_dtypes(inputs, rng, dtypes=(dtype,), rtol=1e-5, atol=1e-5)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    LINEAR.check_hostile([a if a is None else a.astype(dtype) for a in inputs], rng,
                         rtol=tol, atol=tol)


def test_errors(rng):
    x, w, b = np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(4)
    for match, args in [
        ("x has 5 features but w expects 3", (np.zeros((2, 5)), w, b)),
        ("x must be 2-D", (np.zeros((2, 3, 1)), w, b)),
        ("w must be 2-D", (x, np.zeros(3), b)),
        (r"b must have shape \(4,\)", (x, w, np.zeros(3))),
    ]:
        with raises("linear", match):
            linear_forward(*args)
    LINEAR.check_type_errors([rng.standard_normal(s) for s in ((2, 3), (4, 3), (4,))])
    LINEAR.check_dy_errors([x, w, b])
    _, cache = linear_forward(x, w, b)
    with raises("linear_backward", r"dy must have shape \(2, 4\)"):
        linear_backward(np.zeros((2, 3)), cache)


@pytest.mark.parametrize("bias", [True, False])
def test_torch_parity(torch, rng, bias):
    x, w = rng.standard_normal((6, 5)), rng.standard_normal((4, 5))
    b = rng.standard_normal(4) if bias else None
    y, cache = linear_forward(x, w, b)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = linear_backward(dy, cache)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if bias else None
    ty = torch.nn.functional.linear(tx, tw, tb)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=0, atol=1e-10)
    if bias:
        np.testing.assert_allclose(db, tb.grad.numpy(), rtol=0, atol=1e-10)
