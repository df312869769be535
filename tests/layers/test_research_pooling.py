"""The research pooling modules: StochasticPool2d, MixedPool2d (Yu et al. 2014),
MixedMaxAvgPool2d and GatedPool2d (Lee et al. 2016). Each delegates to its kernel with the
module's own Generator / Parameters; whole-module float64 gradient checks (input and every
parameter, through the logit of the mixing weight), the evaluation-time majority rule of
mixed pooling, state round trips, dtypes and errors."""

import numpy as np
import pytest

from convprop.functional.mixed_pooling import gated_pool2d_forward, \
    mixed_maxavg_pool2d_forward, mixed_pool2d_forward
from convprop.functional.stochastic_pooling import stochastic_pool2d_forward
from convprop.gradcheck import check_module
from convprop.layers.research_pooling import GatedPool2d, MixedMaxAvgPool2d, MixedPool2d, \
    StochasticPool2d


def _distinct(rng, shape):
    n = int(np.prod(shape))
    return rng.permutation(n).reshape(shape) * 0.05 - n * 0.025


def _state(g):
    return repr(g.bit_generator.state)


def test_stochastic_module_uses_its_generator(rng):
    x = rng.random((2, 3, 6, 6)).astype(np.float32)
    m = StochasticPool2d(2, rng=np.random.default_rng(4))
    y, cache = m.forward(x, training=True)
    y2, c2 = stochastic_pool2d_forward(x, kernel_size=2, rng=np.random.default_rng(4),
                                       training=True)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(cache.offset, c2.offset)
    before = _state(m.rng)
    dx = m.backward(rng.standard_normal(y.shape).astype(np.float32), cache)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    assert _state(m.rng) == before
    # successive passes draw afresh; evaluation does not draw
    assert (m.forward(x, training=True)[1].offset != cache.offset).any()
    before = _state(m.rng)
    ye, _ = m.forward(x, training=False)
    assert _state(m.rng) == before
    np.testing.assert_allclose(ye, (x.reshape(2, 3, 3, 2, 3, 2) ** 2).sum((3, 5))
                               / x.reshape(2, 3, 3, 2, 3, 2).sum((3, 5)), rtol=1e-6)


def test_stochastic_module_eval_gradcheck(rng):
    m = StochasticPool2d((3, 2), stride=(1, 2))
    check_module(m, rng.random((2, 2, 6, 7)) + 0.2, training=False, rng=rng).raise_if_failed()


@pytest.mark.parametrize("granularity", ["layer", "channel", "window"])
def test_mixed_module_uses_its_generator_and_counts(rng, granularity):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    m = MixedPool2d(3, 2, 1, granularity, rng=np.random.default_rng(8))
    ref = np.random.default_rng(8)
    hits, draws = 0, 0
    for _ in range(5):
        y, cache = m.forward(x, training=True)
        y2, c2 = mixed_pool2d_forward(x, kernel_size=3, stride=2, padding=1, rng=ref,
                                      training=True, granularity=granularity)
        np.testing.assert_array_equal(y, y2)
        np.testing.assert_array_equal(cache.lam, c2.lam)
        lam = c2.lam
        if granularity == "window":
            hits, draws = hits + lam.sum(axis=(0, 2, 3)), draws + lam.size // 3
        else:
            hits, draws = hits + lam.astype(np.int64), draws + 1
    np.testing.assert_array_equal(m.max_count, hits)
    np.testing.assert_array_equal(m.draw_count, np.broadcast_to(draws, m.draw_count.shape))
    want = (2 * np.asarray(hits) >= draws).astype(np.int64)
    np.testing.assert_array_equal(m.eval_lambda, want)
    before = _state(m.rng)
    ye, ce = m.forward(x, training=False)
    assert _state(m.rng) == before
    np.testing.assert_array_equal(
        ye, mixed_pool2d_forward(x, kernel_size=3, stride=2, padding=1, rng=None,
                                 training=False, eval_lambda=want)[0])
    # evaluation leaves the counts alone
    np.testing.assert_array_equal(m.max_count, hits)


def test_mixed_module_majority_rule_and_state():
    m = MixedPool2d(2, granularity="channel", channels=3)
    assert m.max_count.shape == (3,)
    m.load_state_dict({"max_count": np.array([0, 5, 2]), "draw_count": np.array([4, 6, 4])})
    np.testing.assert_array_equal(m.eval_lambda, [0, 1, 1])  # a tie (2 of 4) goes to max
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    y, _ = m.forward(x, training=False)
    xr = x.reshape(2, 3, 2, 2, 2, 2)
    np.testing.assert_array_equal(y[:, 0], xr.mean((3, 5))[:, 0])
    np.testing.assert_array_equal(y[:, 1:], xr.max((3, 5))[:, 1:])
    fresh = MixedPool2d(2, granularity="channel", channels=3)
    fresh.load_state_dict(m.state_dict())
    np.testing.assert_array_equal(fresh.eval_lambda, m.eval_lambda)
    # never trained: max pooling
    np.testing.assert_array_equal(MixedPool2d(2, granularity="window").eval_lambda, 1)
    np.testing.assert_array_equal(MixedPool2d(2).eval_lambda, 1)


