"""Adaptive and global average / max pooling in 1, 2 and 3 dimensions through the kernel
contract: loop oracles (PyTorch's bins, which overlap when O does not divide L), gradient
checks, hostile inputs, dtypes, errors; global pooling's PyTorch parity (the adaptive ones'
is in the randomized sweep). The tie policies (``ties``) are tested in test_adaptive_ties.py."""

import math

import numpy as np
import pytest
from contract import Kernel, raises

import convprop.functional as F
import loops


def _ops(kind, nd):
    return getattr(F, f"{kind}_pool{nd}d_forward"), getattr(F, f"{kind}_pool{nd}d_backward")


def _indices(cache):
    return cache.indices


def kernel(kind, nd, **kw):
    return Kernel.of(*_ops(kind, nd), extras=_indices if "max" in kind else None, **kw)


def _distinct(rng, shape):
    """Values at least 0.05 apart, so no tie sits within a finite-difference step."""
    n = math.prod(shape)
    return (rng.permutation(n).reshape(shape) * 0.05 - n * 0.025).astype(np.float64)


ADAPTIVE_CASES = [
    ((2, 3, 7), 3),                     # L=7 -> 3: neighbouring bins overlap
    ((2, 2, 4), 6),                     # O > L: bins repeat input elements
    ((1, 1, 5), 5),                     # identity, batch 1, channel 1
    ((2, 2, 8), 4),                     # O divides L: plain pooling
    ((1, 2, 5), 1),                     # one bin: global pooling
    ((2, 3, 7, 5), (3, 2)),
    ((1, 2, 3, 4), (5, 6)),
    ((2, 2, 6, 9), (None, 4)),          # None keeps that axis
    ((1, 1, 5, 5), 1),
    ((2, 2, 5, 4, 7), (2, 3, 3)),
    ((1, 2, 2, 3, 3), (3, 4, 5)),
    ((1, 1, 3, 4, 5), (None, 2, None)),
]
IDS = [f"{s}->{o}" for s, o in ADAPTIVE_CASES]
KINDS = ["adaptive_avg", "adaptive_max"]


def _oracle(kind, out):
    if kind == "adaptive_avg":
        return lambda x: loops.adaptive_avg_pool(x, output_size=out)
    return lambda x: loops.adaptive_max_pool(x, output_size=out)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape,out", ADAPTIVE_CASES, ids=IDS)
