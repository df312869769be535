"""`convprop train --init FILE`: an ONNX file is the network (its checkpoint records the file
by path and SHA-256, so evaluate and --resume import it again and refuse changed bytes); a
PyTorch state_dict initialises the --model. Bad combinations are one clear line."""

import json

import numpy as np
import pytest

from convprop import models
from convprop.cli import main
from convprop.io import load_checkpoint

pytest.importorskip("onnx", reason="the onnx extra: pip install 'convprop[onnx]'")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from convprop.interop import save_torch_safetensors
    from convprop.onnx import export
    d = tmp_path_factory.mktemp("init")
    m = models.build("lenet5", rng=np.random.default_rng(3))
    export(m, d / "lenet.onnx", (1, 1, 28, 28))
    save_torch_safetensors(m, d / "lenet.safetensors")
    return d, m


ARGS = ["--limit", "300", "--epochs", "1", "--quiet"]


def test_onnx_init_trains_the_file_and_its_checkpoint_reimports_it(files, tmp_path, capsys):
    d, _ = files
    out = tmp_path / "run"
    assert main(["train", "--init", str(d / "lenet.onnx"), *ARGS, "--out", str(out)]) == 0
    ckpt = load_checkpoint(out / "checkpoint.safetensors")
    assert ckpt.model_config["name"] == "onnx"
    assert ckpt.model_config["path"] == str(d / "lenet.onnx")
    assert len(ckpt.model_config["sha256"]) == 64
    assert ckpt.extra["train_config"]["model"] == "onnx"
    assert main(["evaluate", str(out / "checkpoint.safetensors"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["accuracy"] > 0.1
    from convprop.cli import _load_model  # what every command that reads a checkpoint calls
    _, model, _ = _load_model(out / "checkpoint.safetensors")
    for k, v in ckpt.model_state.items():  # the file re-imported, the trained weights restored
        np.testing.assert_array_equal(model.state_dict()[k], v, err_msg=k)
    assert main(["train", "--resume", str(out / "checkpoint.safetensors"), "--epochs", "2",
                 "--quiet"]) == 0
    # the file's bytes change: every later use of the checkpoint refuses it, naming the file
    copy = tmp_path / "copy.onnx"
    copy.write_bytes((d / "lenet.onnx").read_bytes())
    out2 = tmp_path / "run2"
    assert main(["train", "--init", str(copy), *ARGS, "--out", str(out2)]) == 0
    copy.write_bytes(copy.read_bytes() + b"\0")
    capsys.readouterr()
    assert main(["evaluate", str(out2 / "checkpoint.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "copy.onnx has changed since the checkpoint was written" in err
    assert len(err.strip().splitlines()) == 1


def test_state_dict_init_loads_the_weights_before_training(files, tmp_path, capsys):
    d, m = files
    out = tmp_path / "run"
    # zero epochs of training would not write a checkpoint: train one at lr ~0 instead
    assert main(["train", "--init", str(d / "lenet.safetensors"), *ARGS, "--lr", "1e-30",
                 "--optimizer", "sgd", "--out", str(out)]) == 0
    state = load_checkpoint(out / "checkpoint.safetensors").model_state
    for k, v in m.state_dict().items():
        np.testing.assert_allclose(state[k], v, rtol=0, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("extra,message", [
    (["--model", "resnet20"], "with --init .*lenet.onnx the network is the ONNX file's"),
    (["--dataset", "seq-mnist"], "does not take examples of shape"),
])
def test_onnx_init_refuses_another_model_or_data(files, tmp_path, capsys, extra, message):
    d, _ = files
    assert main(["train", "--init", str(d / "lenet.onnx"), *ARGS, *extra,
                 "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    import re
    assert re.search(message, err), err


def test_state_dict_of_another_model_lists_the_mismatch(files, tmp_path, capsys):
    d, _ = files
    assert main(["train", "--init", str(d / "lenet.safetensors"), "--model", "cnn1d",
                 "--dataset", "seq-mnist", *ARGS, "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("convprop train: error:") and len(err.strip().splitlines()) == 1


def _with_softmax(model, path, shape):
    from convprop.layers.container import Sequential
    from convprop.layers.onnx_nodes import Softmax
    from convprop.onnx import export
    export(Sequential(model, Softmax(1)), path, shape)


def test_onnx_classifier_with_softmax_output_trains_on_its_logits(files, tmp_path):
    """A file that outputs probabilities: the run trains the Softmax's input (cross-entropy
    takes logits), and the checkpoint's softmax(output) is the file's output, so predict's
    probabilities are the file's, not the softmax of probabilities."""
    ort = pytest.importorskip("onnxruntime")
    _, m = files
    path = tmp_path / "probs.onnx"
    _with_softmax(m, path, (1, 1, 28, 28))
    out = tmp_path / "run"
    assert main(["train", "--init", str(path), *ARGS, "--lr", "1e-30", "--optimizer", "sgd",
                 "--out", str(out)]) == 0
    from convprop.cli import _load_model
    _, model, _ = _load_model(out / "checkpoint.safetensors")
    assert model.softmax_removed is not None
    x = np.random.default_rng(0).normal(size=(3, 1, 28, 28)).astype(np.float32)
    logits = model.predict(x)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    np.testing.assert_allclose(p, want, rtol=0, atol=1e-5)


def test_softmax_after_a_graph_is_left_out_too(tmp_path):
    """The same for a file that is not a chain (ResNet-20: a GraphModule)."""
    from convprop.interop import init_model
    rng = np.random.default_rng(1)
    m = models.build("resnet20", rng=rng, input_size=8, num_classes=5)
    _with_softmax(m, tmp_path / "r.onnx", (1, 3, 8, 8))
    net = init_model(tmp_path / "r.onnx")
    assert net.softmax_removed is not None and len(net.config["sha256"]) == 64
    x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(net.predict(x), m.predict(x), rtol=1e-4, atol=1e-5)
    plain = tmp_path / "plain.onnx"
    from convprop.onnx import export
    export(m, plain, (1, 3, 8, 8))
    assert init_model(plain).softmax_removed is None


def test_softmax_whose_probabilities_feed_another_node_stays(tmp_path):
    from convprop.onnx import from_onnx
    from convprop.models.imported import _without_final_softmax
    onnx = pytest.importorskip("onnx")
    h, TP = onnx.helper, onnx.TensorProto
    nodes = [h.make_node("Relu", ["x"], ["r"], name="r"),
             h.make_node("Softmax", ["r"], ["y"], name="sm", axis=1),
             h.make_node("Add", ["y", "y"], ["z"], name="twice")]
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", TP.FLOAT, ["N", 3])],
                     [h.make_tensor_value_info("y", TP.FLOAT, ["N", 3])])  # z: unused
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    m.ir_version = 8
    assert _without_final_softmax(from_onnx(m)).softmax_removed is None


def test_moved_onnx_file_is_one_clear_line_for_resume_and_evaluate(files, tmp_path, capsys):
    d, _ = files
    path = tmp_path / "net.onnx"
    path.write_bytes((d / "lenet.onnx").read_bytes())
    out = tmp_path / "run"
    assert main(["train", "--init", str(path), *ARGS, "--out", str(out)]) == 0
    path.rename(tmp_path / "elsewhere.onnx")
    capsys.readouterr()
    for argv in (["train", "--resume", str(out / "checkpoint.safetensors"), "--epochs", "2",
                  "--quiet"], ["evaluate", str(out / "checkpoint.safetensors")]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert f"{path} is not a file" in err and "records the path" in err, err


def test_onnx_with_external_data_trains_and_its_data_file_is_pinned(files, tmp_path, capsys):
    """A model whose weights live in a data file beside it (PyTorch's default exporter):
    train --init reads it, and the checkpoint's digest covers the data file too, so a
    changed data file is refused like a changed model file."""
    import onnx
    d, _ = files
    path = tmp_path / "ext.onnx"
    onnx.save(onnx.load(str(d / "lenet.onnx")), str(path), save_as_external_data=True,
              all_tensors_to_one_file=True, location="ext.onnx.data", size_threshold=0)
    out = tmp_path / "run"
    assert main(["train", "--init", str(path), *ARGS, "--out", str(out)]) == 0
    assert main(["evaluate", str(out / "checkpoint.safetensors")]) == 0
    data = tmp_path / "ext.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 1
    data.write_bytes(bytes(raw))
    capsys.readouterr()
    assert main(["evaluate", str(out / "checkpoint.safetensors")]) == 1
    assert "ext.onnx has changed since the checkpoint was written" in capsys.readouterr().err
