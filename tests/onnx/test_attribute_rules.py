"""Graphs built with ``onnx.helper``, one per attribute rule of each opset (auto_pad, pads per
side, ceil_mode, storage_order, count_include_pad, Reshape with a shape tensor, Gemm's
transA/transB/alpha/beta, Dropout in evaluation, Sum of several inputs, Identity, Constant,
ConstantOfShape, Softmax before/after opset 13, Pad/Slice/Unsqueeze attributes that became
inputs, ...): imported by convprop and compared with onnxruntime on the same input
(float32, max abs difference <= 1e-5 of the output scale). The imported modules' gradients
are checked against numerical ones in float64 (a DAG with fan-out included)."""

import numpy as np
import pytest

from ortutil import onnx, rel_err, run_ort

from convprop.gradcheck import check_module
from convprop.onnx import GraphModule, from_onnx

h = onnx.helper
TP = onnx.TensorProto
R = np.random.default_rng(5)


def init(name, a):
    return onnx.numpy_helper.from_array(np.asarray(a), name)


def model(nodes, x_shape, opset, inits=(), extra_inputs=(), outputs=("y",)):
    """One graph: input x (N dynamic), initializers, the nodes; outputs without shapes."""
    ins = [h.make_tensor_value_info("x", TP.FLOAT, ["N", *x_shape[1:]])] + list(extra_inputs)
    outs = [h.make_tensor_value_info(*(o if isinstance(o, tuple) else (o, TP.FLOAT)), None)
            for o in outputs]
    g = h.make_graph(nodes, "g", ins, outs, initializer=list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 7
    return m


def same_as_ort(proto, x, *more, tol=1e-5, grad=True):
    got_all = from_onnx(proto).forward((x, *more) if more else x)[0]
    want_all = run_ort(proto, x, *more)
    got_all = got_all if isinstance(got_all, tuple) else (got_all,)
    for got, want in zip(got_all, want_all):
        if np.asarray(want).dtype.kind in "iu":
            assert np.array_equal(got, want)
        else:
            assert rel_err(got, want) <= tol
    if grad and not more:
        m = from_onnx(proto)
        report = check_module(m, x.astype(np.float64), training=False)
        assert report.passed, str(report)


def x_of(*shape):
    return R.normal(size=shape).astype(np.float32)


# ------------------------------------------------------------------ convolution and pooling
W = R.normal(size=(4, 3, 3, 2)).astype(np.float32)


@pytest.mark.parametrize("attrs", [
    {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, {"auto_pad": "SAME_LOWER", "strides": [2, 1]},
    {"auto_pad": "VALID"}, {"pads": [0, 1, 2, 1]}, {"pads": [1, 0, 1, 0], "dilations": [2, 1]}])
def test_conv_pads(attrs):
    node = h.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 2], **attrs)
    proto = model([node], (2, 3, 7, 6), 11, [init("w", W), init("b", x_of(4))])
    same_as_ort(proto, x_of(2, 3, 7, 6))


@pytest.mark.parametrize("opset", [9, 12])
@pytest.mark.parametrize("attrs", [
    {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, {"auto_pad": "SAME_LOWER", "strides": [2, 2]},
    {"pads": [0, 1, 1, 0], "strides": [2, 2]}, {"pads": [1, 1, 1, 1], "strides": [1, 2]},
    {"strides": [2, 2], "ceil_mode": 1}, {"strides": [2, 2], "dilations": [2, 1]}])
def test_max_pool(attrs, opset):
    if opset < 10 and ("ceil_mode" in attrs or "dilations" in attrs):
        pytest.skip("ceil_mode and dilations arrive in opset 10")
    node = h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], **attrs)
    same_as_ort(model([node], (2, 2, 7, 8), opset), x_of(2, 2, 7, 8))