def test_mixed_module_eval_gradcheck(rng):
    m = MixedPool2d(3, 2, 1, "channel", channels=2)
    m.load_state_dict({"max_count": np.array([1, 3]), "draw_count": np.array([4, 4])})
    check_module(m, _distinct(rng, (2, 2, 7, 6)), training=False, rng=rng).raise_if_failed()


@pytest.mark.parametrize("per_channel", [False, True])
def test_mixed_maxavg_module(rng, per_channel):
    m = MixedMaxAvgPool2d(3, 2, per_channel=per_channel, channels=3)
    assert m.logit.shape == ((3,) if per_channel else (1,))
    np.testing.assert_allclose(m.a, 0.5)
    m.logit.value = rng.standard_normal(m.logit.shape).astype(np.float32)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    y, cache = m.forward(x, training=True)
    a = 1 / (1 + np.exp(-m.logit.value.astype(np.float64)))
    y2, _ = mixed_maxavg_pool2d_forward(x, a.astype(np.float32), kernel_size=3, stride=2)
    np.testing.assert_allclose(y, y2, rtol=1e-6, atol=1e-6)
    assert y.dtype == np.float32
    # gradients add into .grad
    dy = rng.standard_normal(y.shape).astype(np.float32)
    m.zero_grad()
    m.backward(dy, cache)
    g1 = m.logit.grad.copy()
    m.backward(dy, cache)
    np.testing.assert_allclose(m.logit.grad, 2 * g1, rtol=1e-6)
    # the whole module in float64: the input and the logit (chain rule through sigmoid)
    check_module(m, _distinct(rng, (2, 3, 7, 6)), rng=rng).raise_if_failed()


@pytest.mark.parametrize("per_channel", [False, True])
def test_gated_module(rng, per_channel):
    m = GatedPool2d((2, 3), (1, 2), per_channel=per_channel, channels=3)
    assert m.weight.shape == ((3,) if per_channel else ()) + (2, 3)
    assert not m.weight.value.any()
    m.weight.value = (0.5 * rng.standard_normal(m.weight.shape)).astype(np.float32)
    x = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    y, cache = m.forward(x)
    np.testing.assert_array_equal(
        y, gated_pool2d_forward(x, m.weight.value, kernel_size=(2, 3), stride=(1, 2))[0])
    dy = rng.standard_normal(y.shape).astype(np.float32)
    m.zero_grad()
    dx = m.backward(dy, cache)
    assert dx.dtype == np.float32 and m.weight.grad.dtype == np.float32
    check_module(m, _distinct(rng, (2, 3, 6, 7)), rng=rng).raise_if_failed()


def test_module_errors(rng):
    with pytest.raises(ValueError, match="^MixedPool2d: granularity must be one of"):
        MixedPool2d(2, granularity="batch")
    with pytest.raises(TypeError, match="^MixedPool2d: rng must be a numpy.random.Generator"):
        MixedPool2d(2, rng=1)
    with pytest.raises(TypeError, match="^StochasticPool2d: rng must be a numpy.random"):
        StochasticPool2d(2, rng="seed")
    with pytest.raises(ValueError, match="^StochasticPool2d: kernel_size must be >= 1"):
        StochasticPool2d(0)
    with pytest.raises(ValueError, match="^MixedPool2d: padding must be at most half"):
        MixedPool2d(2, padding=2)
    for cls in (MixedMaxAvgPool2d, GatedPool2d):
        name = cls.__name__
        with pytest.raises(ValueError, match=f"^{name}: per_channel=True needs channels"):
            cls(2, per_channel=True)
        with pytest.raises(TypeError, match=f"^{name}: x has dtype float64 but the param"):
            cls(2).forward(np.zeros((1, 1, 4, 4)))
        with pytest.raises(TypeError, match=f"^{name}: dtype must be float32 or float64"):
            cls(2, dtype=np.int32)
    m = MixedPool2d(2, granularity="channel")
    m.forward(np.zeros((1, 3, 4, 4)), training=True)
    with pytest.raises(ValueError, match="^MixedPool2d: x has 2 channels but the module "
                                         "counts 3"):
        m.forward(np.zeros((1, 2, 4, 4)), training=True)


def test_reprs():
    assert repr(StochasticPool2d(2)) == "StochasticPool2d(kernel_size=(2, 2), stride=(2, 2))"
    assert "granularity='window'" in repr(MixedPool2d(3, 1, 1, "window"))
    assert "per_channel=True" in repr(GatedPool2d(2, per_channel=True, channels=4))
    assert "per_channel=False" in repr(MixedMaxAvgPool2d(2))
