"""Containers, whole networks (numerical gradient check), shared modules, accumulation and
dtype preservation."""

import numpy as np
import pytest

import convprop.layers as L
from convprop.gradcheck import check_module


def small_net(rng, dtype=np.float32):
    """conv -> batchnorm -> relu -> residual(conv, 1x1 stride-2 shortcut) -> concat(branches)
    -> global average pool -> linear."""
    return L.Sequential(
        L.Conv2d(2, 3, 3, padding=1, bias=False, rng=rng, dtype=dtype),  # BN cancels a bias
        L.BatchNorm2d(3, dtype=dtype),
        L.ReLU(),
        L.Residual(L.Sequential(L.Conv2d(3, 4, 3, stride=2, padding=1, rng=rng, dtype=dtype),
                                L.Tanh()),
                   L.Conv2d(3, 4, 1, stride=2, rng=rng, dtype=dtype)),
        L.Concat(L.Conv2d(4, 2, 1, rng=rng, dtype=dtype),
                 L.Sequential(L.MaxPool2d(3, 1, 1), L.Conv2d(4, 1, 3, padding=1, bias=False,
                                                             rng=rng, dtype=dtype)),
                 L.Identity()),
        L.LeakyReLU(0.1),
        L.GlobalAvgPool2d(),
        L.Linear(7, 3, rng=rng, dtype=dtype),
    )


@pytest.mark.parametrize("training", [True, False])
def test_whole_network_gradcheck(rng, training):
    net = small_net(rng)
    if not training:  # non-trivial running statistics for evaluation mode
        net[1].set_buffer("running_mean", rng.standard_normal(3).astype(np.float32))
        net[1].set_buffer("running_var", rng.uniform(0.5, 2, 3).astype(np.float32))
    report = check_module(net, rng.standard_normal((2, 2, 6, 5)), training=training)
    assert report.passed, str(report)
    assert len(report.errors) == 1 + len(net.parameters())


def test_flat_network_with_every_layer_gradcheck(rng):
    net = L.Sequential(
        L.ConvTranspose2d(1, 2, 2, stride=2, rng=rng), L.AvgPool2d(2, 1, 1),
        L.LocalResponseNorm(2), L.Sigmoid(), L.Dropout(0.0), L.Flatten(),
        L.Linear(2 * 7 * 5, 4, bias=False, rng=rng), L.BatchNorm1d(4), L.Tanh(), L.Linear(4, 2, rng=rng))
    report = check_module(net, rng.standard_normal((3, 1, 3, 2)), training=True)
    assert report.passed, str(report)


def test_sequential_protocol(rng):
    a, b, c = L.ReLU(), L.Tanh(), L.Linear(2, 2, rng=rng)
    s = L.Sequential(a, b)
    s.append(c)
    assert len(s) == 3 and list(s) == [a, b, c] and s[-1] is c and s[1] is b
    assert [n for n, _ in s.named_children()] == ["0", "1", "2"]
    sub = s[1:]
    assert isinstance(sub, L.Sequential) and list(sub) == [b, c]
    y, cache = s.forward(np.ones((1, 2), np.float32), training=True)
    assert isinstance(cache, list) and len(cache) == 3
    with pytest.raises(TypeError, match="Sequential"):
        L.Sequential(a, np.zeros(3))
    with pytest.raises(ValueError, match="Sequential"):
        s.backward(y, cache[:2])


def test_residual_and_concat_structure_and_errors(rng):
    body = L.Linear(3, 3, rng=rng)
    r = L.Residual(body)
    assert [n for n, _ in r.named_children()] == ["body", "shortcut"]
    assert isinstance(r.shortcut, L.Identity)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    y, _ = r.forward(x)
    np.testing.assert_allclose(y, body.predict(x) + x, rtol=1e-6)
    with pytest.raises(ValueError, match="Residual"):
        L.Residual(L.Linear(3, 4, rng=rng)).forward(x)
    with pytest.raises(TypeError, match="Residual"):
        L.Residual("conv")
    with pytest.raises(ValueError, match="Concat"):
        L.Concat()
    x4 = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="Concat"):
        L.Concat(L.Identity(), L.MaxPool2d(2)).forward(x4)
    cat = L.Concat(L.Identity(), L.Conv2d(3, 2, 1, rng=rng))
    y, _ = cat.forward(x4)
    assert y.shape == (2, 5, 4, 4)
    np.testing.assert_array_equal(y[:, :3], x4)


