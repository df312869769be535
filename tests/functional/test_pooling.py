"""Max and average pooling in 1, 2 and 3 dimensions: loop oracles, gradient checks, ties,
hostile inputs and dtypes through the kernel contract, errors, PyTorch parity (2-D grid here;
1-D and 3-D in the randomized sweep)."""

import math

import numpy as np
import pytest
from contract import Kernel, ntuple, raises

import convprop.functional as F
from convprop import reference as R
from convprop.functional import avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, \
    max_pool2d_forward

MAX = {1: (F.max_pool1d_forward, F.max_pool1d_backward),
       2: (F.max_pool2d_forward, F.max_pool2d_backward),
       3: (F.max_pool3d_forward, F.max_pool3d_backward)}
AVG = {1: (F.avg_pool1d_forward, F.avg_pool1d_backward),
       2: (F.avg_pool2d_forward, F.avg_pool2d_backward),
       3: (F.avg_pool3d_forward, F.avg_pool3d_backward)}


def _indices(cache):
    return cache.indices


def max_kernel(nd, **kw):
    return Kernel.of(*MAX[nd], extras=_indices, **kw)


def avg_kernel(nd, **kw):
    return Kernel.of(*AVG[nd], **kw)


def _distinct(rng, shape):
    """Values at least 0.05 apart, so no tie sits within a finite-difference step."""
    n = math.prod(shape)
    return (rng.permutation(n).reshape(shape) * 0.05 - n * 0.025).astype(np.float64)


def _kw(k, s, p, d, ceil):
    return dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)


# (x shape, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    ((2, 3, 8), 2, 2, 0, 1, False),                # tiling
    ((2, 2, 9), 3, 2, 1, 1, False),                # overlapping, padded
    ((1, 1, 7), 3, 1, 1, 1, False),                # overlap 3x, batch 1, channel 1
    ((2, 2, 7), 2, 2, 0, 1, False),                # non-tiling: the last element unused
    ((1, 3, 9), 2, 3, 0, 1, False),                # stride > kernel: gaps
    ((2, 2, 9), 3, 1, 1, 2, False),                # dilation
    ((1, 2, 8), 3, 2, 1, 1, True),                 # ceil_mode, last window past padding
    ((2, 3, 8, 8), 2, 2, 0, 1, False),             # tiling
    ((2, 2, 7, 9), 3, 2, 1, 1, False),             # overlapping, padded, non-square
    ((1, 1, 7, 7), 3, 1, 1, 1, False),             # overlap 3x, batch 1, channel 1
    ((2, 2, 7, 6), 2, 2, 0, 1, False),             # non-tiling: last row / column unused
    ((2, 2, 5, 6), 1, 1, 0, 1, False),             # kernel 1
    ((1, 3, 9, 8), 2, 3, 0, 1, False),             # stride > kernel: gaps
    ((2, 2, 9, 9), 3, 1, 1, 2, False),             # dilation
    ((1, 2, 8, 7), 3, 2, 1, 1, True),              # ceil_mode, last window past padding
    ((2, 1, 6, 7), 2, 2, 0, 1, True),              # ceil_mode without padding
    ((1, 2, 10, 9), (3, 2), (2, 1), (1, 0), (1, 2), True),  # per-axis hyperparameters
    ((1, 1, 5, 11), (1, 4), (1, 3), (0, 2), 1, False),      # non-square kernel, wide pad
    ((2, 2, 4, 4, 4), 2, 2, 0, 1, False),          # tiling
    ((1, 2, 5, 4, 6), 3, 2, 1, 1, False),          # overlapping, padded, non-cubic
    ((1, 1, 4, 4, 4), 3, 1, 1, 1, False),          # overlap 3x per axis, batch 1, channel 1
    ((2, 1, 5, 3, 5), 2, 2, 0, 1, False),          # non-tiling
    ((2, 2, 3, 4, 5), 1, 2, 0, 1, False),          # kernel 1, stride 2
    ((1, 2, 5, 5, 4), 3, 1, 1, 2, False),          # dilation
    ((1, 2, 5, 4, 5), 3, 2, 1, 1, True),           # ceil_mode
    ((1, 2, 6, 5, 7), (3, 1, 2), (2, 1, 3), (1, 0, 1), (1, 2, 1), True),  # per-axis
]
MAX_IDS = [f"{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}-d{c[4]}-ceil{int(c[5])}" for c in MAX_CASES]


