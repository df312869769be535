"""Linear kernel: loop reference, gradient check, hostile input, errors, PyTorch parity."""

import numpy as np
import pytest
from helpers import hostile

from convprop.functional import linear_backward, linear_forward
from convprop.gradcheck import check_kernel


def ref_linear(x, w, b):
    N, D_out = x.shape[0], w.shape[0]
    y = np.zeros((N, D_out), x.dtype)
    for n in range(N):
        for o in range(D_out):
            y[n, o] = sum(x[n, i] * w[o, i] for i in range(x.shape[1])) + (0 if b is None else b[o])
    return y


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n,d_in,d_out", [(4, 5, 3), (1, 1, 1), (1, 7, 2), (3, 2, 6)])
def test_forward_matches_loop_and_gradcheck(rng, bias, n, d_in, d_out):
    x, w = rng.standard_normal((n, d_in)), rng.standard_normal((d_out, d_in))
    b = rng.standard_normal(d_out) if bias else None
    y, _ = linear_forward(x, w, b)
    np.testing.assert_allclose(y, ref_linear(x, w, b), rtol=1e-12, atol=1e-12)
    if bias:
        rep = check_kernel(linear_forward, linear_backward, [x, w, b], names=["x", "w", "b"],
                           rng=rng)
    else:
        rep = check_kernel(lambda a, c: linear_forward(a, c, None), linear_backward, [x, w],
                           names=["x", "w"], rng=rng)
    assert rep.passed, str(rep)


def test_db_none_without_bias(rng):
    x, w = rng.standard_normal((2, 3)), rng.standard_normal((4, 3))
    y, cache = linear_forward(x, w, None)
    dx, dw, db = linear_backward(rng.standard_normal(y.shape), cache)
    assert db is None and dx.shape == x.shape and dw.shape == w.shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_hostile_input(rng, dtype):
    x = rng.standard_normal((5, 6)).astype(dtype)
    w = rng.standard_normal((3, 6)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    y, cache = linear_forward(x, w, b)
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = linear_backward(dy, cache)
    assert y.dtype == dtype and all(g.dtype == dtype for g in grads)
    xh, wh, bh = hostile(x), hostile(w), hostile(b)
    y2, cache2 = linear_forward(xh, wh, bh)
    grads2 = linear_backward(hostile(dy), cache2)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y2, y, rtol=tol, atol=tol)
    for g2, g in zip(grads2, grads):
        np.testing.assert_allclose(g2, g, rtol=tol, atol=tol)
    np.testing.assert_array_equal(xh, x)


def test_errors(rng):
    x, w, b = np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(4)
    with pytest.raises(ValueError, match=r"^linear: x has 5 features but w expects 3"):
        linear_forward(np.zeros((2, 5)), w, b)
    with pytest.raises(ValueError, match=r"^linear: x must be 2-D"):
        linear_forward(np.zeros((2, 3, 1)), w, b)
    with pytest.raises(ValueError, match=r"^linear: w must be 2-D"):
        linear_forward(x, np.zeros(3), b)
    with pytest.raises(ValueError, match=r"^linear: b must have shape \(4,\)"):
        linear_forward(x, w, np.zeros(3))
    with pytest.raises(TypeError, match=r"^linear: all arrays must share one dtype"):
        linear_forward(x.astype(np.float32), w, b)
    with pytest.raises(TypeError, match=r"^linear: w must be float32 or float64"):
        linear_forward(x, w.astype(np.int64), b)
    with pytest.raises(TypeError, match=r"^linear: x must be a numpy.ndarray"):
        linear_forward([[0.0, 0.0, 0.0]], w, b)
    _, cache = linear_forward(x, w, b)
    with pytest.raises(ValueError, match=r"^linear_backward: dy must have shape \(2, 4\)"):
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
