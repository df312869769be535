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
