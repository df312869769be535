"""Every module against its torch.nn counterpart in float64, with the weights copied in:
forward, the input gradient and every parameter gradient (atol 1e-10)."""

import numpy as np
import pytest

import convprop.layers as L

from torch_parity import ATOL, assert_parity, parity_step, to_torch


@pytest.mark.parametrize("bias", [True, False])
def test_linear(torch, rng, bias):
    m = L.Linear(5, 3, bias, rng=rng)
    assert_parity(torch, m, torch.nn.Linear(5, 3, bias), rng.standard_normal((4, 5)))


CONV_CASES = [  # in, out, k, stride, padding, dilation, groups, bias, input HxW
    (3, 4, 3, 1, 0, 1, 1, True, (7, 6)),
    (2, 4, (3, 2), 2, 1, 1, 2, False, (8, 7)),
    (4, 2, 2, 3, 2, 2, 1, True, (9, 9)),
    (1, 1, 1, 1, 0, 1, 1, True, (3, 5)),
]


@pytest.mark.parametrize("cin,cout,k,s,p,d,g,bias,hw", CONV_CASES)
def test_conv2d(torch, rng, cin, cout, k, s, p, d, g, bias, hw):
    m = L.Conv2d(cin, cout, k, s, p, d, g, bias, rng=rng)
    t = torch.nn.Conv2d(cin, cout, k, s, p, d, g, bias)
    assert_parity(torch, m, t, rng.standard_normal((2, cin, *hw)))


@pytest.mark.parametrize("cin,cout,k,s,p,op,g,bias,d", [
    (3, 2, 3, 2, 1, 1, 1, True, 1),
    (4, 6, (2, 3), (1, 2), (0, 1), (0, 1), 2, False, 1),
    (2, 3, 3, 1, 0, 0, 1, True, 2),
])
def test_conv_transpose2d(torch, rng, cin, cout, k, s, p, op, g, bias, d):
    m = L.ConvTranspose2d(cin, cout, k, s, p, op, g, bias, d, rng=rng)
    t = torch.nn.ConvTranspose2d(cin, cout, k, s, p, op, g, bias, d)
    assert_parity(torch, m, t, rng.standard_normal((2, cin, 4, 5)))


@pytest.mark.parametrize("make", [
    lambda nn, M: (M.MaxPool2d(2), nn.MaxPool2d(2)),
    lambda nn, M: (M.MaxPool2d(3, 2, 1, 1, ceil_mode=True), nn.MaxPool2d(3, 2, 1, 1, ceil_mode=True)),
    lambda nn, M: (M.MaxPool2d((2, 3), (3, 1), dilation=(2, 1)),
                   nn.MaxPool2d((2, 3), (3, 1), dilation=(2, 1))),
    lambda nn, M: (M.AvgPool2d(3, 2, 1), nn.AvgPool2d(3, 2, 1)),
    lambda nn, M: (M.AvgPool2d(3, 2, 1, True, False), nn.AvgPool2d(3, 2, 1, True, False)),
    lambda nn, M: (M.ReLU(), nn.ReLU()),
    lambda nn, M: (M.LeakyReLU(0.2), nn.LeakyReLU(0.2)),
    lambda nn, M: (M.Sigmoid(), nn.Sigmoid()),
    lambda nn, M: (M.Tanh(), nn.Tanh()),
    lambda nn, M: (M.Flatten(), nn.Flatten()),
    lambda nn, M: (M.Identity(), nn.Identity()),
    lambda nn, M: (M.LocalResponseNorm(3, 1e-2, 0.75, 2.0), nn.LocalResponseNorm(3, 1e-2, 0.75, 2.0)),
], ids=["max2", "max_ceil_pad_dil", "max_rect", "avg", "avg_nopad", "relu", "leaky",
        "sigmoid", "tanh", "flatten", "identity", "lrn"])
def test_parameter_free(torch, rng, make):
    m, t = make(torch.nn, L)
    assert_parity(torch, m, t, rng.standard_normal((2, 4, 7, 6)))


def test_global_avg_pool(torch, rng):
    x = rng.standard_normal((3, 4, 5, 2))
    t = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    assert_parity(torch, L.GlobalAvgPool2d(), t, x)


def test_dropout_eval_is_identity(torch, rng):
    m = L.Dropout(0.7, rng=np.random.default_rng(1))
    assert_parity(torch, m, torch.nn.Dropout(0.7), rng.standard_normal((3, 4)), training=False)


