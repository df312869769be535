"""The gradient checker must fail on planted bugs, pass on correct code, and say where.

Every kernel and module here is written in the test file (NumPy only), so the checker is
tested independently of the library's own layers.
"""

import numpy as np
import pytest

from convprop.gradcheck import (GradcheckError, GradcheckReport, check_kernel, check_module,
                                numerical_vjp)
from convprop.layers.module import Module, Parameter


# --- small kernels, correct and with planted bugs ---------------------------------------------

def linear_forward(x, w, b):
    return x @ w.T + b, (x, w)


def linear_backward(dy, cache):
    x, w = cache
    return dy @ w, dy.T @ x, dy.sum(axis=0)


def linear_backward_dw_transposed(dy, cache):
    dx, dw, db = linear_backward(dy, cache)
    return dx, dw.T, db


def linear_backward_dw_scaled(dy, cache):
    dx, dw, db = linear_backward(dy, cache)
    return dx, 1.01 * dw, db


def pool1d_forward(x):
    """Max over windows of 2 with stride 1 (overlapping): y[:, j] = max(x[:, j], x[:, j+1])."""
    pairs = np.stack([x[:, :-1], x[:, 1:]], axis=-1)
    arg = np.argmax(pairs, axis=-1) + np.arange(x.shape[1] - 1)  # column of each window's winner
    return pairs.max(axis=-1), (x.shape, arg)


def pool1d_backward(dy, cache):
    shape, arg = cache
    dx = np.zeros(shape)
    rows = np.arange(shape[0])[:, None]
    np.add.at(dx, (rows, arg), dy)  # a winner of two windows collects both gradients
    return dx


def pool1d_backward_overwrites(dy, cache):
    shape, arg = cache
    dx = np.zeros(shape)
    rows = np.arange(shape[0])[:, None]
    dx[rows, arg] = dy  # bug: with repeated indices the last write wins
    return dx


def relu_forward(x):
    return np.maximum(x, 0.0), x > 0


def relu_backward(dy, mask):
    return dy * mask


def relu_backward_one_sign_flipped(dy, mask):
    dx = dy * mask
    dx[1, 2] = -dx[1, 2]  # bug at exactly one element
    return dx


def flip_forward(x):
    return x[:, ::-1] * 3.0, None


def flip_backward(dy, cache):
    return 3.0 * dy[:, ::-1]


def flip_backward_pooled(dy, cache):
    # bug: spreads the mean of dy over every element instead of routing it back per element;
    # exact when dy is all ones (dx = 3 everywhere), wrong for any other dy
    return np.full(dy.shape, 3.0 * dy.mean())


class OnesRng:
    """Stands in for a Generator so that check_kernel draws an all-ones upstream gradient."""

    def standard_normal(self, shape):
        return np.ones(shape)


# --- small modules ------------------------------------------------------------------------------

class Dense(Module):
    """y = x W^T + b; ``grad_scale`` plants a bug in the weight gradient (1 = correct)."""

    def __init__(self, w, b, grad_scale=1.0):
        super().__init__()
        self.weight = Parameter(np.asarray(w, dtype=np.float64))
        self.bias = Parameter(np.asarray(b, dtype=np.float64))
        self.grad_scale = grad_scale

    def forward(self, x, *, training=False):
        return x @ self.weight.value.T + self.bias.value, (x, self.weight.value)

    def backward(self, dy, cache, *, need_dx=True):
        x, w = cache
        self.weight.grad = self.weight.grad + self.grad_scale * (dy.T @ x)
        self.bias.grad = self.bias.grad + dy.sum(axis=0)
        return dy @ w


class Tanh(Module):
    def forward(self, x, *, training=False):
        y = np.tanh(x)
        return y, y

    def backward(self, dy, y, *, need_dx=True):
        return dy * (1.0 - y * y)


class Chain(Module):
    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def forward(self, x, *, training=False):
        caches = []
        for layer in self.children():
            x, c = layer.forward(x, training=training)
            caches.append(c)
        return x, caches

    def backward(self, dy, caches, *, need_dx=True):
        for layer, c in reversed(list(zip(self.children(), caches))):
            dy = layer.backward(dy, c)
        return dy


def small_net(rng, grad_scale=1.0):
    return Chain(Dense(rng.standard_normal((4, 3)), rng.standard_normal(4)), Tanh(),
                 Dense(rng.standard_normal((2, 4)), rng.standard_normal(2), grad_scale))


def failure_message(report):
    return "\n" + str(report)


# --- correct code passes --------------------------------------------------------------------------

