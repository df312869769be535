"""lenet5_classic: LeNet-5 as published (LeCun et al. 1998). Layer sequence and shapes, the
paper's parameter counts, the input scaling, a whole-model float64 gradient check on a
narrowed model (C5 and F6 made small so the numerical gradient is quick), training steps that
lower the criterion and keep C3's disconnected weights at zero, and errors."""

import numpy as np
import pytest

from convprop.gradcheck import check_module
from convprop.layers import Conv2d, Flatten, Linear
from convprop.layers.lenet_classic import (EuclideanRBF, MaskedConv2d, RBFLoss, ScaledTanh,
                                           Subsampling2d, digit_codes, rbf_predict)
from convprop.models.lenet_classic import lenet5_classic, mnist_to_lenet_input
from convprop.optim import SGD


def test_structure_and_shapes(rng):
    m = lenet5_classic(rng=rng)
    kinds = [type(c) for c in m]
    assert kinds == [Conv2d, ScaledTanh, Subsampling2d, ScaledTanh, MaskedConv2d, ScaledTanh,
                     Subsampling2d, ScaledTanh, Conv2d, ScaledTanh, Flatten, Linear,
                     ScaledTanh, EuclideanRBF]
    x = rng.standard_normal((3, 1, 32, 32)).astype(np.float32)
    shapes = []
    for layer in m:
        x, _ = layer.forward(x)
        shapes.append(x.shape[1:])
        assert x.dtype == np.float32
    assert shapes[0] == (6, 28, 28) and shapes[2] == (6, 14, 14)
    assert shapes[4] == (16, 10, 10) and shapes[6] == (16, 5, 5)
    assert shapes[8] == (120, 1, 1) and shapes[11] == (84,) and shapes[13] == (10,)
    np.testing.assert_array_equal(m[13].codes, digit_codes())


def test_parameter_counts_match_the_paper(rng):
    m = lenet5_classic(rng=rng)
    masked = int((m[4].mask == 0).sum())
    counts = {"C1": 156, "S2": 12, "C3": 1516, "S4": 32, "C5": 48120, "F6": 10164}
    got = {"C1": m[0].num_parameters(), "S2": m[2].num_parameters(),
           "C3": m[4].num_connections(), "S4": m[6].num_parameters(),
           "C5": m[8].num_parameters(), "F6": m[11].num_parameters()}
    assert got == counts
    assert m.num_parameters() - masked == 60000


def test_initialisation_bounds(rng):
    m = lenet5_classic(rng=rng)
    for layer, fan_in in ((m[0], 25), (m[8], 400), (m[11], 120), (m[2], 4), (m[6], 4)):
        assert np.abs(layer.weight.value).max() <= 2.4 / fan_in + 1e-7
        assert np.abs(layer.bias.value).max() <= 2.4 / fan_in + 1e-7


def test_reproducible_from_seed():
    a = lenet5_classic(rng=np.random.default_rng(3)).state_dict()
    b = lenet5_classic(rng=np.random.default_rng(3)).state_dict()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def tiny(rng):
    codes = np.where(rng.random((10, 5)) < 0.5, -1.0, 1.0)
    return lenet5_classic(c5_channels=3, f6_features=5, codes=codes, rng=rng,
                          dtype=np.float64)


def test_whole_model_gradcheck(rng):
    m = tiny(rng)
    x = rng.uniform(-0.1, 1.175, (1, 1, 32, 32))
    # eps 1e-5: the input gradient is small (~5e-4) after six squashings, and with eps 1e-6
    # the rounding of the ~50-sized outputs alone costs it a relative error of ~4e-6
    report = check_module(m, x, rng=rng, eps=1e-5)
    assert len(report.errors) == 1 + len(m.parameters())
    report.raise_if_failed()


def test_whole_model_with_loss_gradient(rng):
    """The criterion chained onto the model: a directional derivative of the scalar loss."""
    m = tiny(rng)
    x = rng.uniform(-0.1, 1.175, (2, 1, 32, 32))
    t = np.array([3, 7])
    loss_fn = RBFLoss(j=2.0)
    y, cache = m.forward(x, training=True)
    _, lc = loss_fn.forward(y, t)
    m.zero_grad()
    dx = m.backward(loss_fn.backward(1.0, lc), cache)
    params = m.parameters()
    dirs = [rng.standard_normal(p.shape) for p in params]
    dirs = [d * (m[4].mask if p is m[4].weight else 1) for p, d in zip(params, dirs)]
    vx = rng.standard_normal(x.shape)
    analytic = sum(np.sum(p.grad * d) for p, d in zip(params, dirs)) + np.sum(dx * vx)
    eps = 1e-6
    base = [p.value.copy() for p in params]

    def f(s):
        for p, b0, d in zip(params, base, dirs):
            p.value = b0 + s * d
        return float(loss_fn.forward(m.predict(x + s * vx), t)[0])

    numeric = (f(eps) - f(-eps)) / (2 * eps)
    f(0.0)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_training_steps_lower_the_loss_and_keep_the_mask(rng):
    m = lenet5_classic(rng=rng)
    opt = SGD(m, lr=1e-3, momentum=0.5)
    loss_fn = RBFLoss()
    x = rng.uniform(-0.1, 1.175, (16, 1, 32, 32)).astype(np.float32)
    t = np.arange(16) % 10
    losses = []
    c3_before = m[4].weight.value.copy()
    for _ in range(8):
        y, cache = m.forward(x, training=True)
        loss, lc = loss_fn.forward(y, t)
        losses.append(float(loss))
        m.backward(loss_fn.backward(1.0, lc), cache, need_dx=False)
        opt.step()
        opt.zero_grad()
    assert losses[-1] < losses[0]
    w = m[4].weight.value
    assert np.all(w[m[4].mask == 0] == 0)
    assert np.any(w[m[4].mask == 1] != c3_before[m[4].mask == 1])


