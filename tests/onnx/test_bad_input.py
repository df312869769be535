"""Bad ONNX input: each a clear OnnxImportError (a ValueError) naming what is wrong, or a
ValueError at run time for an input of the wrong shape."""

import numpy as np
import pytest

from ortutil import onnx

from convprop.onnx import OnnxImportError, from_onnx, load, to_onnx
from test_export import zoo_model

h = onnx.helper
TP = onnx.TensorProto


@pytest.fixture
def lenet_bytes(rng):
    model, shape = zoo_model("lenet5", rng)
    return to_onnx(model, shape).SerializeToString()


def graph(nodes, opset=13, domain="", inits=()):
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", TP.FLOAT, ["N", 3])],
                     [h.make_tensor_value_info("y", TP.FLOAT, ["N", 3])],
                     initializer=list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid(domain, opset)])
    m.ir_version = 7
    return m.SerializeToString()


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.999])
def test_truncated_file(tmp_path, lenet_bytes, cut):
    p = tmp_path / "t.onnx"
    p.write_bytes(lenet_bytes[:int(len(lenet_bytes) * cut)])
    with pytest.raises(OnnxImportError, match=r"load: .*t\.onnx"):
        load(p)


def test_corrupt_header(tmp_path, lenet_bytes):
    p = tmp_path / "c.onnx"
    p.write_bytes(b"\xff" * 24 + lenet_bytes[24:])
    with pytest.raises(OnnxImportError, match="not an ONNX model"):
        load(p)


@pytest.mark.parametrize("data", [b"", b"hello world\n", b"\x89PNG\r\n\x1a\n" + bytes(64),
                                  b'{"model": 1}'])
def test_not_onnx(tmp_path, data):
    p = tmp_path / "x.onnx"
    p.write_bytes(data)
    with pytest.raises(OnnxImportError, match="not an ONNX model"):
        load(p)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.onnx")


def test_cycle():
    nodes = [h.make_node("Add", ["x", "b"], ["a"], name="first"),
             h.make_node("Relu", ["a"], ["b"], name="second"),
             h.make_node("Identity", ["b"], ["y"], name="out")]
    with pytest.raises(OnnxImportError, match=r"cycle through node 'first' \(Add\), "
                                              r"node 'second' \(Relu\)"):
        from_onnx(graph(nodes))


def test_dangling_input():
    nodes = [h.make_node("Add", ["x", "ghost"], ["y"], name="adder")]
    with pytest.raises(OnnxImportError, match=r"node 'adder' \(Add\) reads tensor 'ghost'.*"
                                              "dangling"):
        from_onnx(graph(nodes))


def test_output_produced_by_nothing():
    nodes = [h.make_node("Relu", ["x"], ["z"], name="r")]
    with pytest.raises(OnnxImportError, match="graph output 'y' is produced by no node"):
        from_onnx(graph(nodes))


def test_unsupported_operator_names_node_and_operator():
    nodes = [h.make_node("Erf", ["x"], ["y"], name="gelu_part")]
    with pytest.raises(OnnxImportError, match=r"node 'gelu_part' \(Erf\): operator 'Erf' is "
                                              "outside convprop's set"):
        from_onnx(graph(nodes))


@pytest.mark.parametrize("node,why", [
    (h.make_node("Pad", ["x", "p"], ["y"], name="n", mode="reflect"), "mode='reflect'"),
    (h.make_node("Softmax", ["x"], ["y"], name="n", axis=1), None),
])
def test_unsupported_attribute(node, why):
    inits = [onnx.numpy_helper.from_array(np.array([0, 1, 0, 1], np.int64), "p")]
    if why is None:
        from_onnx(graph([node], inits=inits))  # supported: no error
        return
    with pytest.raises(OnnxImportError, match=rf"node 'n' \(Pad\): {why}"):
        from_onnx(graph([node], inits=inits))


