"""``convprop export CHECKPOINT OUT.onnx`` and the ``--init`` entry point
(:func:`convprop.interop.init_model`)."""

import numpy as np
import pytest

from ortutil import onnx, rel_err, run_ort

from convprop.cli import main
from convprop.interop import init_model
from convprop.io import save_checkpoint
from convprop.models import build
from convprop.onnx import to_onnx

PRE = {"mean": [0.1307], "std": [0.3081], "channels": 1, "size": 28, "shape": [28, 28]}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    model = build("lenet5", rng=np.random.default_rng(0))
    save_checkpoint(d / "lenet.safetensors", model, model_config=model.config,
                    extra={"preprocess": PRE, "classes": [str(i) for i in range(10)]})
    return d, model


def test_export_command(ckpt, capsys):
    d, model = ckpt
    assert main(["export", str(d / "lenet.safetensors"), str(d / "m.onnx"), "--opset", "18"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "onnxruntime agrees" in out
    proto = onnx.load(str(d / "m.onnx"))
    assert proto.opset_import[0].version == 18
    x = np.random.default_rng(1).normal(size=(3, 1, 28, 28)).astype(np.float32)
    assert rel_err(run_ort(proto, x)[0], model.predict(x)) <= 1e-5


def test_export_command_raw_input(ckpt, capsys):
    d, model = ckpt
    assert main(["export", str(d / "lenet.safetensors"), str(d / "raw.onnx"),
                 "--raw-input"]) == 0
    pixels = np.random.default_rng(2).uniform(0, 255, (2, 1, 28, 28)).astype(np.float32)
    want = model.predict(((pixels / 255 - 0.1307) / 0.3081).astype(np.float32))
    assert rel_err(run_ort(onnx.load(str(d / "raw.onnx")), pixels)[0], want) <= 1e-5


def test_export_command_errors(ckpt, capsys):
    d, _ = ckpt
    assert main(["export", str(d / "lenet.safetensors"), str(d / "m.txt")]) == 1
    assert "must end in .onnx" in capsys.readouterr().err
    assert main(["export", str(d / "lenet.safetensors"), str(d / "m.onnx"), "--opset",
                 "9"]) == 1
    assert "opset must be an int from 17" in capsys.readouterr().err


def test_init_model(tmp_path, rng):
    model = build("lenet5", rng=rng)
    (tmp_path / "m.onnx").write_bytes(to_onnx(model, (1, 1, 28, 28)).SerializeToString())
    net = init_model(tmp_path / "m.onnx")
    x = rng.normal(size=(2, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(net.predict(x), model.predict(x), rtol=1e-6, atol=1e-6)
    assert net.config["name"] == "onnx" and net.parameters()
    with pytest.raises(ValueError, match="whole network"):
        init_model(tmp_path / "m.onnx", model)
    from convprop.interop import save_torch_safetensors
    save_torch_safetensors(model, tmp_path / "w.safetensors")
    fresh = init_model(tmp_path / "w.safetensors", build("lenet5"))
    np.testing.assert_array_equal(fresh.predict(x), model.predict(x))
    with pytest.raises(ValueError, match="weights only"):
        init_model(tmp_path / "w.safetensors")


def test_export_command_without_onnx(ckpt, capsys, monkeypatch):
    import sys
    d, _ = ckpt
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", str(d / "lenet.safetensors"), str(d / "n.onnx")]) == 1
    assert "the 'onnx' package is required; pip install 'convprop[onnx]'" in \
        capsys.readouterr().err


def test_export_command_check_can_fail(ckpt, capsys, monkeypatch):
    """The onnxruntime comparison is a check that fails: a runtime answering 1% off is one
    line and exit 1."""
    import onnxruntime as ort
    d, _ = ckpt
    real = ort.InferenceSession

    class Off(real):
        def run(self, *a, **k):
            return [y * 1.01 for y in super().run(*a, **k)]
    monkeypatch.setattr(ort, "InferenceSession", Off)
    assert main(["export", str(d / "lenet.safetensors"), str(d / "off.onnx")]) == 1
    err = capsys.readouterr().err
    assert "onnxruntime's output differs from convprop's by 1.00e-02" in err
    assert len(err.strip().splitlines()) == 1
