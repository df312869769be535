"""The two "mixed pooling" families. Yu et al. 2014 (a random 0/1 choice between max and
average, recorded and followed by the backward, at layer / channel / window granularity;
the evaluation choice given) and Lee et al. 2016 (a learned mixing weight; a learned gate
sigmoid(w . window)): loop oracles, float64 numerical gradients of x and of every
parameter (Yu's with the draws fixed), replay without drawing, ties, hostile inputs, dtypes
and errors."""

import numpy as np
import pytest
from contract import Kernel, ntuple, raises

from convprop import reference as R
from convprop.functional.mixed_pooling import gated_pool1d_backward, gated_pool1d_forward, \
    gated_pool2d_backward, gated_pool2d_forward, gated_pool3d_backward, gated_pool3d_forward, \
    mixed_maxavg_pool1d_backward, mixed_maxavg_pool1d_forward, mixed_maxavg_pool2d_backward, \
    mixed_maxavg_pool2d_forward, mixed_maxavg_pool3d_backward, mixed_maxavg_pool3d_forward, \
    mixed_pool1d_backward, mixed_pool1d_forward, mixed_pool2d_backward, mixed_pool2d_forward, \
    mixed_pool3d_backward, mixed_pool3d_forward


def loop_max(x, k, s, p=0):
    return R.max_pool(x, kernel_size=k, stride=s, padding=p)[0]


def loop_avg(x, k, s, p=0):
    return R.avg_pool(x, kernel_size=k, stride=s, padding=p)


def loop_yu(x, k, s, p, granularity, seed):
    """The kernel's draw (one uniform per layer / channel / window, lambda = u < 1/2)
    through the reference rule; (y, lambda)."""
    shape = {"layer": (), "channel": (x.shape[1],),
             "window": loop_avg(x, k, s, p).shape}[granularity]
    lam = np.random.default_rng(seed).random(shape) < 0.5
    return R.mixed_pool(x, lam, granularity, kernel_size=k, stride=s, padding=p), lam


def _distinct(rng, shape):
    """Values at least 0.05 apart, so no max tie sits within a finite-difference step."""
    n = int(np.prod(shape))
    return rng.permutation(n).reshape(shape) * 0.05 - n * 0.025


def yu(seed, training=True, **kw):
    """Yu's kernel with a Generator made afresh from ``seed`` on every call: the same draws,
    i.e. the forward whose recorded choices the backward follows."""
    def fwd(x):
        return mixed_pool2d_forward(x, rng=np.random.default_rng(seed), training=training,
                                    **kw)
    return Kernel("mixed_pool2d", fwd, mixed_pool2d_backward, extras=lambda c: c.lam)


def lee(**kw):
    return Kernel.of(mixed_maxavg_pool2d_forward, mixed_maxavg_pool2d_backward,
                     names=("x", "a"), **kw)


def gated(**kw):
    return Kernel.of(gated_pool2d_forward, gated_pool2d_backward, names=("x", "w"), **kw)


# (x shape, kernel, stride, padding)
CASES = [
    ((2, 3, 6, 6), 2, None, 0),         # tiling
    ((2, 2, 7, 7), 3, 1, 1),            # overlapping (3x), padded
    ((2, 2, 7, 9), 3, 2, 0),            # overlapping, non-square
    ((1, 1, 5, 7), 2, 2, 0),            # non-tiling, batch 1, channel 1
    ((2, 2, 5, 6), 1, 1, 0),            # kernel 1
    ((1, 3, 9, 8), 2, 3, 1),            # stride > kernel: gaps, padded
    ((2, 2, 6, 9), (2, 3), (1, 2), (1, 0)),  # non-square kernel, stride, padding
]
IDS = [f"{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}" for c in CASES]
GRAN = ["layer", "channel", "window"]


# ------------------------------------------------------------------ Yu et al. 2014

