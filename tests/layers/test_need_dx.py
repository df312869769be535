"""``backward(..., need_dx=False)``: the input gradient may be skipped, parameter
gradients must be exactly those of a full backward."""

import numpy as np
import pytest

from convprop import functional as F
from convprop.layers import (BatchNorm2d, Concat, Conv2d, Flatten, GlobalAvgPool2d, Linear,
                             MaxPool2d, ReLU, Residual, Sequential)


def _net(rng, first):
    return Sequential(first, ReLU(), MaxPool2d(2), Conv2d(4, 4, 3, padding=1, rng=rng),
                      GlobalAvgPool2d(), Flatten(), Linear(4, 3, rng=rng))


@pytest.mark.parametrize("kind", ["conv", "residual", "concat"])
def test_parameter_grads_identical_and_dx_skipped(rng, kind):
    x = rng.standard_normal((2, 3, 8, 8))
    if kind == "conv":
        first = Conv2d(3, 4, 3, padding=1, rng=rng, dtype=np.float64)
    elif kind == "residual":
        first = Residual(Sequential(Conv2d(3, 4, 3, padding=1, rng=rng), BatchNorm2d(4)),
                         Conv2d(3, 4, 1, rng=rng))
    else:
        first = Concat(Conv2d(3, 2, 3, padding=1, rng=rng), Conv2d(3, 2, 1, rng=rng))
    net = _net(rng, first).astype(np.float64)
    y, cache = net.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = net.backward(dy, cache)
    full = {n: p.grad.copy() for n, p in net.named_parameters()}
    net.zero_grad()
    assert net.backward(dy, cache, need_dx=False) is None
    for n, p in net.named_parameters():
        np.testing.assert_array_equal(p.grad, full[n], err_msg=n)
    assert dx.shape == x.shape


def test_kernels_skip_dx(rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    y, c = F.conv2d_forward(x, w, b, padding=1)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = F.conv2d_backward(dy, c)
    none, dw2, db2 = F.conv2d_backward(dy, c, need_dx=False)
    assert none is None and dx is not None
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)
    y, c = F.linear_forward(x.reshape(2, -1), rng.standard_normal((4, 108)).astype(np.float32),
                            b)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    assert F.linear_backward(dy, c, need_dx=False)[0] is None
    np.testing.assert_array_equal(F.linear_backward(dy, c, need_dx=False)[1],
                                  F.linear_backward(dy, c)[1])


def test_two_argument_backward_modules_still_work(rng):
    """A user module written to the documented contract ``backward(dy, cache)`` (no
    need_dx) works inside every container and as a network's first layer in fit."""
    from convprop.layers import Module, CrossEntropyLoss
    from convprop.optim import SGD
    from convprop.train import fit

    class Double(Module):
        def forward(self, x, *, training=False):
            return 2 * x, None

        def backward(self, dy, cache):
            return 2 * dy

    net = Sequential(Double(), Residual(Double()), Concat(Double(), Double()), Flatten(),
                     Linear(2 * 2 * 4 * 4, 3, rng=rng))
    x = rng.standard_normal((5, 2, 4, 4)).astype(np.float32)
    y, cache = net.forward(x, training=True)
    dx = net.backward(np.ones_like(y), cache)
    assert dx.shape == x.shape
    assert net.backward(np.ones_like(y), cache, need_dx=False) is not None  # computed anyway
    fit(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.01),
        (x, rng.integers(0, 3, 5)), epochs=1, batch_size=2, rng=rng, verbose=0)
