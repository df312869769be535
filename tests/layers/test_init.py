"""Initializers: fans (PyTorch's rule), statistics on big tensors, per-layer selection."""

import math

import numpy as np
import pytest

import convprop.layers as L
from convprop.layers import init


def test_fans_follow_pytorch(torch):
    for shape in [(7, 5), (8, 3, 3, 2), (4, 6, 5, 5)]:
        got = init.fan_in_and_fan_out(shape)
        want = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        assert got == want, shape
    # transposed conv weight (C_in, C_out/groups, KH, KW): fan_in uses w.shape[1]
    ct = L.ConvTranspose2d(6, 4, 3, groups=2)
    assert ct.weight.shape == (6, 2, 3, 3)
    assert init.fan_in_and_fan_out(ct.weight.shape) == (2 * 9, 6 * 9)
    with pytest.raises(ValueError, match="fan_in_and_fan_out"):
        init.fan_in_and_fan_out((3,))


@pytest.mark.parametrize("name,var,uniform", [
    ("he_normal", lambda fi, fo: 2 / fi, False),
    ("he_uniform", lambda fi, fo: 2 / fi, True),
    ("glorot_normal", lambda fi, fo: 2 / (fi + fo), False),
    ("glorot_uniform", lambda fi, fo: 2 / (fi + fo), True),
    ("torch_uniform", lambda fi, fo: 1 / (3 * fi), True),
])
def test_statistics(name, var, uniform):
    shape = (64, 32, 5, 5)   # fan_in 800, fan_out 1600; 51200 draws
    fi, fo = 800, 1600
    w = getattr(init, name)(shape, np.random.default_rng(0))
    assert w.shape == shape and w.dtype == np.float32
    assert abs(w.mean()) < 4 * math.sqrt(var(fi, fo) / w.size)
    assert w.var() == pytest.approx(var(fi, fo), rel=0.03)
    if uniform:  # bound = sqrt(3 * var), reached but never exceeded
        bound = math.sqrt(3 * var(fi, fo))
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    else:
        assert np.abs(w).max() > 3.5 * math.sqrt(var(fi, fo))  # tails: not a uniform
    assert init.he_normal((3, 3), np.random.default_rng(0), dtype=np.float64).dtype == np.float64


def test_same_generator_same_weights():
    a = L.Conv2d(3, 4, 3, rng=np.random.default_rng(5))
    b = L.Conv2d(3, 4, 3, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.weight.value, b.weight.value)
    np.testing.assert_array_equal(a.bias.value, b.bias.value)
    c = L.Conv2d(3, 4, 3, rng=np.random.default_rng(6))
    assert not np.array_equal(a.weight.value, c.weight.value)


def test_layer_init_selection():
    rng = np.random.default_rng(1)
    lin = L.Linear(300, 200, rng=rng)   # default "torch": weight and bias in +-1/sqrt(300)
    bound = 1 / math.sqrt(300)
    assert np.abs(lin.weight.value).max() <= bound and lin.bias.value.any()
    assert np.abs(lin.bias.value).max() <= bound
    assert lin.weight.value.var() == pytest.approx(bound ** 2 / 3, rel=0.03)
    conv = L.Conv2d(16, 32, 3, init="he_normal", rng=rng, dtype=np.float64)
    assert conv.weight.value.dtype == np.float64 and not conv.bias.value.any()
    assert conv.weight.value.var() == pytest.approx(2 / (16 * 9), rel=0.08)
    ct = L.ConvTranspose2d(32, 16, 3, init="glorot_uniform", rng=rng)
    assert not ct.bias.value.any() and ct.bias.shape == (16,)
    assert ct.weight.value.var() == pytest.approx(2 / (16 * 9 + 32 * 9), rel=0.08)
    ct_t = L.ConvTranspose2d(4, 6, 2, groups=2, rng=rng)  # torch bias bound: 1/sqrt(3*2*2)
    assert ct_t.bias.shape == (6,) and np.abs(ct_t.bias.value).max() <= 1 / math.sqrt(12)

    def const(shape, rng, *, dtype=np.float32):
        return np.full(shape, 0.5, dtype=dtype)
    lin2 = L.Linear(3, 2, init=const, dtype=np.float64)
    assert (lin2.weight.value == 0.5).all() and not lin2.bias.value.any()
    assert lin2.weight.value.dtype == np.float64


def test_init_errors():
    with pytest.raises(ValueError, match="Linear: init must be one of"):
        L.Linear(2, 2, init="xavier")
    with pytest.raises(TypeError, match="Conv2d: init"):
        L.Conv2d(2, 2, 3, init=3)
    with pytest.raises(ValueError, match="Linear: init returned shape"):
        L.Linear(2, 3, init=lambda shape, rng, dtype: np.zeros(2))
    with pytest.raises(TypeError, match="Linear: rng"):
        L.Linear(2, 2, rng=0)
    with pytest.raises(TypeError, match="Conv2d: dtype"):
        L.Conv2d(2, 2, 3, dtype=np.int32)
    with pytest.raises(ValueError, match="Conv2d: in_channels and out_channels"):
        L.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="ConvTranspose2d: output_padding"):
        L.ConvTranspose2d(2, 2, 3, stride=1, output_padding=1)
    with pytest.raises(ValueError, match="Dropout: p"):
        L.Dropout(1.5)
    with pytest.raises(ValueError, match="BatchNorm2d: momentum"):
        L.BatchNorm2d(3, momentum=2.0)
    with pytest.raises(ValueError, match="BatchNorm2d: x must be 4-D with 3 channels"):
        L.BatchNorm2d(3).forward(np.zeros((2, 4, 2, 2), np.float32))
    with pytest.raises(ValueError, match="CrossEntropyLoss: reduction"):
        L.CrossEntropyLoss("half_sum")
    with pytest.raises(TypeError, match="Linear: x has dtype float64"):
        L.Linear(2, 2).forward(np.zeros((1, 2)))
