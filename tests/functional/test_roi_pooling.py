"""RoI max pooling and RoI Align through the kernel contract: loop oracles written from
torchvision's CPU kernels one bin / one sample at a time (convprop.reference.roi),
numerical gradients, overlapping boxes, boxes partly or wholly outside the image, empty bins,
hostile inputs, dtypes, errors, and the forward against onnxruntime's MaxRoiPool and RoiAlign
(opset 16) where onnx and onnxruntime are installed.

Conventions checked against onnxruntime: its MaxRoiPool rounds the box corners and cuts the
bins exactly as torchvision's roi_pool (round half away from zero, +1 pixel extent, floor /
ceil bin edges, empty bins 0), so the float32 outputs agree bit for bit on every case here
(onnxruntime has MaxRoiPool in float32 only; negative maxima and boxes wholly outside the
image included; NaN inputs are not compared: a std::max-based search keeps a NaN that
torchvision's strict ``>`` skips). RoiAlign's coordinate_transformation_mode
"half_pixel" is ``aligned=True`` and "output_half_pixel" ``aligned=False`` (with the 1-pixel
minimum box), its sampling_ratio 0 is torchvision's adaptive ``<= 0``.
"""

import math

import numpy as np
import pytest
from contract import Kernel, raises

from convprop import reference as R
from convprop.functional.roi_pooling import (roi_align_backward, roi_align_forward,
                                             roi_pool_backward, roi_pool_forward)

FLT_MAX = float(np.finfo(np.float32).max)


# ----------------------------------------------------------------------------- cases

def _boxes(rows, dtype=np.float64):
    return np.array(rows, dtype=dtype).reshape(-1, 5)


# (x shape, boxes, output_size, spatial_scale): overlapping boxes on one image, several
# images, partly / wholly outside, tiny boxes (empty bins from clipping, repeated rows),
# output larger than the box, batch 1, non-square everything.
CASES = [
    ((2, 3, 9, 11), [[0, 0, 0, 4, 3], [0, 1.2, 0.6, 7.9, 6.5], [1, 2, 1, 10, 8],
                     [1, 0, 0, 10, 8]], (2, 3), 1.0),
    ((1, 2, 8, 6), [[0, 1, 1, 5, 6], [0, 2, 2, 4, 4], [0, 1, 1, 5, 6]], 3, 1.0),
    ((2, 2, 7, 9), [[1, -3, -2, 4, 3], [0, 5, 4, 20, 15], [1, 30, 30, 40, 40]], (3, 2), 1.0),
    ((1, 3, 10, 12), [[0, 2.6, 3.4, 16.2, 12.8], [0, 0, 0, 23, 19]], (4, 5), 0.5),
    ((2, 1, 6, 5), [[1, 2.5, 1.5, 2.5, 1.5], [0, 0.2, 0.3, 0.6, 0.9]], (2, 2), 1.0),
    ((1, 2, 5, 4), [[0, 0.5, 0.5, 2.5, 3.5]], (6, 7), 1.0),
    ((1, 1, 1, 1), [[0, 0, 0, 0, 0]], 2, 1.0),
    ((3, 2, 6, 7), [[2, 1, 0, 5, 5], [0, 0, 1, 6, 4], [2, 3, 2, 6, 5]], (1, 3), 0.25),
]
IDS = [f"case{i}" for i in range(len(CASES))]


def _distinct(rng, shape):
    """Values at least 0.05 apart, so no tie sits within a finite-difference step."""
    n = math.prod(shape)
    return (rng.permutation(n).reshape(shape) * 0.05 - n * 0.025).astype(np.float64)


def _argmax(cache):
    return cache.argmax


def pool_kernel(out, scale):
    return Kernel.of(roi_pool_forward, roi_pool_backward, extras=_argmax, output_size=out,
                     spatial_scale=scale, allow_outside=True)


def align_kernel(out, scale, ratio=-1, aligned=False):
    return Kernel.of(roi_align_forward, roi_align_backward, output_size=out,
                     spatial_scale=scale, sampling_ratio=ratio, aligned=aligned,
                     allow_outside=True)


ALIGN_OPTS = [(-1, False), (-1, True), (2, False), (1, True), (3, True)]


# ----------------------------------------------------------------------------- RoI max pooling