def test_predict_rule(rng):
    m = lenet5_classic(rng=rng)
    codes = m[13].codes
    # an F6 state equal to code k is classified as k
    y, _ = m[13].forward(codes[[4, 0, 9]])
    np.testing.assert_array_equal(rbf_predict(y), [4, 0, 9])
    x = rng.standard_normal((2, 1, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(m.classify(x), m.predict(x).argmin(axis=1))
    out = m.predict(x)
    assert out.shape == (2, 10) and np.all(out >= 0)


def test_mnist_to_lenet_input():
    img = np.zeros((2, 1, 28, 28), np.uint8)
    img[0, 0, 3, 4] = 255
    img[1, 0, 0, 0] = 51
    x = mnist_to_lenet_input(img)
    assert x.shape == (2, 1, 32, 32) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0, 5, 6], 1.175, rtol=1e-6)
    np.testing.assert_allclose(x[1, 0, 2, 2], -0.1 + 0.2 * 1.275, rtol=1e-6)
    assert np.all(x[:, :, :2] == np.float32(-0.1)) and np.all(x[:, :, :, -2:] == np.float32(-0.1))
    with pytest.raises(ValueError, match="mnist_to_lenet_input: expected uint8 images"):
        mnist_to_lenet_input(np.zeros((1, 1, 32, 32), np.uint8))


def test_errors(rng):
    for bad in (33, 4, 28.0, "28"):
        with pytest.raises(ValueError, match=r"lenet5_classic: input_size must be an int in "
                                             r"\[5, 32\]"):
            lenet5_classic(input_size=bad)
    with pytest.raises(ValueError, match="lenet5_classic: the default codes"):
        lenet5_classic(num_classes=5)
    with pytest.raises(ValueError, match=r"lenet5_classic: codes must have shape"):
        lenet5_classic(codes=np.ones((10, 80)))
    with pytest.raises(TypeError, match="lenet5_classic: rng"):
        lenet5_classic(rng=1)
    with pytest.raises(ValueError, match="lenet5_classic: c5_channels"):
        lenet5_classic(c5_channels=0)
    m = lenet5_classic(rng=rng)
    with pytest.raises(ValueError, match=r"lenet5_classic: expected input of shape "
                                         r"\(N, 1, 32, 32\)"):
        m.predict(np.zeros((1, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match="in_channels=1"):
        m.predict(np.zeros((1, 3, 32, 32), np.float32))
    m28 = lenet5_classic(input_size=28, rng=rng)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 1, 28, 28\)"):
        m28.predict(np.zeros((1, 1, 32, 32), np.float32))


def test_input_size_28_pads_with_the_background_to_the_32x32_model(rng):
    """input_size=28 is the 32x32 model behind a ConstantPad of -0.1: same weights, same
    outputs as mnist_to_lenet_input's padded digits; the recipe's mean/std is the paper's
    scaling, so a 0..255 digit standardised with it equals mnist_to_lenet_input's."""
    from convprop.layers.pad import ConstantPad
    from convprop.train.recipe import prepare_images
    m28 = lenet5_classic(input_size=28, rng=np.random.default_rng(4))
    m32 = lenet5_classic(rng=np.random.default_rng(4))
    assert isinstance(m28[0], ConstantPad) and m28[0].value == -0.1
    assert [k for k in m28.state_dict()] == [
        f"{int(k.split('.')[0]) + 1}.{k.split('.')[1]}" for k in m32.state_dict()]
    for a, b in zip(list(m28)[1:], m32):
        for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
            np.testing.assert_array_equal(p.value, q.value)
    img = rng.integers(0, 256, (3, 1, 28, 28)).astype(np.uint8)
    mean, std = m28.input_normalization()
    x28 = prepare_images(img, mean, std)
    np.testing.assert_allclose(x28, mnist_to_lenet_input(img)[:, :, 2:-2, 2:-2], atol=1e-6)
    np.testing.assert_allclose(m28.predict(x28), m32.predict(mnist_to_lenet_input(img)),
                               rtol=1e-5)
    # a backward through the pad: the input gradient has the 28x28 shape
    y, cache = m28.forward(x28, training=True)
    loss = m28.criterion()
    _, lc = loss.forward(y, np.array([0, 1, 2]))
    assert m28.backward(loss.backward(1.0, lc), cache).shape == x28.shape
    odd = lenet5_classic(input_size=27, rng=rng)  # the odd pixel goes after
    assert (odd[0].begin, odd[0].end) == ((2, 2), (3, 3))


def test_criterion_reads_penalties_by_the_argmin(rng):
    """The model's criterion is eq. 9 (j = 1); it classifies by the argmin, ranks by the
    penalty and gives softmax(-y) as probabilities."""
    from convprop.layers.loss import criterion_for
    m = lenet5_classic(rng=rng)
    c = criterion_for(m)
    assert isinstance(c, RBFLoss) and c.j == 1.0
    y = np.array([[5.0, 1.0, 9.0], [2.0, 2.0, 0.5]])
    np.testing.assert_array_equal(c.classify(y), [1, 2])
    np.testing.assert_array_equal(c.classify(y), rbf_predict(y))
    p = c.probabilities(y)
    e = np.exp(-y)
    np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(c.scores(y), -y)