@pytest.mark.parametrize("granularity", GRAN)
@pytest.mark.parametrize("shape,k,s,p", CASES, ids=IDS)
def test_yu_forward_matches_loop(rng, shape, k, s, p, granularity):
    x = rng.standard_normal(shape)
    for seed in (0, 1, 2):  # a layer-level draw of each value among these seeds
        yu(seed, kernel_size=k, stride=s, padding=p, granularity=granularity).check_forward(
            [x], lambda x: loop_yu(x, k, s, p, granularity, seed), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("granularity", GRAN)
@pytest.mark.parametrize("shape,k,s,p", CASES, ids=IDS)
def test_yu_gradient_with_the_draws_fixed(rng, shape, k, s, p, granularity):
    for seed in (0, 1):
        yu(seed, kernel_size=k, stride=s, padding=p, granularity=granularity).check_gradient(
            [_distinct(rng, shape)], rng)


@pytest.mark.parametrize("granularity", GRAN)
def test_yu_layer_choice_is_one_pooling(rng, granularity):
    """Whatever the granularity, each output is exactly max or average pooling's value."""
    x = rng.standard_normal((3, 4, 8, 8))
    y, cache = mixed_pool2d_forward(x, kernel_size=2, rng=np.random.default_rng(5),
                                    training=True, granularity=granularity)
    ym, ya = loop_max(x, 2, 2), loop_avg(x, 2, 2)
    lam = np.broadcast_to(cache.lam_full, y.shape)
    np.testing.assert_allclose(y[lam], ym[lam], rtol=0, atol=1e-12)
    np.testing.assert_allclose(y[~lam], ya[~lam], rtol=0, atol=1e-12)


def test_yu_lambda_is_a_fair_coin():
    x = np.zeros((50, 20, 8, 8))
    _, cache = mixed_pool2d_forward(x, kernel_size=2, rng=np.random.default_rng(2014),
                                    training=True, granularity="window")
    n = cache.lam.size
    assert abs(cache.lam.mean() - 0.5) < 5 * np.sqrt(0.25 / n)
    layer = [mixed_pool2d_forward(x[:1], kernel_size=2, rng=np.random.default_rng(sd),
                                  training=True)[1].lam for sd in range(400)]
    assert abs(np.mean(layer) - 0.5) < 5 * np.sqrt(0.25 / 400)


def _state(g):
    return repr(g.bit_generator.state)


@pytest.mark.parametrize("granularity", GRAN)
def test_yu_backward_replays_the_cache_and_never_draws(rng, granularity):
    x = _distinct(rng, (2, 3, 7, 7))
    gen = np.random.default_rng(42)
    y, cache = mixed_pool2d_forward(x, kernel_size=3, stride=2, padding=1, rng=gen,
                                    training=True, granularity=granularity)
    after = _state(gen)
    dy = rng.standard_normal(y.shape)
    dx1 = mixed_pool2d_backward(dy, cache)
    assert _state(gen) == after, "the backward drew from the generator"
    gen.random(7)
    np.testing.assert_array_equal(dx1, mixed_pool2d_backward(dy, cache))
    # the gradient is the chosen branch's: max's for lambda = 1, average's for lambda = 0
    for lam in (True, False):
        _, ec = mixed_pool2d_forward(x, kernel_size=3, stride=2, padding=1, rng=None,
                                     training=False, eval_lambda=int(lam))
        mask = np.broadcast_to(cache.lam_full, y.shape) == lam
        np.testing.assert_allclose(mixed_pool2d_backward(dy * mask, ec),
                                   mixed_pool2d_backward(dy * mask, cache), rtol=0, atol=1e-12)


def test_yu_reproducible_from_a_seed(rng):
    x = rng.standard_normal((2, 8, 6, 6))
    a, b, c = (mixed_pool2d_forward(x, kernel_size=2, rng=np.random.default_rng(sd),
                                    training=True, granularity="channel") for sd in (3, 3, 4))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1].lam, b[1].lam)
    assert (a[1].lam != c[1].lam).any()