def test_correct_linear_passes(rng):
    x, w, b = rng.standard_normal((5, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4)
    report = check_kernel(linear_forward, linear_backward, [x, w, b], names=["x", "w", "b"],
                          rng=rng)
    assert report.passed, failure_message(report)
    assert set(report.errors) == {"x", "w", "b"}
    assert report.max_error < 1e-8


def test_correct_overlapping_pool_passes(rng):
    x = rng.standard_normal((3, 6))
    report = check_kernel(pool1d_forward, pool1d_backward, [x], names=["x"], rng=rng)
    assert report.passed, failure_message(report)


def test_correct_module_network_passes(rng):
    net = small_net(rng)
    report = check_module(net, rng.standard_normal((5, 3)), rng=rng)
    assert report.passed, failure_message(report)
    assert set(report.errors) == {"input", "0.weight", "0.bias", "2.weight", "2.bias"}


def test_check_module_restores_state_and_zeroes_grads(rng):
    net = small_net(rng)
    before = net.state_dict()
    check_module(net, rng.standard_normal((2, 3)), rng=rng)
    after = net.state_dict()
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value)
    for p in net.parameters():
        assert not np.any(p.grad)


# --- planted bugs fail, and the report says where -------------------------------------------------

@pytest.mark.parametrize("backward", [linear_backward_dw_transposed, linear_backward_dw_scaled])
def test_wrong_weight_gradient_is_caught_and_named(rng, backward):
    x, w, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 3)), rng.standard_normal(3)
    report = check_kernel(linear_forward, backward, [x, w, b], names=["x", "w", "b"], rng=rng)
    assert not report.passed
    assert report.worst == "w"
    assert report.errors["x"] < 1e-8 and report.errors["b"] < 1e-8
    assert report.max_error == report.errors["w"] > 1e-3
    text = str(report)
    assert "FAILED" in text and "w: " in text and "<- worst" in text


def test_scaled_weight_gradient_worst_index_is_largest_entry(rng):
    x, w, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 3)), rng.standard_normal(3)
    report = check_kernel(linear_forward, linear_backward_dw_scaled, [x, w, b],
                          names=["x", "w", "b"], rng=np.random.default_rng(7))
    dy = np.random.default_rng(7).standard_normal((5, 3))  # the dy check_kernel drew
    true_dw = dy.T @ x
    expected = np.unravel_index(np.argmax(np.abs(true_dw)), true_dw.shape)
    assert report.worst_index["w"] == tuple(int(i) for i in expected)


def test_pool_that_does_not_accumulate_is_caught_at_the_shared_winner():
    x = np.array([[0.1, 0.9, 0.2, -0.3, 0.4, 0.0]])  # 0.9 (column 1) wins windows 0 and 1
    report = check_kernel(pool1d_forward, pool1d_backward_overwrites, [x], names=["x"],
                          rng=np.random.default_rng(3))
    assert not report.passed
    assert report.worst == "x"
    assert report.worst_index["x"] == (0, 1)
    assert "x: " in str(report) and "(0, 1)" in str(report)


def test_relu_sign_bug_at_one_element_is_located(rng):
    x = np.abs(rng.standard_normal((3, 4))) + 0.1  # all positive: every gradient flows
    report = check_kernel(relu_forward, relu_backward_one_sign_flipped, [x], names=["x"],
                          rng=rng)
    assert not report.passed
    assert report.worst_index["x"] == (1, 2)
    assert "(1, 2)" in str(report)
    analytic, numeric = report.values["x"]
    assert analytic == pytest.approx(-numeric)
    good = check_kernel(relu_forward, relu_backward, [x], names=["x"], rng=rng)
    assert good.passed, failure_message(good)


@pytest.mark.parametrize("grad_scale", [0.0, 2.0], ids=["missing", "doubled"])
def test_module_parameter_gradient_missing_or_doubled(rng, grad_scale):
    net = small_net(rng, grad_scale=grad_scale)
    report = check_module(net, rng.standard_normal((5, 3)), rng=rng)
    assert not report.passed
    assert report.worst == "2.weight"
    assert report.errors["2.weight"] == pytest.approx(1 / 3 if grad_scale == 2 else 1.0)
    for name in ("input", "0.weight", "0.bias", "2.bias"):
        assert report.errors[name] < 1e-7, failure_message(report)
    with pytest.raises(GradcheckError, match="2.weight"):
        report.raise_if_failed()


def test_random_upstream_catches_what_all_ones_hides(rng):
    x = rng.standard_normal((2, 5))
    hidden = check_kernel(flip_forward, flip_backward_pooled, [x], names=["x"], rng=OnesRng())
    assert hidden.passed  # an all-ones dy cannot tell routing from pooling
    caught = check_kernel(flip_forward, flip_backward_pooled, [x], names=["x"], rng=rng)
    assert not caught.passed
    assert caught.errors["x"] > 0.1
    good = check_kernel(flip_forward, flip_backward, [x], names=["x"], rng=rng)
    assert good.passed, failure_message(good)


# --- the checker's own edge cases ---------------------------------------------------------------

