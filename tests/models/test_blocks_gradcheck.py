"""Numerical gradient checks (float64, random upstream gradient) of the zoo's building
blocks: ResNet basic blocks with each kind of shortcut and an inception block, in training
mode (batch-norm batch statistics) and evaluation mode, on tiny inputs."""

import numpy as np
import pytest

from convprop.gradcheck import check_module
from convprop.layers import Identity, PadShortcut, Sequential
from convprop.models import basic_block, inception


def kw(seed):
    return {"rng": np.random.default_rng(seed), "dtype": np.float64, "init": "he_normal"}


def randomize_bn(model, rng):
    """Non-trivial affine parameters and running statistics."""
    for m in model.modules():
        if hasattr(m, "running_mean"):
            c = m.num_features
            m.weight.value = rng.uniform(0.5, 1.5, c)
            m.bias.value = 0.2 * rng.standard_normal(c)
            m.set_buffer("running_mean", 0.3 * rng.standard_normal(c))
            m.set_buffer("running_var", rng.uniform(0.5, 2.0, c))


@pytest.mark.parametrize("cin,cout,stride,shortcut,hw", [
    (3, 8, 2, "A", (5, 4)),   # odd channel padding, odd and even spatial sizes
    (2, 4, 2, "B", (4, 5)),   # 1x1 strided projection + BN
    (3, 3, 1, "A", (4, 4)),   # identity shortcut
    (2, 4, 1, "A", (3, 3)),   # stride 1, channel padding only
])
@pytest.mark.parametrize("training", [True, False])
def test_basic_block(rng, cin, cout, stride, shortcut, hw, training):
    block = basic_block(cin, cout, stride, shortcut, kw(1))
    sc = block[0].shortcut
    if stride == 1 and cin == cout:
        assert isinstance(sc, Identity)
    elif shortcut == "A":
        assert isinstance(sc, PadShortcut)
    else:
        assert isinstance(sc, Sequential)
    randomize_bn(block, rng)
    x = rng.standard_normal((2, cin, *hw))
    report = check_module(block, x, training=training, rng=rng)
    assert report.passed, str(report)


@pytest.mark.parametrize("training", [True, False])
def test_inception_block(rng, training):
    block = inception(3, 2, 2, 3, 1, 2, 2, kw(2))
    randomize_bn(block, rng)
    x = rng.standard_normal((2, 3, 4, 3))
    y = block.predict(x)
    assert y.shape == (2, 2 + 3 + 2 + 2, 4, 3)
    report = check_module(block, x, training=training, rng=rng)
    assert report.passed, str(report)
