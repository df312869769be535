"""The saliency pictures (plot/saliency.py) and the ``convprop saliency`` command: each
figure written, non-empty, of the stated size, and the arrays behind its panels right; bad
input to the command is one line and exit status 1."""

import numpy as np
import pytest

from helpers import run_cli as _run
from convprop.explain import METHODS, attribute, deconvnet_projection, saliency_map
from convprop.explain.resample import interpolate

pytest.importorskip("matplotlib", reason="matplotlib not installed: pictures skipped")
Image = pytest.importorskip("PIL.Image", reason="Pillow not installed: PNG checks skipped")

from convprop.plot.saliency import (deconvnet_panels, default_layer, plot_deconvnet,  # noqa
                                    plot_saliency, saliency_panels)


def _png_size(path):
    with Image.open(path) as im:
        return im.size


def _unit(m):
    return (m - m.min()) / (m.max() - m.min())


@pytest.fixture
def digit(rng):
    x = np.zeros((1, 1, 28, 28))
    x[0, 0, 6:22, 12:16] = 2.0  # a bar: something for the maps to find
    return x + 0.1 * rng.standard_normal(x.shape)


def test_saliency_panels_are_the_attributions(lenet, digit):
    maps = saliency_panels(lenet, digit, 3, layer="3")
    assert list(maps) == list(METHODS)
    for m in ("gradient", "guided", "deconvnet", "integrated_gradients"):
        np.testing.assert_allclose(maps[m], saliency_map(attribute(lenet, digit, 3, m))[0],
                                   rtol=1e-12)
    cam = attribute(lenet, digit, 3, "gradcam", layer="3")
    np.testing.assert_allclose(maps["gradcam"], interpolate(cam, (28, 28), "bilinear")[0, 0])
    np.testing.assert_allclose(maps["cues"], attribute(lenet, digit, 3, "cues")[0, 0])
    assert all(v.shape == (28, 28) for v in maps.values())
    assert default_layer(lenet, digit) == "5"


def test_plot_saliency_is_written_with_the_maps_behind_it(lenet, digit, tmp_path):
    maps = saliency_panels(lenet, digit, 3, ["gradient", "gradcam", "cues"], layer="3")
    fig = plot_saliency(digit[0], maps, title="a bar")
    path = tmp_path / "s.png"
    fig.savefig(path)
    assert path.stat().st_size > 10_000
    assert _png_size(path) == (round(2.3 * 4 * 100), 520)
    top = [ax for ax in fig.axes if ax.get_title().split("\n")[0] in
           ("gradient", "Grad-CAM", "fwd/bwd cues")]
    assert len(top) == 3
    for ax, m in zip(top, maps.values()):
        np.testing.assert_allclose(ax.images[0].get_array(), _unit(m), rtol=1e-12)
        assert f"max {np.max(m):.3g}" in ax.get_title()
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert any("min (0) to max (1)" in s for s in labels)  # the colour scale is stated


def test_plot_deconvnet_is_written_with_the_projections_behind_it(lenet, digit, tmp_path):
    panels = deconvnet_panels(lenet, digit, "5", k=4)
    assert len(panels["channels"]) == 4
    for i, c in enumerate(panels["channels"]):
        p = deconvnet_projection(lenet, digit, "5", int(c))
        np.testing.assert_array_equal(panels["projections"][i], p.image[0])
        np.testing.assert_array_equal(panels["activations"][i], p.activation[0])
    assert list(panels["activations"]) == sorted(panels["activations"], reverse=True)
    fig = plot_deconvnet(digit[0], panels, layer="5")
    path = tmp_path / "d.png"
    fig.savefig(path)
    assert path.stat().st_size > 10_000
    assert _png_size(path) == (round(2.2 * 5 * 100), 500)
    top = [ax for ax in fig.axes if ax.get_title().startswith("map ")]
    for ax, p in zip(top, panels["projections"]):
        q = p[0]
        np.testing.assert_allclose(ax.images[0].get_array(), q / np.abs(q).max())


def test_plot_errors():
    with pytest.raises(ValueError, match="^plot_saliency: maps is empty"):
        plot_saliency(np.zeros((1, 4, 4)), {})
    with pytest.raises(ValueError, match="^saliency_panels: x must be one image"):
        saliency_panels(None, np.zeros((2, 1, 4, 4)), 0)


# ---------------------------------------------------------------------- the command


@pytest.fixture
def checkpoint(tmp_path, lenet):
    from convprop.io import save_checkpoint
    path = tmp_path / "lenet.safetensors"
    save_checkpoint(path, lenet.astype(np.float32), model_config={"name": "lenet5"},
                    extra={"preprocess": {"mean": [0.1307], "std": [0.3081], "channels": 1,
                                          "size": 28, "shape": [28, 28]},
                           "classes": [str(i) for i in range(10)]})
    return path