@pytest.mark.parametrize("shape,k,s,p,d,ceil", MAX_CASES, ids=MAX_IDS)
def test_max_pool_forward_matches_loop(rng, shape, k, s, p, d, ceil):
    kw = _kw(k, s, p, d, ceil)
    max_kernel(len(shape) - 2, **kw).check_forward(
        [rng.standard_normal(shape)], lambda x: R.max_pool(x, **kw), rtol=0, atol=0)


@pytest.mark.parametrize("shape,k,s,p,d,ceil", MAX_CASES, ids=MAX_IDS)
def test_max_pool_gradcheck(rng, shape, k, s, p, d, ceil):
    x = _distinct(rng, (1,) + shape[1:])
    max_kernel(len(shape) - 2, **_kw(k, s, p, d, ceil)).check_gradient([x], rng)


TIE_CONFIGS = {
    # (2, 2, 0, 1, False) is the disjoint-windows backward (direct writes, uncovered tail)
    1: [(3, 1, 1, 1, False), (2, 2, 0, 1, True), (3, 2, 1, 2, True), (2, 2, 0, 1, False)],
    2: [(3, 1, 1, 1, False), (2, 2, 0, 1, True), (3, 2, 1, 2, True), (2, 2, 0, 1, False),
        ((3, 2), (3, 2), 0, 1, False)],
    3: [(3, 1, 1, 1, False), (2, 2, 0, 1, True), (2, 2, 0, 1, False),
        ((3, 1, 2), (2, 1, 2), (1, 0, 0), 1, True)],
}
TIE_SHAPES = {1: (2, 3, 9), 2: (2, 3, 9, 8), 3: (2, 2, 5, 4, 5)}


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("maker", ["equal", "integers"])
def test_max_pool_ties_first_max_wins(rng, nd, maker):
    shape = TIE_SHAPES[nd]
    x = np.full(shape, 1.5) if maker == "equal" else rng.integers(0, 3, shape).astype(float)
    fwd, bwd = MAX[nd]
    for k, s, p, d, ceil in TIE_CONFIGS[nd]:
        y, cache = fwd(x, **_kw(k, s, p, d, ceil))
        ry, ridx = R.max_pool(x, **_kw(k, s, p, d, ceil))
        np.testing.assert_array_equal(y, ry)
        np.testing.assert_array_equal(cache.indices, ridx)
        dy = rng.standard_normal(y.shape)
        np.testing.assert_allclose(bwd(dy, cache), R.scatter_at_indices(dy, ridx, shape),
                                   rtol=0, atol=1e-12)


NAN_CONFIGS = [(3, 1, 1, 1, False), (2, 2, 0, 1, False), (3, 2, 1, 2, True)]


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("k,s,p,d,ceil", NAN_CONFIGS)
def test_max_pool_nan_is_the_maximum(rng, nd, k, s, p, d, ceil, torch):
    """As PyTorch: a NaN in a window is its maximum (the last NaN in window order holds the
    index), so y == x[indices] and the gradient goes to the NaN, not to a finite neighbour."""
    shape = TIE_SHAPES[nd]
    x = rng.integers(0, 3, shape).astype(float)
    x[rng.random(shape) < 0.15] = np.nan
    kw = _kw(k, s, p, d, ceil)
    y, cache = MAX[nd][0](x, **kw)
    ry, ridx = R.max_pool(x, **kw)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(cache.indices, ridx)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(MAX[nd][1](dy, cache), R.scatter_at_indices(dy, ridx, shape),
                               rtol=0, atol=1e-12)
    ty, ti = getattr(torch.nn.functional, f"max_pool{nd}d")(torch.tensor(x), **kw,
                                                           return_indices=True)
    np.testing.assert_array_equal(cache.indices, ti.numpy())