@pytest.mark.parametrize("shape,k,s,p", CASES[:3], ids=IDS[:3])
def test_yu_evaluation_applies_the_given_choice(rng, shape, k, s, p):
    x = rng.standard_normal(shape)
    gen = np.random.default_rng(0)
    before = _state(gen)
    kw = dict(kernel_size=k, stride=s, padding=p, rng=gen, training=False)
    np.testing.assert_allclose(mixed_pool2d_forward(x, eval_lambda=1, **kw)[0],
                               loop_max(x, k, s, p), rtol=0, atol=1e-12)
    np.testing.assert_allclose(mixed_pool2d_forward(x, eval_lambda=0, **kw)[0],
                               loop_avg(x, k, s, p), rtol=0, atol=1e-12)
    per = np.arange(shape[1]) % 2
    y = mixed_pool2d_forward(x, eval_lambda=per, **kw)[0]
    want = np.where(per.reshape(1, -1, 1, 1) == 1, loop_max(x, k, s, p), loop_avg(x, k, s, p))
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-12)
    assert _state(gen) == before, "evaluation drew from the generator"
    kern = Kernel("mixed_pool2d", lambda x: mixed_pool2d_forward(
        x, eval_lambda=per, kernel_size=k, stride=s, padding=p, rng=None, training=False),
        mixed_pool2d_backward)
    kern.check_gradient([_distinct(rng, shape)], rng)


@pytest.mark.parametrize("kind", ["equal", "integers"])
def test_yu_max_ties_go_to_the_first_maximum(rng, kind):
    shape = (2, 3, 7, 6)
    x = np.full(shape, 1.5) if kind == "equal" else rng.integers(0, 3, shape).astype(float)
    y, cache = mixed_pool2d_forward(x, kernel_size=3, stride=1, padding=1, rng=None,
                                    training=False, eval_lambda=1)
    dy = rng.standard_normal(y.shape)
    dx = mixed_pool2d_backward(dy, cache)
    _, first = R.max_pool(x, kernel_size=3, stride=1, padding=1)  # the first maximum
    np.testing.assert_allclose(dx, R.max_pool_backward(dy, first, shape), rtol=0, atol=1e-12)


@pytest.mark.parametrize("granularity", GRAN)
def test_yu_hostile_and_dtypes(rng, granularity):
    kern = yu(9, kernel_size=3, stride=2, padding=1, granularity=granularity)
    x = _distinct(rng, (2, 3, 7, 6))
    kern.check_hostile([x], rng)
    kern.check_dtypes([x], rng)


