"""DeconvNet projection (Zeiler and Fergus 2014): the explicit unpool / ReLU / transposed
filter construction against the "deconvnet" backward rule seeded at the layer, against
Captum's NeuronDeconvolution, and by hand on a one-layer net."""

import numpy as np
import pytest
from contract import raises

from convprop.explain import deconvnet_projection, relu_rule, strongest_channels
from convprop.layers import (BatchNorm2d, Conv2d, Flatten, LeakyReLU, Linear, MaxPool2d,
                             ReLU, Sequential)

pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU")


def _rule_backward(model, k, x, channel, flat, values):
    """The same projection as a backward pass: the prefix of the model up to child k, a
    one-hot gradient of value `values` at the chosen activation, every ReLU by the
    "deconvnet" rule."""
    prefix = Sequential(*list(model)[:k + 1])
    a, cache = prefix.forward(x)
    dy = np.zeros_like(a)
    dy.reshape(a.shape[0], a.shape[1], -1)[np.arange(len(x)), channel, flat] = values
    with relu_rule(prefix, "deconvnet"):
        return prefix.backward(dy, cache)


def _assert_equals_rule(model, k, x, channel, p):
    """The projection p of ``channel`` of child k equals the deconvnet-rule backward."""
    a = Sequential(*list(model)[:k + 1]).predict(x)
    flat = a[:, channel].reshape(len(x), -1).argmax(axis=1)
    want = _rule_backward(model, k, x, channel, flat, p.activation)
    np.testing.assert_allclose(p.image, want, rtol=1e-12, atol=1e-14)
    return want


def _filter_at_switch(maps, position, weight, value):
    """By hand, for one 3x3 filter under 2x2/2 pooling: the filter scaled by the activation,
    placed at the window of the pooled unit's switch (the argmax of ``maps`` there)."""
    i, j = position
    win = maps[2 * i:2 * i + 2, 2 * j:2 * j + 2]
    di, dj = np.unravel_index(win.argmax(), (2, 2))
    r, c = 2 * i + di, 2 * j + dj
    want = np.zeros((maps.shape[0] + 2, maps.shape[1] + 2))
    want[r:r + 3, c:c + 3] = value * weight
    return want


@pytest.mark.parametrize("layer, channel", [(1, 2), (2, 5), (4, 3), (5, 15), (9, 40)])
def test_projection_equals_the_deconvnet_rule_backward(layer, channel, lenet, rng):
    x = rng.standard_normal((3, 1, 28, 28))
    p = deconvnet_projection(lenet, x, str(layer), channel)
    a = Sequential(*list(lenet)[:layer + 1]).predict(x)
    maps = a[:, channel].reshape(3, -1)
    flat = maps.argmax(axis=1)
    np.testing.assert_array_equal(p.activation, maps[np.arange(3), flat])
    if a.ndim == 4:
        np.testing.assert_array_equal(p.position, np.stack(np.unravel_index(flat, a.shape[2:]),
                                                           axis=1))
    want = _rule_backward(lenet, layer, x, channel, flat, p.activation)
    assert p.image.shape == x.shape
    np.testing.assert_allclose(p.image, want, rtol=1e-12, atol=1e-14)
    assert np.abs(p.image).max() > 0


def test_position_chooses_the_activation(lenet, rng):
    x = rng.standard_normal((2, 1, 28, 28))
    p = deconvnet_projection(lenet, x, "3", 4, position=(2, 7))
    assert (p.position == [2, 7]).all()
    a = Sequential(*list(lenet)[:4]).predict(x)
    np.testing.assert_array_equal(p.activation, a[:, 4, 2, 7])
    want = _rule_backward(lenet, 3, x, 4, np.full(2, 2 * 10 + 7), p.activation)
    np.testing.assert_allclose(p.image, want, rtol=1e-12, atol=1e-14)


def test_one_conv_layer_by_hand(rng):
    """conv 2@3x3 then ReLU then 2x2 max pool: the projection of a pooled unit is the filter,
    scaled by the activation, placed at the window of its switch."""
    conv = Conv2d(1, 2, 3, rng=rng, dtype=np.float64)
    model = Sequential(conv, ReLU(), MaxPool2d(2))
    x = rng.standard_normal((1, 1, 6, 6))
    p = deconvnet_projection(model, x, "2", 1)
    assert p.activation[0] == model.predict(x)[0, 1].max() > 0
    want = _filter_at_switch(conv.predict(x)[0, 1], p.position[0], conv.weight.value[1, 0],
                             p.activation[0])
    np.testing.assert_allclose(p.image[0, 0], want, rtol=1e-13)


def test_matches_captum_neuron_deconvolution(twin, captum, torch, rng):
    model, tmodel = twin("lenet5", {}, rng)
    x = rng.standard_normal((2, 1, 28, 28))
    for layer, channel in (("3", 7), ("5", 11)):
        p = deconvnet_projection(model, x, layer, channel)
        nd = captum.NeuronDeconvolution(tmodel, dict(tmodel.named_modules())[layer])
        for n in range(2):
            xt = torch.from_numpy(x[n:n + 1].copy()).requires_grad_(True)
            want = nd.attribute(xt, (channel, *p.position[n])).detach().numpy()
            np.testing.assert_allclose(p.image[n:n + 1], p.activation[n] * want, rtol=0,
                                       atol=1e-10)


def test_strongest_channels(lenet, rng):
    x = rng.standard_normal((1, 1, 28, 28))
    order = strongest_channels(lenet, x, "5", k=4)
    a = Sequential(*list(lenet)[:6]).predict(x)[0]
    peaks = a.reshape(16, -1).max(axis=1)
    assert list(order) == list(np.argsort(-peaks, kind="stable")[:4])
    assert len(strongest_channels(lenet, x, "2", k=50)) == 6


