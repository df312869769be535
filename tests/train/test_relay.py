"""Relay backpropagation (Shen, Lin, Huang 2016): the gradient reaching each segment is
exactly the sum of the losses allowed to reach it (central differences on a small float64
network), heads are dropped at evaluation, the wrapper trains with fit, clear errors."""

import numpy as np
import pytest

from convprop.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, Tanh
from convprop.layers.loss import CrossEntropyLoss
from convprop.optim import SGD
from convprop.train import evaluate, fit
from convprop.train.relay import RelayHead, RelayNet, RelayTargets, split_at_max_pool


def small_body(rng, act=Tanh):
    kw = {"rng": rng, "dtype": np.float64}
    return Sequential(
        Sequential(Conv2d(1, 2, 3, padding=1, **kw), act(), MaxPool2d(2)),       # 8 -> 4
        Conv2d(2, 3, 3, padding=1, **kw), act(), MaxPool2d(2),                     # 4 -> 2
        Conv2d(3, 3, 3, padding=1, **kw), act(), MaxPool2d(2),                     # 2 -> 1
        Flatten(), Linear(3, 4, **kw))


def heads(rng):
    kw = {"rng": rng, "dtype": np.float64}
    return [RelayHead(1, Sequential(Flatten(), Linear(32, 4, **kw)), reach=1, weight=0.5),
            RelayHead(2, Sequential(Flatten(), Linear(12, 4, **kw)), reach=2, weight=1.0)]


def _losses(net, x, y):
    """Each loss's value with the current weights: main, head0, head1 (unweighted)."""
    ce = CrossEntropyLoss()
    outs = []
    h = x
    for layers in (net.segment(k) for k in range(1, net.num_segments + 1)):
        for m in layers:
            h = m.predict(h)
        outs.append(h)
    vals = [float(ce.forward(outs[-1], y)[0])]
    for spec in net.heads:
        vals.append(float(ce.forward(spec.module.predict(outs[spec.segment - 1]), y)[0]))
    return vals


def _numeric(f, arrays, eps=1e-6):
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + eps
            fp = f()
            a[i] = old - eps
            fm = f()
            a[i] = old
            g[i] = (fp - fm) / (2 * eps)
        grads.append(g)
    return grads


def _params(layers):
    return [p for m in layers for p in m.parameters()]


def test_each_segment_gets_exactly_the_losses_that_reach_it(rng):
    net = RelayNet(small_body(rng), heads(rng), main_reach=2)
    assert net.num_segments == 4
    x = rng.standard_normal((5, 1, 8, 8))
    y = rng.integers(0, 4, 5)
    net.zero_grad()
    out, cache = net.forward(x, training=True, targets=y)
    main, lc = CrossEntropyLoss().forward(out, y)
    dx = net.backward(CrossEntropyLoss().backward(1.0, lc), cache)
    np.testing.assert_allclose(cache.aux_losses, _losses(net, x, y)[1:], rtol=1e-12)
    w = np.array([1.0, 0.5, 1.0])                    # main, head0 (segment 1), head1 (segment 2)
    # which losses reach which segment: main -> 4, 3; head1 (segment 2, reach 2) -> 2, 1;
    # head0 (segment 1, reach 1) -> 1
    reaches = {4: [0], 3: [0], 2: [2], 1: [1, 2]}
    for k, who in reaches.items():
        ps = _params(net.segment(k))
        mask = np.zeros(3)
        mask[who] = 1

        def f(mask=mask):
            return float(np.dot(w * mask, _losses(net, x, y)))

        num = _numeric(f, [p.value for p in ps])
        for p, g in zip(ps, num):
            np.testing.assert_allclose(p.grad, g, rtol=1e-6, atol=1e-8,
                                       err_msg=f"segment {k}")
        assert any(np.abs(p.grad).max() > 1e-4 for p in ps)
    for i, spec in enumerate(net.heads):             # each head: its own loss only
        ps = spec.module.parameters()
        num = _numeric(lambda i=i: w[i + 1] * _losses(net, x, y)[i + 1], [p.value for p in ps])
        for p, g in zip(ps, num):
            np.testing.assert_allclose(p.grad, g, rtol=1e-6, atol=1e-8)
    # the input gradient: the losses that reach segment 1
    (gx,) = _numeric(lambda: float(np.dot(w * [0, 1, 1], _losses(net, x, y))), [x])
    np.testing.assert_allclose(dx, gx, rtol=1e-6, atol=1e-8)