@pytest.fixture
def image(tmp_path, rng):
    a = np.zeros((28, 28))
    a[5:23, 11:17] = 255.0
    path = tmp_path / "digit.npy"
    np.save(path, a)
    return path


def test_command_writes_the_saliency_png(capsys, checkpoint, image, tmp_path):
    out = tmp_path / "pics" / "s.png"
    code, stdout, err = _run(capsys, "saliency", checkpoint, image, "--method",
                             "gradient,guided,gradcam", "--target", 4, "--layer", "3",
                             "--out", out)
    assert code == 0, err
    assert stdout.strip() == f"wrote {out} (3 saliency maps for class 4)"
    assert out.stat().st_size > 5_000 and _png_size(out) == (round(2.3 * 4 * 100), 520)


def test_command_default_out_all_methods_and_png_input(capsys, checkpoint, tmp_path):
    png = tmp_path / "d.png"
    a = np.zeros((28, 28), np.uint8)
    a[4:24, 13:15] = 255
    Image.fromarray(a).save(png)
    code, stdout, err = _run(capsys, "saliency", checkpoint, png)
    want = tmp_path / "lenet-saliency.png"
    assert code == 0, err
    assert stdout.startswith(f"wrote {want} ({len(METHODS)} saliency maps for class ")
    assert _png_size(want) == (round(2.3 * (len(METHODS) + 1) * 100), 520)


def test_command_draws_deconvnet_projections(capsys, checkpoint, image, tmp_path):
    out = tmp_path / "p.png"
    code, stdout, err = _run(capsys, "saliency", checkpoint, image, "--projections", 3,
                             "--layer", "2", "--out", out)
    assert code == 0, err
    assert stdout.strip() == f"wrote {out} (DeconvNet projections of layer '2')"
    assert _png_size(out) == (round(2.2 * 4 * 100), 500)


def _bad_png(tmp_path, size, mode):
    path = tmp_path / f"bad-{mode}-{size}.png"
    Image.new(mode, (size, size)).save(path)
    return path


@pytest.mark.parametrize("argv, needle", [
    (["--method", "saliency"], "unknown method 'saliency'; methods are gradient"),
    (["--method", "gradcam", "--layer", "conv9"], "layer 'conv9' is not a module of the model"),
    (["--target", "10"], r"--target 10 is out of range for a model with 10 classes \(0..9\)"),
    (["--target", "-1"], "--target -1 is out of range"),
    (["--projections", "0"], "--projections must be >= 1"),
    (["--out", "x.jpg"], "--out must name a .png file"),
    (["--projections", "2", "--layer", "fc1"], "layer 'fc1' is not a module of the model"),
    (["--method", ","], "--method is empty"),
])
def test_command_bad_arguments_are_one_line(capsys, checkpoint, image, argv, needle):
    import re
    code, stdout, err = _run(capsys, "saliency", checkpoint, image, *argv)
    assert code == 1 and stdout == ""
    assert err.count("\n") == 1 and err.startswith("convprop saliency: error: ")
    assert re.search(needle, err), err


@pytest.mark.parametrize("make, needle", [
    (lambda p: _bad_png(p, 20, "L"), "is 20x20 pixels; the model takes 28x28"),
    (lambda p: _bad_png(p, 28, "RGB"), "has 3 channels; the model takes 1"),
    (lambda p: (np.save(p / "b.npy", np.zeros((3, 28, 28))), p / "b.npy")[1],
     r"b.npy has shape \(3, 28, 28\), expected \(1, 28, 28\)"),
    (lambda p: p / "missing.npy", "missing.npy not found"),
    (lambda p: p, "is a directory"),
])
def test_command_bad_images_are_one_line(capsys, checkpoint, tmp_path, make, needle):
    import re
    code, stdout, err = _run(capsys, "saliency", checkpoint, make(tmp_path))
    assert code == 1 and err.count("\n") == 1 and re.search(needle, err), err


def test_deconvnet_colour_bar_states_the_channel_mean(rng):
    projs = rng.standard_normal((2, 3, 6, 6))
    panels = {"projections": projs, "channels": np.array([4, 1]),
              "positions": np.array([[0, 1], [2, 2]]), "activations": np.array([2.0, 1.0])}
    fig = plot_deconvnet(rng.random((3, 6, 6)), panels, layer="x")
    top = [ax for ax in fig.axes if ax.get_title().startswith("map ")]
    q = projs[0].mean(axis=0)
    np.testing.assert_allclose(top[0].images[0].get_array(), q / np.abs(q).max())
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert "projection (mean over the 3 channels) / max |.|" in labels