def test_adaptive_forward_matches_loop(kind, shape, out, rng):
    kernel(kind, len(shape) - 2, output_size=out).check_forward(
        [rng.standard_normal(shape)], _oracle(kind, out), atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape,out", ADAPTIVE_CASES, ids=IDS)
def test_adaptive_gradcheck(kind, shape, out, rng):
    x = _distinct(rng, shape)
    kernel(kind, len(shape) - 2, output_size=out).check_gradient([x], rng)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_max_ties_first_max_wins(nd, rng):
    shape = (2, 2, *(7, 5, 4)[:nd])
    for x in (np.full(shape, 0.5), rng.integers(0, 2, shape).astype(float)):
        for out in (3, 1, 8):
            y, cache = _ops("adaptive_max", nd)[0](x, output_size=out)
            ry, ridx = loops.adaptive_max_pool(x, output_size=out)
            np.testing.assert_array_equal(y, ry)
            np.testing.assert_array_equal(cache.indices, ridx)
            dy = rng.standard_normal(y.shape)
            np.testing.assert_allclose(_ops("adaptive_max", nd)[1](dy, cache),
                                       loops.scatter_at_indices(dy, ridx, shape), atol=1e-12)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", ["adaptive_max", "global_max"])
def test_max_nan_is_the_maximum(nd, kind, rng, torch):
    """As PyTorch: a NaN in a bin is its maximum, the last NaN in row-major order holding the
    index (and the gradient)."""
    shape = (2, 3, *(7, 5, 4)[:nd])
    x = rng.integers(0, 3, shape).astype(float)
    x[rng.random(shape) < 0.2] = np.nan
    fwd, bwd = _ops(kind, nd)
    tfn = getattr(torch.nn.functional, f"adaptive_max_pool{nd}d")
    for out in ((3, 1, 8) if kind == "adaptive_max" else (None,)):
        y, cache = fwd(x) if out is None else fwd(x, output_size=out)
        if out is None:
            ry, ridx = loops.global_max_pool(x)
            ty, ti = (t.flatten(1) for t in tfn(torch.tensor(x), 1, return_indices=True))
        else:
            ry, ridx = loops.adaptive_max_pool(x, output_size=out)
            ty, ti = tfn(torch.tensor(x), out, return_indices=True)
        np.testing.assert_array_equal(y, ry)
        np.testing.assert_array_equal(cache.indices, ridx)
        np.testing.assert_array_equal(cache.indices, ti.numpy())
        dy = rng.standard_normal(y.shape)
        np.testing.assert_array_equal(bwd(dy, cache),
                                      loops.scatter_at_indices(dy, ridx.reshape(*y.shape[:2], -1),
                                                               shape))


GLOBAL_SHAPES = [(2, 3, 7), (1, 1, 4), (2, 3, 4, 5), (1, 2, 1, 1), (2, 2, 3, 4, 2),
                 (1, 1, 2, 1, 3)]
GLOBAL_KINDS = ["global_avg", "global_max"]


@pytest.mark.parametrize("kind", GLOBAL_KINDS)
@pytest.mark.parametrize("shape", GLOBAL_SHAPES)
def test_global_forward_and_gradcheck(kind, shape, rng):
    k = kernel(kind, len(shape) - 2)
    oracle = loops.global_avg_pool if kind == "global_avg" else loops.global_max_pool
    k.check_forward([rng.standard_normal(shape)], oracle, rtol=1e-13, atol=1e-14)
    k.check_gradient([_distinct(rng, shape)], rng)


def test_global_max_ties_first_max_wins():
    x = np.zeros((1, 2, 3, 3))
    x[0, 1, 2, 0] = x[0, 1, 1, 2] = 1.0
    y, cache = F.global_max_pool2d_forward(x)
    np.testing.assert_array_equal(cache.indices, [[0, 5]])
    dx = F.global_max_pool2d_backward(np.array([[2.0, 3.0]]), cache)
    assert dx[0, 0, 0, 0] == 2.0 and dx[0, 1, 1, 2] == 3.0 and np.count_nonzero(dx) == 2


# ----------------------------------------------------------------------------- hostile, dtype

OPS = {
    "adaptive_avg": dict(output_size=3),
    "adaptive_max": dict(output_size=3),
    "global_avg": {},
    "global_max": {},
}
GRID = [(nd, kind) for nd in (1, 2, 3) for kind in OPS]


@pytest.mark.parametrize("nd,kind", GRID)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_hostile_input(nd, kind, dtype, rng):
    k = kernel(kind, nd, **OPS[kind])
    x = rng.standard_normal((2, 3, *(7, 6, 5)[:nd]))
    k.check_dtypes([x], rng, dtypes=(dtype,), rtol=1e-6, atol=1e-6)
    k.check_hostile([x.astype(dtype)], rng)


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("nd,kind", GRID)
def test_errors(nd, kind):
    fwd, _ = _ops(kind, nd)
    op = f"{kind}_pool{nd}d"
    x = np.zeros((1, 2, *(4,) * nd))
    call = (lambda a, **kw: fwd(a, **{**OPS[kind], **kw}))
    with raises(op, f"x must be {nd + 2}-D"):
        call(np.zeros((2, *(4,) * nd)))
    with raises(op, "x must have a non-empty spatial extent"):
        call(np.zeros((1, 2, *(4,) * (nd - 1), 0)))
    if kind.startswith("adaptive"):
        with raises(op, "output_size must be >= 1"):
            call(x, output_size=0)
        with raises(op, "output_size must be an int or", TypeError):
            call(x, output_size=(2,) * (nd + 1))
    kernel(kind, nd, **OPS[kind]).check_type_errors([x])
    kernel(kind, nd, **OPS[kind]).check_dy_errors([x])


def test_global_avg_pool2d_errors():
    with raises("global_avg_pool2d", "x must be 4-D"):
        F.global_avg_pool2d_forward(np.zeros((2, 3)))
    _, cache = F.global_avg_pool2d_forward(np.zeros((2, 3, 2, 2)))
    with raises("global_avg_pool2d_backward", "dy must have shape"):
        F.global_avg_pool2d_backward(np.zeros((2, 4)), cache)


# ----------------------------------------------------------------------------- PyTorch parity

@pytest.mark.parametrize("kind", GLOBAL_KINDS)
@pytest.mark.parametrize("shape", [(3, 4, 7), (3, 4, 5, 6), (2, 3, 3, 4, 5)])
def test_global_pool_torch_parity(torch, rng, kind, shape):
    nd = len(shape) - 2
    x = rng.standard_normal(shape)
    y, cache = _ops(kind, nd)[0](x)
    tx = torch.tensor(x, requires_grad=True)
    if kind == "global_avg":
        ty = getattr(torch.nn.functional, f"adaptive_avg_pool{nd}d")(tx, 1).flatten(1)
    else:
        ty, ti = getattr(torch.nn.functional, f"adaptive_max_pool{nd}d")(tx, 1,
                                                                         return_indices=True)
        ty = ty.flatten(1)
        np.testing.assert_array_equal(cache.indices, ti.flatten(1).numpy())
    dy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(_ops(kind, nd)[1](dy, cache), tx.grad.numpy(), rtol=0,
                               atol=1e-10)
