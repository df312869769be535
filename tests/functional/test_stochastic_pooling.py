"""Stochastic pooling (Zeiler and Fergus 2013): the sampled positions against a loop oracle
of the documented inverse-CDF rule, their distribution against the probabilities (a
chi-square test that can fail), reproducibility, replay without drawing, the evaluation-time
weighted average and its exact gradient, hostile inputs, dtypes and errors."""

import math

import numpy as np
import pytest
from contract import Kernel, raises

from convprop import reference as R
from convprop.functional.stochastic_pooling import stochastic_pool1d_backward, \
    stochastic_pool1d_forward, stochastic_pool2d_backward, stochastic_pool2d_forward, \
    stochastic_pool3d_backward, stochastic_pool3d_forward

OP = "stochastic_pool2d"


def loop_sample(x, k, s, seed):
    """The reference's inverse-CDF rule on the kernel's draws: one float64 per window, in
    y's C order."""
    out = R.windows(x, k, s).shape[:-1]
    return R.stochastic_pool(x, np.random.default_rng(seed).random(out), kernel_size=k,
                             stride=s)


def seeded(seed, training=True, **kw):
    """The kernel with a Generator made afresh from ``seed`` on every call: the replayed
    forward (the same draws, hence the same recorded positions) the contract needs."""
    def fwd(x):
        return stochastic_pool2d_forward(x, rng=np.random.default_rng(seed), training=training,
                                         **kw)
    return Kernel(OP, fwd, stochastic_pool2d_backward,
                  extras=(lambda c: c.offset) if training else None)


def _positive(rng, shape):
    """Activations in [0.25, 2] on a 1/64 grid: exact in float32, away from zero."""
    return rng.integers(16, 129, shape) / 64.0


# (x shape, kernel, stride)
CASES = [
    ((2, 3, 6, 6), 2, None),            # tiling
    ((2, 2, 7, 7), 3, 1),               # overlapping windows (3x)
    ((2, 2, 7, 9), 3, 2),               # overlapping, non-square
    ((1, 1, 5, 7), 2, 2),               # non-tiling, batch 1, channel 1
    ((2, 2, 5, 6), 1, 1),               # kernel 1
    ((1, 3, 9, 8), 2, 3),               # stride > kernel: gaps
    ((2, 2, 6, 9), (2, 3), (1, 2)),     # non-square kernel and stride
]
IDS = [f"{c[0]}-k{c[1]}-s{c[2]}" for c in CASES]


@pytest.mark.parametrize("shape,k,s", CASES, ids=IDS)
def test_training_forward_matches_loop(rng, shape, k, s):
    x = rng.random(shape) * (rng.random(shape) < 0.7)  # zeros inside windows too
    x[0, 0, :2, :2] = 0  # an all-zero window (when the window fits in 2x2)
    seeded(11, kernel_size=k, stride=s).check_forward(
        [x], lambda x: loop_sample(x, k, s, 11), rtol=0, atol=0)


@pytest.mark.parametrize("shape,k,s", CASES, ids=IDS)
def test_eval_forward_matches_loop(rng, shape, k, s):
    x = rng.random(shape) * (rng.random(shape) < 0.7)
    x[0, 0, :3, :3] = 0
    seeded(0, training=False, kernel_size=k, stride=s).check_forward(
        [x], lambda x: R.stochastic_pool_eval(x, kernel_size=k, stride=s))