def test_nan_gradient_fails_even_next_to_good_ones(rng):
    def backward(dy, cache):
        dx, dw, db = linear_backward(dy, cache)
        dw = dw.copy()
        dw[0, 1] = np.nan
        return dx, dw, db

    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)
    report = check_kernel(linear_forward, backward, [x, w, b], names=["x", "w", "b"], rng=rng)
    assert not report.passed
    assert report.worst == "w"
    assert report.worst_index["w"] == (0, 1)
    assert not np.isfinite(report.max_error)


def test_backward_writing_into_dy_raises(rng):
    def backward(dy, mask):
        dy *= mask  # writes into the upstream gradient
        return dy

    with pytest.raises(ValueError, match="read-only"):
        check_kernel(relu_forward, backward, [rng.standard_normal((2, 3))], rng=rng)


def test_missing_gradient_is_an_error_and_none_is_skipped(rng):
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)
    with pytest.raises(ValueError, match="gradcheck: backward returned 2 gradient"):
        check_kernel(linear_forward, lambda dy, c: linear_backward(dy, c)[:2], [x, w, b],
                     rng=rng)
    report = check_kernel(linear_forward, lambda dy, c: (None, *linear_backward(dy, c)[1:]),
                          [x, w, b], names=["x", "w", "b"], rng=rng)
    assert set(report.errors) == {"w", "b"} and report.passed


def test_wrong_gradient_shape_is_an_error(rng):
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)
    with pytest.raises(ValueError, match="gradient of w has shape"):
        check_kernel(linear_forward, linear_backward_dw_transposed, [x, w, b],
                     names=["x", "w", "b"], rng=rng)


def test_numerical_vjp_matches_known_gradient_and_restores_x(rng):
    x = rng.standard_normal((3, 4))
    original = x.copy()
    dy = rng.standard_normal((3, 4))
    g = numerical_vjp(lambda: np.sin(x) * x, x, dy)
    np.testing.assert_allclose(g, dy * (np.cos(original) * original + np.sin(original)),
                               rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(x, original)


def test_numerical_vjp_rejects_arrays_it_cannot_perturb(rng):
    x = rng.standard_normal((3, 4))
    with pytest.raises(ValueError, match="numerical_vjp: x must be C-contiguous"):
        numerical_vjp(lambda: x, x[:, ::2], np.ones((3, 2)))
    x.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        numerical_vjp(lambda: x, x, np.ones((3, 4)))


def test_report_properties():
    empty = GradcheckReport()
    assert empty.passed and empty.max_error == 0.0 and empty.worst is None
    rep = GradcheckReport(errors={"a": 1e-9, "b": 2e-3}, worst_index={"a": (0,), "b": (4, 1)},
                          tol=1e-6)
    assert not rep and rep.worst == "b" and rep.max_error == 2e-3
    assert "b: 2.000e-03 at index (4, 1)  <- worst" in str(rep)
    assert GradcheckReport(errors={"a": 1e-9}, worst_index={"a": ()}).raise_if_failed()


# --- the library's own modules ------------------------------------------------------------------

def convprop_net(rng, last=None):
    from convprop.layers import Flatten, Linear, MaxPool2d, Sequential, Tanh
    last = last or Linear
    return Sequential(MaxPool2d(2, stride=1), Flatten(),
                      Linear(9, 4, rng=rng, dtype=np.float64), Tanh(),
                      last(4, 2, rng=rng, dtype=np.float64))


def test_check_module_on_a_convprop_network(rng):
    report = check_module(convprop_net(rng), rng.standard_normal((2, 1, 4, 4)), rng=rng)
    assert report.passed, failure_message(report)
    assert set(report.errors) == {"input", "2.weight", "2.bias", "4.weight", "4.bias"}


def test_check_module_catches_a_bug_in_a_convprop_layer(rng):
    from convprop.layers import Linear

    class BiasGradDropped(Linear):
        def backward(self, dy, cache, *, need_dx=True):
            dx = super().backward(dy, cache, need_dx=need_dx)
            self.bias.zero_grad()  # planted: the bias gradient is lost
            return dx

    report = check_module(convprop_net(rng, BiasGradDropped), rng.standard_normal((2, 1, 4, 4)),
                          rng=rng)
    assert not report.passed
    assert report.worst == "4.bias"
    assert report.errors["4.bias"] == pytest.approx(1.0)


def test_zero_gradient_with_rounding_noise_passes_but_small_real_error_fails():
    """A bias before batch norm has a true gradient of 0 (analytic ~1e-14, numeric 0): the
    absolute floor passes it, while a genuine error above the floor still fails."""
    from convprop.gradcheck import check_kernel

    def fwd(x, b):
        return x - x.mean() + 0 * b.sum(), None

    def bwd_noise(dy, cache):
        return dy - dy.mean(), np.full(3, 1e-14)

    def bwd_wrong(dy, cache):
        return dy - dy.mean(), np.full(3, 1e-3)
    x, b = np.arange(4.0), np.zeros(3)
    assert check_kernel(fwd, bwd_noise, [x, b]).passed
    rep = check_kernel(fwd, bwd_wrong, [x, b])
    assert not rep.passed and rep.worst == "input1"