def test_yu_errors(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    kern = yu(0, kernel_size=2)
    kern.check_type_errors([x])
    kern.check_dy_errors([x])
    op = "mixed_pool2d"
    with raises(op, r"granularity must be one of \('layer', 'channel', 'window'\), got 'pixel'"):
        mixed_pool2d_forward(x, kernel_size=2, rng=rng, training=True, granularity="pixel")
    with raises(op, "rng must be a numpy.random.Generator when training, got NoneType",
                TypeError):
        mixed_pool2d_forward(x, kernel_size=2, rng=None, training=True)
    with raises(op, "training must be a bool", TypeError):
        mixed_pool2d_forward(x, kernel_size=2, rng=rng, training="yes")
    with raises(op, "evaluation needs eval_lambda"):
        mixed_pool2d_forward(x, kernel_size=2, rng=None, training=False)
    for bad in (0.5, [1, 0, 1], 2, "max"):
        with raises(op, "eval_lambda must be 0 or 1"):
            mixed_pool2d_forward(x, kernel_size=2, rng=None, training=False, eval_lambda=bad)
    with raises(op, "padding must be at most half the kernel size"):
        mixed_pool2d_forward(x, kernel_size=2, padding=2, rng=rng, training=True)
    with raises(op, "x must be 4-D"):
        mixed_pool2d_forward(x[0], kernel_size=2, rng=rng, training=True)


# ------------------------------------------------------------------ Lee et al. 2016: mixed, gated

LEE_CASES = [c[:3] for c in CASES]
LEE_IDS = [f"{c[0]}-k{c[1]}-s{c[2]}" for c in LEE_CASES]


def _a(rng, shape, per_channel):
    return rng.uniform(0.1, 0.9, (shape[1],) if per_channel else ())


def _w(rng, shape, k, per_channel):
    kk = ntuple(k, 2)
    return 0.5 * rng.standard_normal(((shape[1],) if per_channel else ()) + kk)


#: Lee's two ops: (kernel factory, parameter maker (rng, shape, k, per_channel), reference)
LEE_OPS = {"mixed": (lee, lambda rng, shape, k, pc: _a(rng, shape, pc), R.mixed_maxavg_pool),
           "gated": (gated, _w, R.gated_pool)}


@pytest.mark.parametrize("op", sorted(LEE_OPS))
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("shape,k,s", LEE_CASES, ids=LEE_IDS)
def test_lee_forward_matches_loop(rng, shape, k, s, per_channel, op):
    make, param, ref = LEE_OPS[op]
    x, p = rng.standard_normal(shape), param(rng, shape, k, per_channel)
    make(kernel_size=k, stride=s).check_forward(
        [x, p], lambda x, p: ref(x, p, kernel_size=k, stride=s))


@pytest.mark.parametrize("op", sorted(LEE_OPS))
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("shape,k,s", LEE_CASES, ids=LEE_IDS)
def test_lee_gradient(rng, shape, k, s, per_channel, op):
    make, param, _ = LEE_OPS[op]
    make(kernel_size=k, stride=s).check_gradient(
        [_distinct(rng, shape), param(rng, shape, k, per_channel)], rng)


def test_lee_mixed_ends_are_max_and_average(rng):
    x = rng.standard_normal((2, 3, 6, 7))
    for a, want in ((1.0, loop_max(x, 3, 2)), (0.0, loop_avg(x, 3, 2))):
        y, cache = mixed_maxavg_pool2d_forward(x, np.array(a), kernel_size=3, stride=2)
        np.testing.assert_allclose(y, want, rtol=0, atol=1e-12)
    # a of shape (1,) is one per layer: its gradient sums over the channels too
    x = _distinct(rng, (2, 3, 4, 4))
    lee(kernel_size=2).check_gradient([x, np.array([0.4])], rng)


def test_lee_mixed_hostile_dtypes_errors(rng):
    x = _distinct(rng, (2, 3, 7, 6))
    kern = lee(kernel_size=3, stride=2)
    for a in (np.array(0.3), rng.uniform(0.1, 0.9, 3)):
        kern.check_hostile([x, a], rng)
        kern.check_dtypes([x, a], rng)
        kern.check_type_errors([x, a])
        kern.check_dy_errors([x, a])
    op = "mixed_maxavg_pool2d"
    for bad in (np.array(1.5), np.array(-0.1), np.array([0.5, np.nan, 0.5])):
        with raises(op, r"a must lie in \[0, 1\]"):
            mixed_maxavg_pool2d_forward(x, bad, kernel_size=2)
    with raises(op, r"a must have shape \(\) or \(1,\) or \(3,\)"):
        mixed_maxavg_pool2d_forward(x, np.full(2, 0.5), kernel_size=2)
    with raises(op, "x must be 4-D"):
        mixed_maxavg_pool2d_forward(x[0], np.array(0.5), kernel_size=2)


# ------------------------------------------------------------------ Lee et al. 2016: gated

def test_gated_saturates_to_max_and_average(rng):
    x = rng.random((1, 2, 6, 6)) + 0.5  # positive windows: a large mask saturates the gate
    for sign, want in ((1, loop_max(x, 2, 2)), (-1, loop_avg(x, 2, 2))):
        y, _ = gated_pool2d_forward(x, np.full((2, 2), sign * 200.0), kernel_size=2)
        np.testing.assert_allclose(y, want, rtol=0, atol=1e-12)
    y, _ = gated_pool2d_forward(x, np.zeros((2, 2)), kernel_size=2)  # gate 1/2
    np.testing.assert_allclose(y, (loop_max(x, 2, 2) + loop_avg(x, 2, 2)) / 2, atol=1e-12)


def test_gated_hostile_dtypes_errors(rng):
    x = _distinct(rng, (2, 3, 7, 6))
    kern = gated(kernel_size=3, stride=2)
    for per_channel in (False, True):
        w = _w(rng, x.shape, 3, per_channel)
        kern.check_hostile([x, w], rng)
        kern.check_dtypes([x, w], rng)
        kern.check_type_errors([x, w])
        kern.check_dy_errors([x, w])
    op = "gated_pool2d"
    with raises(op, r"w must have shape \(3, 3\) or \(3, 3, 3\)"):
        gated_pool2d_forward(x, np.zeros((2, 2)), kernel_size=3)
    with raises(op, r"w must have shape \(2, 2\) or \(3, 2, 2\)"):
        gated_pool2d_forward(x, np.zeros((2, 2, 2)), kernel_size=2)
    with raises(op, "kernel_size must be >= 1"):
        gated_pool2d_forward(x, np.zeros((2, 2)), kernel_size=0)


# ------------------------------------------------------------------ PyTorch parity (float64)

def _torch_grads(torch, fn, *arrays, dy):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*ts)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), [t.grad.numpy() for t in ts]