@pytest.mark.parametrize("shape,k,s", [((1, 2, 9, 8, 7), (7, 7, 6), 1),
                                     ((2, 1, 19, 18), 17, 1)])
def test_max_pool_more_than_256_kernel_offsets(rng, shape, k, s, torch):
    """Switches of a window of more than 256 offsets no longer fit the compact uint8 form."""
    nd = len(shape) - 2
    x = rng.integers(0, 50, shape).astype(float)  # ties too
    y, cache = MAX[nd][0](x, kernel_size=k, stride=s)
    ry, ridx = R.max_pool(x, kernel_size=k, stride=s)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(cache.indices, ridx)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(MAX[nd][1](dy, cache), R.scatter_at_indices(dy, ridx, shape),
                               rtol=0, atol=1e-12)
    ti = getattr(torch.nn.functional, f"max_pool{nd}d")(torch.tensor(x), k, s,
                                                       return_indices=True)[1]
    np.testing.assert_array_equal(cache.indices, ti.numpy())


def test_max_pool_overlap_accumulates():
    # one large value under 4 overlapping 2x2 windows receives all four upstream gradients
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0
    y, cache = max_pool2d_forward(x, kernel_size=2, stride=1)
    dx = max_pool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    expect = np.zeros((1, 1, 3, 3))
    expect[0, 0, 1, 1] = 10.0
    np.testing.assert_array_equal(dx, expect)


# (x shape, kernel, stride, padding, ceil_mode)
AVG_CASES = [
    ((2, 3, 8), 2, 2, 0, False),
    ((2, 2, 9), 3, 2, 1, False),
    ((1, 1, 7), 3, 1, 1, False),
    ((2, 2, 7), 2, 2, 0, False),
    ((1, 2, 8), 3, 2, 1, True),
    ((1, 2, 5), 4, 3, 2, True),
    ((2, 3, 8, 8), 2, 2, 0, False),
    ((2, 2, 7, 9), 3, 2, 1, False),
    ((1, 1, 7, 7), 3, 1, 1, False),
    ((2, 2, 7, 6), 2, 2, 0, False),
    ((2, 2, 5, 6), 1, 1, 0, False),
    ((1, 3, 9, 8), 2, 3, 0, False),
    ((1, 2, 8, 7), 3, 2, 1, True),
    ((2, 1, 6, 7), 2, 2, 0, True),
    ((1, 2, 5, 5), 4, 3, 2, True),
    ((1, 2, 10, 9), (3, 2), (2, 1), (1, 0), True),
    ((2, 2, 4, 4, 4), 2, 2, 0, False),
    ((1, 2, 5, 4, 6), 3, 2, 1, False),
    ((1, 1, 5, 3, 5), 2, 2, 0, False),
    ((1, 2, 5, 4, 5), 3, 2, 1, True),
    ((1, 2, 6, 5, 7), (3, 1, 2), (2, 1, 3), (1, 0, 1), True),
]
AVG_IDS = [f"{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}-ceil{int(c[4])}" for c in AVG_CASES]


def _avg_kw(k, s, p, ceil, include_pad, divisor=None):
    return dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
                count_include_pad=include_pad, divisor_override=divisor)


@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("shape,k,s,p,ceil", AVG_CASES, ids=AVG_IDS)
def test_avg_pool_forward_matches_loop(rng, shape, k, s, p, ceil, include_pad):
    kw = _avg_kw(k, s, p, ceil, include_pad)
    avg_kernel(len(shape) - 2, **kw).check_forward(
        [rng.standard_normal(shape)], lambda x: R.avg_pool(x, **kw), atol=1e-14)


