"""Softmax cross-entropy with class-probability targets (N, K): PyTorch's rule for float
targets, ``loss_n = -sum_k t_nk log softmax(z_n)_k``, rows not renormalised (NEM's noisy
one-hot targets need neither sum 1 nor non-negativity)."""

import math
import warnings

import numpy as np
import pytest
from contract import Kernel, raises

from convprop.functional.loss import (MSECache, SoftmaxCrossEntropyCache, mse_backward,
                                      mse_forward, softmax_cross_entropy_backward,
                                      softmax_cross_entropy_forward)
from convprop.layers.loss import CrossEntropyLoss


def soft_kernel(**kw):
    return Kernel.of(softmax_cross_entropy_forward, softmax_cross_entropy_backward,
                     names=("logits",), **kw)


def ref_soft_ce(logits, targets):
    """Loop oracle: -sum_k t_k (z_k - logsumexp(z)), one row at a time."""
    out = []
    for row, t in zip(logits, targets, strict=True):
        m = max(float(v) for v in row)
        lse = m + math.log(sum(math.exp(float(v) - m) for v in row))
        out.append(-sum(float(tk) * (float(zk) - lse) for zk, tk in zip(row, t)))
    return np.array(out)


def _noisy_targets(rng, N, K):
    t = np.eye(K)[rng.integers(0, K, N)]
    return t + rng.uniform(-0.3, 0.3, (N, K))   # rows off the simplex, some entries < 0


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("N,K", [(5, 4), (1, 3), (4, 1), (7, 10)])
def test_forward_matches_loop(reduction, N, K, rng):
    z, t = rng.standard_normal((N, K)) * 3, _noisy_targets(rng, N, K)
    per = ref_soft_ce(z, t)
    want = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    soft_kernel(reduction=reduction).check_forward([z, t], lambda *a: want, rtol=1e-13,
                                                   atol=1e-13)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradcheck(reduction, rng):
    soft_kernel(reduction=reduction).check_gradient([rng.standard_normal((4, 5)),
                                                     _noisy_targets(rng, 4, 5)], rng)


def test_one_hot_probabilities_equal_class_indices(rng):
    z = rng.standard_normal((6, 4))
    idx = rng.integers(0, 4, 6)
    dy = rng.standard_normal(6)
    lh, ch = softmax_cross_entropy_forward(z, idx, reduction="none")
    ls, cs = softmax_cross_entropy_forward(z, np.eye(4)[idx], reduction="none")
    np.testing.assert_allclose(ls, lh, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(softmax_cross_entropy_backward(dy, cs),
                               softmax_cross_entropy_backward(dy, ch), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_and_hostile_inputs(dtype, reduction, rng):
    inputs = [rng.standard_normal((6, 5)), _noisy_targets(rng, 6, 5)]
    kernel = soft_kernel(reduction=reduction)
    kernel.check_dtypes(inputs, rng, dtypes=(dtype,))
    kernel.check_hostile([a.astype(dtype) for a in inputs], rng)


def test_large_logits_stay_finite():
    z = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]])
    t = np.array([[0.1, 0.8, 0.1], [0.0, 0.5, 0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, cache = softmax_cross_entropy_forward(z, t, reduction="none")
        g = softmax_cross_entropy_backward(np.ones(2), cache)
    np.testing.assert_allclose(loss, [0.8 * 1e4 + 0.1 * 2e4, math.log(3.0)], rtol=1e-12)
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_parity_with_torch(reduction, torch, rng):
    z = rng.standard_normal((6, 5)) * 5
    z[0] += 1e4
    t = _noisy_targets(rng, 6, 5)
    t[1] = rng.dirichlet(np.ones(5))          # a true probability row too
    dy = rng.standard_normal(6) if reduction == "none" else rng.standard_normal()
    loss, cache = softmax_cross_entropy_forward(z, t, reduction=reduction)
    g = softmax_cross_entropy_backward(dy, cache)
    tz = torch.tensor(z, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tz, torch.tensor(t), reduction=reduction)
    tl.backward(torch.tensor(dy, dtype=torch.float64))
    np.testing.assert_allclose(loss, tl.detach().numpy(), rtol=1e-13, atol=1e-10)
    np.testing.assert_allclose(g, tz.grad.numpy(), rtol=0, atol=1e-12)


def test_module_takes_probabilities(rng):
    z, t = rng.standard_normal((3, 4)), _noisy_targets(rng, 3, 4)
    loss, cache = CrossEntropyLoss().forward(z, t)
    np.testing.assert_allclose(loss, ref_soft_ce(z, t).mean(), rtol=1e-13)
    assert CrossEntropyLoss().backward(1.0, cache).shape == (3, 4)


def test_errors(rng):
    z = rng.standard_normal((3, 4))
    with raises("softmax_cross_entropy", r"probability targets must have the logits' shape"):
        softmax_cross_entropy_forward(z, np.zeros((3, 5)))
    with raises("softmax_cross_entropy", r"probability targets must have the logits' dtype",
                TypeError):
        softmax_cross_entropy_forward(z, np.zeros((3, 4), np.float32))
    bad = np.zeros((3, 4))
    bad[1, 2] = np.nan
    with raises("softmax_cross_entropy", "probability targets must be finite"):
        softmax_cross_entropy_forward(z, bad)
    with raises("softmax_cross_entropy", r"targets must be an integer.*float64 of shape "
                r"\(3, 4, 1\)", TypeError):
        softmax_cross_entropy_forward(z, np.zeros((3, 4, 1)))
    soft_kernel().check_dy_errors([z, np.zeros((3, 4))])


def test_backwards_check_their_cache(rng):
    _, ce = softmax_cross_entropy_forward(rng.standard_normal((2, 3)), np.array([0, 1]))
    _, ms = mse_forward(np.zeros(3), np.ones(3))
    with raises("softmax_cross_entropy_backward", "cache must be the SoftmaxCrossEntropyCache",
                TypeError):
        softmax_cross_entropy_backward(1.0, ms)
    with raises("mse_backward", "cache must be the MSECache", TypeError):
        mse_backward(1.0, ce)
    assert isinstance(ce, SoftmaxCrossEntropyCache) and isinstance(ms, MSECache)
