"""The pooling modules of the pooling issue: MaxPool's ``ties``, SumPool (average pooling
with divisor_override=1, which PyTorch has no module for) and LPPool, against their kernels,
a loop and torch.nn in float64."""

import math

import numpy as np
import pytest
from torch_parity import assert_parity

from convprop.functional import lp_pooling as LP
from convprop.functional import pooling as P
from convprop.layers import Sequential
from convprop.layers import pooling as LPL

SHAPES = {1: (2, 3, 9), 2: (2, 3, 7, 8), 3: (2, 2, 5, 4, 6)}


def _mod(kind, nd):
    return getattr(LPL, f"{kind}{nd}d")


# ----------------------------------------------------------------------------- MaxPool ties

@pytest.mark.parametrize("ties", ["first", "split", "all"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_module_ties(rng, nd, ties):
    x = rng.integers(0, 3, SHAPES[nd]).astype(np.float32)  # many ties
    m = _mod("MaxPool", nd)(3, 2, 1, ceil_mode=True, ties=ties)
    assert m.ties == ties
    assert (f"ties={ties!r}" in repr(m)) == (ties != "first")
    y, cache = m.forward(x)
    fwd, bwd = getattr(P, f"max_pool{nd}d_forward"), getattr(P, f"max_pool{nd}d_backward")
    yk, ck = fwd(x, kernel_size=3, stride=2, padding=1, ceil_mode=True, ties=ties)
    np.testing.assert_array_equal(y, yk)
    assert cache.ties == ties
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = m.backward(dy, cache)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, bwd(dy, ck))
    if ties == "split":
        np.testing.assert_allclose(dx.sum(), dy.sum(), rtol=1e-5)


@pytest.mark.parametrize("ties", ["split", "all"])
def test_max_pool_module_ties_with_return_indices(rng, ties):
    x = rng.integers(0, 2, (2, 2, 6, 6)).astype(float)
    (y, idx), cache = LPL.MaxPool2d(2, return_indices=True, ties=ties).forward(x)
    (y0, idx0), _ = LPL.MaxPool2d(2, return_indices=True).forward(x)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(idx, idx0)  # PyTorch's (first) switches under any policy
    dx = LPL.MaxPool2d(2, return_indices=True, ties=ties).backward(np.ones_like(y), cache)
    assert dx.sum() == (y.size if ties == "split" else cache.tied.sum())


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_module_first_is_torch(torch, rng, nd):
    x = rng.integers(0, 3, SHAPES[nd]).astype(float)
    assert_parity(torch, _mod("MaxPool", nd)(3, 2, 1, ties="first"),
                  getattr(torch.nn, f"MaxPool{nd}d")(3, 2, 1), x, rng=rng)


def test_max_pool_module_bad_ties():
    with pytest.raises(ValueError, match=r"^MaxPool2d: ties must be one of 'first', 'split', "
                                         r"'all', got 'mean'"):
        LPL.MaxPool2d(2, ties="mean")


# ----------------------------------------------------------------------------- SumPool

def sum_pool_loop(x, k, s, p, ceil):
    """Sum over each window of the zero-padded input (windows per PyTorch's output size)."""
    nd, s = x.ndim - 2, k if s is None else s
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [(p, p + k)] * nd)
    out = []
    for n in x.shape[2:]:
        o = ((-(-(n + 2 * p - k) // s)) if ceil else (n + 2 * p - k) // s) + 1
        out.append(o - 1 if ceil and (o - 1) * s >= n + p else o)
    y = np.zeros(x.shape[:2] + tuple(out))
    for o in np.ndindex(*out):
        box = xp[(slice(None), slice(None), *(slice(a * s, a * s + k) for a in o))]
        y[(slice(None), slice(None), *o)] = box.sum(axis=tuple(range(2, x.ndim)))
    return y


SUM_CASES = [(2, None, 0, False), (3, 1, 1, False), (3, 2, 1, True), (2, 3, 0, False)]


@pytest.mark.parametrize("k,s,p,ceil", SUM_CASES)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_sum_pool_module(rng, nd, k, s, p, ceil):
    x = rng.standard_normal(SHAPES[nd])
    m = _mod("SumPool", nd)(k, s, p, ceil)
    assert m.divisor_override == 1 and "divisor" not in repr(m)
    y, cache = m.forward(x)
    np.testing.assert_allclose(y, sum_pool_loop(x, k, s, p, ceil), rtol=1e-12, atol=1e-12)
    fwd = getattr(P, f"avg_pool{nd}d_forward")
    np.testing.assert_array_equal(y, fwd(x, kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
                                         divisor_override=1)[0])
    if p == 0 and not ceil:  # every window whole: the average times the window size
        np.testing.assert_allclose(y, fwd(x, kernel_size=k, stride=s)[0] * k ** nd,
                                   rtol=1e-12, atol=1e-12)
    # backward: dy to every element of its window (overlaps add): the adjoint of the sum
    dy = rng.standard_normal(y.shape)
    dx = m.backward(dy, cache)
    np.testing.assert_allclose(np.vdot(dx, x), np.vdot(dy, y), rtol=1e-12)


@pytest.mark.parametrize("nd", [2, 3])  # torch's avg_pool1d has no divisor_override
def test_sum_pool_module_torch_parity(torch, rng, nd):
    x = rng.standard_normal(SHAPES[nd])
    assert_parity(torch, _mod("SumPool", nd)(3, 2, 1, True),
                  getattr(torch.nn, f"AvgPool{nd}d")(3, 2, 1, True, divisor_override=1), x,
                  rng=rng)


def test_sum_pool_module_errors():
    with pytest.raises(ValueError, match="^SumPool2d: padding must be at most half"):
        LPL.SumPool2d(2, padding=2)
    with pytest.raises(ValueError, match="^SumPool1d: kernel_size must be >= 1"):
        LPL.SumPool1d(0)


# ----------------------------------------------------------------------------- LPPool

LP_CASES = [(1, 2, None, False), (2, 3, 2, True), (3.5, (2, 3, 1), (1, 2, 1), True),
            (math.inf, 2, 1, False)]


@pytest.mark.parametrize("p,k,s,ceil", LP_CASES)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lp_pool_module_torch_parity(torch, rng, nd, p, k, s, ceil):
    cut = (lambda v: v if not isinstance(v, tuple) else v[0] if nd == 1 else v[:nd])
    x = rng.uniform(0.1, 2.0, SHAPES[nd])
    x[0, 0] = 0.0  # windows summing to 0: zero gradient in both
    m = _mod("LPPool", nd)(p, cut(k), cut(s), ceil)
    assert_parity(torch, m, getattr(torch.nn, f"LPPool{nd}d")(p, cut(k), cut(s), ceil), x,
                  rng=rng)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lp_pool_module_is_the_kernel(rng, nd):
    x = rng.uniform(0.1, 2.0, SHAPES[nd]).astype(np.float32)
    m = _mod("LPPool", nd)(2, 2)
    assert repr(m).endswith("(norm_type=2.0, kernel_size=" + repr((2,) * nd) + ", stride="
                            + repr((2,) * nd) + ", ceil_mode=False)")
    y, cache = m.forward(x)
    yk, ck = getattr(LP, f"lp_pool{nd}d_forward")(x, norm_type=2, kernel_size=2)
    np.testing.assert_array_equal(y, yk)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = m.backward(dy, cache)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, getattr(LP, f"lp_pool{nd}d_backward")(dy, ck))


def test_lp_pool_module_errors():
    with pytest.raises(ValueError, match=r"^LPPool2d: norm_type must be > 0 \(or inf\), got"):
        LPL.LPPool2d(0, 2)
    with pytest.raises(TypeError, match="^LPPool1d: norm_type must be a real number"):
        LPL.LPPool1d("2", 2)
    with pytest.raises(ValueError, match="^LPPool3d: stride must be >= 1"):
        LPL.LPPool3d(2, 2, 0)


def test_pooling_modules_in_a_sequential(rng):
    """The new modules chain like the others (each pops its own cache)."""
    net = Sequential(LPL.SumPool2d(2), LPL.LPPool2d(3, 2, 1), LPL.MaxPool2d(2, ties="split"))
    x = rng.uniform(0.1, 1.0, (2, 3, 12, 12))
    y, cache = net.forward(x, training=True)
    assert y.shape == (2, 3, 2, 2)
    dx = net.backward(np.ones_like(y), cache)
    assert dx.shape == x.shape and np.all(np.isfinite(dx))