def test_containers_never_write_into_outputs_or_dy(rng):
    """Identity hands back the array it got; a container that adds in place would corrupt
    the caller's input or upstream gradient."""
    x = rng.standard_normal((2, 3, 4, 4))
    x.flags.writeable = False
    net = L.Sequential(L.Residual(L.Identity()), L.Concat(L.Identity(), L.Identity()),
                       L.Residual(L.Sequential(L.Identity(), L.Flatten()), L.Flatten()))
    y, cache = net.forward(x, training=True)
    np.testing.assert_array_equal(y, 4 * x.reshape(2, -1)[:, np.r_[0:48, 0:48]] / 1)
    dy = rng.standard_normal(y.shape)
    dy.flags.writeable = False
    dx = net.backward(dy, cache)
    d = dy[:, :48] + dy[:, 48:]
    np.testing.assert_allclose(dx, 4 * d.reshape(x.shape))


def test_shared_module_used_twice_sums_gradients(torch, rng):
    lin = L.Linear(3, 3, rng=rng).astype(np.float64)
    net = L.Sequential(lin, L.Tanh(), lin)
    assert len(net.parameters()) == 2 and list(net.state_dict()) == ["0.weight", "0.bias"]
    x, dy = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    y, cache = net.forward(x, training=True)
    net.backward(dy, cache)
    t = torch.nn.Linear(3, 3).double()
    t.load_state_dict({k: torch.from_numpy(v) for k, v in lin.state_dict().items()})
    yt = t(torch.tanh(t(torch.from_numpy(x))))
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(lin.weight.grad, t.weight.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(lin.bias.grad, t.bias.grad.numpy(), atol=1e-10)
    report = check_module(net, x)
    assert report.passed, str(report)


def test_gradients_accumulate_across_backward_calls(rng):
    net = L.Sequential(L.Conv2d(2, 2, 3, rng=rng), L.ReLU(), L.Flatten(),
                       L.Linear(4, 2, rng=rng), L.BatchNorm1d(2)).astype(np.float64)
    x1, x2 = rng.standard_normal((2, 2, 4, 3)), rng.standard_normal((2, 2, 4, 3))
    grads = []
    for x in (x1, x2):
        net.zero_grad()
        y, c = net.forward(x, training=True)
        net.backward(np.cos(y), c)
        grads.append([p.grad.copy() for p in net.parameters()])
    net.zero_grad()
    for x in (x1, x2):
        y, c = net.forward(x, training=True)
        net.backward(np.cos(y), c)
    for p, g1, g2 in zip(net.parameters(), *grads):
        np.testing.assert_allclose(p.grad, g1 + g2, rtol=1e-12, atol=1e-14)
    net.zero_grad()
    assert all(not p.grad.any() for p in net.parameters())


def test_float32_end_to_end(rng):
    net = small_net(rng)
    loss_fn = L.CrossEntropyLoss()
    x = rng.standard_normal((2, 2, 6, 5)).astype(np.float32)
    y, cache = net.forward(x, training=True)
    assert y.dtype == np.float32
    loss, lc = loss_fn.forward(y, np.array([0, 2]))
    assert np.asarray(loss).dtype == np.float32
    dx = net.backward(loss_fn.backward(1.0, lc), cache)
    assert dx.dtype == np.float32
    for name, p in net.named_parameters():
        assert p.value.dtype == p.grad.dtype == np.float32, name
    for name, b in net.named_buffers():
        assert b.dtype in (np.float32, np.int64), name
    with pytest.raises(TypeError, match="Conv2d.*float64"):
        net.forward(x.astype(np.float64))


def test_float64_model(rng):
    net = L.Sequential(L.Linear(3, 2, rng=rng, dtype=np.float64), L.BatchNorm1d(2,
                                                                               dtype=np.float64))
    y, _ = net.forward(rng.standard_normal((4, 3)), training=True)
    assert y.dtype == np.float64 and net[1].running_mean.dtype == np.float64
    net.astype(np.float32)
    assert all(p.value.dtype == np.float32 for p in net.parameters())
    assert net[1].running_var.dtype == np.float32
    assert net[1].num_batches_tracked.dtype == np.int64
    with pytest.raises(TypeError, match="astype"):
        net.astype(np.int32)


def test_hostile_input_and_gradient(rng):
    """Read-only, non-contiguous x and dy give the same results as plain arrays."""
    from helpers import hostile

    net = small_net(rng, dtype=np.float64)
    x = rng.standard_normal((2, 2, 6, 5))
    y, cache = net.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = net.backward(dy, cache)
    grads = [p.grad.copy() for p in net.parameters()]
    net.zero_grad()
    y2, cache2 = net.forward(hostile(x), training=True)
    dx2 = net.backward(hostile(dy), cache2)
    np.testing.assert_allclose(y2, y, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx2, dx, rtol=1e-12, atol=1e-14)
    for p, g in zip(net.parameters(), grads, strict=True):
        np.testing.assert_allclose(p.grad, g, rtol=1e-12, atol=1e-14)