def test_full_reach_is_ordinary_backprop_of_the_weighted_sum(rng):
    body = small_body(rng)
    net = RelayNet(body, heads(rng))                 # reach None everywhere
    x, y = rng.standard_normal((3, 1, 8, 8)), rng.integers(0, 4, 3)
    net.zero_grad()
    out, cache = net.forward(x, training=True, targets=y)
    _, lc = CrossEntropyLoss().forward(out, y)
    net.backward(CrossEntropyLoss().backward(1.0, lc), cache, need_dx=False)
    ps = _params(net.segment(1)) + _params(net.segment(3))
    num = _numeric(lambda: float(np.dot([1.0, 0.5, 1.0], _losses(net, x, y))),
                   [p.value for p in ps])
    for p, g in zip(ps, num):
        np.testing.assert_allclose(p.grad, g, rtol=1e-6, atol=1e-8)


def test_heads_dropped_at_evaluation(rng):
    body = small_body(rng)
    net = RelayNet(body, heads(rng), main_reach=2)
    x = rng.standard_normal((4, 1, 8, 8))
    y, cache = net.forward(x, training=False)         # no targets needed
    np.testing.assert_array_equal(y, body.predict(x))
    assert cache.heads is None and cache.aux_losses == ()
    assert set(body.state_dict()) == {k[len("body."):] for k in net.state_dict()
                                      if k.startswith("body.")}
    assert any(k.startswith("head0.") for k in net.state_dict())


def test_trains_with_fit(rng):
    g = np.random.default_rng(0)
    y = g.integers(0, 4, 64)
    x = g.standard_normal((64, 1, 8, 8)) * 0.5
    x[np.arange(64), 0, y, y] += 3.0                 # a learnable cue
    net = RelayNet(small_body(rng, act=ReLU), heads(rng), main_reach=2)
    before = net.head0.state_dict()["1.weight"].copy()
    cb = RelayTargets()
    hist = fit(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.2, momentum=0.9),
               (x, y), epochs=4, batch_size=16, rng=g, verbose=0, callbacks=[cb])
    assert len(cb.aux_history) == 4 and all(len(a) == 2 for a in cb.aux_history)
    assert hist.records[-1]["loss"] < hist.records[0]["loss"]
    assert cb.aux_history[-1][1] < cb.aux_history[0][1]
    assert not np.array_equal(before, net.head0.state_dict()["1.weight"])
    ev = evaluate(net, CrossEntropyLoss(), (x, y), batch_size=32)
    assert 0.0 <= ev["accuracy"] <= 1.0


def test_split_at_max_pool_reads_nested_sequentials(rng):
    segs = split_at_max_pool(small_body(rng))
    assert [len(s) for s in segs] == [3, 3, 3, 2]
    assert all(isinstance(s[-1], MaxPool2d) for s in segs[:3])


