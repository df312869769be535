"""``backward(..., need_dx=False)``: the input gradient may be skipped, parameter
gradients must be exactly those of a full backward."""

import inspect

import numpy as np
import pytest

from convprop import functional as F
from convprop.layers import (BatchNorm2d, Concat, Conv2d, Flatten, GlobalAvgPool2d, Linear,
                             MaxPool2d, Module, ReLU, Residual, Sequential)


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


class Record(Module):
    """y = 2 x; remembers the ``need_dx`` of every backward call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, *, training=False):
        return 2 * x, None

    def backward(self, dy, cache, *, need_dx=True):
        self.calls.append(need_dx)
        return 2 * dy if need_dx else None


def test_sequential_passes_need_dx_false_only_to_its_first_child(rng):
    first, second = Record(), Record()
    net = Sequential(first, second, Flatten(), Linear(2 * 4 * 4, 3, rng=rng))
    x = rng.standard_normal((5, 2, 4, 4)).astype(np.float32)
    y, cache = net.forward(x, training=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    assert net.backward(dy, cache, need_dx=False) is None
    assert first.calls == [False] and second.calls == [True]
    assert net.backward(dy, cache).shape == x.shape
    assert first.calls == [False, True] and second.calls == [True, True]


def test_a_first_conv2d_returns_none(rng):
    conv = Conv2d(3, 4, 3, padding=1, rng=rng)
    net = Sequential(conv, ReLU(), Flatten(), Linear(4 * 6 * 6, 2, rng=rng))
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    y, cache = net.forward(x, training=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    assert conv.backward(np.ones((2, 4, 6, 6), np.float32), cache[0], need_dx=False) is None
    assert net.backward(dy, cache, need_dx=False) is None


@pytest.mark.parametrize("kind", ["residual", "concat"])
def test_fan_out_containers_pass_need_dx_to_every_branch(rng, kind):
    a, b = Record(), Record()
    net = Residual(a, b) if kind == "residual" else Concat(a, b)
    x = rng.standard_normal((2, 3, 4, 4))
    y, cache = net.forward(x, training=True)
    assert net.backward(np.ones_like(y), cache, need_dx=False) is None
    assert a.calls == b.calls == [False]
    assert net.backward(np.ones_like(y), cache).shape == x.shape
    assert a.calls == b.calls == [False, True]


def test_fit_skips_the_input_gradient(rng):
    from convprop.layers import CrossEntropyLoss
    from convprop.optim import SGD
    from convprop.train import fit

    first = Record()
    net = Sequential(first, Flatten(), Linear(2 * 4 * 4, 3, rng=rng))
    x = rng.standard_normal((5, 2, 4, 4)).astype(np.float32)
    fit(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.01),
        (x, rng.integers(0, 3, 5)), epochs=1, batch_size=2, rng=rng, verbose=0)
    assert first.calls == [False] * 3


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_module_backward_takes_need_dx():
    """The one backward contract, ``backward(dy, cache, *, need_dx=True)``, for every
    Module the package defines (containers and fit call it without inspecting signatures)."""
    import convprop.models  # noqa: F401  (defines modules too)
    import convprop.train  # noqa: F401

    mods = {c for c in _subclasses(Module) if c.__module__.startswith("convprop.")}
    assert len(mods) > 20
    for cls in sorted(mods, key=lambda c: c.__qualname__):
        params = inspect.signature(cls.backward).parameters
        assert list(params)[:3] == ["self", "dy", "cache"], cls
        p = params.get("need_dx")
        assert p is not None and p.kind is p.KEYWORD_ONLY and p.default is True, cls
