"""Batch norm (any rank: (N, C), (N, C, L), (N, C, H, W), (N, C, D, H, W)) and local
response norm through the kernel contract: loop oracles, gradient checks, hostile inputs,
dtypes, errors, PyTorch parity."""

import numpy as np
import pytest
from contract import Kernel, raises

from convprop.functional import (batch_norm_backward, batch_norm_forward,
                                 local_response_norm_backward, local_response_norm_forward)
from convprop.reference import batch_norm, local_response_norm


def _bn_args(rng, C, dtype=np.float64):
    return [rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype),
            rng.standard_normal(C).astype(dtype), (rng.random(C) + 0.5).astype(dtype)]


BN_SHAPES = [(4, 3, 5, 6), (1, 2, 3, 3), (5, 1, 2, 7), (2, 3, 1, 1), (6, 4), (2, 1),
             (4, 3, 7), (1, 2, 5), (3, 2, 3, 4, 2), (2, 1, 2, 2, 3), (1, 2, 1, 1, 2)]


def _running(cache):
    return cache.running_mean, cache.running_var


def bn_kernel(training, **kw):
    """batch norm as a contract kernel: inputs (x, gamma, beta, running_mean, running_var),
    the running statistics compared as extra outputs."""
    return Kernel("batch_norm", lambda *a: batch_norm_forward(*a, training=training, **kw),
                  batch_norm_backward, ("x", "gamma", "beta"), _running)


# ---- batch norm -----------------------------------------------------------------------
@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_forward_matches_loop(shape, training, rng):
    x = rng.standard_normal(shape) * 3 + 1
    g, b, rm, rv = _bn_args(rng, shape[1])
    y, cache = batch_norm_forward(x, g, b, rm, rv, training=training, momentum=0.2, eps=1e-3)
    ry, rrm, rrv = batch_norm(x, g, b, rm, rv, training, 0.2, 1e-3)
    np.testing.assert_allclose(y, ry, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cache.running_mean, rrm, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cache.running_var, rrv, rtol=1e-12, atol=1e-14)
    if training:
        assert not np.shares_memory(cache.running_mean, rm)
    else:
        assert cache.running_mean is rm and cache.running_var is rv


@pytest.mark.parametrize("shape", [(3, 2, 3, 4), (1, 3, 2, 2), (5, 3), (3, 2, 5),
                                   (2, 2, 3, 2, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(shape, training, rng):
    x = rng.standard_normal(shape)
    bn_kernel(training).check_gradient([x, *_bn_args(rng, shape[1])], rng)


def test_batch_norm_without_running_stats(rng):
    x = rng.standard_normal((4, 3, 2, 2))
    g, b, _, _ = _bn_args(rng, 3)
    y, cache = batch_norm_forward(x, g, b, None, None, training=True)
    assert cache.running_mean is None and cache.running_var is None
    ry, _, _ = batch_norm(x, g, b, np.zeros(3), np.ones(3), True, 0.1, 1e-5)
    np.testing.assert_allclose(y, ry, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 2, 4, 5), (4, 2, 6), (2, 2, 3, 2, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_dtype_and_hostile_inputs(shape, dtype, training, rng):
    inputs = [rng.standard_normal(shape), *_bn_args(rng, 2)]
    kernel = bn_kernel(training)
    kernel.check_dtypes(inputs, rng, dtypes=(dtype,), rtol=1e-5, atol=1e-5)
    tol = 1e-5 if dtype == np.float32 else 1e-13  # einsum's order may follow the strides
    kernel.check_hostile([a.astype(dtype) for a in inputs], rng, rtol=tol, atol=tol)


def test_batch_norm_errors(rng):
    g, b, rm, rv = _bn_args(rng, 3)
    for match, x, kw in [
        ("expected more than 1 value per channel", np.zeros((1, 3, 1, 1)), {}),
        ("expected more than 1 value per channel", np.zeros((1, 3)), {}),
        ("expected more than 1 value per channel", np.zeros((1, 3, 1, 1, 1)), {}),
        (r"gamma must have shape \(4,\).*\(3,\)", np.zeros((2, 4, 2, 2)),
         dict(running_mean=np.zeros(4), running_var=np.ones(4))),
        ("x must be 2-D or 3-D or 4-D or 5-D", np.zeros((2, 3, 4, 1, 1, 1)), {}),
        ("x must be 2-D or 3-D or 4-D or 5-D", np.zeros(3), {}),
        ("eps must be a finite number > 0", np.zeros((2, 3)), dict(eps=0.0)),
        ("eps must be a finite number > 0", np.zeros((2, 3)), dict(eps=float("inf"))),
        (r"momentum must be in \[0, 1\]", np.zeros((2, 3)), dict(momentum=1.5)),
        ("evaluation mode needs running_mean", np.zeros((2, 3)),
         dict(running_mean=None, running_var=None, training=False)),
        ("running_mean and running_var", np.zeros((2, 3)), dict(running_var=None)),
    ]:
        args = {"running_mean": rm, "running_var": rv, "training": True, **kw}
        with raises("batch_norm", match):
            batch_norm_forward(x, g, b, **args)
    batch_norm_forward(np.zeros((1, 3)), g, b, rm, rv, training=False)  # fine in eval
    with raises("batch_norm", "all arrays must share one dtype", TypeError):
        batch_norm_forward(np.zeros((2, 3)), g, b, rm, rv.astype(np.float32), training=True)
    with raises("batch_norm", "training must be a bool", TypeError):
        batch_norm_forward(np.zeros((2, 3)), g, b, rm, rv, training="yes")
    _, cache = batch_norm_forward(np.ones((2, 3)), g, b, rm, rv, training=True)
    with raises("batch_norm_backward", r"dy .*\(2, 3\)"):
        batch_norm_backward(np.zeros((3, 2)), cache)
    for shape in [(2, 3), (2, 3, 4), (2, 3, 2, 2, 2)]:
        bn_kernel(True).check_type_errors([rng.standard_normal(shape), g, b, rm, rv])
        bn_kernel(True).check_dy_errors([np.ones(shape), g, b, rm, rv])


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (8, 5), (4, 3, 9), (2, 3, 3, 4, 5)])
def test_batch_norm_parity_with_torch(shape, torch, rng):
    F = torch.nn.functional
    g, b, rm, rv = _bn_args(rng, shape[1])
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    for step in range(4):  # running statistics after several training steps
        x = rng.standard_normal(shape) * (step + 1) + step
        dy = rng.standard_normal(shape)
        y, cache = batch_norm_forward(x, g, b, rm, rv, training=True, momentum=0.3)
        dx, dg, db = batch_norm_backward(dy, cache)
        rm, rv = cache.running_mean, cache.running_var
        tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, g, b))
        ty = F.batch_norm(tx, trm, trv, tg, tb, training=True, momentum=0.3)
        ty.backward(torch.tensor(dy))
        for ours, theirs in [(y, ty.detach()), (dx, tx.grad), (dg, tg.grad), (db, tb.grad),
                             (rm, trm), (rv, trv)]:
            np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-10)
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(shape)
    y, cache = batch_norm_forward(x, g, b, rm, rv, training=False)
    dx, dg, db = batch_norm_backward(dy, cache)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, g, b))
    ty = F.batch_norm(tx, trm, trv, tg, tb, training=False)
    ty.backward(torch.tensor(dy))
    for ours, theirs in [(y, ty.detach()), (dx, tx.grad), (dg, tg.grad), (db, tb.grad)]:
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-10)