@pytest.mark.parametrize("granularity", GRAN)
@pytest.mark.parametrize("shape,k,s,p", CASES, ids=IDS)
def test_yu_parity_with_torch(rng, torch, shape, k, s, p, granularity):
    """Yu's op with the recorded choice is torch.where(lambda, max_pool2d, avg_pool2d)."""
    tf = torch.nn.functional
    x = rng.integers(0, 4, shape).astype(float)  # ties: PyTorch's first-max rule too
    y, cache = mixed_pool2d_forward(x, kernel_size=k, stride=s, padding=p,
                                    rng=np.random.default_rng(1), training=True,
                                    granularity=granularity)
    dy = rng.standard_normal(y.shape)
    lam = torch.tensor(np.broadcast_to(cache.lam_full, y.shape).copy())
    ty, (tdx,) = _torch_grads(torch, lambda t: torch.where(
        lam, tf.max_pool2d(t, k, s, p), tf.avg_pool2d(t, k, s, p)), x, dy=dy)
    np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mixed_pool2d_backward(dy, cache), tdx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("shape,k,s", LEE_CASES, ids=LEE_IDS)
def test_lee_parity_with_torch_autograd(rng, torch, shape, k, s, per_channel):
    tf = torch.nn.functional
    x = rng.integers(0, 4, shape).astype(float)
    a = _a(rng, shape, per_channel)
    w = _w(rng, shape, k, per_channel)

    def mixed(t, ta):
        ta = ta.reshape(1, -1, 1, 1) if ta.ndim == 1 else ta
        return ta * tf.max_pool2d(t, k, s) + (1 - ta) * tf.avg_pool2d(t, k, s)

    y, cache = mixed_maxavg_pool2d_forward(x, a, kernel_size=k, stride=s)
    dy = rng.standard_normal(y.shape)
    ty, (tdx, tda) = _torch_grads(torch, mixed, x, a, dy=dy)
    dx, da = mixed_maxavg_pool2d_backward(dy, cache)
    for got, want in ((y, ty), (dx, tdx), (da, tda)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)

    def gate(t, tw):
        n, c = t.shape[:2]
        cols = tf.unfold(t.reshape(n * c, 1, *t.shape[2:]), k,
                         stride=k if s is None else s)  # (NC, KK, L)
        cols = cols.reshape(n, c, cols.shape[1], -1)
        mask = tw.reshape(1, 1, -1, 1) if tw.ndim == 2 else tw.reshape(1, c, -1, 1)
        z = (cols * mask).sum(2)
        ym, ya = tf.max_pool2d(t, k, s), tf.avg_pool2d(t, k, s)
        g = torch.sigmoid(z).reshape(ym.shape)
        return g * ym + (1 - g) * ya

    y, cache = gated_pool2d_forward(x, w, kernel_size=k, stride=s)
    ty, (tdx, tdw) = _torch_grads(torch, gate, x, w, dy=dy)
    dx, dw = gated_pool2d_backward(dy, cache)
    for got, want in ((y, ty), (dx, tdx), (dw, tdw)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


# ------------------------------------------------------------------ 1-D and 3-D

ND = {1: (mixed_pool1d_forward, mixed_pool1d_backward, mixed_maxavg_pool1d_forward,
          mixed_maxavg_pool1d_backward, gated_pool1d_forward, gated_pool1d_backward),
      3: (mixed_pool3d_forward, mixed_pool3d_backward, mixed_maxavg_pool3d_forward,
          mixed_maxavg_pool3d_backward, gated_pool3d_forward, gated_pool3d_backward)}
# (x shape, kernel, stride, padding): overlapping, non-tiling, non-cubic, batch 1
ND_CASES = [((2, 3, 9), 3, 2, 1), ((1, 2, 7), 2, 2, 0),
            ((2, 2, 4, 5, 6), 3, 2, 1), ((1, 2, 3, 4, 5), (1, 2, 3), (1, 1, 2), 0)]
ND_IDS = [f"{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}" for c in ND_CASES]


@pytest.mark.parametrize("granularity", GRAN)
@pytest.mark.parametrize("shape,k,s,p", ND_CASES, ids=ND_IDS)
def test_yu_nd_parity_with_torch_and_gradient(rng, torch, shape, k, s, p, granularity):
    nd = len(shape) - 2
    fwd, bwd = ND[nd][:2]
    tf = torch.nn.functional
    x = rng.integers(0, 4, shape).astype(float)
    y, cache = fwd(x, kernel_size=k, stride=s, padding=p, rng=np.random.default_rng(2),
                   training=True, granularity=granularity)
    dy = rng.standard_normal(y.shape)
    lam = torch.tensor(np.broadcast_to(cache.lam_full, y.shape).copy())
    mp, ap = getattr(tf, f"max_pool{nd}d"), getattr(tf, f"avg_pool{nd}d")
    ty, (tdx,) = _torch_grads(torch, lambda t: torch.where(lam, mp(t, k, s, p), ap(t, k, s, p)),
                              x, dy=dy)
    np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bwd(dy, cache), tdx, rtol=1e-12, atol=1e-12)
    kern = Kernel(f"mixed_pool{nd}d", lambda x: fwd(
        x, kernel_size=k, stride=s, padding=p, rng=np.random.default_rng(2), training=True,
        granularity=granularity), bwd)
    xd = _distinct(rng, shape)
    kern.check_gradient([xd], rng)
    kern.check_hostile([xd], rng)
    kern.check_dtypes([xd], rng)
    kern.check_dy_errors([xd])


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("shape,k,s", [c[:3] for c in ND_CASES], ids=ND_IDS)
def test_lee_nd(rng, torch, shape, k, s, per_channel):
    nd = len(shape) - 2
    _, _, mfwd, mbwd, gfwd, gbwd = ND[nd]
    tf = torch.nn.functional
    kk = (k,) * nd if isinstance(k, int) else tuple(k)
    x = rng.integers(0, 4, shape).astype(float)
    a = _a(rng, shape, per_channel)
    w = 0.5 * rng.standard_normal(((shape[1],) if per_channel else ()) + kk)
    mp, ap = getattr(tf, f"max_pool{nd}d"), getattr(tf, f"avg_pool{nd}d")
    bshape = (1, -1) + (1,) * nd

    def mixed(t, ta):
        ta = ta.reshape(bshape) if ta.ndim == 1 else ta
        return ta * mp(t, k, s) + (1 - ta) * ap(t, k, s)

    y, cache = mfwd(x, a, kernel_size=k, stride=s)
    dy = rng.standard_normal(y.shape)
    ty, (tdx, tda) = _torch_grads(torch, mixed, x, a, dy=dy)
    for got, want in zip((y, *mbwd(dy, cache)), (ty, tdx, tda)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # gated: forward against the window loop, gradients numerically
    np.testing.assert_allclose(gfwd(x, w, kernel_size=k, stride=s)[0],
                               R.gated_pool(x, w, kernel_size=k, stride=s), rtol=1e-12,
                               atol=1e-12)
    xd = _distinct(rng, shape)
    for kern, p in ((Kernel(f"mixed_maxavg_pool{nd}d", lambda x, a: mfwd(
            x, a, kernel_size=k, stride=s), mbwd, ("x", "a")), a),
                    (Kernel(f"gated_pool{nd}d", lambda x, w: gfwd(
                        x, w, kernel_size=k, stride=s), gbwd, ("x", "w")), w)):
        kern.check_gradient([xd, p], rng)
        kern.check_hostile([xd, p], rng)
        kern.check_dtypes([xd, p], rng)
        kern.check_type_errors([xd, p])
        kern.check_dy_errors([xd, p])