@pytest.mark.parametrize("storage_order", [0, 1])
def test_max_pool_indices_storage_order(storage_order):
    node = h.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2], strides=[2, 2],
                       storage_order=storage_order)
    proto = model([node], (2, 3, 4, 6), 12, outputs=("y", ("i", TP.INT64)))
    same_as_ort(proto, x_of(2, 3, 4, 6), grad=False)


@pytest.mark.parametrize("attrs", [
    {"pads": [1, 1, 1, 1]}, {"pads": [1, 1, 1, 1], "count_include_pad": 1},
    {"pads": [0, 1, 2, 1]}, {"pads": [0, 1, 2, 1], "count_include_pad": 1},
    {"strides": [2, 2], "ceil_mode": 1}, {"strides": [2, 2], "ceil_mode": 1, "pads": [1, 1, 1, 1]},
    {"strides": [2, 2], "ceil_mode": 1, "pads": [1, 1, 1, 1], "count_include_pad": 1},
    {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, {"auto_pad": "SAME_LOWER", "strides": [2, 2]},
    {"auto_pad": "VALID", "strides": [2, 1]}])
def test_average_pool(attrs):
    node = h.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], **attrs)
    same_as_ort(model([node], (2, 2, 7, 8), 11), x_of(2, 2, 7, 8))


# ceil_mode with pads that convprop's symmetric ``padding`` cannot hold (asymmetric, or over
# half the kernel): the last ceil-mode window must not start in the end padding (ONNX Runtime,
# ONNX's reference and PyTorch drop it); each case gave one output too many before.
@pytest.mark.parametrize("op,attrs,hw", [
    ("MaxPool", {"kernel_shape": [2, 1], "strides": [3, 1], "pads": [0, 0, 1, 0]}, (6, 8)),
    ("MaxPool", {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [2, 0, 2, 0]}, (8, 7)),
    ("MaxPool", {"kernel_shape": [3, 2], "strides": [3, 2], "pads": [0, 0, 2, 1],
                 "dilations": [2, 1]}, (4, 8)),
    ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 0]}, (4, 6)),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [3, 2], "pads": [0, 2, 1, 2],
                     "count_include_pad": 1}, (5, 8)),
    ("AveragePool", {"kernel_shape": [3, 1], "strides": [3, 1], "pads": [1, 0, 2, 0]}, (7, 5)),
])
@pytest.mark.parametrize("opset", [11, 19])
def test_ceil_mode_with_explicit_pads_drops_windows_starting_in_the_end_pad(op, attrs, hw,
                                                                           opset):
    node = h.make_node(op, ["x"], ["y"], ceil_mode=1, **attrs)
    same_as_ort(model([node], (2, 2, *hw), opset), x_of(2, 2, *hw))


def test_global_pools_conv_transpose_lrn_leaky_flatten():
    wt = x_of(3, 2, 3, 3)
    nodes = [h.make_node("ConvTranspose", ["x", "wt"], ["t"], strides=[2, 2], pads=[1, 1, 1, 1],
                         output_padding=[1, 0]),
             h.make_node("LRN", ["t"], ["l"], size=3, alpha=0.2, beta=0.7, bias=1.5),
             h.make_node("LeakyRelu", ["l"], ["r"], alpha=0.1),
             h.make_node("GlobalMaxPool", ["r"], ["gm"]),
             h.make_node("GlobalAveragePool", ["r"], ["ga"]),
             h.make_node("Add", ["gm", "ga"], ["s"]),
             h.make_node("Flatten", ["s"], ["y"], axis=2)]
    same_as_ort(model(nodes, (2, 3, 4, 5), 13, [init("wt", wt)]), x_of(2, 3, 4, 5))


