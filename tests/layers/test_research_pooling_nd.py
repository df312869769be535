"""The 1-D and 3-D research pooling modules: each delegates to its nd-kernel with the
module's own Generator and Parameters (the same draws as the kernel called with an equally
seeded Generator), whole-module float64 gradient checks over the input and every parameter,
the counts of mixed pooling over every spatial axis, and errors naming the module."""

import numpy as np
import pytest

import convprop.functional as F
import convprop.layers as L
from convprop.gradcheck import check_module

SPATIAL = {1: (7,), 3: (5, 4, 6)}


def _distinct(rng, shape):
    n = int(np.prod(shape))
    return rng.permutation(n).reshape(shape) * 0.05 - n * 0.025


@pytest.mark.parametrize("nd", [1, 3])
def test_stochastic_nd_uses_its_generator(nd, rng):
    x = rng.random((2, 3, *SPATIAL[nd])).astype(np.float32)
    m = getattr(L, f"StochasticPool{nd}d")(2, rng=np.random.default_rng(4))
    y, cache = m.forward(x, training=True)
    y2, c2 = getattr(F, f"stochastic_pool{nd}d_forward")(
        x, kernel_size=2, rng=np.random.default_rng(4), training=True)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(cache.offset, c2.offset)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(m.backward(dy, cache),
                                  getattr(F, f"stochastic_pool{nd}d_backward")(dy, c2))
    check_module(m, x.astype(np.float64) + 0.2, training=False, rng=rng).raise_if_failed()


@pytest.mark.parametrize("nd", [1, 3])
@pytest.mark.parametrize("granularity", ["layer", "channel", "window"])
def test_mixed_nd_counts_every_window(nd, granularity, rng):
    x = rng.standard_normal((2, 3, *SPATIAL[nd])).astype(np.float32)
    m = getattr(L, f"MixedPool{nd}d")(3, 2, 1, granularity, rng=np.random.default_rng(8))
    ref = np.random.default_rng(8)
    hits = 0
    for _ in range(4):
        y, cache = m.forward(x, training=True)
        y2, c2 = getattr(F, f"mixed_pool{nd}d_forward")(
            x, kernel_size=3, stride=2, padding=1, rng=ref, training=True,
            granularity=granularity)
        np.testing.assert_array_equal(y, y2)
        lam = c2.lam
        hits = hits + (lam if granularity != "window" else
                       lam.sum(axis=(0, *range(2, lam.ndim))))
    np.testing.assert_array_equal(m.max_count, hits)
    check_module(m, _distinct(rng, (2, 3, *SPATIAL[nd])), training=False,
                 rng=rng).raise_if_failed()


@pytest.mark.parametrize("nd", [1, 3])
@pytest.mark.parametrize("per_channel", [False, True])
def test_mixed_maxavg_and_gated_nd(nd, per_channel, rng):
    x = _distinct(rng, (2, 3, *SPATIAL[nd]))
    mm = getattr(L, f"MixedMaxAvgPool{nd}d")(2, per_channel=per_channel, channels=3,
                                             dtype=np.float64)
    mm.logit.value = rng.standard_normal(mm.logit.shape)
    y, _ = mm.forward(x)
    np.testing.assert_allclose(y, getattr(F, f"mixed_maxavg_pool{nd}d_forward")(
        x, mm.a, kernel_size=2)[0], rtol=1e-12)
    check_module(mm, x, rng=rng).raise_if_failed()
    g = getattr(L, f"GatedPool{nd}d")(2, per_channel=per_channel, channels=3,
                                      dtype=np.float64)
    assert g.weight.shape == ((3,) if per_channel else ()) + (2,) * nd
    g.weight.value = 0.5 * rng.standard_normal(g.weight.shape)
    y, _ = g.forward(x)
    np.testing.assert_array_equal(y, getattr(F, f"gated_pool{nd}d_forward")(
        x, g.weight.value, kernel_size=2)[0])
    check_module(g, x, rng=rng).raise_if_failed()


@pytest.mark.parametrize("nd", [1, 3])
def test_nd_errors_name_the_module(nd):
    with pytest.raises(ValueError, match=rf"^MixedPool{nd}d: granularity must be one of"):
        getattr(L, f"MixedPool{nd}d")(2, granularity="batch")
    with pytest.raises(ValueError, match=rf"^StochasticPool{nd}d: kernel_size must be >= 1"):
        getattr(L, f"StochasticPool{nd}d")(0)
    with pytest.raises(ValueError, match=rf"^GatedPool{nd}d: per_channel=True needs channels"):
        getattr(L, f"GatedPool{nd}d")(2, per_channel=True)
    m = getattr(L, f"MixedPool{nd}d")(2, granularity="channel", channels=3)
    with pytest.raises(ValueError, match=rf"^MixedPool{nd}d: x has 4 channels but the module "
                                         r"counts 3"):
        m.forward(np.zeros((1, 4, *(4,) * nd), np.float32), training=True)
    with pytest.raises(ValueError, match=rf"mixed_maxavg_pool{nd}d: x must be {nd + 2}-D"):
        getattr(L, f"MixedMaxAvgPool{nd}d")(2).forward(np.zeros((1, 3, 4, 4, 4, 4)[:nd + 3],
                                                                np.float32))