def test_errors(rng):
    body = small_body(rng)
    lin = Linear(12, 4, rng=rng)
    with pytest.raises(ValueError, match=r"^RelayNet: heads\[0\] is attached to segment 4, "
                       r"which does not exist: the body has 4 segment\(s\) \(cut after its 3 "
                       r"max-pooling layer\(s\)\); a head attaches to segments 1..3"):
        RelayNet(body, [RelayHead(4, lin)])
    with pytest.raises(ValueError, match=r"^RelayNet: heads\[0\] is attached to segment 0"):
        RelayNet(body, [RelayHead(0, lin)])
    with pytest.raises(ValueError, match=r"^RelayNet: heads\[0\].reach=3 from segment 2 would "
                       r"reach segment 0, which does not exist"):
        RelayNet(body, [RelayHead(2, lin, reach=3)])
    with pytest.raises(ValueError, match=r"^RelayNet: main_reach=5 from segment 4"):
        RelayNet(body, main_reach=5)
    with pytest.raises(ValueError, match=r"^RelayNet: main_reach must be"):
        RelayNet(body, main_reach=0)
    with pytest.raises(ValueError, match=r"^RelayNet: heads\[0\].weight must be"):
        RelayNet(body, [RelayHead(2, lin, weight=-1.0)])
    with pytest.raises(TypeError, match=r"^RelayNet: heads\[0\] must be a RelayHead"):
        RelayNet(body, ["head"])
    with pytest.raises(TypeError, match=r"^RelayNet: body must be a Sequential"):
        RelayNet(lin)
    with pytest.raises(TypeError, match=r"^split_at_max_pool: body must be a Sequential"):
        split_at_max_pool(lin)
    with pytest.raises(ValueError, match=r"^RelayNet: body is empty"):
        RelayNet(Sequential())
    for k in (9, 0, True, 1.0):
        with pytest.raises(ValueError, match=rf"^RelayNet: segment {k!r} does not exist"):
            RelayNet(body).segment(k)
    net = RelayNet(body, [RelayHead(2, Sequential(Flatten(), lin))])
    with pytest.raises(ValueError, match=r"^RelayNet: a training forward needs the targets"):
        net.forward(np.zeros((1, 1, 8, 8)), training=True)
    with pytest.raises(TypeError, match=r"^RelayNet.backward: cache must be the RelayCache"):
        net.backward(np.zeros((1, 4)), None)
    with pytest.raises(TypeError, match=r"^RelayTargets: the model must be a RelayNet"):
        fit(body, CrossEntropyLoss(), SGD(body.parameters(), lr=0.1),
            (np.zeros((2, 1, 8, 8)), np.array([0, 1])), epochs=1, batch_size=2,
            rng=rng, verbose=0, callbacks=[RelayTargets()])


def test_relay_targets_gives_fit_the_batch_targets():
    """One full-batch fit step with RelayTargets equals a hand-written step whose heads get
    the true targets (a callback handing over other targets would train the heads wrongly)."""
    g = np.random.default_rng(3)
    y = g.integers(0, 4, 16)
    x = g.standard_normal((16, 1, 8, 8))

    def make():
        return RelayNet(small_body(np.random.default_rng(1)), heads(np.random.default_rng(2)),
                        main_reach=2)
    a, b = make(), make()
    fit(a, CrossEntropyLoss(), SGD(a.parameters(), lr=0.1), (x, y), epochs=1, batch_size=16,
        rng=np.random.default_rng(0), verbose=0, callbacks=[RelayTargets()])
    ce = CrossEntropyLoss()
    out, cache = b.forward(x, training=True, targets=y)
    _, lc = ce.forward(out, y)
    b.zero_grad()
    b.backward(ce.backward(1.0, lc), cache, need_dx=False)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(p.value, q.value - 0.1 * q.grad, rtol=1e-10, atol=1e-12)


def test_state_dict_round_trip():
    """Body and heads load into a fresh RelayNet: the same output and the same aux losses."""
    def make(seed):
        g = np.random.default_rng(seed)
        return RelayNet(small_body(g), heads(g), main_reach=2)
    a, b = make(0), make(1)
    g = np.random.default_rng(2)
    x, y = g.standard_normal((3, 1, 8, 8)), g.integers(0, 4, 3)
    b.load_state_dict(a.state_dict())
    ya, _ = a.forward(x, training=True, targets=y)
    yb, _ = b.forward(x, training=True, targets=y)
    np.testing.assert_array_equal(ya, yb)
    assert a.last_aux_losses == b.last_aux_losses and len(a.last_aux_losses) == 2