def test_max_unpool_after_max_pool():
    nodes = [h.make_node("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 2], strides=[2, 2]),
             h.make_node("MaxUnpool", ["p", "i"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    same_as_ort(model(nodes, (2, 3, 4, 6), 11), x_of(2, 3, 4, 6))


@pytest.mark.parametrize("opset", [9, 15])
def test_batch_normalization(opset):
    c = 3
    inits = [init("s", R.uniform(0.5, 1.5, c).astype(np.float32)), init("b", x_of(c)),
             init("m", x_of(c)), init("v", R.uniform(0.5, 2, c).astype(np.float32))]
    node = h.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)
    same_as_ort(model([node], (2, c, 4, 4), opset, inits), x_of(2, c, 4, 4))


# ------------------------------------------------------------------------- Gemm and friends
@pytest.mark.parametrize("opset", [9, 13])
@pytest.mark.parametrize("ta,tb,alpha,beta,c_shape", [
    (0, 0, 1.0, 1.0, (5,)), (0, 1, 0.5, 2.0, (1, 5)), (1, 0, 2.0, 0.5, ()), (1, 1, 1.0, 1.0, None)])
def test_gemm(ta, tb, alpha, beta, c_shape, opset):
    if c_shape is None and opset < 11:
        pytest.skip("C is optional from opset 11")
    b = x_of(*((5, 4) if tb else (4, 5)))
    ins, inits = ["x", "B"], [init("B", b)]
    if c_shape is not None:
        ins.append("C")
        inits.append(init("C", np.asarray(x_of(*c_shape) if c_shape else x_of(1)[0],
                                          np.float32)))
    node = h.make_node("Gemm", ins, ["y"], transA=ta, transB=tb, alpha=alpha, beta=beta)
    shape = (4, 3) if ta else (3, 4)
    proto = model([node], shape, opset, inits)
    if ta:  # the batch axis is the second: a fixed input size
        proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 4
        proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 3
    same_as_ort(proto, x_of(*shape), grad=not ta)


@pytest.mark.parametrize("opset,ratio_as_input", [(9, False), (12, True), (13, True)])
def test_dropout_is_identity_in_evaluation(opset, ratio_as_input):
    if ratio_as_input:
        node = h.make_node("Dropout", ["x", "r", "t"], ["y"])
        inits = [init("r", np.array(0.3, np.float32)), init("t", np.array(False))]
    else:
        node, inits = h.make_node("Dropout", ["x"], ["y"], ratio=0.3), []
    proto = model([node], (2, 5), opset, inits)
    same_as_ort(proto, x_of(2, 5))
    assert from_onnx(proto)[0].p == pytest.approx(0.3)


@pytest.mark.parametrize("opset", [9, 13])
def test_sum_identity_constant_constant_of_shape(opset):
    cval = h.make_tensor("cv", TP.FLOAT, [5], x_of(5).tolist())
    nodes = [h.make_node("Identity", ["x"], ["a"]),
             h.make_node("Relu", ["x"], ["b"]),
             h.make_node("Constant", [], ["c"], value=cval),
             h.make_node("Constant", [], ["shape"], value=h.make_tensor(
                 "s", TP.INT64, [2], [1, 5])),
             h.make_node("ConstantOfShape", ["shape"], ["k"], value=h.make_tensor(
                 "v", TP.FLOAT, [1], [0.25])),
             h.make_node("Add", ["b", "c"], ["bc"]),
             h.make_node("Sum", ["a", "bc", "x", "k"] if opset >= 13 else ["a", "bc", "x"],
                         ["y"])]
    if opset < 13:
        nodes[4:5] = []
    proto = model(nodes, (2, 5), opset)
    same_as_ort(proto, x_of(2, 5))
    assert isinstance(from_onnx(proto), GraphModule)


# ------------------------------------------------------------------- shapes and versions
@pytest.mark.parametrize("shape", [[0, -1], [0, 3, 0, -1], [-1, 24]])
def test_reshape_with_shape_tensor(shape):
    node = h.make_node("Reshape", ["x", "s"], ["y"])
    proto = model([node], (2, 3, 2, 4), 13, [init("s", np.array(shape, np.int64))])
    same_as_ort(proto, x_of(2, 3, 2, 4))


def test_reshape_with_a_shape_computed_at_run_time():
    nodes = [h.make_node("Shape", ["x"], ["sh"]),
             h.make_node("Gather", ["sh", "zero"], ["n"], axis=0),
             h.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
             h.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
             h.make_node("Reshape", ["x", "target"], ["y"])]
    inits = [init("zero", np.array(0, np.int64)), init("ax", np.array([0], np.int64)),
             init("minus1", np.array([-1], np.int64))]
    proto = model(nodes, (2, 3, 2, 2), 13, inits)
    same_as_ort(proto, x_of(3, 3, 2, 2))


@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_axis_rule(opset):
    node = h.make_node("Softmax", ["x"], ["y"], axis=1)  # 11: over axes 1..3 together
    same_as_ort(model([node], (2, 3, 2, 2), opset), x_of(2, 3, 2, 2))


@pytest.mark.parametrize("opset", [9, 11, 13])
def test_pad_slice_unsqueeze_across_versions(opset):
    if opset < 11:
        nodes = [h.make_node("Pad", ["x"], ["p"], pads=[0, 1, 0, 2, 0, 0, 1, 1], value=0.5),
                 h.make_node("Slice", ["p"], ["s"], starts=[1, 0], ends=[4, 100], axes=[1, 3]),
                 h.make_node("Unsqueeze", ["s"], ["y"], axes=[1])]
        inits = []
    else:
        nodes = [h.make_node("Pad", ["x", "pads", "val"], ["p"]),
                 h.make_node("Slice", ["p", "st", "en", "ax", "sp"], ["s"]),
                 h.make_node("Unsqueeze", ["s"] + (["ua"] if opset >= 13 else []), ["y"],
                             **({} if opset >= 13 else {"axes": [1]}))]
        inits = [init("pads", np.array([0, 1, 0, 2, 0, 0, 1, 1], np.int64)),
                 init("val", np.array(0.5, np.float32)), init("st", np.array([3, 0], np.int64)),
                 init("en", np.array([0, 100], np.int64)), init("ax", np.array([1, 3], np.int64)),
                 init("sp", np.array([-1, 2], np.int64)), init("ua", np.array([1], np.int64))]
    same_as_ort(model(nodes, (2, 3, 2, 3), opset, inits), x_of(2, 3, 2, 3))


@pytest.mark.parametrize("opset", [10, 16])
def test_roi_ops(opset):
    x = x_of(2, 3, 8, 9)
    rois = np.array([[1, 1, 6, 7], [0, 2, 5, 8.5]], np.float32)
    idx = np.array([1, 0], np.int64)
    extra = [h.make_tensor_value_info("rois", TP.FLOAT, ["K", 4]),
             h.make_tensor_value_info("bi", TP.INT64, ["K"])]
    node = h.make_node("RoiAlign", ["x", "rois", "bi"], ["y"], output_height=2,
                       output_width=3, sampling_ratio=2, spatial_scale=0.5)
    same_as_ort(model([node], (2, 3, 8, 9), opset, extra_inputs=extra), x, rois, idx)
    boxes = np.array([[1, 1, 1, 6, 7], [0, 2, 0, 5, 8]], np.float32)
    node = h.make_node("MaxRoiPool", ["x", "boxes"], ["y"], pooled_shape=[2, 2],
                       spatial_scale=1.0)
    extra = [h.make_tensor_value_info("boxes", TP.FLOAT, ["K", 5])]
    same_as_ort(model([node], (2, 3, 8, 9), opset, extra_inputs=extra), x, boxes)


def test_dag_with_fan_out_gradients():
    """x feeds three nodes; the conv output feeds two; Concat joins; every gradient adds."""
    w = x_of(2, 2, 3, 3)
    nodes = [h.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c"], ["r"]),
             h.make_node("Mul", ["c", "x"], ["m"]),
             h.make_node("Add", ["r", "m"], ["a"]),
             h.make_node("Concat", ["a", "x"], ["k"], axis=1),
             h.make_node("Sigmoid", ["k"], ["y"])]
    same_as_ort(model(nodes, (2, 2, 4, 4), 13, [init("w", w)]), x_of(2, 2, 4, 4))


def test_elementwise_reduce_where_lp_pool():
    nodes = [h.make_node("Abs", ["x"], ["a"]), h.make_node("Sqrt", ["a"], ["s"]),
             h.make_node("Exp", ["s"], ["e"]), h.make_node("Log", ["e"], ["l"]),
             h.make_node("Neg", ["l"], ["n"]),
             h.make_node("ReduceSum", ["n", "ax"], ["r"], keepdims=1),
             h.make_node("Equal", ["x", "zero"], ["z"]),
             h.make_node("Where", ["z", "one", "r"], ["w"]),
             h.make_node("LpPool", ["w"], ["y"], kernel_shape=[2, 2], p=2)]
    inits = [init("ax", np.array([1], np.int64)), init("zero", np.float32(0)),
             init("one", np.float32(1))]
    x = x_of(2, 3, 4, 4) + 3  # away from 0, where |x| and sqrt have kinks
    same_as_ort(model(nodes, (2, 3, 4, 4), 13, inits), x)


@pytest.mark.parametrize("op,attrs", [
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 0, 1, 1],
                 "ceil_mode": 1}),  # the last window overhangs the end pad by one
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [3, 2], "pads": [0, 2, 1, 2],
                     "ceil_mode": 1, "count_include_pad": 1}),
    ("AveragePool", {"kernel_shape": [3, 2], "strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    ("AveragePool", {"kernel_shape": [2, 3], "strides": [2, 1], "pads": [0, 1, 1, 0]}),
])
def test_imported_padded_pooling_exports_again(op, attrs):
    """The explicit pads an import adds (ConstantPad before a max pooling, PaddedAvgPool)
    are written back as ONNX: the re-exported file computes what the original does."""
    from convprop.onnx import to_onnx
    x = x_of(2, 2, 8, 7)
    proto = model([h.make_node(op, ["x"], ["y"], **attrs)], x.shape, 19)
    again = to_onnx(from_onnx(proto), x.shape)
    assert rel_err(run_ort(again, x)[0], run_ort(proto, x)[0]) <= 1e-6