# ---- local response norm --------------------------------------------------------------
LRN_CASES = [((2, 5, 3, 4), 1), ((2, 5, 3, 4), 2), ((2, 5, 3, 4), 3), ((1, 6, 2, 3), 4),
             ((2, 4, 2, 2), 5), ((1, 3, 2, 2), 8), ((2, 1, 3, 3), 3), ((3, 7, 5), 4)]


@pytest.mark.parametrize("shape,size", LRN_CASES)
def test_lrn_forward_matches_loop(shape, size, rng):
    x = rng.standard_normal(shape) * 2
    y, _ = local_response_norm_forward(x, size=size, alpha=0.5, beta=0.75, k=1.3)
    np.testing.assert_allclose(y, local_response_norm(x, size, 0.5, 0.75, 1.3), rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("shape,size", [((2, 5, 2, 3), 2), ((1, 6, 2, 2), 3),
                                        ((2, 4, 3), 5), ((1, 3, 2, 2), 8)])
def test_lrn_gradcheck(shape, size, rng):
    x = rng.standard_normal(shape) * 2

    Kernel.of(local_response_norm_forward, local_response_norm_backward, size=size,
              alpha=0.4, beta=0.6, k=1.1).check_gradient([x], rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lrn_dtype_and_hostile_inputs(dtype, rng):
    x = rng.standard_normal((2, 5, 3, 4))
    kernel = Kernel.of(local_response_norm_forward, local_response_norm_backward, size=3)
    kernel.check_dtypes([x], rng, dtypes=(dtype,), rtol=1e-5, atol=1e-6)
    kernel.check_hostile([x.astype(dtype)], rng)


def test_lrn_errors():
    op = "local_response_norm"
    with raises(op, r"x must be at least 3-D.*\(2, 3\)"):
        local_response_norm_forward(np.zeros((2, 3)), size=2)
    with raises(op, "size must be >= 1, got 0"):
        local_response_norm_forward(np.zeros((2, 3, 4)), size=0)
    with raises(op, "size must be an int", TypeError):
        local_response_norm_forward(np.zeros((2, 3, 4)), size=2.0)
    with raises(op, "beta must be a real number", TypeError):
        local_response_norm_forward(np.zeros((2, 3, 4)), size=2, beta="x")
    for name, bad, msg in (("alpha", float("nan"), "a finite number >= 0"),
                           ("alpha", -1e-4, "a finite number >= 0"),
                           ("beta", float("inf"), "a finite number"),
                           ("k", 0.0, "a finite number > 0"), ("k", -2.0, "a finite number > 0"),
                           ("k", float("-inf"), "a finite number > 0")):
        with raises(op, rf"{name} must be {msg}, got {bad}"):
            local_response_norm_forward(np.zeros((2, 3, 4)), size=2, **{name: bad})
    Kernel.of(local_response_norm_forward, local_response_norm_backward,
              size=2).check_dy_errors([np.ones((2, 3, 4))])


@pytest.mark.parametrize("shape,size", [((2, 6, 3, 4), 1), ((2, 6, 3, 4), 2), ((2, 6, 3, 4), 3),
                                        ((2, 6, 3, 4), 4), ((2, 6, 3, 4), 5), ((1, 3, 4), 6)])
def test_lrn_parity_with_torch(shape, size, torch, rng):
    x = rng.standard_normal(shape) * 3
    dy = rng.standard_normal(shape)
    y, cache = local_response_norm_forward(x, size=size, alpha=0.3, beta=0.75, k=2.0)
    dx = local_response_norm_backward(dy, cache)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.local_response_norm(tx, size, alpha=0.3, beta=0.75, k=2.0)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=0, atol=1e-10)
