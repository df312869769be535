"""``convprop show filters|features|confusion|gradients``: a PNG written and named, one
clear line for bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from helpers import run_cli as _run
from convprop.io import save_checkpoint  # noqa: E402
from convprop.models import build  # noqa: E402

PRE = {"mean": [0.1307], "std": [0.3081], "channels": 1, "size": 28}


@pytest.fixture(scope="module")
def ck(tmp_path_factory):
    d = tmp_path_factory.mktemp("show")
    model = build("lenet5", rng=np.random.default_rng(0))
    hist = [{"epoch": e, "loss": 1.0 / e, "grad_norm/0": 0.1 * e, "grad_norm_max/0": 0.2 * e,
             "grad_norm/11": 0.5, "grad_norm_max/11": 0.6} for e in (1, 2)]
    save_checkpoint(d / "net.safetensors", model, model_config=model.config,
                    extra={"preprocess": PRE, "history": hist})
    save_checkpoint(d / "plain.safetensors", model, model_config=model.config,
                    extra={"preprocess": PRE, "history": [{"epoch": 1, "loss": 1.0}]})
    colour = build("lenet5", in_channels=3, input_size=32, rng=np.random.default_rng(0))
    save_checkpoint(d / "colour.safetensors", colour, model_config=colour.config,
                    extra={"preprocess": {"mean": [0.5] * 3, "std": [0.25] * 3, "channels": 3,
                                          "size": 32}})
    save_checkpoint(d / "letters.safetensors", model, model_config=model.config,
                    extra={"preprocess": PRE, "classes": list("abcdefghij")})
    np.save(d / "digit.npy", np.random.default_rng(1).integers(0, 256, (28, 28)))
    np.save(d / "rgb.npy", np.zeros((3, 28, 28)))
    from PIL import Image
    Image.new("L", (20, 20)).save(d / "small.png")
    Image.new("RGB", (28, 28), (0, 90, 200)).save(d / "colour.png")
    return d


def png_ok(path):
    from PIL import Image
    assert path.stat().st_size > 2000
    with Image.open(path) as im:
        assert im.format == "PNG" and min(im.size) > 200


@pytest.mark.parametrize("picture, extra", [
    ("filters", []), ("features", ["--input", "{d}/digit.npy", "--layer", "3"]),
    ("confusion", ["--limit", "60"]), ("gradients", [])])
def test_each_picture_is_written_and_named(capsys, ck, picture, extra):
    code, out, err = _run(capsys, "show", picture, ck / "net.safetensors",
                          *(a.format(d=ck) for a in extra))
    assert code == 0, err
    want = ck / f"net-{picture}.png"
    assert out.strip() == f"wrote {want}"
    png_ok(want)


def test_help(capsys):
    code, out, _ = _run(capsys, "show", "--help")
    assert code == 0 and "{filters,features,confusion,gradients}" in out


def test_out(capsys, ck, tmp_path):
    code, out, _ = _run(capsys, "show", "filters", ck / "net.safetensors", "--out",
                        tmp_path / "sub" / "f.png")
    assert code == 0 and out.strip() == f"wrote {tmp_path / 'sub' / 'f.png'}"
    png_ok(tmp_path / "sub" / "f.png")


@pytest.mark.parametrize("args, needle", [
    (["gradients", "{d}/plain.safetensors"], "its history has no gradient norms; train with "
                                             "--record-gradients"),
    (["features", "{d}/net.safetensors"], "needs --input IMAGE"),
    (["features", "{d}/net.safetensors", "--input", "{d}/rgb.npy"],
     "rgb.npy has shape (3, 28, 28)"),
    (["features", "{d}/net.safetensors", "--input", "{d}/digit.npy", "--layer", "nope"],
     "layer 'nope' is not a module of the model"),
    (["features", "{d}/net.safetensors", "--input", "{d}/small.png"],
     "small.png is 20x20 pixels; the model takes 28x28"),
    (["features", "{d}/net.safetensors", "--input", "{d}/colour.png"],
     "colour.png has 3 channels; the model takes 1"),
    (["filters", "{d}/missing.safetensors"], "missing.safetensors"),
    (["filters", "{d}/net.safetensors", "--out", "x.jpg"], "--out must name a .png file"),
    (["confusion", "{d}/net.safetensors", "--limit", "0"], "--limit must be positive"),
    # another model's data: refused as evaluate refuses it, not a garbage matrix
    (["confusion", "{d}/colour.safetensors", "--limit", "5"],
     "examples of shape (3, 32, 32), but mnist-sample holds examples of shape (1, 28, 28)"),
    (["confusion", "{d}/letters.safetensors", "--limit", "5"],
     "with classes ['a', 'b', 'c', 'd']..., but mnist-sample has classes"),
])
def test_bad_input_is_one_line(capsys, ck, args, needle):
    code, out, err = _run(capsys, "show", *(a.format(d=ck) for a in args))
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convprop show: error:"), err
    assert needle in lines[0], lines[0]