@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("shape,k,s,p,ceil", AVG_CASES, ids=AVG_IDS)
def test_avg_pool_gradcheck(rng, shape, k, s, p, ceil, include_pad):
    x = rng.standard_normal((1,) + shape[1:])
    avg_kernel(len(shape) - 2, **_avg_kw(k, s, p, ceil, include_pad)).check_gradient([x], rng)


# divisor_override replaces every divisor (1: sum pooling), padding and ceil_mode included
DIVISOR_CASES = [((2, 2, 9), 3, 2, 1, True, 1), ((1, 2, 7, 6), 3, 2, 1, True, 5),
                 ((2, 1, 6, 5), 2, 1, 0, False, 3), ((1, 2, 4, 5, 3), 2, 1, 1, True, 7)]


@pytest.mark.parametrize("shape,k,s,p,ceil,divisor", DIVISOR_CASES)
def test_avg_pool_divisor_override(rng, shape, k, s, p, ceil, divisor):
    kw = _avg_kw(k, s, p, ceil, True, divisor)
    kernel = avg_kernel(len(shape) - 2, **kw)
    kernel.check_forward([rng.standard_normal(shape)], lambda x: R.avg_pool(x, **kw),
                         atol=1e-14)
    kernel.check_gradient([rng.standard_normal(shape)], rng)


# ----------------------------------------------------------------------------- hostile input, dtype

def _pool_kernels(nd):
    return {
        "max": max_kernel(nd, kernel_size=3, stride=2, padding=1, ceil_mode=True),
        "avg": avg_kernel(nd, kernel_size=3, stride=2, padding=1, count_include_pad=False),
        "avg_divisor": avg_kernel(nd, kernel_size=2, stride=1, divisor_override=3),
    }


HOSTILE_SHAPES = {1: (2, 3, 7), 2: (2, 3, 7, 6), 3: (2, 2, 5, 4, 3)}
POOL_GRID = [(nd, op) for nd in (1, 2, 3) for op in ("max", "avg", "avg_divisor")]


@pytest.mark.parametrize("nd,op", POOL_GRID)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_hostile_input(rng, nd, op, dtype):
    kernel = _pool_kernels(nd)[op]
    x = rng.standard_normal(HOSTILE_SHAPES[nd])
    kernel.check_dtypes([x], rng, dtypes=(dtype,), rtol=1e-6, atol=1e-6)
    kernel.check_hostile([x.astype(dtype)], rng)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_cache_does_not_alias_input(rng, nd):
    x = rng.standard_normal((1, 2, *(4,) * nd))
    y, cache = MAX[nd][0](x, kernel_size=2)
    x[...] = 0.0  # the caller reuses its buffer: the cached switches must not change
    dy = np.ones_like(y)
    assert MAX[nd][1](dy, cache).sum() == dy.sum()


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_pooling_errors(kind, nd):
    fwd, bwd = (MAX if kind == "max" else AVG)[nd]
    name, sp = f"{kind}_pool{nd}d", (6,) * nd
    many = "a pair" if nd == 2 else f"a tuple of {nd}"
    x = np.zeros((1, 1, *sp))
    for exc, match, arg, kw in [
        (ValueError, f"x must be {nd + 2}-D", np.zeros((1, *sp)), dict(kernel_size=2)),
        (ValueError, "padding must be at most half", x, dict(kernel_size=3, padding=2)),
        (ValueError, "kernel_size must be >= 1", x, dict(kernel_size=0)),
        (ValueError, "stride must be >= 1", x, dict(kernel_size=2, stride=0)),
        (TypeError, f"kernel_size must be an int or {many}", x, dict(kernel_size=2.0)),
        (ValueError, "the 7-wide window", x, dict(kernel_size=7)),
        (TypeError, "ceil_mode must be a bool", x, dict(kernel_size=2, ceil_mode="yes")),
    ]:
        with raises(name, match, exc):
            fwd(arg, **kw)
    if kind == "avg":
        with raises(name, "divisor_override must be >= 1"):
            fwd(x, kernel_size=2, divisor_override=0)
        with raises(name, "count_include_pad must be a bool", TypeError):
            fwd(x, kernel_size=2, count_include_pad=None)
    _, cache = fwd(x, kernel_size=2)
    with raises(f"{name}_backward", rf"dy must have shape \({', '.join(['1', '1'] + ['3'] * nd)}"
                                    r"\)"):
        bwd(np.zeros((1, 1, *(3,) * (nd - 1), 4)), cache)
    kernel = (max_kernel if kind == "max" else avg_kernel)(nd, kernel_size=2)
    kernel.check_type_errors([x])
    kernel.check_dy_errors([x])