@pytest.mark.parametrize("cls,shape,kw", [
    ("BatchNorm2d", (4, 3, 5, 2), {}),
    ("BatchNorm2d", (2, 3, 3, 3), {"momentum": None}),
    ("BatchNorm2d", (3, 3, 2, 2), {"affine": False}),
    ("BatchNorm2d", (3, 3, 2, 2), {"track_running_stats": False}),
    ("BatchNorm1d", (6, 3), {"momentum": 0.3, "eps": 1e-3}),
    ("BatchNorm1d", (4, 3, 5), {}),
])
def test_batchnorm_three_training_steps_then_eval(torch, rng, cls, shape, kw):
    m = getattr(L, cls)(3, **kw)
    if m.affine:  # non-trivial affine parameters
        m.weight.value = rng.uniform(0.5, 1.5, 3)
        m.bias.value = rng.standard_normal(3)
    t = getattr(torch.nn, cls)(3, **kw)
    # three training steps with different batches: running stats and grads must agree
    x = rng.standard_normal((3,) + shape) * 2 + 1
    m.astype(np.float64)
    to_torch(torch, m, t)
    for i in range(3):
        assert_parity_step(torch, m, t, x[i], True, rng)
    for name, v in m.state_dict().items():
        np.testing.assert_allclose(v, t.state_dict()[name].numpy(), rtol=0, atol=ATOL)
    if m.track_running_stats:
        assert int(m.num_batches_tracked) == 3
    assert_parity_step(torch, m, t, x[0], False, rng)


def assert_parity_step(torch, m, t, x, training, rng):
    parity_step(torch, m, t, x, training, rng)
    for name, p in t.named_parameters():
        np.testing.assert_allclose(getattr(m, name).grad, p.grad.numpy(), rtol=0, atol=ATOL)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_loss(torch, rng, reduction):
    z = rng.standard_normal((5, 4))
    tgt = rng.integers(0, 4, 5)
    loss_fn = L.CrossEntropyLoss(reduction)
    loss, cache = loss_fn.forward(z, tgt)
    zt = torch.from_numpy(z).requires_grad_(True)
    lt = torch.nn.CrossEntropyLoss(reduction=reduction)(zt, torch.from_numpy(tgt))
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=0, atol=ATOL)
    dy = rng.standard_normal(np.shape(loss))
    lt.backward(torch.from_numpy(np.asarray(dy)))
    np.testing.assert_allclose(loss_fn.backward(dy, cache), zt.grad.numpy(), rtol=0, atol=ATOL)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "half_sum"])
def test_mse_loss(torch, rng, reduction):
    y, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    loss_fn = L.MSELoss(reduction)
    loss, cache = loss_fn(y, target)
    yt = torch.from_numpy(y).requires_grad_(True)
    lt = torch.nn.MSELoss(reduction="sum" if reduction == "half_sum" else reduction)(
        yt, torch.from_numpy(target))
    if reduction == "half_sum":
        lt = 0.5 * lt
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=0, atol=ATOL)
    lt.backward(torch.ones_like(lt))
    # dy = 1 for a scalar loss
    dpred = loss_fn.backward(np.ones(np.shape(loss)), cache) if reduction == "none" \
        else loss_fn.backward(1.0, cache)
    np.testing.assert_allclose(dpred, yt.grad.numpy(), rtol=0, atol=ATOL)


def test_dropout_training_draws_from_its_generator(rng):
    x = rng.standard_normal((50, 40))
    a, b = L.Dropout(0.25, rng=np.random.default_rng(7)), L.Dropout(0.25, rng=np.random.default_rng(7))
    state = a.rng.bit_generator.state
    ya, ca = a.forward(x, training=True)
    yb, _ = b.forward(x, training=True)
    np.testing.assert_array_equal(ya, yb)
    kept = ya != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(ya[kept], x[kept] / 0.75)
    dy = rng.standard_normal(x.shape)
    np.testing.assert_allclose(a.backward(dy, ca), dy * kept / 0.75)
    a.rng.bit_generator.state = state  # restoring the generator replays the mask
    np.testing.assert_array_equal(a.forward(x, training=True)[0], ya)
    assert not np.array_equal(a.forward(x, training=True)[0], ya)