def test_conv_transpose_auto_pad_refused():
    w = onnx.numpy_helper.from_array(np.ones((3, 2, 3, 3), np.float32), "w")
    node = h.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", auto_pad="SAME_UPPER",
                       strides=[2, 2])
    g = h.make_graph([node], "g", [h.make_tensor_value_info("x", TP.FLOAT, ["N", 3, 4, 4])],
                     [h.make_tensor_value_info("y", TP.FLOAT, None)], initializer=[w])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    m.ir_version = 7
    with pytest.raises(OnnxImportError, match=r"node 'up' \(ConvTranspose\): auto_pad="
                                              "'SAME_UPPER'"):
        from_onnx(m)


def test_old_opset_and_foreign_domain():
    nodes = [h.make_node("Relu", ["x"], ["y"], name="r")]
    with pytest.raises(OnnxImportError, match="opset 8; convprop imports opset 9 and newer"):
        from_onnx(graph(nodes, opset=8))
    foreign = [h.make_node("Relu", ["x"], ["y"], name="r", domain="com.example")]
    with pytest.raises(OnnxImportError, match=r"node 'r' \(Relu\) is in domain 'com.example'"):
        from_onnx(graph(foreign))


def test_wrong_input_shape_at_run_time(rng, lenet_bytes):
    chain = from_onnx(lenet_bytes)
    with pytest.raises(ValueError, match=r"input 'input' must have shape \('N', 1, 28, 28\)"):
        chain.predict(np.zeros((2, 1, 32, 32), np.float32))
    model, shape = zoo_model("resnet20", rng)
    dag = from_onnx(to_onnx(model, shape))
    with pytest.raises(ValueError, match=r"input 'input' must have shape \('N', 3, 16, 16\)"):
        dag.predict(np.zeros((2, 3, 16), np.float32))
    chain.predict(np.zeros((5, 1, 28, 28), np.float32))  # any batch size


def _external(tmp_path, location, offset=0, length=12):
    t = onnx.numpy_helper.from_array(np.zeros(3, np.float32), "b")
    t.ClearField("raw_data")
    t.data_location = TP.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        t.external_data.add(key=k, value=v)
    data = graph([h.make_node("Add", ["x", "b"], ["y"], name="a")], inits=[t])
    (tmp_path / "m").mkdir(exist_ok=True)
    (tmp_path / "m" / "m.onnx").write_bytes(data)
    return tmp_path / "m" / "m.onnx", data


def test_external_data_beside_the_model_is_read(tmp_path):
    path, data = _external(tmp_path, "m.onnx.data", offset=4)
    (tmp_path / "m" / "m.onnx.data").write_bytes(b"pad!" + np.arange(3, dtype=np.float32)
                                                 .tobytes())
    np.testing.assert_array_equal(load(path).predict(np.ones((2, 3), np.float32)),
                                  [[1, 2, 3]] * 2)
    with pytest.raises(OnnxImportError, match=r"tensors \['b'\] in external files; give "
                                              "convprop the model's path"):
        from_onnx(data)  # bytes: no folder to read from


@pytest.mark.parametrize("where", ["absolute", "parent", "symlink"])
def test_external_data_outside_the_models_folder_is_refused_unread(tmp_path, where):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(3, dtype=np.float32).tobytes())
    location = {"absolute": str(secret), "parent": "../secret.bin", "symlink": "link"}[where]
    path, _ = _external(tmp_path, location)
    if where == "symlink":
        (tmp_path / "m" / "link").symlink_to(secret)
    with pytest.raises(OnnxImportError, match=r"tensor 'b' keeps its data in .*outside the "
                                              "model's folder"):
        load(path)


@pytest.mark.parametrize("offset,length,why", [
    (0, 4, "asks for 4 bytes at offset 0"), (8, 12, "asks for 12 bytes at offset 8"),
    (0, 1 << 40, "asks for 1099511627776 bytes")])
