"""Binary layers (BNN / XNOR-Net): forward values against loop oracles, the weight gradient
through the STE, latent weights kept in [-1, 1] under training (fit callback and the plain
function), reproducible stochastic binarization, the bit-packed export, errors."""

import numpy as np
import pytest

from convprop.gradcheck import check_kernel
from convprop.layers.binary import (BinaryConv2d, BinaryLinear, ClipLatentWeights, Sign,
                                    clip_latent_weights, pack_binary_weights)
from convprop.layers.container import Sequential
from convprop.layers.linear import Linear
from convprop.layers.loss import CrossEntropyLoss
from convprop.layers.normalization import BatchNorm1d
from convprop.layers.reshape import Flatten
from convprop.optim.optimizers import SGD, Adam
from convprop.train import fit


def sgn(a):
    return np.where(a >= 0, 1.0, -1.0)


def loop_binary_weight(w, scale):
    out = np.empty(w.shape)
    for f in range(w.shape[0]):
        alpha = np.abs(w[f]).sum() / w[f].size if scale == "mean" else 1.0
        for idx in np.ndindex(w[f].shape):
            out[f][idx] = alpha * (1.0 if w[f][idx] >= 0 else -1.0)
    return out


def loop_conv(x, w, b, pad):
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    ho, wo = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    y = np.zeros((n, f, ho, wo))
    for i in range(n):
        for o in range(f):
            for p in range(ho):
                for q in range(wo):
                    y[i, o, p, q] = (xp[i, :, p:p + kh, q:q + kw] * w[o]).sum() + b[o]
    return y


@pytest.mark.parametrize("scale", ["none", "mean"])
def test_binary_linear_forward_and_weight_gradient(scale, rng):
    layer = BinaryLinear(5, 4, weight_scale=scale, rng=np.random.default_rng(0),
                         dtype=np.float64, init="glorot_normal")
    layer.weight.value = rng.uniform(-1, 1, (4, 5))
    x = rng.standard_normal((3, 5))
    y, cache = layer.forward(x, training=True)
    wb = loop_binary_weight(layer.weight.value, scale)
    want = np.array([[sum(x[i, c] * wb[o, c] for c in range(5)) + layer.bias.value[o]
                      for o in range(4)] for i in range(3)])
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.binary_weight(), wb, rtol=1e-14)
    dy = rng.standard_normal(y.shape)
    layer.zero_grad()
    dx = layer.backward(dy, cache)
    np.testing.assert_allclose(dx, dy @ wb, rtol=1e-12)            # x sees W~
    g = dy.T @ x                                                    # dL/dW~
    w = layer.weight.value
    want_dw = g * (np.abs(w) <= 1) * (loop_binary_weight(np.abs(w), scale) if scale == "mean"
                                      else 1.0)
    if scale == "mean":
        want_dw = want_dw + np.sign(w) / 5 * (g * sgn(w)).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(layer.weight.grad, want_dw, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.bias.grad, dy.sum(axis=0), rtol=1e-12)


def test_binary_linear_input_gradient_is_exact(rng):
    """x -> x @ W~.T + b is linear in x for fixed W: a float64 gradient check applies."""
    layer = BinaryLinear(4, 3, weight_scale="mean", dtype=np.float64,
                         rng=np.random.default_rng(2))
    rep = check_kernel(lambda a: layer.forward(a, training=True),
                       lambda dy, c: layer.backward(dy, c), [rng.standard_normal((2, 4))], rng=rng)
    assert rep.passed, rep


@pytest.mark.parametrize("scale", ["none", "mean"])
def test_binary_conv_forward(scale, rng):
    conv = BinaryConv2d(2, 3, 3, padding=1, weight_scale=scale, dtype=np.float64,
                        rng=np.random.default_rng(4))
    x = rng.standard_normal((2, 2, 5, 4))
    y, cache = conv.forward(x, training=False)
    want = loop_conv(x, loop_binary_weight(conv.weight.value, scale), conv.bias.value, 1)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    conv.zero_grad()
    dx = conv.backward(rng.standard_normal(y.shape), cache)
    assert dx.shape == x.shape and np.isfinite(conv.weight.grad).all()
    assert ("weight_scale='mean'" in repr(conv)) == (scale == "mean")