@pytest.mark.parametrize("shape,rows,out,scale", CASES, ids=IDS)
def test_roi_pool_forward_matches_loop(shape, rows, out, scale, rng):
    x, b = rng.standard_normal(shape), _boxes(rows)
    pool_kernel(out, scale).check_forward(
        [x, b], lambda x, b: R.roi_pool(x, b, out, scale), rtol=0, atol=0)


@pytest.mark.parametrize("shape,rows,out,scale", CASES, ids=IDS)
def test_roi_pool_gradcheck(shape, rows, out, scale, rng):
    pool_kernel(out, scale).check_gradient([_distinct(rng, shape), _boxes(rows)], rng)


@pytest.mark.parametrize("shape,rows,out,scale", CASES, ids=IDS)
def test_roi_pool_backward_scatters_at_argmax(shape, rows, out, scale, rng):
    """Exactly the oracle's scatter, ties included (integer inputs: many equal maxima; the
    first in row-major order gets the gradient, overlapping bins and boxes add)."""
    x, b = rng.integers(0, 3, shape).astype(np.float64), _boxes(rows)
    y, cache = roi_pool_forward(x, b, allow_outside=True, output_size=out, spatial_scale=scale)
    ry, rarg = R.roi_pool(x, b, out, scale)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(cache.argmax, rarg)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(roi_pool_backward(dy, cache),
                               R.roi_pool_backward(dy, b, rarg, shape), rtol=0, atol=1e-12)


def test_roi_pool_overlap_accumulates_and_empty_bins():
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float64).reshape(2, 1, 4, 4)
    b = _boxes([[1, 0, 0, 3, 3], [1, 2, 2, 3, 3], [0, 10, 10, 12, 12]])
    y, cache = roi_pool_forward(x, b, allow_outside=True, output_size=1)
    assert y[:, 0, 0, 0].tolist() == [31.0, 31.0, 0.0]  # the third box lies outside: empty
    assert cache.argmax[:, 0, 0, 0].tolist() == [15, 15, -1]
    dx = roi_pool_backward(np.array([2.0, 3.0, 7.0]).reshape(3, 1, 1, 1), cache)
    assert dx[1, 0, 3, 3] == 5.0 and np.count_nonzero(dx) == 1


def test_roi_pool_rounds_half_away_from_zero():
    """torchvision rounds with C's round: 0.5 -> 1 and 2.5 -> 3 (NumPy's round gives 0, 2),
    -0.5 -> -1."""
    x = np.arange(36, dtype=np.float64).reshape(1, 1, 6, 6)
    y, cache = roi_pool_forward(x, _boxes([[0, 0.5, 2.5, 0.5, 2.5]]), allow_outside=True,
                                output_size=1)
    assert cache.argmax[0, 0, 0, 0] == 3 * 6 + 1
    y, cache = roi_pool_forward(-x, _boxes([[0, -0.5, -0.5, 0.5, 0.5]]), allow_outside=True,
                                output_size=(3, 3))
    # the box spans pixels -1..1: bins (0, *) and (*, 0) hold row/column -1 only: empty
    assert (cache.argmax[0, 0, 0] == -1).all() and (cache.argmax[0, 0, :, 0] == -1).all()
    assert y[0, 0, 2, 2] == -x[0, 0, 1, 1]


def test_roi_pool_nan_and_flt_max_follow_torchvision():
    """torchvision starts each non-empty bin at -FLT_MAX with a strict '>': a NaN is never
    picked, and a bin with nothing above -FLT_MAX outputs -FLT_MAX with index -1."""
    x = np.array([[[[np.nan, 1.0], [-np.inf, -1e300]]]])
    b = _boxes([[0, 0, 0, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0]])
    y, cache = roi_pool_forward(x, b, allow_outside=True, output_size=1)
    ry, rarg = R.roi_pool(x, b, 1)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(cache.argmax, rarg)
    assert y[:, 0, 0, 0].tolist() == [1.0, -FLT_MAX, -FLT_MAX]
    assert cache.argmax[:, 0, 0, 0].tolist() == [1, -1, -1]


