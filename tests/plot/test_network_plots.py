"""plot.network: each picture is drawn from the right arrays, with a stated colour scale,
and written as a PNG of the expected size."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from convprop.layers.activation import ReLU  # noqa: E402
from convprop.layers.container import Sequential  # noqa: E402
from convprop.layers.conv import Conv2d  # noqa: E402
from convprop.layers.linear import Linear  # noqa: E402
from convprop.layers.pooling import MaxPool2d  # noqa: E402
from convprop.layers.reshape import Flatten  # noqa: E402
from convprop.plot.network import (feature_maps, plot_confusion, plot_feature_maps,  # noqa: E402
                                   plot_filters, plot_gradient_norms, save_figure)


def net(cin=1, seed=0):
    """For 6x6 inputs: 6x6 -> pool 3x3 -> conv 1x1 -> 4 features."""
    rng = np.random.default_rng(seed)
    return Sequential(Conv2d(cin, 5, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2),
                      Conv2d(5, 4, 3, rng=rng), ReLU(), Flatten(), Linear(4, 3, rng=rng))


def png_size(path):
    from PIL import Image
    with Image.open(path) as im:
        return im.size


def written(fig, path, dpi=110):
    w, h = fig.get_size_inches()
    save_figure(fig, path, dpi=dpi)
    assert path.stat().st_size > 2000
    assert png_size(path) == (round(w * dpi), round(h * dpi))


def colorbar_label(fig):
    return [a.get_ylabel() for a in fig.axes if a.get_label() == "<colorbar>"]


def test_filters_one_channel(tmp_path):
    model = net()
    fig = plot_filters(model)
    imgs = [a.images[0] for a in fig.axes if a.images]
    assert len(imgs) == 5
    w = model[0].weight.value
    for k, im in enumerate(imgs):
        np.testing.assert_allclose(im.get_array(), w[k, 0], rtol=1e-6)
        lo, hi = im.get_clim()
        assert lo == -hi == pytest.approx(-np.abs(w).max())   # one symmetric scale
    assert colorbar_label(fig) == ["weight value"]
    assert "layer 0 (the first Conv2d): 5 filters 3x3" in fig._suptitle.get_text()
    written(fig, tmp_path / "filters.png")


def test_filters_rgb_and_many_channels(tmp_path):
    w = np.random.default_rng(1).standard_normal((10, 3, 5, 5))
    fig = plot_filters(w)
    arr = fig.axes[3].images[0].get_array()
    np.testing.assert_allclose(arr, ((w[3] - w.min()) / (w.max() - w.min())).transpose(1, 2, 0))
    assert "one scale for all" in fig._suptitle.get_text()
    written(fig, tmp_path / "rgb.png")
    fig = plot_filters(np.ones((2, 4, 3, 3)) * np.arange(4).reshape(1, 4, 1, 1))
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), np.full((3, 3), 1.5))
    with pytest.raises(ValueError, match="plot_filters: expected a .C_out"):
        plot_filters(np.ones((3, 3)))
    with pytest.raises(ValueError, match="has no Conv2d"):
        plot_filters(Sequential(Linear(2, 2)))


def test_feature_maps(tmp_path):
    model = net()
    x = np.random.default_rng(2).standard_normal((1, 6, 6)).astype(np.float32)
    name, maps = feature_maps(model, x, "1")
    want = np.maximum(model[0].predict(x[None]), 0)[0]
    np.testing.assert_allclose(maps, want, rtol=1e-6)
    fig = plot_feature_maps(model, x, "1")
    imgs = [a.images[0] for a in fig.axes if a.images]
    assert len(imgs) == 5
    for k, im in enumerate(imgs):
        np.testing.assert_allclose(im.get_array(), want[k], rtol=1e-6)
        assert im.get_clim() == pytest.approx((want.min(), want.max()))
    assert colorbar_label(fig) == ["activation"]
    assert "layer 1 (ReLU): 5 channels 6x6" in fig._suptitle.get_text()
    written(fig, tmp_path / "features.png")
    assert feature_maps(model, x)[0] == "0"   # the first Conv2d by default
    assert feature_maps(model, x, model[1])[0] == "1"   # the module itself
    with pytest.raises(ValueError, match="layer 'x' is not a module of the model; its layer "
                                         "names are '0', '1'"):
        feature_maps(model, x, "x")
    with pytest.raises(ValueError, match="layer '6' outputs shape .1, 3., not feature maps"):
        feature_maps(model, x, "6")
    with pytest.raises(ValueError, match="the model rejects x of shape .1, 2, 6, 6."):
        feature_maps(model, np.zeros((2, 6, 6), np.float32))
    with pytest.raises(ValueError, match="the model has no Conv2d; name the layer"):
        feature_maps(Sequential(Flatten(), Linear(36, 2)), x)


def test_feature_maps_of_any_named_module():
    """A block (a ResNet stage, a residual block) or a layer inside one: the same names
    as the attribution methods' layer=, not only the Sequential chain's steps."""
    from convprop.models import build
    model = build("resnet20", input_size=8, widths=(4, 6, 8), blocks_per_stage=1,
                  rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((3, 8, 8)).astype(np.float32)
    stage = model[3]
    want = stage.predict(model[2].predict(model[1].predict(model[0].predict(x[None]))))[0]
    name, maps = feature_maps(model, x, "3")
    assert name == "3"
    np.testing.assert_allclose(maps, want, rtol=1e-6)
    inner = feature_maps(model, x, "4.0.body.0")[1]
    assert inner.shape == (6, 4, 4)
    fig = plot_feature_maps(model, x, "4.0.body.0")
    assert "layer 4.0.body.0 (Conv2d): 6 channels 4x4" in fig._suptitle.get_text()


def test_confusion(tmp_path):
    c = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]])
    fig = plot_confusion(c, ["a", "b", "c"])
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), c)
    texts = [t.get_text() for t in ax.texts]
    assert texts == [str(v) for v in c.ravel()]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert "accuracy 0.8400" in ax.get_title()
    assert colorbar_label(fig) == ["count"]
    written(fig, tmp_path / "confusion.png")
    with pytest.raises(ValueError, match="square"):
        plot_confusion(np.ones((2, 3)))
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        plot_confusion(c, ["a", "b"])


def test_gradient_norms_plot(tmp_path):
    records = [{"epoch": e, "loss": 1.0, "grad_norm/0": 0.1 * e, "grad_norm_max/0": 0.2 * e,
                "grad_norm/3": 1.0 * e, "grad_norm_max/3": 2.0 * e} for e in (1, 2, 3)]
    records[1]["grad_norm/0"] = None   # an overflowed epoch: a gap, not a crash
    fig = plot_gradient_norms(records, kinds={"0": "Conv2d", "3": "Linear"})
    ax, bx = fig.axes[:2]
    assert [line.get_label() for line in ax.lines] == ["layer 0 Conv2d", "layer 3 Linear"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.1, np.nan, 0.3])
    np.testing.assert_allclose(ax.lines[1].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(bx.lines[0].get_ydata(), [0.1, 1.0])   # epoch 1 over depth
    np.testing.assert_allclose(bx.lines[1].get_ydata(), [0.3, 3.0])   # epoch 3
    assert ax.get_yscale() == "log" and "mean over the epoch" in ax.get_ylabel()
    written(fig, tmp_path / "gradients.png")
    with pytest.raises(ValueError, match="no gradient norms"):
        plot_gradient_norms([{"epoch": 1, "loss": 1.0}])


def test_pictures_leave_pyplot_and_the_backend_alone():
    """Library functions must not switch the user's backend (a notebook's inline one) nor
    register figures with pyplot, where they pile up until closed."""
    import matplotlib
    import matplotlib.pyplot as plt
    old = matplotlib.get_backend()
    plt.close("all")
    matplotlib.use("template")   # any backend other than Agg
    try:
        model = net()
        x = np.random.default_rng(3).standard_normal((1, 6, 6)).astype(np.float32)
        records = [{"epoch": 1, "grad_norm/0": 0.5, "grad_norm_max/0": 0.6}]
        figs = [plot_filters(model), plot_feature_maps(model, x), plot_confusion(np.eye(3)),
                plot_gradient_norms(records)]
        assert matplotlib.get_backend() == "template"
        assert plt.get_fignums() == []
        assert all(f.axes for f in figs)
    finally:
        matplotlib.use(old)
