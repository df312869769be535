"""The tie policies of adaptive and global max pooling (``ties="first" | "split" | "all"``, max
pooling's): an independent loop oracle over PyTorch's overlapping bins for the forward, the
recorded mask and every policy's backward; "split" keeping each bin's dy; the three agreeing
(and equal to the numerical gradient) where no ties exist; NaN and infinities; hostile
inputs, dtypes, errors; the modules passing ``ties`` through."""

import itertools
import math

import numpy as np
import pytest
from contract import Kernel, raises

from convprop.functional import adaptive_pooling as A
from convprop.layers import pooling as LP

TIES = ("first", "split", "all")
SHAPES = {1: (2, 3, 7), 2: (2, 2, 5, 6), 3: (1, 2, 4, 3, 5)}
# output sizes per dimension: overlapping bins (O > L/2), O > L (repeated elements),
# O dividing L, one bin, and a None axis
OUTS = {1: [5, 4, 9, 7, 1], 2: [(4, 5), (3, 2), (7, 8), 1, (None, 4)],
        3: [(3, 2, 4), (2, 3, 3), (5, 4, 6), 1, (None, 2, None)]}


def _fns(kind, nd):
    return getattr(A, f"{kind}_pool{nd}d_forward"), getattr(A, f"{kind}_pool{nd}d_backward")


# ----------------------------------------------------------------------------- the oracle

def _edges(size, out):
    """PyTorch's bins along one axis: [floor(i*L/O), ceil((i+1)*L/O))."""
    return [(math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out)]


def _resolve(shape, output_size):
    sp = shape[2:]
    if output_size is None:  # global pooling: one bin
        return (1,) * len(sp)
    o = (output_size,) * len(sp) if isinstance(output_size, int) else output_size
    return tuple(s if v is None else v for s, v in zip(sp, o))


def loop_max_ties(x, dy, output_size, ties):
    """(y, indices, tied, dx) of adaptive max pooling one bin at a time: y the bin's maximum
    (a NaN if it holds one); the winners are its last NaN, else its elements equal to the
    maximum ("first": the first of them); each winner gets dy / count ("split") or dy;
    ``tied[k]`` marks the k-th element (row-major in the bin) of bins where it wins."""
    sp = x.shape[2:]
    out = _resolve(x.shape, output_size)
    bins = [_edges(s, o) for s, o in zip(sp, out)]
    big = math.prod(max(e - s for s, e in b) for b in bins)
    y = np.zeros(x.shape[:2] + out)
    idx = np.zeros(x.shape[:2] + out, dtype=np.int64)
    tied = np.zeros((big,) + x.shape[:2] + out, dtype=bool)
    dx = np.zeros(x.shape)
    dy = np.reshape(dy, x.shape[:2] + out)  # global pooling's dy is (N, C)
    for n, c in itertools.product(*map(range, x.shape[:2])):
        for o in itertools.product(*map(range, out)):
            cells = list(itertools.product(*(range(*bins[a][i]) for a, i in enumerate(o))))
            vals = [float(x[(n, c, *at)]) for at in cells]
            nans = [k for k, v in enumerate(vals) if v != v]
            if nans:
                win, y[(n, c, *o)] = [nans[-1]], math.nan
            else:
                top = max(vals)
                win, y[(n, c, *o)] = [k for k, v in enumerate(vals) if v == top], top
            first = win[0] if not nans else nans[-1]
            idx[(n, c, *o)] = int(np.ravel_multi_index(cells[first], sp))
            if ties == "first":
                win = [first]
            for k in win:
                tied[(k, n, c, *o)] = True
                dx[(n, c, *cells[k])] += dy[(n, c, *o)] / (len(win) if ties == "split" else 1)
    if output_size is None:
        y, idx = y.reshape(x.shape[:2]), idx.reshape(x.shape[:2])
    return y, idx, tied, dx


def _run(kind, nd, x, out, ties, dy=None, rng=None):
    fwd, bwd = _fns(kind, nd)
    kw = {} if kind == "global_max" else dict(output_size=out)
    y, cache = fwd(x, **kw, ties=ties)
    if dy is None:
        dy = rng.standard_normal(y.shape).astype(y.dtype)
    return y, cache, dy, bwd(dy, cache)


