"""to_dense (Li, Zhao, Wang 2014): one pass over an image equals the patch classifier run
patch by patch at every pixel, borders included, forward and gradients (float64); the
masked pixel loss's backward equals the sum of the selected patches' backward passes."""

import numpy as np
import pytest

from convprop.layers import (AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear,
                             MaxPool2d, ReLU, Sequential, Tanh)
from convprop.layers.loss import CrossEntropyLoss
from convprop.models.dense import PixelCrossEntropyLoss, image_patches, to_dense


def classifier(rng, dtype=np.float64):
    """17x17 patch -> 3 classes: a strided conv, a pool whose windows do not tile (15 -> 7),
    an average pool, a flatten + two linear layers."""
    kw = {"rng": rng, "dtype": dtype}
    return Sequential(
        Conv2d(2, 3, 3, **kw), ReLU(), MaxPool2d(2),                  # 17 -> 15 -> 7
        Sequential(Conv2d(3, 4, 3, stride=2, **kw), Tanh()),          # 7 -> 3
        AvgPool2d(2, stride=1),                                       # 3 -> 2
        Flatten(), Linear(16, 5, **kw), ReLU(), Linear(5, 3, **kw))


def fully_conv(rng):
    """16x16 patch (even), a dilated and a grouped strided conv, max pool stride != kernel,
    a classifier that is a convolution, a trailing Flatten of a 1x1 map."""
    kw = {"rng": rng, "dtype": np.float64}
    return Sequential(Conv2d(1, 4, 3, dilation=2, **kw), ReLU(),         # 16 -> 12
                      MaxPool2d(3, stride=2),                             # 12 -> 5
                      Conv2d(4, 4, 2, stride=2, groups=2, **kw), Tanh(),  # 5 -> 2
                      Conv2d(4, 2, 2, **kw), Flatten())                   # 2 -> 1


def test_mlp_patch_classifier(rng):
    """No convolution at all: Flatten + Linear becomes one P x P convolution."""
    kw = {"rng": rng, "dtype": np.float64}
    model = Sequential(Flatten(), Linear(2 * 5 * 5, 4, **kw), Tanh(), Linear(4, 3, **kw))
    x = rng.standard_normal((1, 2, 6, 7))
    y, _ = to_dense(model, 5, in_channels=2).forward(x)
    np.testing.assert_allclose(y, loop_forward(model, x, 5), rtol=1e-12, atol=1e-13)


def loop_forward(model, x, P):
    N, _, H, W = x.shape
    y = model.predict(image_patches(x, P))
    return y.reshape(N, H, W, -1).transpose(0, 3, 1, 2)


def loop_backward(model, x, P, dy):
    """Sum over every pixel's patch of the patch model's backward with that pixel's dy; the
    patch input gradients scattered back onto the image. Returns (param grads, dx)."""
    N, C, H, W = x.shape
    model.zero_grad()
    patches = image_patches(x, P)
    a = (P - 1) // 2
    dxp = np.zeros((N, C, H + P - 1, W + P - 1))
    rows = dy.transpose(0, 2, 3, 1).reshape(N * H * W, -1)
    for idx, (n, i, j) in enumerate(np.ndindex(N, H, W)):
        out, cache = model.forward(patches[idx:idx + 1], training=True)
        dpatch = model.backward(rows[idx:idx + 1], cache)
        dxp[n, :, i:i + P, j:j + P] += dpatch[0]
    grads = [p.grad.copy() for p in model.parameters()]
    return grads, dxp[:, :, a:a + H, a:a + W]