def test_roi_pool_geometry_in_float32():
    """Bin edges are computed in x's dtype (torchvision's T): float32 boxes give the float32
    loop's bins exactly."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 13, 17)).astype(np.float32)
    b = _boxes([[0, 0.3, 1.7, 11.2, 12.4], [1, 2.5, 0.5, 16.5, 9.5], [1, 1, 1, 15, 12]],
               np.float32)
    for out in ((3, 7), (7, 3), (5, 6)):
        y, cache = roi_pool_forward(x, b, allow_outside=True, output_size=out, spatial_scale=0.75)
        ry, rarg = R.roi_pool(x, b, out, 0.75)
        np.testing.assert_array_equal(y, ry)
        np.testing.assert_array_equal(cache.argmax, rarg)


# ----------------------------------------------------------------------------- RoI Align

@pytest.mark.parametrize("ratio,aligned", ALIGN_OPTS)
@pytest.mark.parametrize("shape,rows,out,scale", CASES, ids=IDS)
def test_roi_align_forward_matches_loop(shape, rows, out, scale, ratio, aligned, rng):
    x, b = rng.standard_normal(shape), _boxes(rows)
    align_kernel(out, scale, ratio, aligned).check_forward(
        [x, b], lambda x, b: R.roi_align(x, b, out, scale, ratio, aligned),
        rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("ratio,aligned", ALIGN_OPTS)
@pytest.mark.parametrize("shape,rows,out,scale", CASES, ids=IDS)
def test_roi_align_gradcheck(shape, rows, out, scale, ratio, aligned, rng):
    align_kernel(out, scale, ratio, aligned).check_gradient(
        [rng.standard_normal(shape), _boxes(rows)], rng)


def test_roi_align_backward_is_the_adjoint(rng):
    """<dy, A x> == <A^T dy, x> to rounding, for random x and dy (many overlapping boxes)."""
    x = rng.standard_normal((2, 3, 8, 9))
    b = np.column_stack([rng.integers(0, 2, 12), rng.uniform(-2, 6, 12), rng.uniform(-2, 5, 12),
                         np.zeros(12), np.zeros(12)])
    b[:, 3] = b[:, 1] + rng.uniform(0, 6, 12)
    b[:, 4] = b[:, 2] + rng.uniform(0, 6, 12)
    for ratio, aligned in ALIGN_OPTS:
        y, cache = roi_align_forward(x, b, allow_outside=True, output_size=(3, 4),
                                     sampling_ratio=ratio, aligned=aligned)
        dy = rng.standard_normal(y.shape)
        dx = roi_align_backward(dy, cache)
        assert abs(np.vdot(dy, y) - np.vdot(dx, x)) < 1e-12 * (1 + abs(np.vdot(dy, y)))


def test_roi_align_samples_on_the_range_edges(rng):
    """One sample per bin at the box centre: a sample exactly at -1, H or W still counts
    (clamped to the border pixel), one just beyond gives 0."""
    x = rng.standard_normal((1, 2, 4, 5))
    b = _boxes([[0, 4, 2, 6, 4],            # centre (x=5=W, y=3): the last column
                [0, 1, 3, 3, 5],            # centre (x=2, y=4=H): the last row
                [0, -2, -2, 0, 0],          # centre (-1, -1): pixel (0, 0)
                [0, 4.02, 1, 6.02, 3],      # x = 5.02 > W: outside
                [0, 0, -2.02, 2, -0.02]])   # y = -1.02 < -1: outside
    y, _ = roi_align_forward(x, b, allow_outside=True, output_size=1, sampling_ratio=1)
    np.testing.assert_array_equal(y, R.roi_align(x, b, 1, 1.0, 1))
    np.testing.assert_allclose(y[:3, :, 0, 0], [x[0, :, 3, 4], x[0, :, 3, 2], x[0, :, 0, 0]],
                               rtol=0, atol=1e-15)
    assert (y[3:] == 0).all()


def test_roi_align_zero_size_aligned_box_outputs_zero(rng):
    x = rng.standard_normal((1, 2, 5, 5))
    y, cache = roi_align_forward(x, _boxes([[0, 2, 2, 2, 2]]), allow_outside=True,
                                 output_size=2, aligned=True)
    assert (y == 0).all() and cache.grid.tolist() == [[0, 0]]
    assert (roi_align_backward(np.ones_like(y), cache) == 0).all()
    # not aligned: the box is forced to 1x1 pixels
    y, _ = roi_align_forward(x, _boxes([[0, 2, 2, 2, 2]]), allow_outside=True, output_size=1)
    np.testing.assert_allclose(y[0, :, 0, 0], x[0, :, 2:4, 2:4].mean(axis=(1, 2)))


def test_roi_align_whole_image_box_is_avg_pool(rng):
    """aligned=True, a box over the whole image, bins of 2x2 pixels and 2x2 samples: every
    sample lands on a pixel centre, so each bin is the mean of its 2x2 block."""
    x = rng.standard_normal((1, 3, 4, 6))
    y, _ = roi_align_forward(x, _boxes([[0, 0, 0, 6, 4]]), allow_outside=True, output_size=(2, 3),
                             sampling_ratio=2, aligned=True)
    np.testing.assert_allclose(y, x.reshape(1, 3, 2, 2, 3, 2).mean(axis=(3, 5)), atol=1e-14)


# ----------------------------------------------------------------------------- hostile, dtypes

HOSTILE_BOXES = [[0, 1.25, 0.5, 6.75, 5.5], [1, -1.5, 2.25, 4.5, 8.0], [1, 0, 0, 9, 7]]


@pytest.mark.parametrize("kind", ["pool", "align"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_hostile_input(kind, dtype, rng):
    k = pool_kernel((3, 2), 1.0) if kind == "pool" else align_kernel((3, 2), 1.0, -1, True)
    x = rng.standard_normal((2, 3, 8, 10))
    b = _boxes(HOSTILE_BOXES)
    k.check_dtypes([x, b], rng, dtypes=(dtype,), rtol=1e-6, atol=1e-6)
    k.check_hostile([x.astype(dtype), b.astype(dtype)], rng)


@pytest.mark.parametrize("kind", ["pool", "align"])
def test_float32_close_to_float64(kind, rng):
    k = pool_kernel((3, 2), 0.5) if kind == "pool" else align_kernel((3, 2), 0.5, 2, False)
    k.check_dtypes([rng.standard_normal((2, 3, 8, 10)), _boxes(HOSTILE_BOXES)], rng,
                   rtol=1e-5, atol=1e-5)


def test_channels_last_input_gives_the_same_results(rng):
    x = rng.standard_normal((2, 3, 8, 10))
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    b = _boxes(HOSTILE_BOXES)
    for fwd, bwd in ((roi_pool_forward, roi_pool_backward),
                     (roi_align_forward, roi_align_backward)):
        y, c = fwd(x, b, output_size=3)
        yl, cl = fwd(xl, b, output_size=3)
        np.testing.assert_array_equal(y, yl)
        dy = rng.standard_normal(y.shape)
        np.testing.assert_allclose(bwd(dy, cl), bwd(dy, c), rtol=0, atol=1e-15)


def test_no_boxes(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    for fwd, bwd in ((roi_pool_forward, roi_pool_backward),
                     (roi_align_forward, roi_align_backward)):
        y, c = fwd(x, np.zeros((0, 5)), output_size=(2, 3))
        assert y.shape == (0, 3, 2, 3)
        dx = bwd(np.zeros((0, 3, 2, 3)), c)
        assert dx.shape == x.shape and not dx.any()


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("fwd", [roi_pool_forward, roi_align_forward])
def test_errors(fwd):
    op = fwd.__name__.removesuffix("_forward")
    x, b = np.zeros((2, 3, 5, 5)), _boxes([[0, 0, 0, 2, 2]])

    def call(x=x, b=b, **kw):
        return fwd(x, b, **{"output_size": 2, **kw})

    with raises(op, r"boxes must have shape \(K, 5\)"):
        call(b=np.zeros((2, 4)))
    with raises(op, r"boxes must have shape \(K, 5\)"):
        call(b=np.zeros(5))
    with raises(op, r"boxes\[:, 0\] \(batch index\) must be an integer in \[0, 2\)"):
        call(b=_boxes([[2, 0, 0, 1, 1]]))
    with raises(op, r"boxes\[:, 0\] \(batch index\) must be an integer"):
        call(b=_boxes([[-1, 0, 0, 1, 1]]))
    with raises(op, r"boxes\[:, 0\] \(batch index\) must be an integer.*row 1 has 0.5"):
        call(b=_boxes([[0, 0, 0, 1, 1], [0.5, 0, 0, 1, 1]]))
    with raises(op, r"boxes must have x1 <= x2, row 0"):
        call(b=_boxes([[0, 3, 0, 1, 1]]))
    with raises(op, r"boxes must have y1 <= y2, row 1"):
        call(b=_boxes([[0, 0, 0, 1, 1], [1, 0, 2, 1, 1]]))
    for bad in (np.nan, np.inf):
        with raises(op, "boxes must be finite, row 0"):
            call(b=_boxes([[0, 0, 0, bad, 1]]))
    with raises(op, "output_size must be >= 1"):
        call(output_size=0)
    with raises(op, "output_size must be >= 1"):
        call(output_size=(2, 0))
    with raises(op, "output_size must be an int or a pair", TypeError):
        call(output_size=(2, 2, 2))
    for s in (0, -1.0, float("nan")):
        with raises(op, "spatial_scale must be a finite number > 0"):
            call(spatial_scale=s)
    with raises(op, "spatial_scale must be a real number", TypeError):
        call(spatial_scale="1")
    with raises(op, r"x must be 4-D \(N, C, H, W\)"):
        call(x=np.zeros((3, 5, 5)))
    with raises(op, "boxes must be a numpy.ndarray", TypeError):
        call(b=[[0, 0, 0, 1, 1]])
    if fwd is roi_align_forward:
        with raises(op, "sampling_ratio must be an int", TypeError):
            call(sampling_ratio=1.5)
        with raises(op, "aligned must be a bool", TypeError):
            call(aligned=1)
    k = Kernel.of(fwd, roi_pool_backward if fwd is roi_pool_forward else roi_align_backward,
                  output_size=2)
    k.check_type_errors([x, b])
    k.check_dy_errors([x, b])


# ----------------------------------------------------------------------------- onnxruntime

@pytest.fixture
def ort():
    # ImportError, not only ModuleNotFoundError: a wheel that is present but fails to load
    # (as torchvision's do beside this torch) skips too
    onnx = pytest.importorskip("onnx", reason="onnx not installed: onnxruntime parity skipped",
                               exc_type=ImportError)
    rt = pytest.importorskip("onnxruntime", exc_type=ImportError,
                             reason="onnxruntime not installed: onnxruntime parity skipped")
    return onnx, rt


def _session(ort, node, inputs, out_type):
    onnx, rt = ort
    h = onnx.helper
    ins = [h.make_tensor_value_info(name, t, None) for name, t in inputs]
    graph = h.make_graph([node], "roi", ins, [h.make_tensor_value_info("Y", out_type, None)])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 16)])
    model.ir_version = 8
    opts = rt.SessionOptions()
    opts.intra_op_num_threads = 1
    return rt.InferenceSession(model.SerializeToString(), opts,
                               providers=["CPUExecutionProvider"])


ORT_CASES = [c for c in CASES if c[3] in (1.0, 0.5, 0.25)]  # scales exact in float32


@pytest.mark.parametrize("shape,rows,out,scale", ORT_CASES)
def test_roi_pool_matches_onnxruntime_max_roi_pool(ort, shape, rows, out, scale, rng):
    """Float32 (onnxruntime's only MaxRoiPool type), equal to the last bit: the same rounding
    and bins as torchvision's roi_pool."""
    onnx, _ = ort
    tp = onnx.TensorProto
    pooled = [out, out] if isinstance(out, int) else list(out)
    node = onnx.helper.make_node("MaxRoiPool", ["X", "R"], ["Y"], pooled_shape=pooled,
                                 spatial_scale=scale)
    sess = _session(ort, node, [("X", tp.FLOAT), ("R", tp.FLOAT)], tp.FLOAT)
    x = rng.standard_normal(shape).astype(np.float32)
    b = _boxes(rows, np.float32)
    y, _ = roi_pool_forward(x, b, allow_outside=True, output_size=out, spatial_scale=scale)
    np.testing.assert_array_equal(y, sess.run(None, {"X": x, "R": b})[0])


def test_roi_pool_onnxruntime_keeps_negative_maxima(ort, rng):
    """Some onnxruntime sources start MaxRoiPool's search at numeric_limits<float>::min() (the
    smallest *positive* float), which would turn a negative maximum into ~1e-38; the runtime
    in use must agree with torchvision's -FLT_MAX start on all-negative inputs."""
    onnx, _ = ort
    tp = onnx.TensorProto
    node = onnx.helper.make_node("MaxRoiPool", ["X", "R"], ["Y"], pooled_shape=[3, 2],
                                 spatial_scale=1.0)
    sess = _session(ort, node, [("X", tp.FLOAT), ("R", tp.FLOAT)], tp.FLOAT)
    x = -rng.uniform(0.5, 2.0, (2, 3, 7, 8)).astype(np.float32)
    b = _boxes([[0, 0, 0, 7, 6], [1, 2, 1, 5, 6], [1, 20, 20, 30, 30]], np.float32)
    y, cache = roi_pool_forward(x, b, allow_outside=True, output_size=(3, 2))
    assert (y[:2] < 0).all() and (y[2] == 0).all() and (cache.argmax[2] == -1).all()
    np.testing.assert_array_equal(y, sess.run(None, {"X": x, "R": b})[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ratio,aligned", ALIGN_OPTS)
@pytest.mark.parametrize("shape,rows,out,scale", ORT_CASES)
def test_roi_align_matches_onnxruntime_roi_align(ort, shape, rows, out, scale, ratio, aligned,
                                                 dtype, rng):
    """RoiAlign (opset 16, mode "avg"): "half_pixel" is aligned=True, "output_half_pixel"
    aligned=False; sampling_ratio 0 is the adaptive grid."""
    onnx, _ = ort
    tp = onnx.TensorProto
    t = tp.DOUBLE if dtype == np.float64 else tp.FLOAT
    oh, ow = (out, out) if isinstance(out, int) else out
    node = onnx.helper.make_node(
        "RoiAlign", ["X", "R", "B"], ["Y"], output_height=oh, output_width=ow,
        spatial_scale=scale, sampling_ratio=max(ratio, 0), mode="avg",
        coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel")
    sess = _session(ort, node, [("X", t), ("R", t), ("B", tp.INT64)], t)
    x = rng.standard_normal(shape).astype(dtype)
    b = _boxes(rows, dtype)
    y, _ = roi_align_forward(x, b, allow_outside=True, output_size=out, spatial_scale=scale,
                             sampling_ratio=ratio, aligned=aligned)
    want = sess.run(None, {"X": x, "R": np.ascontiguousarray(b[:, 1:]),
                           "B": b[:, 0].astype(np.int64)})[0]
    tol = 1e-13 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- boxes outside

@pytest.mark.parametrize("forward,rows,scale,kw", [
    (roi_pool_forward, [[0, 20, 1, 25, 3]], 1.0, {}),            # right of the map
    (roi_pool_forward, [[0, 1, -9, 3, -2]], 1.0, {}),             # above it
    (roi_pool_forward, [[0, 100, 100, 140, 150]], 0.25, {}),     # image pixels, scale 1/4
    (roi_align_forward, [[0, 1, 1, 3, 3], [0, 1, 9.5, 3, 12]], 1.0, {}),  # below y = H
    (roi_align_forward, [[0, -6, 1, -2.5, 3]], 1.0, {}),         # left of x = -1
    (roi_align_forward, [[0, -5, 1, -1.5, 3]], 1.0, {"aligned": True}),
])
def test_boxes_wholly_outside_are_refused_unless_allowed(forward, rows, scale, kw, rng):
    x, b = rng.standard_normal((1, 2, 8, 6)), _boxes(rows)
    k = len(rows) - 1
    op = forward.__name__.removesuffix("_forward")
    with pytest.raises(ValueError, match=rf"^{op}: boxes row {k} .* lies wholly outside the "
                                         r"feature map.*allow_outside=True"):
        forward(x, b, output_size=2, spatial_scale=scale, **kw)
    y, cache = forward(x, b, output_size=2, spatial_scale=scale, allow_outside=True, **kw)
    np.testing.assert_array_equal(y[k], 0)  # every bin empty: zeros, as torchvision


@pytest.mark.parametrize("forward,rows", [
    (roi_pool_forward, [[0, -3, -3, 0, 0]]),        # touches the first pixel
    (roi_pool_forward, [[0, 5, 7, 30, 30]]),        # from the last pixel on
    (roi_align_forward, [[0, -1.6, 1, -1.2, 3]]),   # at least 1 pixel wide: reaches x > -1
    (roi_align_forward, [[0, 1, 7.5, 4, 8.0]]),     # ends on y = H: its samples still count
])
def test_boxes_partly_inside_are_pooled(forward, rows, rng):
    x = rng.standard_normal((1, 2, 8, 6))
    y, _ = forward(x, _boxes(rows), output_size=2)
    assert np.any(y != 0)


def test_allow_outside_must_be_a_bool(rng):
    x, b = rng.standard_normal((1, 1, 4, 4)), _boxes([[0, 0, 0, 2, 2]])
    for forward in (roi_pool_forward, roi_align_forward):
        with pytest.raises(TypeError, match="allow_outside must be a bool"):
            forward(x, b, output_size=2, allow_outside="yes")
