"""``convprop explain``: the worked examples, a checkpoint, --json, and one clear line for
bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import run_cli as _run
from convprop.io import save_checkpoint
from convprop.models import build


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("explain")
    model = build("lenet5", rng=np.random.default_rng(0))
    save_checkpoint(d / "lenet.safetensors", model, model_config=model.config,
                    extra={"preprocess": {"mean": [0.1307], "std": [0.3081], "channels": 1,
                                          "size": 28}, "classes": [str(i) for i in range(10)]})
    rng = np.random.default_rng(1)
    np.save(d / "digit.npy", rng.integers(0, 256, (28, 28)).astype(np.uint8))
    np.save(d / "small.npy", np.zeros((20, 20)))
    save_checkpoint(d / "anonymous.safetensors", model, model_config={})
    other = build("lenet5", num_classes=4, rng=np.random.default_rng(0))  # another model's
    save_checkpoint(d / "other.safetensors", other, model_config={"name": "lenet5"},
                    extra={"preprocess": {"mean": [0.0], "std": [1.0], "channels": 1,
                                          "size": 28}})
    (d / "junk.safetensors").write_bytes(b"not a checkpoint")
    Image = pytest.importorskip("PIL.Image")
    Image.new("L", (32, 32)).save(d / "big.png")
    Image.new("RGB", (28, 28), (200, 10, 10)).save(d / "colour.png")
    Image.new("L", (28, 28), 30).convert("P").save(d / "grey_palette.png")
    return d


def test_help(capsys):
    code, out, _ = _run(capsys, "explain", "--help")
    assert code == 0 and "EXAMPLE|CHECKPOINT" in out and "--json" in out


@pytest.mark.parametrize("name, needle", [("mazur", "E = 1/2 Σ (t - o)² = 0.298371109"),
                                          ("cnn4x4", "E after the update = 0.183121285")])
def test_worked_examples(capsys, name, needle):
    code, out, err = _run(capsys, "explain", name)
    assert code == 0, err
    assert needle in out and "✗" not in out


def test_json(capsys):
    code, out, _ = _run(capsys, "explain", "mazur", "--json")
    d = json.loads(out)
    assert d["loss"] == pytest.approx(0.298371109, abs=5e-10)
    assert all(c["agrees"] for c in d["checks"])
    assert [s["kind"] for s in d["steps"]] == ["Linear", "Sigmoid", "Linear", "Sigmoid"]


def test_checkpoint(capsys, ckpt):
    code, out, err = _run(capsys, "explain", str(ckpt / "lenet.safetensors"), "--input",
                          str(ckpt / "digit.npy"), "--target", "3")
    assert code == 0, err
    assert "target class 3" in out and "switches" in out and "dE/dW1 = shape (6, 1, 5, 5)" in out
    assert max(len(line) for line in out.splitlines()) < 400   # summarised, never dumped
    code, out, err = _run(capsys, "explain", str(ckpt / "lenet.safetensors"), "--input",
                          str(ckpt / "digit.npy"), "--target", "3", "--json", "--eval")
    d = json.loads(out)
    assert d["target"]["values"] == [3] and len(d["steps"]) == 12


@pytest.mark.parametrize("args, needle", [
    (["nope"], "'nope' is neither a worked example (cnn4x4, mazur) nor a checkpoint file"),
    (["mazur", "--target", "1"], "takes no --input or --target"),
    (["{ck}/lenet.safetensors", "--input", "{ck}/digit.npy"], "give --input IMAGE and --target"),
    (["{ck}/lenet.safetensors", "--input", "{ck}/digit.npy", "--target", "10"],
     "target 10 is out of range: the model has 10 classes (0..9)"),
    (["{ck}/lenet.safetensors", "--input", "{ck}/digit.npy", "--target", "-1"],
     "target -1 is out of range"),
    (["{ck}/lenet.safetensors", "--input", "{ck}/small.npy", "--target", "1"],
     "small.npy has shape"),
    (["{ck}/anonymous.safetensors", "--input", "{ck}/digit.npy", "--target", "1"],
     "malformed metadata: model_config.name"),
    (["{ck}/other.safetensors", "--input", "{ck}/digit.npy", "--target", "1"], "shape"),
    (["{ck}/junk.safetensors", "--input", "{ck}/digit.npy", "--target", "1"], "junk"),
    # a picture is never resized or recoloured behind the user's back (predict does that)
    (["{ck}/lenet.safetensors", "--input", "{ck}/big.png", "--target", "1"],
     "big.png is 32x32 pixels; the model takes 28x28"),
    (["{ck}/lenet.safetensors", "--input", "{ck}/colour.png", "--target", "1"],
     "colour.png has 3 channels; the model takes 1"),
    (["{ck}/lenet.safetensors", "--input", "{ck}/missing.png", "--target", "1"],
     "missing.png not found"),
    (["{ck}/lenet.safetensors", "--input", "{ck}", "--target", "1"], "is a directory"),
])
def test_bad_input_is_one_line(capsys, ckpt, args, needle):
    code, out, err = _run(capsys, "explain", *(a.format(ck=ckpt) for a in args))
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convprop explain: error:"), err
    assert needle in lines[0], lines[0]
    assert "predict:" not in lines[0]   # the shared reader's op name is not this command's


def test_a_picture_of_the_models_size_is_read(capsys, ckpt):
    """A grey palette PNG counts as one channel; the trace sees the picture's pixels."""
    code, out, err = _run(capsys, "explain", str(ckpt / "lenet.safetensors"), "--input",
                          str(ckpt / "grey_palette.png"), "--target", "2", "--json", "--eval")
    assert code == 0, err
    x = json.loads(out)["x"]
    assert x["shape"] == [1, 1, 28, 28]
    assert x["min"] == x["max"] == pytest.approx((30 / 255 - 0.1307) / 0.3081, rel=1e-6)
