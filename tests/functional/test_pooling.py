"""Max, average and global average pooling: loop references, gradient checks, PyTorch parity."""

import math

import numpy as np
import pytest
from helpers import hostile, pooled_length

from convprop.functional import (avg_pool2d_backward, avg_pool2d_forward,
                                 global_avg_pool2d_backward, global_avg_pool2d_forward,
                                 max_pool2d_backward, max_pool2d_forward)
from convprop.gradcheck import check_kernel

# ----------------------------------------------------------------------------- loop references
# Written from PyTorch's documented semantics, one output element at a time.


def ref_max_pool(x, k, s, p, d, ceil):
    """Values, flat H*W indices (first maximum in row-major window order) and the scatter."""
    N, C, H, W = x.shape
    ho, wo = (pooled_length(H, k[0], s[0], p[0], d[0], ceil), pooled_length(W, k[1], s[1], p[1], d[1], ceil))
    y = np.empty((N, C, ho, wo), x.dtype)
    idx = np.empty((N, C, ho, wo), np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(ho):
                for j in range(wo):
                    best, arg = -math.inf, None
                    for a in range(k[0]):
                        for b in range(k[1]):
                            r, q = i * s[0] - p[0] + a * d[0], j * s[1] - p[1] + b * d[1]
                            if 0 <= r < H and 0 <= q < W and (arg is None or x[n, c, r, q] > best):
                                best, arg = x[n, c, r, q], r * W + q
                    y[n, c, i, j], idx[n, c, i, j] = best, arg
    return y, idx


def ref_max_pool_backward(dy, idx, x_shape):
    N, C, H, W = x_shape
    dx = np.zeros((N, C, H * W), dy.dtype)
    for n in range(N):
        for c in range(C):
            for t, f in zip(dy[n, c].ravel(), idx[n, c].ravel()):
                dx[n, c, f] += t
    return dx.reshape(x_shape)


def ref_avg_pool(x, k, s, p, ceil, include_pad):
    N, C, H, W = x.shape
    ho, wo = pooled_length(H, k[0], s[0], p[0], 1, ceil), pooled_length(W, k[1], s[1], p[1], 1, ceil)
    y = np.zeros((N, C, ho, wo), x.dtype)
    for i in range(ho):
        for j in range(wo):
            r0, q0 = i * s[0] - p[0], j * s[1] - p[1]
            r1, q1 = min(r0 + k[0], H + p[0]), min(q0 + k[1], W + p[1])
            rr0, qq0, rr1, qq1 = max(r0, 0), max(q0, 0), min(r1, H), min(q1, W)
            div = (r1 - r0) * (q1 - q0) if include_pad else (rr1 - rr0) * (qq1 - qq0)
            y[:, :, i, j] = x[:, :, rr0:rr1, qq0:qq1].sum(axis=(2, 3)) / div
    return y


def _distinct(rng, shape):
    """Values at least 0.05 apart, so no tie sits within a finite-difference step."""
    n = math.prod(shape)
    return (rng.permutation(n).reshape(shape) * 0.05 - n * 0.025).astype(np.float64)


def _p2(v):
    return v if isinstance(v, tuple) else (v, v)


# (x shape, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [
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
]
MAX_IDS = [f"{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}-d{c[4]}-ceil{int(c[5])}" for c in MAX_CASES]


def _kw(k, s, p, d, ceil):
    return dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)


@pytest.mark.parametrize("shape,k,s,p,d,ceil", MAX_CASES, ids=MAX_IDS)
def test_max_pool_forward_matches_loop(rng, shape, k, s, p, d, ceil):
    x = rng.standard_normal(shape)
    y, cache = max_pool2d_forward(x, **_kw(k, s, p, d, ceil))
    ry, ridx = ref_max_pool(x, _p2(k), _p2(s), _p2(p), _p2(d), ceil)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(cache.indices, ridx)


@pytest.mark.parametrize("shape,k,s,p,d,ceil", MAX_CASES, ids=MAX_IDS)
def test_max_pool_gradcheck(rng, shape, k, s, p, d, ceil):
    x = _distinct(rng, (1,) + shape[1:])
    rep = check_kernel(lambda a: max_pool2d_forward(a, **_kw(k, s, p, d, ceil)),
                       max_pool2d_backward, [x], names=["x"], rng=rng)
    assert rep.passed, str(rep)