def test_bad_input(lenet, resnet, rng):
    x = rng.standard_normal((1, 1, 28, 28))
    with raises("deconvnet_projection", r"channel must be an int in 0..5"):
        deconvnet_projection(lenet, x, "2", 6)
    with raises("deconvnet_projection", "position must index the feature map"):
        deconvnet_projection(lenet, x, "2", 0, position=(14, 0))
    with raises("deconvnet_projection", "layer 'features' is not a module"):
        deconvnet_projection(lenet, x, "features", 0)
    with raises("deconvnet_projection", "cannot project through BatchNorm2d"):
        deconvnet_projection(resnet, rng.standard_normal((1, 3, 8, 8)), "2", 0)
    with raises("deconvnet_projection", "layer '3.0.body.0' is not on the model's Sequential "
                                        "chain: it sits inside '3.0', a Residual"):
        deconvnet_projection(resnet, rng.standard_normal((1, 3, 8, 8)), "3.0.body.0", 0)
    leaky = Sequential(Conv2d(1, 2, 3, dtype=np.float64), LeakyReLU(0.1), MaxPool2d(2),
                       Flatten(), Linear(2, 2, dtype=np.float64))
    with raises("deconvnet_projection", "cannot project through LeakyReLU"):
        deconvnet_projection(leaky, rng.standard_normal((1, 1, 4, 4)), "2", 0)
    with raises("strongest_channels", "x must hold one example"):
        strongest_channels(lenet, np.zeros((2, 1, 28, 28)), "2")
    with raises("deconvnet_projection", "cannot project through BatchNorm2d"):
        deconvnet_projection(Sequential(Conv2d(1, 2, 3, dtype=np.float64),
                                        BatchNorm2d(2, dtype=np.float64), Flatten(),
                                        Linear(8, 2, dtype=np.float64)),
                             rng.standard_normal((1, 1, 4, 4)), "3", 0)


def test_read_only_non_contiguous_input_gives_the_same(lenet, rng):
    x = rng.standard_normal((2, 1, 28, 56))[:, :, :, ::2]
    x.flags.writeable = False
    before = x.copy()
    p = deconvnet_projection(lenet, x, "5", 3)
    q = deconvnet_projection(lenet, np.ascontiguousarray(x), "5", 3)
    np.testing.assert_array_equal(p.image, q.image)
    np.testing.assert_array_equal(x, before)
    assert list(strongest_channels(lenet, x[:1], "5", k=3)) == list(
        strongest_channels(lenet, np.ascontiguousarray(x[:1]), "5", k=3))


@pytest.mark.parametrize("kernel, padding, stride, dilation", [
    (3, "same", 1, 1), (4, "same", 1, 1), (3, "same", 1, 2), (3, "valid", 1, 1),
    (3, 1, 2, 1), (2, 0, 2, 1), (3, 2, 3, 2)])
def test_every_padding_of_a_convolution(kernel, padding, stride, dilation, rng):
    """Strings ("same" with its odd extra pixel after, "valid"), padding > 0 with strides that
    do not tile the input, dilation: the projection equals the deconvnet-rule backward."""
    kw = dict(rng=rng, dtype=np.float64)
    model = Sequential(Conv2d(2, 3, kernel, padding=padding, stride=stride,
                              dilation=dilation, **kw), ReLU(), Conv2d(3, 2, 2, **kw), ReLU())
    x = rng.standard_normal((2, 2, 9, 8))
    p = deconvnet_projection(model, x, "3", 1)
    assert np.abs(_assert_equals_rule(model, 3, x, 1, p)).max() > 0


@pytest.mark.parametrize("pool", [MaxPool2d(2, dilation=2), MaxPool2d(3, stride=2),
                                  MaxPool2d(2, stride=1), MaxPool2d(2, padding=1),
                                  MaxPool2d(3, stride=3, ceil_mode=True)])
def test_overlapping_pooling_keeps_the_projected_activation(pool, rng):
    """Windows that share a switch (AlexNet's 3x3/2 pooling, which Zeiler and Fergus
    visualised; dilated windows): the projection must not lose its one activation to a
    later window's 0 at the same switch; it equals the deconvnet-rule backward."""
    conv = Conv2d(1, 2, 3, rng=rng, dtype=np.float64)
    model = Sequential(conv, ReLU(), pool)
    for seed in range(4):
        x = np.random.default_rng(seed).standard_normal((2, 1, 11, 11))
        p = deconvnet_projection(model, x, "2", 1)
        _assert_equals_rule(model, 2, x, 1, p)
        for n in range(2):   # one filter copy per example, scaled by the activation
            assert abs(np.abs(p.image[n]).sum() - p.activation[n] * np.abs(
                conv.weight.value[1]).sum()) < 1e-12


def test_local_response_norm_passes_the_signal_as_in_the_paper(rng):
    """AlexNet-style conv, ReLU, LRN, max pool: the switch comes from the normalised maps,
    and the projection is the filter at the switch's window, scaled by the activation (the
    deconvnet inverts no normalisation)."""
    from convprop.layers.normalization import LocalResponseNorm
    conv = Conv2d(1, 3, 3, rng=rng, dtype=np.float64)
    model = Sequential(conv, ReLU(), LocalResponseNorm(2, alpha=0.5, beta=0.75, k=1.0),
                       MaxPool2d(2))
    x = rng.standard_normal((1, 1, 8, 8)) * 3
    p = deconvnet_projection(model, x, "3", 2)
    normed = Sequential(*list(model)[:3]).predict(x)[0, 2]
    assert p.activation[0] == normed.max() > 0
    want = _filter_at_switch(normed, p.position[0], conv.weight.value[2, 0], p.activation[0])
    np.testing.assert_allclose(p.image[0, 0], want, rtol=1e-13)
