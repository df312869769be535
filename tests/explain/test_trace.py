"""trace(): one training step recorded layer by layer, checked against the model's own
forward/backward, the loop tier, a numerical gradient and the update rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convprop import reference as R
from convprop.explain.trace import FULL, summarize, trace
from convprop.gradcheck import numerical_vjp
from convprop.layers.activation import ReLU, Tanh
from convprop.layers.container import Residual, Sequential
from convprop.layers.conv import Conv2d
from convprop.layers.dropout import Dropout
from convprop.layers.linear import Linear
from convprop.layers.loss import CrossEntropyLoss, MSELoss
from convprop.layers.normalization import BatchNorm2d
from convprop.layers.pooling import AvgPool2d, MaxPool2d
from convprop.layers.reshape import Flatten


def small_cnn(seed=0):
    rng = np.random.default_rng(seed)
    kw = dict(rng=rng, dtype=np.float64)
    return Sequential(Conv2d(2, 3, 3, padding=1, **kw), BatchNorm2d(3, dtype=np.float64),
                      ReLU(), MaxPool2d(2), Dropout(0.3, rng=np.random.default_rng(7)),
                      Flatten(), Linear(3 * 3 * 3, 4, **kw), Tanh(), Linear(4, 3, **kw))


@pytest.fixture
def setup():
    rng = np.random.default_rng(1)
    return small_cnn(), rng.standard_normal((2, 2, 6, 7)), np.array([2, 0])


def test_the_trace_is_the_models_own_step(setup):
    model, x, t = setup
    tr = trace(model, x, t, lr=0.1)
    ref = small_cnn()  # same weights; same dropout generator seed: the same mask
    y, cache = ref.forward(x, training=True)
    loss_fn = CrossEntropyLoss()
    value, lc = loss_fn.forward(y, t)
    dx = ref.backward(loss_fn.backward(1.0, lc), cache, need_dx=True)
    assert tr.loss == pytest.approx(float(value), rel=1e-14)
    np.testing.assert_allclose(tr.prediction, y, rtol=1e-14)
    np.testing.assert_allclose(tr.steps[0].dx, dx, rtol=1e-12, atol=1e-15)
    for step, (name, p) in zip([s for s in tr.steps for _ in s.grads],
                               ((n, p) for n, p in ref.named_parameters())):
        assert name.startswith(step.name + ".")
        np.testing.assert_allclose(step.grads[name.split(".", 1)[1]], p.grad, rtol=1e-12,
                                   atol=1e-15)


def test_deltas_chain_and_symbols(setup):
    model, x, t = setup
    tr = trace(model, x, t)
    assert [s.kind for s in tr.steps] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
                                          "Dropout", "Flatten", "Linear", "Tanh", "Linear"]
    assert [s.symbol_out for s in tr.steps] == ["z1", "n1", "a1", "p1", "d1", "f1", "z2",
                                                "a2", "z3"]
    np.testing.assert_array_equal(tr.steps[-1].delta, tr.dprediction)
    for lower, upper in zip(tr.steps, tr.steps[1:]):
        assert upper.symbol_in == lower.symbol_out
        np.testing.assert_array_equal(upper.dx, lower.delta)   # popped = handed down
        np.testing.assert_array_equal(upper.x, lower.y)


def test_the_model_is_left_untouched(setup):
    model, x, t = setup
    before = {k: v.copy() for k, v in model.state_dict().items()}
    state = model[4].rng.bit_generator.state
    trace(model, x, t, lr=1.0)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    assert model[4].rng.bit_generator.state == state
    assert all(not p.grad.any() for p in model.parameters())


def test_pushed_views_are_the_cache(setup):
    model, x, t = setup
    tr = trace(model, x, t)
    relu, pool, drop = tr.steps[2], tr.steps[3], tr.steps[4]
    np.testing.assert_array_equal(relu.pushed["mask"], relu.x > 0)
    _, idx = R.max_pool(pool.x, kernel_size=2)
    sw = pool.pushed["switches"]
    assert sw.shape == pool.y.shape + (2,)
    np.testing.assert_array_equal(sw[..., 0] * pool.x.shape[3] + sw[..., 1], idx)
    np.testing.assert_allclose(drop.y, drop.x * drop.pushed["mask"] / 0.7, rtol=1e-14)
    assert 0 < drop.pushed["mask"].mean() < 1
    assert pool.cache_type == "MaxPoolCache" and pool.pushed["cache"]["type"] == "MaxPoolCache"


def test_gradients_agree_with_a_numerical_gradient(setup):
    model, x, t = setup
    tr = trace(model, x, t, training=False)  # deterministic: dropout off, running stats
    w = model[6].weight   # perturbed in place by numerical_vjp, restored exactly
    num = numerical_vjp(lambda: CrossEntropyLoss().forward(model.predict(x), t)[0], w.value,
                        np.float64(1.0))
    np.testing.assert_allclose(tr.steps[6].grads["weight"], num, rtol=1e-6, atol=1e-9)


def test_update_and_frozen_parameters(setup):
    model, x, t = setup
    tr = trace(model, x, t, lr=0.25, frozen=("6.bias",), training=False)
    lin = tr.steps[6]
    assert "bias" not in lin.updated
    np.testing.assert_allclose(lin.updated["weight"], lin.params["weight"]
                               - 0.25 * lin.grads["weight"], rtol=1e-15)
    stepped = small_cnn()
    for (n, p), s in zip(stepped.named_parameters(), [s for s in tr.steps for _ in s.params]):
        k = n.split(".", 1)[1]
        if k in s.updated:
            p.value = s.updated[k]
    after = CrossEntropyLoss().forward(stepped.predict(x), t)[0]
    assert tr.loss_after == pytest.approx(float(after), rel=1e-12)
    assert tr.loss_after < tr.loss


def test_loss_after_in_training_mode_uses_the_same_dropout_mask(setup):
    model, x, t = setup
    tr = trace(model, x, t, lr=0.05)
    stepped = small_cnn()
    for (n, p), s in zip(stepped.named_parameters(), [s for s in tr.steps for _ in s.params]):
        p.value = s.updated[n.split(".", 1)[1]]
    y, _ = stepped.forward(x, training=True)   # dropout's generator: the same fresh seed
    assert tr.loss_after == pytest.approx(float(CrossEntropyLoss().forward(y, t)[0]),
                                          rel=1e-12)


def test_residual_blocks_are_single_steps():
    rng = np.random.default_rng(3)
    kw = dict(rng=rng, dtype=np.float64)
    body = Sequential(Conv2d(2, 2, 3, padding=1, **kw), ReLU())
    model = Sequential(Residual(body), Flatten(), Linear(2 * 4 * 4, 2, **kw))
    x = rng.standard_normal((1, 2, 4, 4))
    tr = trace(model, x, np.array([[0.5, -0.5]]), loss=MSELoss())
    assert [s.kind for s in tr.steps] == ["Residual", "Flatten", "Linear"]
    assert [s.symbol_out for s in tr.steps] == ["h1", "f1", "z2"]
    assert tr.steps[0].equation == "h1 = body(x) + shortcut(x)"
    assert set(tr.steps[0].grads) == {"body.0.weight", "body.0.bias"}
    assert tr.steps[0].pushed["cache"][0][1]["type"] == "ReluCache"


def test_a_relu_rule_is_not_a_training_step(setup):
    model, x, t = setup
    model[2].rule = "guided"
    tr = trace(model, x, t)
    model[2].rule = "gradient"
    np.testing.assert_array_equal(tr.steps[0].grads["weight"], trace(model, x, t).steps[0]
                                  .grads["weight"])
    assert tr.notes == ["layer 2 back-propagates by the 'guided' rule; the trace uses the "
                        "gradient"]


def test_float32_model_and_a_plain_list_target():
    model = Sequential(Linear(3, 2, rng=np.random.default_rng(0)))   # float32
    tr = trace(model, np.ones((1, 3)), [[0.5, 0.1]])
    y = model.predict(np.ones((1, 3), np.float32))
    assert tr.loss == pytest.approx(float(np.mean((y - [[0.5, 0.1]]) ** 2)), rel=1e-6)
    assert tr.x.dtype == np.float64 and tr.steps[0].grads["weight"].dtype == np.float64


def test_small_layers_show_their_windows_from_the_loop_tier():
    rng = np.random.default_rng(4)
    model = Sequential(Conv2d(1, 1, 2, rng=rng, dtype=np.float64), MaxPool2d(2, stride=1))
    x = rng.standard_normal((1, 1, 4, 4))
    tr = trace(model, x, np.zeros((1, 1, 2, 2)), loss=MSELoss())
    conv, pool = tr.steps
    assert len(conv.windows) == 9 and all(w["agrees"] for w in conv.windows)
    w = conv.windows[4]   # output (1, 1): rows 1:3, cols 1:3
    assert w["rows"] == [1, 3] and w["cols"] == [1, 3]
    assert w["value"] == pytest.approx(float((model[0].weight.value[0] * x[0, :, 1:3, 1:3])
                                             .sum() + model[0].bias.value[0]), rel=1e-12)
    assert len(pool.windows) == 4
    for win in pool.windows:
        c, i, j = win["out"]
        assert win["value"] == pytest.approx(pool.y[0, c, i, j])
        assert tuple(win["switch"]) == tuple(pool.pushed["switches"][0, c, i, j])
    avg = trace(Sequential(AvgPool2d(3, stride=2, padding=1)), x, np.zeros((1, 1, 2, 2)),
                loss=MSELoss()).steps[0]
    assert len(avg.windows) == 4 and all(w["agrees"] for w in avg.windows)
    assert avg.windows[0]["members"] == [[0, 0], [0, 1], [1, 0], [1, 1]]   # padding left out
    assert avg.windows[0]["value"] == pytest.approx(x[0, 0, :2, :2].sum() / 9)
    big = trace(Sequential(Conv2d(1, 1, 2, rng=rng, dtype=np.float64)),
                rng.standard_normal((1, 1, 8, 8)), np.zeros((1, 1, 7, 7)), loss=MSELoss())
    assert big.steps[0].windows is None   # 49 outputs: not shown one by one


def test_json_summarises_long_tensors(setup):
    model, x, t = setup
    d = json.loads(trace(model, x, t).to_json())
    conv = d["steps"][0]
    assert conv["y"]["shape"] == [2, 3, 6, 7] and "values" not in conv["y"]
    assert set(conv["y"]) == {"shape", "norm", "min", "max", "mean", "first"}
    assert conv["y"]["norm"] == pytest.approx(float(np.linalg.norm(trace(model, x, t)
                                                                   .steps[0].y)))
    assert d["steps"][-1]["grads"]["bias"]["values"] is not None   # 3 entries: in full
    assert summarize(np.arange(FULL))["values"] == list(range(FULL))
    assert "values" not in summarize(np.arange(FULL + 1))


@pytest.mark.parametrize("call, exc, match", [
    (lambda m, x, t: trace(m, x[:, :1], t), ValueError, "trace: layer 0 .Conv2d. rejects"),
    (lambda m, x, t: trace(m, x, np.array([2, 9])), ValueError, "trace: the target"),
    (lambda m, x, t: trace(m, x, t, frozen=("nope",)), ValueError, "frozen names no"),
    (lambda m, x, t: trace(m, x, t, lr=-1.0), ValueError, "lr must be"),
    (lambda m, x, t: trace("model", x, t), TypeError, "model must be"),
])
def test_bad_input_is_a_clear_error(setup, call, exc, match):
    with pytest.raises(exc, match=match):
        call(*setup)


def test_json_is_strict_when_the_step_goes_non_finite():
    """An overflowing input (or a diverged checkpoint) gives inf and NaN: the JSON must stay
    valid (no NaN/Infinity tokens), and the summaries say how many entries are not finite."""
    rng = np.random.default_rng(6)
    model = Sequential(Linear(20, 2, rng=rng, dtype=np.float64))
    x = rng.standard_normal((1, 20))
    x[0, 3] = np.inf
    with np.errstate(all="ignore"):
        tr = trace(model, x, np.zeros((1, 2)), loss=MSELoss())

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")
    d = json.loads(tr.to_json(), parse_constant=refuse)
    assert d["x"]["nonfinite"] == 1 and d["x"]["max"] == "inf"
    assert all(v in ("inf", "-inf") for v in d["steps"][0]["y"]["values"][0])
    assert d["loss"] == "inf"
    assert "nonfinite" not in summarize(np.arange(FULL + 1.0))


def test_a_shared_layer_is_updated_once_by_its_whole_gradient():
    """The same Linear used twice: each step shows its own share of the gradient, and the
    update (listed once) uses their sum; it used to show the later use's partial update."""
    rng = np.random.default_rng(8)
    lin = Linear(3, 3, rng=rng, dtype=np.float64)
    model = Sequential(lin, Tanh(), lin)
    x, t = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    tr = trace(model, x, t, loss=MSELoss(), lr=0.1)
    first, last = tr.steps[0], tr.steps[2]
    total = first.grads["weight"] + last.grads["weight"]
    num = numerical_vjp(lambda: MSELoss().forward(model.predict(x), t)[0], lin.weight.value,
                        np.float64(1.0))
    np.testing.assert_allclose(total, num, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(first.updated["weight"], lin.weight.value - 0.1 * total,
                               rtol=1e-14)
    assert last.updated == {}
    stepped = Linear(3, 3, dtype=np.float64)
    stepped.weight.value, stepped.bias.value = first.updated["weight"], first.updated["bias"]
    after = MSELoss().forward(Sequential(stepped, Tanh(), stepped).predict(x), t)[0]
    assert tr.loss_after == pytest.approx(float(after), rel=1e-12)


def test_read_only_non_contiguous_input_and_target(setup):
    model, x, t = setup
    xs = np.repeat(x, 2, axis=3)[:, :, :, ::2]   # the same values, a strided view
    assert not xs.flags.c_contiguous
    xs.flags.writeable = False
    ts = np.array(t)
    ts.flags.writeable = False
    got, want = trace(model, xs, ts), trace(model, x, t)
    assert got.loss == want.loss and got.loss_after == want.loss_after
    np.testing.assert_array_equal(got.steps[0].grads["weight"], want.steps[0].grads["weight"])