@pytest.mark.parametrize("maker", ["equal", "integers"])
def test_max_pool_ties_first_max_wins(rng, maker):
    shape = (2, 3, 9, 8)
    x = np.full(shape, 1.5) if maker == "equal" else rng.integers(0, 3, shape).astype(float)
    # (2, 2, 0, 1, False) is the disjoint-windows backward (direct writes, uncovered last row)
    for k, s, p, d, ceil in [(3, 1, 1, 1, False), (2, 2, 0, 1, True), (3, 2, 1, 2, True),
                             (2, 2, 0, 1, False), ((3, 2), (3, 2), 0, 1, False)]:
        y, cache = max_pool2d_forward(x, **_kw(k, s, p, d, ceil))
        ry, ridx = ref_max_pool(x, _p2(k), _p2(s), _p2(p), _p2(d), ceil)
        np.testing.assert_array_equal(y, ry)
        np.testing.assert_array_equal(cache.indices, ridx)
        dy = rng.standard_normal(y.shape)
        np.testing.assert_allclose(max_pool2d_backward(dy, cache),
                                   ref_max_pool_backward(dy, ridx, shape), rtol=0, atol=1e-12)


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
]
AVG_IDS = [f"{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}-ceil{int(c[4])}" for c in AVG_CASES]


@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("shape,k,s,p,ceil", AVG_CASES, ids=AVG_IDS)
def test_avg_pool_forward_matches_loop(rng, shape, k, s, p, ceil, include_pad):
    x = rng.standard_normal(shape)
    y, _ = avg_pool2d_forward(x, kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
                              count_include_pad=include_pad)
    ry = ref_avg_pool(x, _p2(k), _p2(s), _p2(p), ceil, include_pad)
    np.testing.assert_allclose(y, ry, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("shape,k,s,p,ceil", AVG_CASES, ids=AVG_IDS)
def test_avg_pool_gradcheck(rng, shape, k, s, p, ceil, include_pad):
    x = rng.standard_normal((1,) + shape[1:])
    rep = check_kernel(lambda a: avg_pool2d_forward(a, kernel_size=k, stride=s, padding=p,
                                                    ceil_mode=ceil, count_include_pad=include_pad),
                       avg_pool2d_backward, [x], names=["x"], rng=rng)
    assert rep.passed, str(rep)


def test_global_avg_pool_forward_and_gradcheck(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    y, _ = global_avg_pool2d_forward(x)
    ref = np.array([[x[n, c].sum() / 20 for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(y, ref, rtol=1e-13)
    rep = check_kernel(global_avg_pool2d_forward, global_avg_pool2d_backward, [x], rng=rng)
    assert rep.passed, str(rep)


# ----------------------------------------------------------------------------- hostile input, dtype

OPS = {
    "max": (lambda x: max_pool2d_forward(x, kernel_size=3, stride=2, padding=1, ceil_mode=True),
            max_pool2d_backward),
    "avg": (lambda x: avg_pool2d_forward(x, kernel_size=3, stride=2, padding=1,
                                         count_include_pad=False), avg_pool2d_backward),
    "global": (global_avg_pool2d_forward, global_avg_pool2d_backward),
}


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_hostile_input(rng, op, dtype):
    fwd, bwd = OPS[op]
    x = rng.standard_normal((2, 3, 7, 6)).astype(dtype)
    y, cache = fwd(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = bwd(dy, cache)
    assert y.dtype == dtype and dx.dtype == dtype and dx.shape == x.shape
    xh, dyh = hostile(x), hostile(dy)
    y2, cache2 = fwd(xh)
    dx2 = bwd(dyh, cache2)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(dx2, dx)
    np.testing.assert_array_equal(xh, x)  # untouched


def test_max_pool_cache_does_not_alias_input(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    y, cache = max_pool2d_forward(x, kernel_size=2)
    x[...] = 0.0  # the caller reuses its buffer: the cached switches must not change
    dy = np.ones_like(y)
    assert max_pool2d_backward(dy, cache).sum() == dy.sum()


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("fwd,name", [(max_pool2d_forward, "max_pool2d"),
                                      (avg_pool2d_forward, "avg_pool2d")])
def test_pooling_errors(fwd, name):
    x = np.zeros((1, 1, 6, 6))
    with pytest.raises(ValueError, match=f"^{name}: x must be 4-D"):
        fwd(np.zeros((1, 6, 6)), kernel_size=2)
    with pytest.raises(TypeError, match=f"^{name}: x must be float32 or float64"):
        fwd(np.zeros((1, 1, 6, 6), dtype=np.int64), kernel_size=2)
    with pytest.raises(TypeError, match=f"^{name}: x must be a numpy.ndarray"):
        fwd([[[[1.0]]]], kernel_size=1)
    with pytest.raises(ValueError, match=f"^{name}: padding must be at most half"):
        fwd(x, kernel_size=3, padding=2)
    with pytest.raises(ValueError, match=f"^{name}: kernel_size must be >= 1"):
        fwd(x, kernel_size=0)
    with pytest.raises(ValueError, match=f"^{name}: stride must be >= 1"):
        fwd(x, kernel_size=2, stride=0)
    with pytest.raises(TypeError, match=f"^{name}: kernel_size must be an int or a pair"):
        fwd(x, kernel_size=2.0)
    with pytest.raises(ValueError, match=f"^{name}: the 7-wide window"):
        fwd(x, kernel_size=7)
    with pytest.raises(TypeError, match=f"^{name}: ceil_mode must be a bool"):
        fwd(x, kernel_size=2, ceil_mode="yes")
    _, cache = fwd(x, kernel_size=2)
    bwd = max_pool2d_backward if name == "max_pool2d" else avg_pool2d_backward
    with pytest.raises(ValueError, match=f"^{name}_backward: dy must have shape \\(1, 1, 3, 3\\)"):
        bwd(np.zeros((1, 1, 3, 4)), cache)


def test_global_avg_pool_errors():
    with pytest.raises(ValueError, match="^global_avg_pool2d: x must be 4-D"):
        global_avg_pool2d_forward(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="^global_avg_pool2d: x must be float32 or float64"):
        global_avg_pool2d_forward(np.zeros((1, 1, 2, 2), dtype=np.int32))
    _, cache = global_avg_pool2d_forward(np.zeros((2, 3, 2, 2)))
    with pytest.raises(ValueError, match="^global_avg_pool2d_backward: dy must have shape"):
        global_avg_pool2d_backward(np.zeros((2, 4)), cache)


# ----------------------------------------------------------------------------- PyTorch parity

def _torch_grid():
    out = []
    for shape in [(2, 3, 7, 7), (1, 2, 8, 11), (2, 1, 5, 6)]:
        for k in [1, 2, 3, (2, 3)]:
            for s in [None, 1, 2, 3]:
                for p in [0, 1]:
                    for ceil in [False, True]:
                        if p > min(_p2(k)) // 2:
                            continue
                        out.append((shape, k, s, p, ceil))
    return out


@pytest.mark.parametrize("dilation", [1, 2])
def test_max_pool_torch_parity(torch, rng, dilation):
    F = torch.nn.functional
    for shape, k, s, p, ceil in _torch_grid():
        for x in (rng.standard_normal(shape), rng.integers(0, 3, shape).astype(np.float64)):
            kw = _kw(k, s, p, dilation, ceil)
            y, cache = max_pool2d_forward(x, **kw)
            tx = torch.tensor(x, requires_grad=True)
            ty, tidx = F.max_pool2d(tx, k, s, p, dilation, ceil_mode=ceil, return_indices=True)
            dy = rng.standard_normal(y.shape)
            ty.backward(torch.tensor(dy))
            np.testing.assert_array_equal(y, ty.detach().numpy(), err_msg=str(kw))
            np.testing.assert_array_equal(cache.indices, tidx.numpy(), err_msg=str(kw))
            np.testing.assert_allclose(max_pool2d_backward(dy, cache), tx.grad.numpy(),
                                       rtol=0, atol=1e-10, err_msg=str(kw))


@pytest.mark.parametrize("include_pad", [True, False])
def test_avg_pool_torch_parity(torch, rng, include_pad):
    F = torch.nn.functional
    for shape, k, s, p, ceil in _torch_grid() + [((1, 2, 5, 5), 4, 3, 2, True),
                                                ((1, 1, 6, 9), (4, 5), (3, 4), (2, 2), True)]:
        x = rng.standard_normal(shape)
        kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
                  count_include_pad=include_pad)
        y, cache = avg_pool2d_forward(x, **kw)
        tx = torch.tensor(x, requires_grad=True)
        ty = F.avg_pool2d(tx, k, s, p, ceil_mode=ceil, count_include_pad=include_pad)
        dy = rng.standard_normal(y.shape)
        ty.backward(torch.tensor(dy))
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10, err_msg=str(kw))
        np.testing.assert_allclose(avg_pool2d_backward(dy, cache), tx.grad.numpy(),
                                   rtol=0, atol=1e-10, err_msg=str(kw))


def test_global_avg_pool_torch_parity(torch, rng):
    x = rng.standard_normal((3, 4, 5, 6))
    y, cache = global_avg_pool2d_forward(x)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.adaptive_avg_pool2d(tx, 1).flatten(1)
    dy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(global_avg_pool2d_backward(dy, cache), tx.grad.numpy(),
                               rtol=0, atol=1e-10)
