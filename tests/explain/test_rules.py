"""The three ReLU backward rules ("gradient", "deconvnet", "guided") as kernels and as a
module argument / model-wide context manager; LeakyReLU's slope checks."""

import numpy as np
import pytest
from contract import Kernel, raises

from convprop.functional.activation import (RELU_RULES, LeakyReluCache, ReluCache,
                                            leaky_relu_backward, leaky_relu_forward,
                                            relu_backward, relu_forward, sigmoid_backward,
                                            sigmoid_forward, tanh_backward, tanh_forward)
from convprop.layers import Linear, Sequential, Sigmoid
from convprop.layers.activation import LeakyReLU, ReLU, relu_rule


# ---- loop oracles (nothing from convprop) ------------------------------------------------
def loop_rule(x, dy, rule):
    """dx element by element, as the papers write the rules."""
    dx = np.zeros(dy.shape, dtype=np.float64)
    for i in np.ndindex(dy.shape):
        fwd = x[i] > 0          # the forward mask: where the unit was active
        up = dy[i] > 0          # the backward mask: where the signal coming down is positive
        keep = {"gradient": fwd, "deconvnet": up, "guided": fwd and up}[rule]
        dx[i] = dy[i] if keep else 0.0
    return dx


def _x(rng, shape=(2, 3, 4, 5)):
    x = rng.standard_normal(shape)
    x.flat[::7] = 0.0  # the kink: gradient 0 there under every rule
    return x


@pytest.mark.parametrize("rule", RELU_RULES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 3, 7), (5, 4), (6,)])
def test_rule_matches_loop(rule, shape, rng):
    x = _x(rng, shape)
    dy = rng.standard_normal(shape)
    dy.flat[::5] = 0.0
    dx = relu_backward(dy, relu_forward(x)[1], rule=rule)
    np.testing.assert_array_equal(dx, loop_rule(x, dy, rule))


def test_the_rules_differ_where_the_papers_say(rng):
    x = np.array([-1.0, -1.0, 2.0, 2.0])
    dy = np.array([-3.0, 3.0, -3.0, 3.0])
    c = relu_forward(x)[1]
    np.testing.assert_array_equal(relu_backward(dy, c), [0, 0, -3, 3])
    np.testing.assert_array_equal(relu_backward(dy, c, rule="deconvnet"), [0, 3, 0, 3])
    np.testing.assert_array_equal(relu_backward(dy, c, rule="guided"), [0, 0, 0, 3])


def test_gradient_rule_is_the_derivative(rng):
    x = rng.standard_normal((2, 3, 3, 4))
    x[np.abs(x) < 1e-3] = 0.5
    Kernel("relu", relu_forward, lambda dy, c: relu_backward(dy, c, rule="gradient")
           ).check_gradient([x], rng)


@pytest.mark.parametrize("rule", RELU_RULES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rules_keep_dtype_and_survive_hostile_inputs(rule, dtype, rng):
    k = Kernel("relu", relu_forward, lambda dy, c: relu_backward(dy, c, rule=rule))
    x = _x(rng)
    k.check_dtypes([x], rng, dtypes=(dtype,), rtol=0, atol=0)
    k.check_hostile([x.astype(dtype)], rng)
    k.check_dy_errors([x.astype(dtype)])


@pytest.mark.parametrize("rule", ["Guided", "", None, 1, "backprop"])
def test_unknown_rule_is_named(rule, rng):
    c = relu_forward(np.ones(3))[1]
    with raises("relu_backward", "rule must be one of 'gradient', 'deconvnet', 'guided'"):
        relu_backward(np.ones(3), c, rule=rule)
    with raises("ReLU", "rule must be one of"):
        ReLU(rule=rule)
    with raises("relu_rule", "rule must be one of"):
        with relu_rule(Sequential(ReLU()), rule):
            pass


@pytest.mark.parametrize("backward, good, bad", [
    (relu_backward, ReluCache, LeakyReluCache), (leaky_relu_backward, LeakyReluCache, ReluCache),
    (sigmoid_backward, None, None), (tanh_backward, None, None)])
def test_activation_backwards_check_their_cache(backward, good, bad, rng):
    x = rng.standard_normal(4)
    other = {relu_backward: leaky_relu_forward(x)[1], leaky_relu_backward: relu_forward(x)[1],
             sigmoid_backward: tanh_forward(x)[1], tanh_backward: sigmoid_forward(x)[1]}
    for cache in (other[backward], None):
        with pytest.raises(TypeError, match=rf"^{backward.__name__}: cache must be the "):
            backward(np.ones(4), cache)


def test_module_argument_and_repr(rng):
    x = _x(rng)
    dy = rng.standard_normal(x.shape)
    for rule in RELU_RULES:
        m = ReLU(rule=rule)
        y, c = m.forward(x)
        np.testing.assert_array_equal(y, np.maximum(x, 0))  # the forward never changes
        np.testing.assert_array_equal(m.backward(dy, c), loop_rule(x, dy, rule))
    assert repr(ReLU()) == "ReLU()"
    assert repr(ReLU(rule="guided")) == "ReLU(rule='guided')"


def test_context_manager_sets_every_relu_and_restores_each_own_rule(rng):
    inner = ReLU(rule="deconvnet")
    model = Sequential(Linear(4, 5, rng=rng, dtype=np.float64), ReLU(),
                       Sequential(Linear(5, 5, rng=rng, dtype=np.float64), inner), Sigmoid())
    relus = [m for m in model.modules() if isinstance(m, ReLU)]
    with relu_rule(model, "guided") as got:
        assert got is model
        assert [m.rule for m in relus] == ["guided", "guided"]
    assert [m.rule for m in relus] == ["gradient", "deconvnet"]
    with pytest.raises(RuntimeError):
        with relu_rule(model, "deconvnet"):
            raise RuntimeError("inside")
    assert [m.rule for m in relus] == ["gradient", "deconvnet"]
    with pytest.raises(TypeError, match="^relu_rule: model must be a Module"):
        with relu_rule([ReLU()], "guided"):
            pass


def test_context_manager_changes_a_model_backward_like_the_loop(rng):
    """Two ReLUs in a small MLP: the input gradient under each rule against a hand-written
    backward that applies the loop rule at each ReLU."""
    l1 = Linear(6, 7, rng=rng, dtype=np.float64)
    l2 = Linear(7, 5, rng=rng, dtype=np.float64)
    model = Sequential(l1, ReLU(), l2, ReLU())
    x = rng.standard_normal((3, 6))
    dy = rng.standard_normal((3, 5))
    for rule in RELU_RULES:
        with relu_rule(model, rule):
            y, cache = model.forward(x)
            dx = model.backward(dy, cache)
        h1 = x @ l1.weight.value.T + l1.bias.value
        h2 = np.maximum(h1, 0) @ l2.weight.value.T + l2.bias.value
        g = loop_rule(h2, dy, rule) @ l2.weight.value
        want = loop_rule(h1, g, rule) @ l1.weight.value
        np.testing.assert_allclose(dx, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("slope", [float("nan"), float("inf"), -float("inf")])
def test_leaky_relu_slope_must_be_finite(slope):
    with raises("leaky_relu", "negative_slope must be (a )?finite"):
        leaky_relu_forward(np.ones(3), negative_slope=slope)
    with raises("LeakyReLU", "negative_slope must be (a )?finite"):
        LeakyReLU(slope)
    with raises("LeakyReLU", "negative_slope must be a real number", TypeError):
        LeakyReLU("0.1")
    with raises("LeakyReLU", "negative_slope must be a real number", TypeError):
        LeakyReLU(True)