# ----------------------------------------------------------------------------- PyTorch parity

def _torch_grid():
    out = []
    for shape in [(2, 3, 7, 7), (1, 2, 8, 11), (2, 1, 5, 6)]:
        for k in [1, 2, 3, (2, 3)]:
            for s in [None, 1, 2, 3]:
                for p in [0, 1]:
                    for ceil in [False, True]:
                        if p > min(ntuple(k, 2)) // 2:
                            continue
                        out.append((shape, k, s, p, ceil))
    return out


@pytest.mark.parametrize("dilation", [1, 2])
def test_max_pool_torch_parity(torch, rng, dilation):
    F_ = torch.nn.functional
    for shape, k, s, p, ceil in _torch_grid():
        for x in (rng.standard_normal(shape), rng.integers(0, 3, shape).astype(np.float64)):
            kw = _kw(k, s, p, dilation, ceil)
            y, cache = max_pool2d_forward(x, **kw)
            tx = torch.tensor(x, requires_grad=True)
            ty, tidx = F_.max_pool2d(tx, k, s, p, dilation, ceil_mode=ceil, return_indices=True)
            dy = rng.standard_normal(y.shape)
            ty.backward(torch.tensor(dy))
            np.testing.assert_array_equal(y, ty.detach().numpy(), err_msg=str(kw))
            np.testing.assert_array_equal(cache.indices, tidx.numpy(), err_msg=str(kw))
            np.testing.assert_allclose(max_pool2d_backward(dy, cache), tx.grad.numpy(),
                                       rtol=0, atol=1e-10, err_msg=str(kw))


@pytest.mark.parametrize("include_pad", [True, False])
def test_avg_pool_torch_parity(torch, rng, include_pad):
    F_ = torch.nn.functional
    for shape, k, s, p, ceil in _torch_grid() + [((1, 2, 5, 5), 4, 3, 2, True),
                                                ((1, 1, 6, 9), (4, 5), (3, 4), (2, 2), True)]:
        x = rng.standard_normal(shape)
        kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
                  count_include_pad=include_pad)
        y, cache = avg_pool2d_forward(x, **kw)
        tx = torch.tensor(x, requires_grad=True)
        ty = F_.avg_pool2d(tx, k, s, p, ceil_mode=ceil, count_include_pad=include_pad)
        dy = rng.standard_normal(y.shape)
        ty.backward(torch.tensor(dy))
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10, err_msg=str(kw))
        np.testing.assert_allclose(avg_pool2d_backward(dy, cache), tx.grad.numpy(),
                                   rtol=0, atol=1e-10, err_msg=str(kw))


@pytest.mark.parametrize("divisor", [1, 3, 5])
def test_avg_pool_divisor_override_torch_parity(torch, rng, divisor):
    for shape, k, s, p, ceil in [((2, 3, 7, 7), 3, 2, 1, True), ((1, 2, 8, 11), (2, 3), 1, 0,
                                                                  False)]:
        x = rng.standard_normal(shape)
        y, cache = avg_pool2d_forward(x, kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
                                      divisor_override=divisor)
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.nn.functional.avg_pool2d(tx, k, s, p, ceil_mode=ceil,
                                            divisor_override=divisor)
        dy = rng.standard_normal(y.shape)
        ty.backward(torch.tensor(dy))
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(avg_pool2d_backward(dy, cache), tx.grad.numpy(), rtol=0,
                                   atol=1e-10)


