"""The RoIPool and RoIAlign modules: they delegate to their kernels (forward from an
``(x, boxes)`` pair or ``boxes=``, backward returning dx), own no parameters, keep no cache,
check their hyperparameters once at construction, and reject a malformed call."""

import numpy as np
import pytest

from convprop.functional.roi_pooling import (roi_align_backward, roi_align_forward,
                                             roi_pool_backward, roi_pool_forward)
from convprop.gradcheck import check_kernel
from convprop.layers.roi import RoIAlign, RoIPool

BOXES = [[0, 1.25, 0.5, 6.75, 5.5], [1, -1.5, 2.25, 4.5, 8.0], [1, 0, 0, 9, 7],
         [1, 2, 2, 5, 5]]


def _modules():
    return [
        (RoIPool((3, 2), 0.5), roi_pool_forward, roi_pool_backward,
         dict(output_size=(3, 2), spatial_scale=0.5)),
        (RoIPool(2, 1), roi_pool_forward, roi_pool_backward,
         dict(output_size=2, spatial_scale=1.0)),
        (RoIAlign(3, 0.5, 2), roi_align_forward, roi_align_backward,
         dict(output_size=3, spatial_scale=0.5, sampling_ratio=2)),
        (RoIAlign((2, 4), 1.0, -1, aligned=True), roi_align_forward, roi_align_backward,
         dict(output_size=(2, 4), spatial_scale=1.0, sampling_ratio=-1, aligned=True)),
    ]


@pytest.mark.parametrize("case", range(4))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_module_is_its_kernel(case, dtype, rng):
    m, fwd, bwd, kw = _modules()[case]
    x = rng.standard_normal((2, 3, 8, 10)).astype(dtype)
    b = np.array(BOXES, dtype=dtype)
    want, wcache = fwd(x, b, **kw)
    before = dict(vars(m))
    for y, cache in (m.forward((x, b)), m.forward([x, b], training=True),
                     m.forward(x, boxes=b), m((x, b))):
        np.testing.assert_array_equal(y, want)
        assert y.dtype == dtype
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx = m.backward(dy, cache)
        np.testing.assert_array_equal(dx, bwd(dy, wcache))
        assert dx.shape == x.shape and dx.dtype == dtype
    np.testing.assert_array_equal(m.predict((x, b)), want)
    assert m.parameters() == [] and m.num_parameters() == 0 and not m.state_dict()
    assert vars(m) == before  # nothing stored on the module by a forward


@pytest.mark.parametrize("case", range(4))
def test_module_gradcheck_and_two_calls(case, rng):
    """Two forwards before two backwards (a shared module): each cache gives its own dx,
    which matches the numerical gradient."""
    m = _modules()[case][0]
    x1 = rng.permutation(160).reshape(2, 1, 8, 10) * 0.05  # distinct: no ties for max
    x2 = rng.standard_normal((2, 1, 8, 10))
    b = np.array(BOXES)
    (y1, c1), (_, c2) = m.forward((x1, b)), m.forward((x2, b))
    dy = rng.standard_normal(y1.shape)
    dx1, dx2 = m.backward(dy, c1), m.backward(dy, c2)
    for x, dx in ((x1, dx1), (x2, dx2)):
        np.testing.assert_array_equal(dx, m.backward(dy, m.forward((x, b))[1]))
    report = check_kernel(lambda a: m.forward((a, b)), lambda g, cache: m.backward(g, cache),
                          [x1], rng=rng)
    assert report.passed, report


def test_repr():
    assert repr(RoIPool(7, 0.0625)) == "RoIPool(output_size=(7, 7), spatial_scale=0.0625)"
    assert repr(RoIAlign((7, 5), 0.25, 2, True)) == (
        "RoIAlign(output_size=(7, 5), spatial_scale=0.25, sampling_ratio=2, aligned=True)")


def test_construction_errors():
    with pytest.raises(ValueError, match=r"^RoIPool: output_size must be >= 1"):
        RoIPool(0, 1.0)
    with pytest.raises(ValueError, match=r"^RoIAlign: output_size must be >= 1"):
        RoIAlign((2, 0), 1.0, 2)
    with pytest.raises(ValueError, match=r"^RoIPool: spatial_scale must be a finite number > 0"):
        RoIPool(2, 0.0)
    with pytest.raises(ValueError, match=r"^RoIAlign: spatial_scale must be a finite number > 0"):
        RoIAlign(2, -1, 2)
    with pytest.raises(TypeError, match=r"^RoIAlign: sampling_ratio must be an int"):
        RoIAlign(2, 1.0, 2.0)
    with pytest.raises(TypeError, match=r"^RoIAlign: aligned must be a bool"):
        RoIAlign(2, 1.0, 2, "yes")


@pytest.mark.parametrize("cls,op", [(lambda: RoIPool(2, 1.0), "RoIPool"),
                                    (lambda: RoIAlign(2, 1.0, 2), "RoIAlign")])
def test_call_errors(cls, op, rng):
    m, x, b = cls(), rng.standard_normal((1, 2, 5, 5)), np.array([[0, 0, 0, 3, 3.0]])
    with pytest.raises(TypeError, match=rf"^{op}: boxes are required"):
        m.forward(x)
    with pytest.raises(TypeError, match=rf"^{op}: give either an \(x, boxes\) pair"):
        m.forward((x, b), boxes=b)
    with pytest.raises(TypeError, match=rf"^{op}: give either an \(x, boxes\) pair"):
        m.forward((x, b, b))
    kernel = "roi_pool" if op == "RoIPool" else "roi_align"
    with pytest.raises(ValueError, match=rf"^{kernel}: boxes\[:, 0\] \(batch index\)"):
        m.forward((x, np.array([[1, 0, 0, 3, 3.0]])))
