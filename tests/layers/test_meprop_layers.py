"""The meProp option of ``Linear`` and ``Conv2d``: off by default (the ordinary backward, bit
for bit), on it adds the kernels' sparsified gradients; errors at construction; it trains."""

import numpy as np
import pytest

from convprop.functional.conv import conv2d_backward
from convprop.functional.linear import linear_backward
from convprop.layers.activation import ReLU
from convprop.layers.container import Sequential
from convprop.layers.conv import Conv2d
from convprop.layers.linear import Linear
from convprop.layers.loss import CrossEntropyLoss
from convprop.layers.reshape import Flatten
from convprop.optim.optimizers import Adam


def _topk_rows(dy, k):
    """Loop reference of the per-example keep (ties to the lower index)."""
    keep = np.zeros(dy.shape, bool)
    for i, row in enumerate(dy):
        for j in sorted(range(row.size), key=lambda j: (-abs(row[j]), j))[:k]:
            keep[i, j] = True
    return keep


def _grads(layer, x, dy):
    layer.zero_grad()
    y, cache = layer.forward(x, training=True)
    dx = layer.backward(dy, cache)
    return dx, layer.weight.grad.copy(), layer.bias.grad.copy(), cache


def test_linear_default_is_the_ordinary_backward(rng):
    lin = Linear(6, 5, rng=np.random.default_rng(0))
    assert lin.meprop_k is None and "meprop" not in repr(lin)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    dy = rng.standard_normal((4, 5)).astype(np.float32)
    dx, dw, db, cache = _grads(lin, x, dy)
    want = linear_backward(dy, cache)
    for g, e in zip((dx, dw, db), want):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("unified", [False, True])
def test_linear_meprop(unified, rng):
    x = rng.standard_normal((4, 6))
    dy = rng.standard_normal((4, 5))
    full = Linear(6, 5, rng=np.random.default_rng(0), dtype=np.float64)
    sparse = Linear(6, 5, rng=np.random.default_rng(0), dtype=np.float64, meprop_k=2,
                    meprop_unified=unified)
    assert "meprop_k=2" in repr(sparse) and ("meprop_unified=True" in repr(sparse)) == unified
    if unified:
        cols = sorted(range(5), key=lambda j: (-np.abs(dy[:, j]).sum(), j))[:2]
        keep = np.zeros(dy.shape, bool)
        keep[:, cols] = True
    else:
        keep = _topk_rows(dy, 2)
    dx, dw, db, _ = _grads(sparse, x, dy)
    want_dx, want_dw, _, _ = _grads(full, x, dy * keep)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, dy.sum(axis=0), rtol=1e-12)   # the full dy
    # k = out_features: the ordinary backward, bit for bit
    allk = Linear(6, 5, rng=np.random.default_rng(0), dtype=np.float64, meprop_k=5,
                  meprop_unified=unified)
    for g, e in zip(_grads(allk, x, dy)[:3], _grads(full, x, dy)[:3]):
        np.testing.assert_array_equal(g, e)


def test_conv_default_and_meprop(rng):
    x = rng.standard_normal((2, 3, 6, 6))
    dy = rng.standard_normal((2, 4, 6, 6))
    full = Conv2d(3, 4, 3, padding=1, rng=np.random.default_rng(1), dtype=np.float64)
    dx, dw, db, cache = _grads(full, x, dy)
    for g, e in zip((dx, dw, db), conv2d_backward(dy, cache)):
        np.testing.assert_array_equal(g, e)
    for unified in (False, True):
        conv = Conv2d(3, 4, 3, padding=1, rng=np.random.default_rng(1), dtype=np.float64,
                      meprop_k=1, meprop_unified=unified)
        scores = np.abs(dy).sum(axis=(2, 3))
        if unified:
            keep = np.zeros((2, 4), bool)
            keep[:, int(np.argmax(scores.sum(axis=0)))] = True
        else:
            keep = _topk_rows(scores, 1)
        got = _grads(conv, x, dy)
        want = _grads(full, x, dy * keep[:, :, None, None])
        np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got[2], dy.sum(axis=(0, 2, 3)), rtol=1e-12)
    elem = Conv2d(3, 4, 3, padding=1, rng=np.random.default_rng(1), dtype=np.float64,
                  meprop_k=10, meprop_granularity="element")
    assert "meprop_granularity='element'" in repr(elem)
    got = _grads(elem, x, dy)
    keep = _topk_rows(dy.reshape(2, -1), 10).reshape(dy.shape)
    want = _grads(full, x, dy * keep)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)


def test_need_dx_false(rng):
    conv = Conv2d(2, 3, 3, meprop_k=1, dtype=np.float64, rng=np.random.default_rng(0))
    y, cache = conv.forward(rng.standard_normal((2, 2, 5, 5)), training=True)
    assert conv.backward(rng.standard_normal(y.shape), cache, need_dx=False) is None
    lin = Linear(3, 4, meprop_k=2, dtype=np.float64, rng=np.random.default_rng(0))
    y, cache = lin.forward(rng.standard_normal((2, 3)), training=True)
    assert lin.backward(rng.standard_normal(y.shape), cache, need_dx=False) is None


def test_construction_errors():
    with pytest.raises(ValueError, match=r"^Linear: meprop_k must be <= out_features \(5\)"):
        Linear(3, 5, meprop_k=6)
    with pytest.raises(ValueError, match=r"^Linear: meprop_k must be >= 1"):
        Linear(3, 5, meprop_k=0)
    with pytest.raises(TypeError, match=r"^Linear: meprop_unified must be a bool"):
        Linear(3, 5, meprop_k=2, meprop_unified=1)
    with pytest.raises(ValueError, match=r"^Conv2d: meprop_k must be <= out_channels \(4\)"):
        Conv2d(3, 4, 3, meprop_k=5)
    with pytest.raises(ValueError, match=r"^Conv2d: meprop_granularity must be one of"):
        Conv2d(3, 4, 3, meprop_k=2, meprop_granularity="row")
    Conv2d(3, 4, 3, meprop_k=50, meprop_granularity="element")  # checked per input size
    with pytest.raises(TypeError, match=r"^Conv2d: meprop_k must be an int"):
        Conv2d(3, 4, 3, meprop_k=1.5)


def test_a_meprop_network_learns(rng):
    """A small CNN + MLP with meProp everywhere but the output layer fits a separable task."""
    x = rng.standard_normal((64, 1, 6, 6))
    labels = (x[:, 0, :3].sum(axis=(1, 2)) > x[:, 0, 3:].sum(axis=(1, 2))).astype(np.int64)
    r = np.random.default_rng(3)
    model = Sequential(Conv2d(1, 8, 3, padding=1, meprop_k=2, rng=r, dtype=np.float64), ReLU(),
                       Flatten(), Linear(288, 32, meprop_k=4, meprop_unified=True, rng=r,
                                         dtype=np.float64), ReLU(),
                       Linear(32, 2, rng=r, dtype=np.float64))
    loss_fn, opt = CrossEntropyLoss(), Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(60):
        y, cache = model.forward(x, training=True)
        loss, lc = loss_fn.forward(y, labels)
        losses.append(float(loss))
        model.zero_grad()
        model.backward(loss_fn.backward(1.0, lc), cache)
        opt.step()
    assert losses[-1] < 0.5 * losses[0], losses[::10]