@pytest.mark.parametrize("make,P,C", [(classifier, 17, 2), (fully_conv, 16, 1)])
def test_forward_equals_patch_by_patch(make, P, C, rng):
    model = make(rng)
    x = rng.standard_normal((2, C, 9, 11))
    dense = to_dense(model, P)
    y, _ = dense.forward(x)
    assert y.shape == (2, model.predict(np.zeros((1, C, P, P))).shape[1], 9, 11)
    np.testing.assert_allclose(y, loop_forward(model, x, P), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("make,P,C", [(classifier, 17, 2), (fully_conv, 16, 1)])
def test_backward_equals_sum_of_patch_backwards(make, P, C, rng):
    model = make(rng)
    dense, dy, cache = check_dense_backward(model, rng.standard_normal((2, C, 7, 6)), P, rng)
    assert dense.backward(dy, cache, need_dx=False) is None


def check_dense_backward(model, x, P, rng):
    """The dense backward of a random dy equals the sum of the patch backwards (float64)."""
    dense = to_dense(model, P)
    y, cache = dense.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    want_grads, want_dx = loop_backward(model, x, P, dy)
    model.zero_grad()
    dx = dense.backward(dy, cache)
    for p, g in zip(model.parameters(), want_grads):
        np.testing.assert_allclose(p.grad, g, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-11, atol=1e-12)
    return dense, dy, cache


def test_masked_pixel_loss_trains_only_the_sampled_pixels(rng):
    model = classifier(rng)
    P, x = 17, rng.standard_normal((2, 2, 8, 8))
    labels = rng.integers(0, 3, (2, 8, 8))
    mask = rng.random((2, 8, 8)) < 0.2
    dense = to_dense(model, P)
    loss_fn = PixelCrossEntropyLoss(reduction="sum")
    model.zero_grad()
    y, cache = dense.forward(x, training=True)
    value, lc = loss_fn.forward(y, np.where(mask, labels, -1))
    dense.backward(loss_fn.backward(1.0, lc), cache, need_dx=False)
    got = [p.grad.copy() for p in model.parameters()]
    # patch by patch: the CE of the selected pixels' patches, summed
    model.zero_grad()
    ce, total = CrossEntropyLoss(reduction="sum"), 0.0
    patches = image_patches(x, P).reshape(2, 8, 8, 2, P, P)
    for n, i, j in zip(*np.nonzero(mask)):
        out, c = model.forward(patches[n, i, j][None], training=True)
        v, lc2 = ce.forward(out, labels[n, i, j][None])
        total += float(v)
        model.backward(ce.backward(1.0, lc2), c)
    np.testing.assert_allclose(float(value), total, rtol=1e-12)
    for p, g in zip(model.parameters(), got):
        np.testing.assert_allclose(g, p.grad, rtol=1e-11, atol=1e-12)
    mean = PixelCrossEntropyLoss()
    v, lcm = mean.forward(y, np.where(mask, labels, -1))
    np.testing.assert_allclose(float(v), total / mask.sum(), rtol=1e-12)
    g = mean.backward(1.0, lcm)
    assert np.all(g.transpose(0, 2, 3, 1)[~mask] == 0)


def test_shares_parameters_and_keeps_float32(rng):
    model = classifier(rng, np.float32)
    dense = to_dense(model, 17)
    assert {id(p) for p in dense.parameters()} == {id(p) for p in model.parameters()}
    y, _ = dense.forward(rng.standard_normal((1, 2, 5, 5)).astype(np.float32))
    assert y.dtype == np.float32


def test_cannot_densify(rng):
    kw = {"rng": rng, "dtype": np.float64}
    cases = [
        (Sequential(Conv2d(1, 2, 3, padding=1, **kw), Flatten(), Linear(162, 2, **kw)),
         r"^to_dense: layer 0 \(Conv2d\) has padding \(1, 1\) and cannot be densified"),
        (Sequential(Conv2d(1, 2, 3, **kw), BatchNorm2d(2, dtype=np.float64), Flatten(),
                    Linear(98, 2, **kw)),
         r"^to_dense: layer 1 \(BatchNorm2d\) cannot be densified"),
        (Sequential(Conv2d(1, 2, 3, **kw), Dropout(0.5, rng=rng), Flatten(),
                    Linear(98, 2, **kw)),
         r"^to_dense: layer 1 \(Dropout\) cannot be densified"),
        (Sequential(Conv2d(1, 2, 3, **kw), MaxPool2d(2, padding=1), Flatten(),
                    Linear(32, 2, **kw)),
         r"^to_dense: layer 1 \(MaxPool2d\) has padding"),
        (Sequential(Conv2d(1, 2, 3, **kw), MaxPool2d(2, ceil_mode=True), Flatten(),
                    Linear(32, 2, **kw)),
         r"^to_dense: layer 1 \(MaxPool2d\) with ceil_mode"),
        (Sequential(Conv2d(1, 2, 3, **kw), Flatten()),
         r"^to_dense: the model ends in a Flatten of a \(7, 7\) map"),
        (Sequential(Conv2d(1, 2, 3, **kw)), r"^to_dense: the model maps a 9x9 patch to a"),
    ]
    for model, match in cases:
        with pytest.raises(ValueError, match=match):
            to_dense(model, 9)
    with pytest.raises(ValueError, match=r"^to_dense: pass in_channels="):
        to_dense(Sequential(Flatten(), Linear(81, 2, **kw)), 9)
    with pytest.raises(ValueError, match=r"^to_dense: patch_size must be"):
        to_dense(classifier(rng), 0)
    dense = to_dense(classifier(rng), 17)
    with pytest.raises(ValueError, match=r"^DenseNet: x must be \(N, 2, H, W\)"):
        dense.forward(np.zeros((1, 3, 8, 8)))
    y, cache = dense.forward(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match=r"^DenseNet.backward: dy must have shape"):
        dense.backward(np.zeros((1, 3, 4, 5)), cache)
    with pytest.raises(ValueError, match=r"^PixelCrossEntropyLoss: no pixel is selected"):
        PixelCrossEntropyLoss().forward(y, -np.ones((1, 4, 4), int))
    labels = -np.ones((1, 4, 4), int)
    labels[0, 2, 1], labels[0, 3, 3] = 1, 3
    with pytest.raises(ValueError, match=r"^PixelCrossEntropyLoss: labels must be < 3 \(the "
                       r"classes\) or negative \(masked\), got 3 at pixel \(n, i, j\) = "
                       r"\(0, 3, 3\)"):
        PixelCrossEntropyLoss().forward(y, labels)


def test_refuses_layers_whose_forward_or_backward_it_would_replace(rng):
    """A BinaryConv2d/BinaryLinear (forward alpha*sign(W), STE backward), a meProp Conv2d or
    Linear (top-k per example, not per patch) and a stochastic Sign cannot be densified: the
    dense convolution would silently compute something else."""
    from convprop.layers.binary import BinaryConv2d, BinaryLinear, Sign
    kw = {"rng": rng, "dtype": np.float64}
    cases = [
        (Sequential(BinaryConv2d(1, 2, 3, **kw), Flatten(), Linear(98, 2, **kw)),
         r"^to_dense: layer 0 \(BinaryConv2d\) cannot be densified: it subclasses Conv2d"),
        (Sequential(Conv2d(1, 2, 3, **kw), Flatten(), BinaryLinear(98, 2, **kw)),
         r"^to_dense: layer 2 \(BinaryLinear\) cannot be densified: it subclasses Linear"),
        (Sequential(Conv2d(1, 2, 3, meprop_k=1, **kw), Flatten(), Linear(98, 2, **kw)),
         r"^to_dense: layer 0 \(Conv2d\) uses a meProp backward"),
        (Sequential(Conv2d(1, 2, 3, **kw), Flatten(), Linear(98, 2, meprop_k=1, **kw)),
         r"^to_dense: layer 2 \(Linear\) uses a meProp backward"),
        (Sequential(Sign(stochastic=True, rng=rng), Conv2d(1, 2, 3, **kw), Flatten(),
                    Linear(98, 2, **kw)), r"^to_dense: layer 0 \(Sign\) is stochastic"),
    ]
    for model, match in cases:
        with pytest.raises(ValueError, match=match):
            to_dense(model, 9)


def test_deterministic_sign_and_readonly_noncontiguous_input(rng):
    """Sign is element-wise, so it densifies (forward and its straight-through backward);
    the image may be read-only and non-contiguous, batch 1."""
    from convprop.layers.binary import Sign
    kw = {"rng": rng, "dtype": np.float64}
    model = Sequential(Conv2d(1, 3, 3, stride=2, **kw), Sign(), MaxPool2d(2),
                       Flatten(), Linear(12, 2, **kw))                   # 11 -> 5 -> 2
    P = 11
    x = np.asfortranarray(rng.standard_normal((1, 1, 8, 9)) * 0.5)
    x.flags.writeable = False
    y, _ = to_dense(model, P).forward(x)
    np.testing.assert_allclose(y, loop_forward(model, x, P), rtol=1e-12, atol=1e-13)
    check_dense_backward(model, x, P, rng)


def test_valid_padding_is_no_padding(rng):
    kw = {"rng": rng, "dtype": np.float64}
    model = Sequential(Conv2d(1, 2, 3, padding="valid", **kw), Flatten(), Linear(18, 2, **kw))
    x = rng.standard_normal((1, 1, 4, 6))
    y, _ = to_dense(model, 5).forward(x)
    np.testing.assert_allclose(y, loop_forward(model, x, 5), rtol=1e-12, atol=1e-13)
    with pytest.raises(ValueError, match=r"^to_dense: layer 0 \(Conv2d\) has padding 'same'"):
        to_dense(Sequential(Conv2d(1, 2, 3, padding="same", **kw), Flatten(),
                            Linear(50, 2, **kw)), 5)


def test_avg_pool_divisor_override(rng):
    kw = {"rng": rng, "dtype": np.float64}
    model = Sequential(Conv2d(1, 2, 3, stride=2, **kw), AvgPool2d(2, divisor_override=3),
                       Flatten(), Linear(8, 3, **kw))                      # 11 -> 5 -> 2
    x = rng.standard_normal((1, 1, 5, 6))
    y, _ = to_dense(model, 11).forward(x)
    np.testing.assert_allclose(y, loop_forward(model, x, 11), rtol=1e-12, atol=1e-13)
    check_dense_backward(model, x, 11, rng)