# ----------------------------------------------------------------------------- tie policies

@pytest.mark.parametrize("ties", ["split", "all"])
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("maker", ["equal", "integers", "distinct"])
def test_max_pool_tie_policies_match_loop(rng, nd, ties, maker):
    shape = TIE_SHAPES[nd]
    x = {"equal": lambda: np.full(shape, 1.5),
         "integers": lambda: rng.integers(0, 3, shape).astype(float),
         "distinct": lambda: _distinct(rng, shape)}[maker]()
    fwd, bwd = MAX[nd]
    for k, s, p, d, ceil in TIE_CONFIGS[nd] + [(1, 1, 0, 1, False)]:
        kw = _kw(k, s, p, d, ceil)
        y, cache = fwd(x, **kw, ties=ties)
        y0, c0 = fwd(x, **kw)
        np.testing.assert_array_equal(y, y0)  # the values never depend on the policy
        np.testing.assert_array_equal(cache.indices, c0.indices)  # PyTorch's switches
        assert cache.ties == ties and cache.tied.shape == (math.prod(ntuple(k, nd)),) + y.shape
        dy = rng.standard_normal(y.shape)
        dx = bwd(dy, cache)
        np.testing.assert_allclose(dx, R.max_pool_backward_ties(dy, x, **kw, ties=ties), rtol=1e-12,
                                   atol=1e-12, err_msg=str(kw))
        if maker == "distinct":  # no ties: every policy is "first"
            np.testing.assert_allclose(dx, bwd(dy, c0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_split_preserves_the_sum_and_all_overcounts(rng, nd):
    shape = TIE_SHAPES[nd]
    x = rng.integers(0, 2, shape).astype(float)  # ties almost everywhere
    for k, s, p, d, ceil in TIE_CONFIGS[nd]:
        kw = _kw(k, s, p, d, ceil)
        dy = rng.standard_normal(MAX[nd][0](x, **kw)[0].shape)
        sums = {}
        for ties in ("first", "split", "all"):
            dx = MAX[nd][1](dy, MAX[nd][0](x, **kw, ties=ties)[1])
            sums[ties] = dx.sum()
        np.testing.assert_allclose(sums["split"], dy.sum(), rtol=1e-12)
        np.testing.assert_allclose(sums["first"], dy.sum(), rtol=1e-12)
        # "all" sends each dy once per tied maximum: with dy = 1 the sum counts them
        ones = np.ones_like(dy)
        _, cache = MAX[nd][0](x, **kw, ties="all")
        assert MAX[nd][1](ones, cache).sum() == cache.tied.sum() > ones.sum()


def test_max_pool_ties_on_one_window():
    x = np.array([[[[2.0, 0.0, 2.0], [1.0, 2.0, -1.0]]]])  # three maxima of 2 in one window
    dy = np.array([[[[6.0]]]])
    want = {"first": [[6, 0, 0], [0, 0, 0]], "split": [[2, 0, 2], [0, 2, 0]],
            "all": [[6, 0, 6], [0, 6, 0]]}
    for ties, w in want.items():
        y, cache = max_pool2d_forward(x, kernel_size=(2, 3), ties=ties)
        assert y[0, 0, 0, 0] == 2.0
        np.testing.assert_array_equal(max_pool2d_backward(dy, cache)[0, 0], w)


@pytest.mark.parametrize("ties", ["split", "all"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_tie_policies_nan_and_minus_inf(rng, nd, ties):
    """A NaN window routes as "first" does (its last NaN); an input of -inf ties with the
    -inf padding, which never takes a share."""
    shape = TIE_SHAPES[nd]
    x = rng.integers(0, 3, shape).astype(float)
    x[rng.random(shape) < 0.15] = np.nan
    x[rng.random(shape) < 0.3] = -np.inf
    x[0, 0] = -np.inf  # whole windows of -inf, padded ones included
    for k, s, p, d, ceil in NAN_CONFIGS:
        kw = _kw(k, s, p, d, ceil)
        y, cache = MAX[nd][0](x, **kw, ties=ties)
        dy = rng.standard_normal(y.shape)
        dx = MAX[nd][1](dy, cache)
        np.testing.assert_allclose(dx, R.max_pool_backward_ties(dy, x, **kw, ties=ties), rtol=1e-12,
                                   atol=1e-12, err_msg=str(kw))
        if ties == "split":
            np.testing.assert_allclose(dx.sum(), dy.sum(), rtol=1e-12)


@pytest.mark.parametrize("ties", ["split", "all"])
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_tie_policies_dtype_and_hostile(rng, nd, ties, dtype):
    kernel = max_kernel(nd, kernel_size=3, stride=2, padding=1, ceil_mode=True, ties=ties)
    x = rng.integers(0, 3, HOSTILE_SHAPES[nd]).astype(float)
    kernel.check_dtypes([x], rng, dtypes=(dtype,), rtol=1e-6, atol=1e-6)
    kernel.check_hostile([x.astype(dtype)], rng)
    kernel.check_dy_errors([x.astype(dtype)])


@pytest.mark.parametrize("ties", ["split", "all"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_tie_policies_gradcheck_without_ties(rng, nd, ties):
    """Away from ties max is differentiable and every policy is its gradient."""
    x = _distinct(rng, HOSTILE_SHAPES[nd])
    max_kernel(nd, kernel_size=3, stride=2, padding=1, ties=ties).check_gradient([x], rng)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_tie_policy_errors(nd):
    x = np.zeros((1, 1, *(4,) * nd))
    for bad in ("last", "First", None, 1):
        with raises(f"max_pool{nd}d", "ties must be one of 'first', 'split', 'all', got"):
            MAX[nd][0](x, kernel_size=2, ties=bad)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_split_cache_does_not_alias_input(rng, nd):
    x = rng.integers(0, 2, (1, 2, *(4,) * nd)).astype(float)
    y, cache = MAX[nd][0](x, kernel_size=2, ties="split")
    dx = MAX[nd][1](np.ones_like(y), cache)
    x[...] = 0.0
    np.testing.assert_array_equal(MAX[nd][1](np.ones_like(y), cache), dx)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("k,s,p,ceil", [(3, 2, 1, True), (3, 1, 1, False), (2, 1, 1, False)])
def test_max_pool_minus_inf_input_beside_padding(rng, nd, k, s, p, ceil, torch):
    """An input of -inf ties with the -inf padding: as PyTorch, the switch is the window's
    first element inside the input (never a padding cell, index -1, losing the gradient)."""
    shape = (2, 2) + (5,) * nd
    x = rng.integers(0, 3, shape).astype(float)
    x[rng.random(shape) < 0.6] = -np.inf
    x[0, 0] = -np.inf
    x[1, 1][rng.random(shape[2:]) < 0.1] = np.nan  # with a NaN elsewhere in the call
    kw = _kw(k, s, p, 1, ceil)
    y, cache = MAX[nd][0](x, **kw)
    tx = torch.tensor(x, requires_grad=True)
    ty, ti = getattr(torch.nn.functional, f"max_pool{nd}d")(tx, k, s, p, ceil_mode=ceil,
                                                           return_indices=True)
    dy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(dy))
    np.testing.assert_array_equal(cache.indices, ti.numpy())
    assert cache.indices.min() >= 0
    np.testing.assert_allclose(MAX[nd][1](dy, cache), tx.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(MAX[nd][1](dy, cache).sum(), dy.sum(), rtol=1e-12)
