"""The 3-D and 1-D zoo models: shapes, gradient checks of small instances, errors."""

import numpy as np
import pytest

from convprop.gradcheck import check_module
from convprop.layers import BatchNorm3d, Conv1d, Conv3d, MaxPool3d
from convprop.models import build


def test_c3d_mini_shapes_and_layers(rng):
    m = build("c3d_mini", rng=rng)
    y = m.predict(np.zeros((2, 1, 16, 32, 32), np.float32))
    assert y.shape == (2, 8) and y.dtype == np.float32
    kinds = {type(layer) for layer in m}
    assert {Conv3d, BatchNorm3d, MaxPool3d} <= kinds
    assert m.config == {"name": "c3d_mini"}


def test_cnn1d_shapes_follow_input_size(rng):
    m = build("cnn1d", input_size=100, num_classes=4, rng=rng)
    assert m.predict(np.zeros((3, 1, 100), np.float32)).shape == (3, 4)
    assert any(isinstance(layer, Conv1d) for layer in m)


@pytest.mark.parametrize("name, shape, cfg", [
    ("c3d_mini", (2, 1, 4, 8, 8), {"input_size": (4, 8, 8), "widths": (2, 3, 2)}),
    ("cnn1d", (2, 2, 16), {"in_channels": 2, "input_size": 16, "widths": (2, 3),
                           "pools": (2, 2), "num_classes": 3}),
])
def test_small_instances_gradcheck(rng, name, shape, cfg):
    m = build(name, rng=rng, dtype=np.float64, **cfg)
    report = check_module(m, rng.standard_normal(shape), training=True, rng=rng)
    assert report.passed, str(report)


@pytest.mark.parametrize("name, cfg, message", [
    ("c3d_mini", {"input_size": (2, 8, 8)}, "c3d_mini: input_size must be at least"),
    ("c3d_mini", {"widths": (8, 16)}, "c3d_mini: widths must be 3"),
    ("cnn1d", {"widths": (4,), "pools": (2, 2)}, "cnn1d: widths and pools"),
    ("cnn1d", {"input_size": (4, 4)}, "cnn1d: input_size must be an int or a tuple of 1"),
])
def test_errors(name, cfg, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build(name, **cfg)