def _inputs(rng, shape, maker):
    return {"equal": lambda: np.full(shape, 1.5),
            "integers": lambda: rng.integers(0, 3, shape).astype(float),
            "distinct": lambda: rng.permutation(math.prod(shape)).reshape(shape) * 0.5,
            "nan_inf": lambda: _nan_inf(rng, shape)}[maker]()


def _nan_inf(rng, shape):
    x = rng.integers(0, 3, shape).astype(float)
    x[rng.random(shape) < 0.3] = -np.inf
    x[rng.random(shape) < 0.1] = np.inf
    x[rng.random(shape) < 0.1] = np.nan
    x[0, 0] = -np.inf  # bins of nothing but -inf: all tied
    return x


CASES = [(kind, nd, out) for nd in (1, 2, 3) for kind, outs in
         (("adaptive_max", OUTS[nd]), ("global_max", [None])) for out in outs]
IDS = [f"{k}{nd}d->{o}" for k, nd, o in CASES]


@pytest.mark.parametrize("maker", ["equal", "integers", "distinct", "nan_inf"])
@pytest.mark.parametrize("kind,nd,out", CASES, ids=IDS)
def test_every_policy_matches_the_loop(rng, kind, nd, out, maker):
    x = _inputs(rng, SHAPES[nd], maker)
    y0, c0, dy, dx0 = _run(kind, nd, x, out, "first", rng=rng)
    assert c0.ties == "first" and c0.tied is None  # the default path records no mask
    for ties in TIES:
        ry, ridx, rtied, rdx = loop_max_ties(x, dy, out, ties)
        y, cache, _, dx = _run(kind, nd, x, out, ties, dy=dy)
        np.testing.assert_array_equal(y, ry)
        np.testing.assert_array_equal(y, y0)  # the values never depend on the policy
        np.testing.assert_array_equal(cache.indices, ridx)  # PyTorch's switches, always
        np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12, err_msg=ties)
        assert cache.ties == ties
        if ties == "first":
            np.testing.assert_array_equal(dx, dx0)
        elif kind == "global_max":  # the mask over the plane, x's shape
            np.testing.assert_array_equal(cache.tied, rtied.reshape(
                (-1,) + x.shape[:2]).transpose(1, 2, 0).reshape(x.shape))
        else:
            np.testing.assert_array_equal(cache.tied, rtied)
        if maker == "distinct":  # no ties: every policy is "first"
            np.testing.assert_array_equal(dx, dx0)


@pytest.mark.parametrize("kind,nd,out", CASES, ids=IDS)
def test_split_keeps_each_bins_dy_and_all_overcounts(rng, kind, nd, out):
    x = rng.integers(0, 2, SHAPES[nd]).astype(float)  # ties almost everywhere
    fwd, bwd = _fns(kind, nd)
    kw = {} if kind == "global_max" else dict(output_size=out)
    y, cache = fwd(x, **kw, ties="split")
    sp = x.shape[2:]
    o_shape = _resolve(x.shape, out)
    bins = [_edges(s, o) for s, o in zip(sp, o_shape)]
    for flat in rng.choice(y.size, size=min(y.size, 12), replace=False):
        at = np.unravel_index(flat, y.shape)
        dy = np.zeros(y.shape)
        dy[at] = g = rng.standard_normal()
        dx = bwd(dy, cache)
        np.testing.assert_allclose(dx.sum(), g, rtol=1e-12)  # this bin's dy, all of it
        inside = np.zeros(x.shape, bool)
        o = at[2:] if kind == "adaptive_max" else (0,) * len(sp)
        inside[(at[0], at[1], *(slice(*bins[a][i]) for a, i in enumerate(o)))] = True
        assert not dx[~inside].any()  # and only inside its bin
        assert (dx[inside] * g >= 0).all() and len(set(dx[dx != 0])) == 1  # shared equally
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(bwd(dy, cache).sum(), dy.sum(), rtol=1e-12)
    ones = np.ones(y.shape)
    _, c_all = fwd(x, **kw, ties="all")
    assert bwd(ones, c_all).sum() == c_all.tied.sum() >= ones.sum()
    if max(e - s for b in bins for s, e in b) > 1:  # bins of one element (O = L) never tie
        assert c_all.tied.sum() > ones.sum()


# ----------------------------------------------------------------------------- gradient