@pytest.mark.parametrize("start,end,step", [
    (-6, -9, -1), (-5, -5, -2), (-1, -(2 ** 63), -1), (5, 0, -2), (-9, 99, 2), (1, -1, 1)])
@pytest.mark.parametrize("folded", [False, True])
def test_slice_clamps_as_onnx_does(start, end, step, folded):
    """ONNX clamps a negative step's start to [0, n - 1] (NumPy gave an empty slice for a
    start below -n); the same rule for a Slice module and a folded/integer one (of Shape)."""
    inits = [init("st", np.array([start], np.int64)), init("en", np.array([end], np.int64)),
             init("ax", np.array([0 if folded else 1], np.int64)),
             init("sp", np.array([step], np.int64))]
    nodes = [h.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])]
    out = ("y",)
    if folded:  # integer shape arithmetic: evaluate.EVAL's Slice at run time
        nodes = [h.make_node("Shape", ["x"], ["s"]),
                 h.make_node("Slice", ["s", "st", "en", "ax", "sp"], ["y"])]
        out = (("y", TP.INT64),)
    same_as_ort(model(nodes, (2, 4, 3), 13, inits, outputs=out), x_of(2, 4, 3),
                grad=not folded)


@pytest.mark.parametrize("axis", [3, -3, 0, 2])
def test_flatten_axis_bounds(axis):
    """Flatten's axis runs over [-r, r]: axis r gives (size, 1) (it gave (1, size))."""
    node = h.make_node("Flatten", ["x"], ["y"], axis=axis)
    same_as_ort(model([node], (2, 4, 3), 13), x_of(2, 4, 3))
