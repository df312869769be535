"""convprop.reference's research poolings agree with the fast kernels: RoI pool and RoI Align
(forward and backward, overlapping boxes, boxes partly outside), wavelet pooling (forward and
the paper's backward rule), stochastic and Yu's mixed pooling on the kernels' own recorded
draws, Lee's mixed and gated pooling, max pooling's tie policies. The kernel tests hold the
fast kernels to the same references case by case; this is the tier-to-tier summary."""

from __future__ import annotations

import numpy as np
import pytest

from convprop import reference as R
from convprop.functional import adaptive_pooling as A
from convprop.functional import mixed_pooling as MP
from convprop.functional import pooling as P
from convprop.functional import roi_pooling as RP
from convprop.functional import stochastic_pooling as SP
from convprop.functional import wavelet_pooling as WP

TOL = dict(rtol=1e-12, atol=1e-12)
BOXES = np.array([[0, 0.5, 1.2, 6.3, 5.1], [1, -1.5, 2.0, 4.5, 9.0], [1, 2, 2, 7, 7],
                  [0, 0.5, 1.2, 6.3, 5.1]])


def test_roi_pool_and_its_backward(rng):
    x = np.round(rng.standard_normal((2, 3, 8, 9)), 1)  # ties: the first maximum
    y, cache = RP.roi_pool_forward(x, BOXES, output_size=(3, 2), spatial_scale=0.8)
    ry, arg = R.roi_pool(x, BOXES, (3, 2), 0.8)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(cache.argmax, arg)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(RP.roi_pool_backward(dy, cache),
                               R.roi_pool_backward(dy, BOXES, arg, x.shape), **TOL)


@pytest.mark.parametrize("ratio,aligned", [(-1, False), (2, True), (1, False)])
def test_roi_align_and_its_backward(rng, ratio, aligned):
    x = rng.standard_normal((2, 3, 8, 9))
    kw = dict(output_size=(2, 3), spatial_scale=0.8, sampling_ratio=ratio, aligned=aligned)
    y, cache = RP.roi_align_forward(x, BOXES, **kw)
    np.testing.assert_allclose(y, R.roi_align(x, BOXES, **kw), **TOL)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(RP.roi_align_backward(dy, cache),
                               R.roi_align_backward(dy, x, BOXES, **kw), **TOL)


@pytest.mark.parametrize("wavelet", sorted(R.WAVELET_FILTERS))
def test_wavelet_pool_and_the_papers_backward(rng, wavelet):
    x = rng.standard_normal((2, 2, 8, 12))
    y, cache = WP.wavelet_pool2d_forward(x, wavelet=wavelet, backward_rule="paper")
    np.testing.assert_allclose(y, R.wavelet_pool(x, wavelet), **TOL)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(WP.wavelet_pool2d_backward(dy, cache),
                               R.wavelet_pool_paper_backward(dy, wavelet), **TOL)


@pytest.mark.parametrize("shape,k,s", [((2, 2, 7, 6), 3, 2), ((1, 2, 9), 2, 1),
                                       ((1, 1, 4, 5, 4), 2, None)])
def test_stochastic_pool_on_the_recorded_draws(rng, shape, k, s):
    nd = len(shape) - 2
    fwd = getattr(SP, f"stochastic_pool{nd}d_forward")
    bwd = getattr(SP, f"stochastic_pool{nd}d_backward")
    x = rng.random(shape) * (rng.random(shape) < 0.7)
    y, cache = fwd(x, kernel_size=k, stride=s, rng=np.random.default_rng(3), training=True)
    u = np.random.default_rng(3).random(y.shape)  # the kernel's one draw per window
    ry, off = R.stochastic_pool(x, u, kernel_size=k, stride=s)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(cache.offset, off)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(bwd(dy, cache), R.scatter_to_offsets(dy, off, shape, k, s),
                               **TOL)
    y, _ = fwd(x, kernel_size=k, stride=s, rng=None, training=False)
    np.testing.assert_allclose(y, R.stochastic_pool_eval(x, kernel_size=k, stride=s), **TOL)


@pytest.mark.parametrize("granularity", ["layer", "channel", "window"])
def test_yu_mixed_pool_on_the_recorded_choice(rng, granularity):
    x = rng.standard_normal((2, 3, 7, 6))
    y, cache = MP.mixed_pool2d_forward(x, kernel_size=3, stride=2, padding=1, training=True,
                                       rng=np.random.default_rng(1), granularity=granularity)
    np.testing.assert_allclose(y, R.mixed_pool(x, cache.lam, granularity, kernel_size=3,
                                               stride=2, padding=1), **TOL)


def test_lee_mixed_and_gated_pool(rng):
    x = rng.standard_normal((2, 3, 7, 6))
    for a in (np.array(0.3), rng.random(3)):
        np.testing.assert_allclose(MP.mixed_maxavg_pool2d_forward(x, a, kernel_size=2)[0],
                                   R.mixed_maxavg_pool(x, a, kernel_size=2), **TOL)
    for w in (rng.standard_normal((3, 2)), rng.standard_normal((3, 3, 2))):
        np.testing.assert_allclose(
            MP.gated_pool2d_forward(x, w, kernel_size=(3, 2), stride=1)[0],
            R.gated_pool(x, w, kernel_size=(3, 2), stride=1), **TOL)


@pytest.mark.parametrize("ties", ["first", "split", "all"])
def test_max_pool_tie_policies(rng, ties):
    x = rng.integers(0, 3, (2, 2, 7, 6)).astype(float)
    x[0, 1, 2, 3] = np.nan
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    y, cache = P.max_pool2d_forward(x, **kw, ties=ties)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(P.max_pool2d_backward(dy, cache),
                               R.max_pool_backward_ties(dy, x, **kw, ties=ties), **TOL)


@pytest.mark.parametrize("ties", ["first", "split", "all"])
@pytest.mark.parametrize("shape,out", [((2, 2, 7, 5), (3, 2)), ((1, 2, 9), 4),
                                       ((1, 1, 4, 5, 3), (3, None, 2)), ((2, 2, 4, 3), None)])
def test_adaptive_and_global_max_pool_tie_policies(rng, ties, shape, out):
    """Overlapping bins (L not a multiple of O), ties, NaNs; out None: global pooling."""
    x = rng.integers(0, 3, shape).astype(float)
    x.flat[3:5] = np.nan  # two NaNs in one bin: the last one wins
    nd = len(shape) - 2
    if out is None:
        y, cache = getattr(A, f"global_max_pool{nd}d_forward")(x, ties=ties)
        bwd = getattr(A, f"global_max_pool{nd}d_backward")
    else:
        y, cache = getattr(A, f"adaptive_max_pool{nd}d_forward")(x, output_size=out, ties=ties)
        bwd = getattr(A, f"adaptive_max_pool{nd}d_backward")
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(bwd(dy, cache), R.adaptive_max_pool_backward_ties(
        dy, x, output_size=1 if out is None else out, ties=ties), **TOL)