def test_xnor_composition_sign_then_binary_conv(rng):
    """XNOR-Net: both operands +-1 (times alpha): the products are +-alpha, sums of them."""
    net = Sequential(Sign(), BinaryConv2d(2, 2, 3, bias=False, weight_scale="mean",
                                          dtype=np.float64, rng=np.random.default_rng(5)))
    x = rng.standard_normal((1, 2, 4, 4))
    y = net.predict(x)
    conv = net[1]
    alpha = np.abs(conv.weight.value).reshape(2, -1).mean(axis=1)
    counts = y[0] / alpha[:, None, None]          # an integer: matches minus mismatches
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    np.testing.assert_allclose(y, loop_conv(sgn(x), loop_binary_weight(conv.weight.value,
                                                                     "mean"), np.zeros(2), 0),
                               rtol=1e-12, atol=1e-12)


def test_sign_module(rng):
    s = Sign()
    x = np.array([[-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]])
    y, cache = s.forward(x, training=True)
    np.testing.assert_array_equal(y, [[-1, -1, -1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(s.backward(np.full_like(x, 3.0), cache),
                                  [[0, 3, 3, 3, 3, 3, 0]])
    st = Sign(stochastic=True, rng=np.random.default_rng(1))
    assert repr(st) == "Sign(stochastic=True)"
    a = st.forward(np.zeros((100, 100)), training=True)[0]
    assert 0.45 < (a == 1).mean() < 0.55        # p = hard_sigmoid(0) = 1/2
    np.testing.assert_array_equal(st.forward(np.zeros((2, 2)), training=False)[0], 1)


def test_stochastic_layer_reproducible(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    outs = []
    for seed in (7, 7, 8):
        layer = BinaryLinear(5, 6, stochastic=True, rng=np.random.default_rng(seed))
        layer.weight.value = np.full((6, 5), 0.1, np.float32)   # p(+1) = 0.55 everywhere
        outs.append(layer.forward(x, training=True)[0])
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])


def _clip_net(seed=0):
    r = np.random.default_rng(seed)
    return Sequential(Flatten(), BinaryLinear(16, 12, rng=r), BatchNorm1d(12), Sign(),
                      BinaryLinear(12, 3, weight_scale="mean", rng=r))


def test_latent_weights_stay_in_range_under_fit(rng):
    x = rng.standard_normal((64, 1, 4, 4)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    net = _clip_net()
    fit(net, CrossEntropyLoss(), SGD(net.parameters(), lr=5.0), (x, y), epochs=2,
        batch_size=16, rng=np.random.default_rng(1), callbacks=[ClipLatentWeights()],
        verbose=0)
    ws = [m.weight.value for m in net.modules() if isinstance(m, BinaryLinear)]
    assert all(np.abs(w).max() <= 1 for w in ws)
    assert any(np.isclose(np.abs(w).max(), 1) for w in ws)  # the clip was needed
    # the same training without the callback leaves [-1, 1]: the test can fail
    net2 = _clip_net()
    fit(net2, CrossEntropyLoss(), SGD(net2.parameters(), lr=5.0), (x, y), epochs=2,
        batch_size=16, rng=np.random.default_rng(1), verbose=0)
    assert max(np.abs(m.weight.value).max() for m in net2.modules()
               if isinstance(m, BinaryLinear)) > 1


def test_clip_latent_weights_in_a_manual_loop(rng):
    net = _clip_net(3)
    opt = Adam(net.parameters(), lr=0.5)
    x = rng.standard_normal((32, 1, 4, 4)).astype(np.float32)
    t = rng.integers(0, 3, 32)
    loss_fn = CrossEntropyLoss()
    for _ in range(10):
        out, cache = net.forward(x, training=True)
        loss, lc = loss_fn.forward(out, t)
        net.zero_grad()
        net.backward(loss_fn.backward(1.0, lc), cache)
        opt.step()
        assert clip_latent_weights(net) == 2
        for m in net.modules():
            if isinstance(m, BinaryLinear):
                assert np.abs(m.weight.value).max() <= 1
                assert m.weight.value.dtype == np.float32
    # construction clips too
    big = BinaryLinear(3, 2, init=lambda s, r, dtype: np.full(s, 5.0, dtype))
    assert (big.weight.value == 1).all()


def test_pack_binary_weights_round_trip(rng):
    net = Sequential(BinaryConv2d(3, 5, 3, weight_scale="mean", rng=np.random.default_rng(0)),
                     Flatten(), BinaryLinear(5 * 4 * 4, 10, rng=np.random.default_rng(1)),
                     Linear(10, 2))
    packed = pack_binary_weights(net)
    assert sorted(packed) == ["0.alpha", "0.bits", "0.shape", "2.bits", "2.shape"]
    for name in ("0", "2"):
        m = dict(net.named_modules())[name]
        w = m.weight.value
        assert packed[f"{name}.bits"].dtype == np.uint8
        assert packed[f"{name}.bits"].nbytes == -(-w.size // 8)
        bits = np.unpackbits(packed[f"{name}.bits"], count=w.size).reshape(w.shape)
        np.testing.assert_array_equal(np.where(bits == 1, 1.0, -1.0), sgn(w))
        assert tuple(packed[f"{name}.shape"]) == w.shape
    conv = dict(net.named_modules())["0"]
    np.testing.assert_allclose(packed["0.alpha"],
                               np.abs(conv.weight.value).reshape(5, -1).mean(axis=1), rtol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match=r"^BinaryLinear: weight_scale must be one of"):
        BinaryLinear(3, 2, weight_scale="l2")
    with pytest.raises(TypeError, match=r"^BinaryConv2d: rng must be a numpy.random.Generator"):
        BinaryConv2d(3, 2, 3, rng=3)
    with pytest.raises(TypeError, match=r"^BinaryLinear: stochastic must be a bool"):
        BinaryLinear(3, 2, stochastic="no")
    with pytest.raises(TypeError, match=r"^Sign: stochastic must be a bool"):
        Sign(stochastic=None)
    with pytest.raises(TypeError, match=r"^BinaryLinear: x has dtype float64"):
        BinaryLinear(3, 2).forward(np.zeros((1, 3)))
    with pytest.raises(TypeError, match=r"^clip_latent_weights: model must be a Module"):
        clip_latent_weights([1, 2])


def test_clip_callback_answers_every_hook():
    cb = ClipLatentWeights()
    assert cb.on_epoch_logs(None, {}) is None and cb.on_loss_begin(None, None) is None
    with pytest.raises(AttributeError, match="ClipLatentWeights has no attribute 'rate'"):
        cb.rate


def test_pack_binary_weights_zero_is_plus_one_and_unpacks_to_the_forward_weight():
    # sign(0) = +1 (BNN eq. 1) in the packed bits as in the forward; bits and alphas give back
    # exactly the weight the forward uses
    for scale in ("none", "mean"):
        m = BinaryLinear(3, 4, weight_scale=scale, rng=np.random.default_rng(2))
        m.weight.value = np.array([[0.0, -0.0, -0.5], [0.25, -1.0, 1.0],
                                   [0.0, 0.0, 0.0], [-0.1, 0.0, 0.3]], np.float32)
        packed = pack_binary_weights(Sequential(m))
        bits = np.unpackbits(packed["0.bits"], count=12).reshape(4, 3)
        signs = np.where(bits == 1, 1.0, -1.0)
        assert np.all(signs[:, :1] == [[1], [1], [1], [-1]]) and np.all(signs[2] == 1)
        alpha = packed["0.alpha"][:, None] if scale == "mean" else 1.0
        np.testing.assert_array_equal((alpha * signs).astype(np.float32), m.binary_weight())


def test_state_dict_round_trip_and_checkpoint_generators(tmp_path):
    """A binary network's state_dict loads into a fresh one with the same outputs; a
    checkpoint keeps a stochastic layer's Generator, so a resumed run draws the same signs."""
    from convprop.io.checkpoint import load_checkpoint, module_generators, save_checkpoint

    def make(seed):
        g = np.random.default_rng(seed)
        return Sequential(BinaryConv2d(1, 3, 3, weight_scale="mean", rng=g), Sign(), Flatten(),
                          BinaryLinear(3 * 4 * 4, 4, stochastic=True, rng=g))
    a, b = make(0), make(1)
    x = np.random.default_rng(2).standard_normal((2, 1, 6, 6)).astype(np.float32)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    assert set(module_generators(a)) == {"0", "1", "3"}
    save_checkpoint(tmp_path / "bnn.safetensors", a)
    load_checkpoint(tmp_path / "bnn.safetensors").restore(b)
    ya, _ = a.forward(x, training=True)
    yb, _ = b.forward(x, training=True)
    np.testing.assert_array_equal(ya, yb)