@pytest.mark.parametrize("shape,k,s", CASES, ids=IDS)
def test_training_gradient_of_the_replayed_forward(rng, shape, k, s):
    """With the draws fixed, y = x at the recorded positions: a numerical check of the
    backward, and the backward equals the loop scatter to the recorded positions."""
    x = _positive(rng, shape)
    kern = seeded(5, kernel_size=k, stride=s)
    kern.check_gradient([x], rng)
    y, cache = kern.forward(x)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(kern.backward(dy, cache),
                               R.scatter_to_offsets(dy, cache.offset, shape, k, s), rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize("shape,k,s", CASES, ids=IDS)
def test_eval_gradient(rng, shape, k, s):
    seeded(0, training=False, kernel_size=k, stride=s).check_gradient(
        [_positive(rng, shape)], rng)


def test_overlapping_windows_accumulate():
    # the single positive value is sampled by all four overlapping 2x2 windows
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 2.0
    y, cache = stochastic_pool2d_forward(x, kernel_size=2, stride=1, training=True,
                                         rng=np.random.default_rng(0))
    np.testing.assert_array_equal(y, np.full((1, 1, 2, 2), 2.0))
    np.testing.assert_array_equal(cache.indices, np.full((1, 1, 2, 2), 4))
    dx = stochastic_pool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    want = np.zeros((1, 1, 3, 3))
    want[0, 0, 1, 1] = 10.0
    np.testing.assert_array_equal(dx, want)


def _chi2_critical(df, z=4.753):
    """Wilson-Hilferty upper quantile of chi-square(df) at z standard deviations (4.753:
    a false alarm about once in a million runs)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def _chi2(counts, p):
    n = counts.sum()
    live = p > 0
    return float((((counts - n * p) ** 2)[live] / (n * p[live])).sum())


@pytest.mark.parametrize("window", [[1.0, 2.0, 3.0, 0.0, 4.0, 0.5, 0.0, 1.5, 3.0],
                                    [5.0, 0.1, 0.1, 0.1],
                                    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
def test_sampling_distribution_matches_probabilities(window):
    """Many copies of one window sampled in one call (one seed): the empirical frequencies
    of the positions pass a chi-square test against p_i = a_i / sum a, zero-activation
    positions are never drawn, and the same test rejects a wrong distribution (uniform), so
    it can fail."""
    kh = 3 if len(window) == 9 else 2
    kw = len(window) // kh
    n = 60000
    x = np.tile(np.array(window).reshape(1, 1, kh, kw), (n, 1, 1, 1))
    _, cache = stochastic_pool2d_forward(x, kernel_size=(kh, kw), training=True,
                                         rng=np.random.default_rng(2013))
    counts = np.bincount(cache.offset.ravel(), minlength=len(window)).astype(float)
    p = np.array(window) / sum(window)
    assert counts[p == 0].sum() == 0, "a zero activation was sampled"
    df = int((p > 0).sum()) - 1
    assert _chi2(counts, p) < _chi2_critical(df), (counts / n, p)
    if not np.allclose(p, p[0]):
        uniform = np.where(p > 0, 1.0, 0.0) / (p > 0).sum()
        assert _chi2(counts, uniform) > _chi2_critical(df), "the test cannot tell"
    np.testing.assert_allclose(counts / n, p, atol=5 * math.sqrt(0.25 / n))


def test_all_zero_window_is_uniform_and_routes_to_the_recorded_position():
    n = 40000
    x = np.zeros((n, 1, 2, 2))
    y, cache = stochastic_pool2d_forward(x, kernel_size=2, training=True,
                                         rng=np.random.default_rng(3))
    assert not y.any()
    counts = np.bincount(cache.offset.ravel(), minlength=4).astype(float)
    assert _chi2(counts, np.full(4, 0.25)) < _chi2_critical(3)
    dy = np.random.default_rng(4).standard_normal(y.shape)
    dx = stochastic_pool2d_backward(dy, cache)
    np.testing.assert_array_equal(dx, R.scatter_to_offsets(dy, cache.offset, x.shape, 2, None))
    # evaluation: output 0 and no gradient at an all-zero window
    y, cache = stochastic_pool2d_forward(x[:3], kernel_size=2, training=False, rng=None)
    assert not y.any()
    assert not stochastic_pool2d_backward(dy[:3], cache).any()


def test_reproducible_from_a_seed(rng):
    x = rng.random((3, 4, 8, 8))
    runs = [stochastic_pool2d_forward(x, kernel_size=2, training=True,
                                      rng=np.random.default_rng(seed)) for seed in (7, 7, 8)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1].offset, runs[1][1].offset)
    assert (runs[0][1].offset != runs[2][1].offset).any()
    # float32 and float64 copies of exactly representable values sample the same positions
    x = _positive(rng, (2, 3, 6, 6))
    a = stochastic_pool2d_forward(x, kernel_size=3, stride=1, training=True,
                                  rng=np.random.default_rng(1))[1].offset
    b = stochastic_pool2d_forward(x.astype(np.float32), kernel_size=3, stride=1,
                                  training=True, rng=np.random.default_rng(1))[1].offset
    np.testing.assert_array_equal(a, b)


def _state(g):
    return repr(g.bit_generator.state)


@pytest.mark.parametrize("training", [True, False])
def test_backward_replays_the_cache_and_never_draws(rng, training):
    x = rng.random((2, 3, 7, 7))
    gen = np.random.default_rng(99)
    y, cache = stochastic_pool2d_forward(x, kernel_size=3, stride=2, training=training,
                                         rng=gen)
    after_forward = _state(gen)
    dy = rng.standard_normal(y.shape)
    dx1 = stochastic_pool2d_backward(dy, cache)
    assert _state(gen) == after_forward, "the backward drew from the generator"
    gen.random(10)  # the generator moves on; the cache does not
    dx2 = stochastic_pool2d_backward(dy, cache)
    np.testing.assert_array_equal(dx1, dx2)
    if training:
        np.testing.assert_array_equal(dx1, R.scatter_to_offsets(dy, cache.offset, x.shape, 3, 2))


def test_eval_forward_does_not_draw(rng):
    gen = np.random.default_rng(5)
    before = _state(gen)
    stochastic_pool2d_forward(rng.random((1, 2, 4, 4)), kernel_size=2, training=False,
                              rng=gen)
    assert _state(gen) == before


def test_training_draws_one_uniform_per_window(rng):
    x = rng.random((2, 3, 6, 4))
    gen, ref = np.random.default_rng(6), np.random.default_rng(6)
    stochastic_pool2d_forward(x, kernel_size=2, training=True, rng=gen)
    ref.random((2, 3, 3, 2))
    assert _state(gen) == _state(ref)


@pytest.mark.parametrize("training", [True, False])
def test_hostile_inputs(rng, training):
    seeded(3, training=training, kernel_size=3, stride=2).check_hostile(
        [_positive(rng, (2, 3, 7, 6))], rng)


@pytest.mark.parametrize("training", [True, False])
def test_dtypes(rng, training):
    seeded(3, training=training, kernel_size=2, stride=1).check_dtypes(
        [_positive(rng, (2, 2, 5, 6))], rng)


def test_indices_are_flat_into_the_plane(rng):
    x = rng.random((2, 2, 6, 7))
    y, cache = stochastic_pool2d_forward(x, kernel_size=(2, 3), stride=(2, 2), training=True,
                                         rng=np.random.default_rng(0))
    flat = x.reshape(2, 2, -1)
    np.testing.assert_array_equal(
        y, np.take_along_axis(flat, cache.indices.reshape(2, 2, -1), axis=2).reshape(y.shape))
    _, ecache = stochastic_pool2d_forward(x, kernel_size=2, training=False, rng=None)
    with raises(OP, "an evaluation-mode cache has no sampled indices"):
        ecache.indices


def test_errors(rng):
    kern = seeded(0, kernel_size=2)
    x = _positive(rng, (1, 2, 4, 4))
    kern.check_type_errors([x])
    kern.check_dy_errors([x])
    seeded(0, training=False, kernel_size=2).check_dy_errors([x])
    for bad, what in [(-0.5, "-0.5"), (np.nan, "nan"), (np.inf, "inf")]:
        xb = x.copy()
        xb[0, 1, 2, 3] = bad
        for training in (True, False):
            with raises(OP, f"x must be finite and non-negative .*got {what}"):
                stochastic_pool2d_forward(xb, kernel_size=2, training=training,
                                          rng=np.random.default_rng(0))
    with raises(OP, "rng must be a numpy.random.Generator when training, got NoneType",
                TypeError):
        stochastic_pool2d_forward(x, kernel_size=2, training=True, rng=None)
    with raises(OP, "rng must be a numpy.random.Generator or None, got int", TypeError):
        stochastic_pool2d_forward(x, kernel_size=2, training=False, rng=3)
    with raises(OP, "training must be a bool", TypeError):
        stochastic_pool2d_forward(x, kernel_size=2, training=1, rng=None)
    with raises(OP, "x must be 4-D"):
        stochastic_pool2d_forward(x[0], kernel_size=2, training=False, rng=None)
    with raises(OP, "kernel_size must be >= 1"):
        stochastic_pool2d_forward(x, kernel_size=0, training=False, rng=None)
    with raises(OP, "stride must be >= 1"):
        stochastic_pool2d_forward(x, kernel_size=2, stride=(1, 0), training=False, rng=None)
    with raises(OP, "the 5-wide window"):
        stochastic_pool2d_forward(x, kernel_size=5, training=False, rng=None)


@pytest.mark.parametrize("shape,k,s", CASES, ids=IDS)
def test_eval_parity_with_torch_autograd(rng, torch, shape, k, s):
    """The test-time rule is avg_pool(x^2) / avg_pool(x): PyTorch's autograd of that
    expression gives the same output and input gradient (float64)."""
    tf = torch.nn.functional
    x = _positive(rng, shape)
    y, cache = stochastic_pool2d_forward(x, kernel_size=k, stride=s, training=False, rng=None)
    dy = rng.standard_normal(y.shape)
    t = torch.tensor(x, requires_grad=True)
    ss = k if s is None else s
    ty = tf.avg_pool2d(t * t, k, ss) / tf.avg_pool2d(t, k, ss)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stochastic_pool2d_backward(dy, cache), t.grad.numpy(),
                               rtol=1e-11, atol=1e-12)


def test_subnormal_activations_never_pick_a_zero():
    """With subnormal activations u * sum rounds up to sum itself (the inverse CDF finds no
    position): the kernel falls back to the last position with mass, never a zero."""
    tiny = 5e-324
    x = np.zeros((4000, 1, 2, 2))
    x[:, 0, 0, 1] = tiny
    x[::2, 0, 1, 0] = 3 * tiny
    _, cache = stochastic_pool2d_forward(x, kernel_size=2, training=True,
                                         rng=np.random.default_rng(0))
    picked = x.reshape(4000, 4)[np.arange(4000), cache.offset.ravel()]
    assert (picked > 0).all()
    assert set(np.unique(cache.offset)) <= {1, 2}


# ------------------------------------------------------------------ 1-D and 3-D

ND = {1: (stochastic_pool1d_forward, stochastic_pool1d_backward),
      3: (stochastic_pool3d_forward, stochastic_pool3d_backward)}
ND_CASES = [((2, 3, 9), 3, 2), ((1, 2, 7), 2, None),
            ((2, 2, 4, 5, 6), 3, 2), ((1, 2, 3, 4, 5), (1, 2, 3), (1, 1, 2))]
ND_IDS = [f"{c[0]}-k{c[1]}-s{c[2]}" for c in ND_CASES]


@pytest.mark.parametrize("shape,k,s", ND_CASES, ids=ND_IDS)
def test_nd(rng, torch, shape, k, s):
    nd = len(shape) - 2
    fwd, bwd = ND[nd]
    x = rng.random(shape) * (rng.random(shape) < 0.7)
    train = Kernel(f"stochastic_pool{nd}d", lambda x: fwd(
        x, kernel_size=k, stride=s, rng=np.random.default_rng(4), training=True), bwd,
        extras=lambda c: c.offset)
    train.check_forward([x], lambda x: loop_sample(x, k, s, 4), rtol=0, atol=0)
    # evaluation against PyTorch's autograd of avg_pool(x^2) / avg_pool(x)
    xp = _positive(rng, shape)
    y, cache = fwd(xp, kernel_size=k, stride=s, training=False, rng=None)
    dy = rng.standard_normal(y.shape)
    t = torch.tensor(xp, requires_grad=True)
    ap = getattr(torch.nn.functional, f"avg_pool{nd}d")
    ss = k if s is None else s
    ty = ap(t * t, k, ss) / ap(t, k, ss)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bwd(dy, cache), t.grad.numpy(), rtol=1e-11, atol=1e-12)
    evalk = Kernel(f"stochastic_pool{nd}d", lambda x: fwd(
        x, kernel_size=k, stride=s, rng=None, training=False), bwd)
    for kern in (train, evalk):
        kern.check_gradient([xp], rng)
        kern.check_hostile([xp], rng)
        kern.check_dtypes([xp], rng)
        kern.check_dy_errors([xp])
    train.check_type_errors([xp])
    gen = np.random.default_rng(1)
    y, cache = fwd(xp, kernel_size=k, stride=s, training=True, rng=gen)
    before = _state(gen)
    bwd(dy, cache)
    assert _state(gen) == before
    with raises(f"stochastic_pool{nd}d", "x must be finite and non-negative"):
        fwd(-xp, kernel_size=k, stride=s, training=True, rng=gen)
    with raises(f"stochastic_pool{nd}d", "an evaluation-mode cache has no sampled indices"):
        fwd(xp, kernel_size=k, stride=s, training=False, rng=None)[1].indices


def test_1d_sampling_distribution():
    window = np.array([0.5, 0.0, 2.0, 1.5, 1.0])
    n = 50000
    x = np.tile(window, (n, 1, 1))
    _, cache = stochastic_pool1d_forward(x, kernel_size=5, training=True,
                                         rng=np.random.default_rng(1301))
    counts = np.bincount(cache.offset.ravel(), minlength=5).astype(float)
    p = window / window.sum()
    assert counts[1] == 0
    assert _chi2(counts, p) < _chi2_critical(3)
    assert _chi2(counts, np.where(p > 0, 0.25, 0.0)) > _chi2_critical(3)