def _kernel(kind, nd, out, ties):
    fwd, bwd = _fns(kind, nd)
    kw = {} if kind == "global_max" else dict(output_size=out)
    extras = (lambda c: (c.indices,)) if ties == "first" else \
        (lambda c: (c.indices, c.tied.astype(np.int8)))
    return Kernel.of(fwd, bwd, extras=extras, ties=ties, **kw)


GRAD_CASES = [("adaptive_max", 1, 5), ("adaptive_max", 2, (4, 5)), ("adaptive_max", 3, 2),
              ("global_max", 1, None), ("global_max", 2, None), ("global_max", 3, None)]


@pytest.mark.parametrize("ties", TIES)
@pytest.mark.parametrize("kind,nd,out", GRAD_CASES)
def test_gradcheck_without_ties(rng, kind, nd, out, ties):
    """Away from ties max is differentiable and every policy is its gradient."""
    shape = SHAPES[nd]
    x = (rng.permutation(math.prod(shape)).reshape(shape) * 0.05).astype(np.float64)
    _kernel(kind, nd, out, ties).check_gradient([x], rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", ["split", "all"])
@pytest.mark.parametrize("kind,nd,out", GRAD_CASES)
def test_dtype_and_hostile_inputs(rng, kind, nd, out, ties, dtype):
    x = rng.integers(0, 3, SHAPES[nd]).astype(float)  # ties, exact in float32
    k = _kernel(kind, nd, out, ties)
    k.check_dtypes([x], rng, dtypes=(dtype,), rtol=1e-6, atol=1e-6)
    k.check_dtypes([x], rng, rtol=1e-6, atol=1e-6)  # float32 against float64
    k.check_hostile([x.astype(dtype)], rng)
    k.check_dy_errors([x.astype(dtype)])


@pytest.mark.parametrize("ties", ["split", "all"])
@pytest.mark.parametrize("kind,nd,out", GRAD_CASES)
def test_infinite_dy_stays_in_its_winners(rng, kind, nd, out, ties):
    """The backward gathers the tied entries: an infinite dy never meets a zero weight
    (inf * 0 = NaN) and leaves every other element of dx finite."""
    x = rng.integers(0, 3, SHAPES[nd]).astype(float)
    y, cache, dy, _ = _run(kind, nd, x, out, ties, rng=rng)
    dy.flat[0] = np.inf
    dx = _fns(kind, nd)[1](dy, cache)
    _, _, rtied, rdx = loop_max_ties(x, dy, out, ties)
    assert not np.isnan(dx).any()
    np.testing.assert_array_equal(np.isinf(dx), np.isinf(rdx))
    np.testing.assert_allclose(dx[np.isfinite(dx)], rdx[np.isfinite(rdx)], rtol=1e-12)


def test_cache_shows_the_routing(rng):
    """``tied`` with ``bin_indices`` names each bin's winners in the input plane; the cache
    holds its own copy (changing x afterwards changes nothing)."""
    x = rng.integers(0, 2, (2, 3, 7, 5)).astype(float)
    y, cache = A.adaptive_max_pool2d_forward(x, output_size=(4, 3), ties="split")
    pos = cache.bin_indices
    assert pos.shape == cache.tied.shape[:1] + y.shape[2:]
    plane = x.reshape(2, 3, -1)
    for k in range(pos.shape[0]):
        real = pos[k] >= 0
        vals = np.take(plane, np.where(real, pos[k], 0).ravel(), axis=2).reshape(y.shape)
        np.testing.assert_array_equal(cache.tied[k], real & (vals == y))
    dx = A.adaptive_max_pool2d_backward(np.ones_like(y), cache)
    x[...] = 0.0
    np.testing.assert_array_equal(A.adaptive_max_pool2d_backward(np.ones_like(y), cache), dx)


def test_one_bin_by_hand():
    x = np.array([[[2.0, 0.0, 2.0, 1.0, 2.0, -1.0, 2.0]]])  # L = 7 -> 3 bins, overlapping
    dy = np.array([[[6.0, 6.0, 6.0]]])  # bins [0, 3), [2, 5), [4, 7)
    want = {"first": [6, 0, 6, 0, 6, 0, 0], "split": [3, 0, 6, 0, 6, 0, 3],
            "all": [6, 0, 12, 0, 12, 0, 6]}
    for ties, w in want.items():
        y, cache = A.adaptive_max_pool1d_forward(x, output_size=3, ties=ties)
        np.testing.assert_array_equal(cache.indices, [[[0, 2, 4]]])
        np.testing.assert_array_equal(A.adaptive_max_pool1d_backward(dy, cache)[0, 0], w)
        y, cache = A.global_max_pool1d_forward(x, ties=ties)
        g = A.global_max_pool1d_backward(np.array([[8.0]]), cache)[0, 0]
        np.testing.assert_array_equal(g, {"first": [8, 0, 0, 0, 0, 0, 0],
                                          "split": [2, 0, 2, 0, 2, 0, 2],
                                          "all": [8, 0, 8, 0, 8, 0, 8]}[ties])
    # a tie is equality: the next float above 2 wins alone under every policy
    x[0, 0, 4] = np.nextafter(2.0, 3.0)
    for ties in TIES:
        _, cache = A.adaptive_max_pool1d_forward(x, output_size=3, ties=ties)
        np.testing.assert_array_equal(A.adaptive_max_pool1d_backward(dy, cache)[0, 0],
                                      {"first": [6, 0, 0, 0, 12, 0, 0],
                                       "split": [3, 0, 3, 0, 12, 0, 0],
                                       "all": [6, 0, 6, 0, 12, 0, 0]}[ties])


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", ["adaptive_max", "global_max"])
def test_bad_ties_named(nd, kind):
    x = np.zeros((1, 1, *(4,) * nd))
    kw = {} if kind == "global_max" else dict(output_size=2)
    for bad in ("last", "First", "", None, 1, ("split",)):
        with raises(f"{kind}_pool{nd}d", "ties must be one of 'first', 'split', 'all', got"):
            _fns(kind, nd)[0](x, **kw, ties=bad)
        name = f"{'AdaptiveMaxPool' if kind == 'adaptive_max' else 'GlobalMaxPool'}{nd}d"
        with raises(name, "ties must be one of 'first', 'split', 'all', got"):
            getattr(LP, name)(*((2,) if kind == "adaptive_max" else ()), ties=bad)


# ----------------------------------------------------------------------------- modules

@pytest.mark.parametrize("ties", TIES)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_modules_pass_ties_through(rng, nd, ties):
    x = rng.integers(0, 3, SHAPES[nd]).astype(np.float32)
    out = OUTS[nd][0]
    for m, kind, kw in ((getattr(LP, f"AdaptiveMaxPool{nd}d")(out, ties=ties), "adaptive_max",
                         dict(output_size=out)),
                        (getattr(LP, f"GlobalMaxPool{nd}d")(ties=ties), "global_max", {})):
        assert m.ties == ties and (f"ties={ties!r}" in repr(m)) == (ties != "first")
        y, cache = m.forward(x)
        yk, ck = _fns(kind, nd)[0](x, **kw, ties=ties)
        np.testing.assert_array_equal(y, yk)
        assert cache.ties == ties
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx = m.backward(dy, cache)
        assert dx.dtype == np.float32
        np.testing.assert_array_equal(dx, _fns(kind, nd)[1](dy, ck))


@pytest.mark.parametrize("ties", TIES)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_return_indices_stay_torchs(torch, rng, nd, ties):
    x = rng.integers(0, 2, SHAPES[nd]).astype(float)
    out = OUTS[nd][0]
    m = getattr(LP, f"AdaptiveMaxPool{nd}d")(out, return_indices=True, ties=ties)
    (y, idx), cache = m.forward(x)
    tx = torch.tensor(x, requires_grad=True)
    ty, ti = getattr(torch.nn.functional, f"adaptive_max_pool{nd}d")(tx, out,
                                                                     return_indices=True)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(idx, ti.numpy())  # the first maxima under every policy
    if ties == "first":  # and PyTorch's gradient, ties and overlapping bins included
        dy = rng.standard_normal(y.shape)
        ty.backward(torch.tensor(dy))
        np.testing.assert_allclose(m.backward(dy, cache), tx.grad.numpy(), rtol=0, atol=1e-12)
    assert "return_indices=True" in repr(getattr(LP, f"AdaptiveMaxPool{nd}d")(
        out, return_indices=True, ties=ties))