def test_external_data_that_does_not_fit_is_refused(tmp_path, offset, length, why):
    path, _ = _external(tmp_path, "d.bin", offset, length)
    (tmp_path / "m" / "d.bin").write_bytes(bytes(16))
    with pytest.raises(OnnxImportError, match=rf"external tensor 'b' {why}"):
        load(path)
    (tmp_path / "m" / "d.bin").unlink()
    with pytest.raises(OnnxImportError, match="'d.bin', which is not a file beside"):
        load(path)


def test_huge_constant_of_shape_is_refused():
    shape = onnx.numpy_helper.from_array(np.array([1 << 20, 1 << 20], np.int64), "s")
    nodes = [h.make_node("ConstantOfShape", ["s"], ["c"], name="big"),
             h.make_node("Add", ["x", "c"], ["y"], name="a")]
    with pytest.raises(OnnxImportError, match=r"node 'big' \(ConstantOfShape\): "
                                              "ConstantOfShape asks for a tensor"):
        from_onnx(graph(nodes, inits=[shape]))


def test_constant_whose_data_does_not_fill_its_declared_shape():
    """onnx.checker does not look inside a Constant's tensor: one declaring 2^40 elements
    with no data is refused, naming the node, and nothing of that size is allocated."""
    t = TP(name="b", data_type=TP.FLOAT, dims=[1 << 20, 1 << 20])
    nodes = [h.make_node("Constant", [], ["b"], value=t, name="huge"),
             h.make_node("Add", ["x", "b"], ["y"], name="a")]
    with pytest.raises(OnnxImportError, match=r"node 'huge' \(Constant\) has an attribute "
                                              "that cannot be read"):
        from_onnx(graph(nodes))


def test_pad_to_billions_of_elements_is_refused_at_import():
    """A few bytes must not make convprop allocate gigabytes: refused by the inferred shape
    of an inner tensor, and by the pads themselves where the file declares a false output
    shape (the graph's output y claims (N, 3))."""
    pads = onnx.numpy_helper.from_array(np.array([0, 1 << 30, 0, 1 << 30], np.int64), "p")
    inner = [h.make_node("Pad", ["x", "p"], ["big"], name="grow"),
             h.make_node("Relu", ["big"], ["y"], name="r")]
    with pytest.raises(OnnxImportError, match=r"node 'grow' \(Pad\): its output 'big' has "
                                              r"shape \(None, 2147483651\).*over 268435456"):
        from_onnx(graph(inner, inits=[pads]))
    last = [h.make_node("Pad", ["x", "p"], ["y"], name="grow")]
    with pytest.raises(OnnxImportError, match=r"node 'grow' \(Pad\): Pad asks for a tensor of "
                                              r"shape \(2147483651,\)"):
        from_onnx(graph(last, inits=[pads]))


@pytest.mark.parametrize("op,w_shape,x_shape,attrs", [
    ("ConvTranspose", (3,), ["N", 3], {}),                      # a 1-D weight: no spatial axis
    ("Conv", (2, 3, 1, 1, 1, 1), ["N", 3, 2, 2, 2, 2], {}),    # four spatial axes
    ("MaxPool", None, ["N", 3, 2, 2, 2, 2], {"kernel_shape": [1, 1, 1, 1]}),
    ("GlobalAveragePool", None, ["N", 3], {}),
])
def test_spatial_rank_convprop_lacks_names_node(op, w_shape, x_shape, attrs):
    inits = [] if w_shape is None else [onnx.numpy_helper.from_array(
        np.ones(w_shape, np.float32), "w")]
    node = h.make_node(op, ["x"] + (["w"] if inits else []), ["y"], name="n", **attrs)
    g = h.make_graph([node], "g", [h.make_tensor_value_info("x", TP.FLOAT, x_shape)],
                     [h.make_tensor_value_info("y", TP.FLOAT, None)], initializer=inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    m.ir_version = 7
    with pytest.raises(OnnxImportError, match=rf"node 'n' \({op}\): .*spatial axes"):
        from_onnx(m)
