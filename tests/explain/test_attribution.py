"""convprop.explain.attribute: every method's contract (shapes, targets, layers, options),
gradient saliency against a numerical input gradient of the score, Grad-CAM and the cues
map against computations written out from the papers' equations, Integrated Gradients'
completeness, and that no attribution pass touches a parameter gradient."""

import numpy as np
import pytest
from contract import raises

from convprop.explain import METHODS, attribute, saliency_map
from convprop.explain.attribution import ig_points
from convprop.explain.resample import interpolate
from convprop.layers import Conv2d, Flatten, Linear, MaxPool2d, Sequential, Tanh
from convprop.layers.activation import ReLU
from convprop.models import build

LAYER_OPTS = {"gradcam": {"layer": "3"}, "guided_gradcam": {"layer": "3"},
              "smoothgrad": {"n_samples": 3}, "integrated_gradients": {"steps": 4}}


def small_lenet():
    return build("lenet5", input_size=16, rng=np.random.default_rng(11), dtype=np.float64)


def numerical_score_gradient(model, x, target, eps=1e-6):
    """Central differences of sum_n score_n(x) (examples are independent in evaluation
    mode, so each entry belongs to one example's score)."""
    t = np.asarray(target)

    def total(z):
        return model.predict(z)[np.arange(len(z)), t].sum()
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        z = x.copy()
        z[i] += eps
        up = total(z)
        z[i] -= 2 * eps
        g[i] = (up - total(z)) / (2 * eps)
    return g


def test_gradient_saliency_is_the_numerical_input_gradient_of_the_score(rng):
    model = small_lenet()
    x = rng.standard_normal((2, 1, 16, 16))
    target = [3, 8]
    got = attribute(model, x, target, "gradient")
    want = numerical_score_gradient(model, x, target)
    assert np.linalg.norm(got - want) <= 1e-7 * np.linalg.norm(want)
    np.testing.assert_array_equal(saliency_map(got), np.abs(got).max(axis=1))


def test_gradient_on_resnet_with_batch_norm_matches_numerical(resnet, rng):
    x = rng.standard_normal((1, 3, 8, 8))
    got = attribute(resnet, x, 4, "gradient")
    want = numerical_score_gradient(resnet, x, [4])
    assert np.linalg.norm(got - want) <= 1e-7 * np.linalg.norm(want)


def test_gradient_of_a_1d_model_matches_numerical(rng):
    """Any convprop model and batch: a 1-D CNN over (N, C, L) sequences."""
    model = build("cnn1d", input_size=24, in_channels=2, widths=(3, 4), pools=(2, 2),
                  rng=np.random.default_rng(2), dtype=np.float64)
    x = rng.standard_normal((2, 2, 24))
    got = attribute(model, x, [1, 4], "gradient")
    want = numerical_score_gradient(model, x, [1, 4])
    assert np.linalg.norm(got - want) <= 1e-7 * np.linalg.norm(want)
    assert attribute(model, x, 1, "integrated_gradients", steps=3).shape == x.shape


@pytest.mark.parametrize("method", ["gradient", "guided_gradcam", "cues"])
def test_non_contiguous_input_gives_the_same(method, lenet, rng):
    x = rng.standard_normal((2, 1, 28, 56))[:, :, :, ::2]
    assert not x.flags.c_contiguous
    opts = LAYER_OPTS.get(method, {})
    np.testing.assert_array_equal(attribute(lenet, x, 3, method, **opts),
                                  attribute(lenet, np.ascontiguousarray(x), 3, method, **opts))


@pytest.mark.parametrize("method", METHODS)
def test_no_method_touches_parameter_gradients_or_values(method, lenet, rng):
    grads, values = {}, {}
    for name, p in lenet.named_parameters():
        p.grad = rng.standard_normal(p.shape)
        grads[name], values[name] = (p.grad, p.grad.copy()), p.value.copy()
    x = rng.standard_normal((2, 1, 28, 28))
    x.flags.writeable = False
    before = x.copy()
    attribute(lenet, x, [1, 2], method, **LAYER_OPTS.get(method, {}))
    for name, p in lenet.named_parameters():
        assert p.grad is grads[name][0], f"{method}: {name}.grad was rebound"
        np.testing.assert_array_equal(p.grad, grads[name][1], err_msg=f"{method}: {name}.grad")
        np.testing.assert_array_equal(p.value, values[name])
    np.testing.assert_array_equal(x, before)
    assert all(m.rule == "gradient" for m in lenet.modules() if isinstance(m, ReLU))
    assert "forward" not in lenet[3].__dict__ and "backward" not in lenet[3].__dict__


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_and_dtypes(method, dtype, lenet, rng):
    lenet.astype(dtype)
    x = rng.standard_normal((3, 1, 28, 28)).astype(dtype)
    a = attribute(lenet, x, 7, method, **LAYER_OPTS.get(method, {}))
    want = {"gradcam": (3, 1, 10, 10), "cues": (3, 1, 28, 28)}.get(method, x.shape)
    assert a.shape == want and a.dtype == dtype
    assert np.isfinite(a).all() and np.abs(a).sum() > 0


@pytest.mark.parametrize("method", ["gradient", "guided", "deconvnet", "gradcam"])
def test_target_per_example_equals_one_call_per_example(method, lenet, rng):
    x = rng.standard_normal((3, 1, 28, 28))
    opts = LAYER_OPTS.get(method, {})
    both = attribute(lenet, x, np.array([0, 5, 9]), method, **opts)
    for n, k in enumerate([0, 5, 9]):
        np.testing.assert_allclose(both[n:n + 1], attribute(lenet, x[n:n + 1], k, method,
                                                            **opts), rtol=1e-12, atol=1e-15)


def test_layer_by_module_or_name(lenet, rng):
    x = rng.standard_normal((2, 1, 28, 28))
    np.testing.assert_array_equal(attribute(lenet, x, 1, "gradcam", layer=lenet[3]),
                                  attribute(lenet, x, 1, "gradcam", layer="3"))


def _split(model, k):
    """(body, head): the top-level children up to k, and the rest."""
    kids = list(model)
    return Sequential(*kids[:k + 1]), Sequential(*kids[k + 1:])


def _gradcam_by_hand(model, x, target, k, relu=True):
    body, head = _split(model, k)
    a, _ = body.forward(x)
    y, hc = head.forward(a)
    dy = np.zeros_like(y)
    dy[np.arange(len(x)), target] = 1
    for p in model.parameters():
        p.zero_grad()
    g = head.backward(dy, hc)
    n, c, h, w = a.shape
    cam = np.zeros((n, 1, h, w))
    for i in range(n):
        for ch in range(c):
            alpha = sum(g[i, ch, p, q] for p in range(h) for q in range(w)) / (h * w)
            cam[i, 0] += alpha * a[i, ch]
    return np.maximum(cam, 0) if relu else cam


@pytest.mark.parametrize("relu", [True, False])
def test_gradcam_is_the_papers_equation(relu, lenet, resnet, rng):
    x = rng.standard_normal((2, 1, 28, 28))
    np.testing.assert_allclose(attribute(lenet, x, [2, 6], "gradcam", layer="4", relu=relu),
                               _gradcam_by_hand(lenet, x, [2, 6], 4, relu), rtol=1e-10,
                               atol=1e-14)
    xr = rng.standard_normal((2, 3, 8, 8))
    np.testing.assert_allclose(attribute(resnet, xr, [1, 3], "gradcam", layer="4", relu=relu),
                               _gradcam_by_hand(resnet, xr, [1, 3], 4, relu), rtol=1e-10,
                               atol=1e-14)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_guided_gradcam_is_guided_times_upsampled_cam(mode, lenet, rng):
    x = rng.standard_normal((2, 1, 28, 28))
    cam = attribute(lenet, x, 4, "gradcam", layer="3")
    want = attribute(lenet, x, 4, "guided") * interpolate(cam, (28, 28), mode)
    np.testing.assert_allclose(attribute(lenet, x, 4, "guided_gradcam", layer="3",
                                         interpolate=mode), want, rtol=1e-12, atol=1e-18)


def test_smoothgrad(lenet, rng):
    x = rng.standard_normal((2, 1, 28, 28))
    grad = attribute(lenet, x, 3, "gradient")
    np.testing.assert_allclose(attribute(lenet, x, 3, "smoothgrad", noise_level=0.0,
                                         n_samples=4), grad, rtol=1e-12, atol=1e-16)
    a = attribute(lenet, x, 3, "smoothgrad", n_samples=5, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a, attribute(lenet, x, 3, "smoothgrad", n_samples=5,
                                               rng=np.random.default_rng(1)))
    assert not np.allclose(a, grad)
    # by hand: the mean gradient over the same noise draws, std 0.15 (max - min) per example
    draws = np.random.default_rng(1)
    span = 0.15 * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))[:, None, None, None]
    want = np.mean([attribute(lenet, x + draws.standard_normal(x.shape) * span, 3, "gradient")
                    for _ in range(5)], axis=0)
    np.testing.assert_allclose(a, want, rtol=1e-12, atol=1e-16)
    guided = attribute(lenet, x, 3, "smoothgrad", base="guided", noise_level=0.0, n_samples=2)
    np.testing.assert_allclose(guided, attribute(lenet, x, 3, "guided"), rtol=1e-12)


def test_smoothgrad_of_a_linear_model_is_its_gradient(rng):
    model = Sequential(Flatten(), Linear(12, 4, rng=rng, dtype=np.float64))
    x = rng.standard_normal((2, 3, 2, 2))
    np.testing.assert_allclose(attribute(model, x, 1, "smoothgrad", n_samples=3),
                               attribute(model, x, 1, "gradient"), rtol=1e-12)


@pytest.mark.parametrize("integration", ["gausslegendre", "riemann_left", "riemann_right",
                                         "riemann_middle", "riemann_trapezoid"])
def test_quadrature_points_integrate_on_the_unit_interval(integration):
    a, w = ig_points(8, integration)
    assert np.all((0 <= a) & (a <= 1)) and abs(w.sum() - 1) < 1e-14
    # polynomials integrated exactly: degree 2n - 1 for Gauss-Legendre, 1 for the midpoint
    # and trapezoid rules, 0 for the one-sided sums (whose error in x is -+1/(2n))
    exact = {"gausslegendre": 15, "riemann_middle": 1, "riemann_trapezoid": 1}
    for p in range(exact.get(integration, 0) + 1):
        assert abs((w * a ** p).sum() - 1 / (p + 1)) < 1e-13, (integration, p)
    if integration in ("riemann_left", "riemann_right"):
        sign = -1 if integration == "riemann_left" else 1
        assert abs((w * a).sum() - (0.5 + sign / 16)) < 1e-14


def test_integrated_gradients_completeness_on_a_smooth_model(rng):
    """Sundararajan et al.'s axiom: attributions sum to score(x) - score(baseline); with
    tanh the path integral is smooth and Gauss-Legendre nails it."""
    model = Sequential(Conv2d(2, 3, 3, rng=rng, dtype=np.float64), Tanh(), Flatten(),
                       Linear(27, 4, rng=rng, dtype=np.float64))
    x = rng.standard_normal((3, 2, 5, 5))
    base = rng.standard_normal((1, 2, 5, 5)) * 0.1
    a = attribute(model, x, [0, 1, 3], "integrated_gradients", baseline=base, steps=40)
    t = [0, 1, 3]
    want = model.predict(x)[np.arange(3), t] - model.predict(np.broadcast_to(base, x.shape)
                                                               )[np.arange(3), t]
    np.testing.assert_allclose(a.sum(axis=(1, 2, 3)), want, rtol=1e-9, atol=1e-12)


def test_integrated_gradients_completeness_on_lenet_and_linear_exactness(lenet, rng):
    x = rng.standard_normal((1, 1, 28, 28))
    a = attribute(lenet, x, 5, "integrated_gradients", steps=300,
                  integration="riemann_trapezoid")
    want = lenet.predict(x)[0, 5] - lenet.predict(np.zeros_like(x))[0, 5]
    assert abs(a.sum() - want) <= 5e-3 * abs(want)   # measured 1.1e-3 (ReLU kinks)
    model = Sequential(Flatten(), Linear(4, 3, rng=rng, dtype=np.float64))
    x = rng.standard_normal((2, 1, 2, 2))
    w = model[1].weight.value[2].reshape(1, 1, 2, 2)
    np.testing.assert_allclose(attribute(model, x, 2, "integrated_gradients", baseline=0.5,
                                         steps=3), (x - 0.5) * w, rtol=1e-12)


def test_cues_is_the_papers_sum_over_layers(lenet, rng):
    """Two cue layers (the max poolings): the backward signal rectified at each, cue maps
    sum_c A relu(G), bilinear to the image, weighted, no blur; written out by hand."""
    x = rng.standard_normal((2, 1, 28, 28))
    t = np.array([1, 7])
    got = attribute(lenet, x, t, "cues", weights=[0.3, 2.0], sigma=0)
    low, mid, head = (Sequential(*list(lenet)[:3]), Sequential(*list(lenet)[3:6]),
                      Sequential(*list(lenet)[6:]))
    a2, c2 = low.forward(x)
    a5, c5 = mid.forward(a2)
    y, ch = head.forward(a5)
    dy = np.zeros_like(y)
    dy[np.arange(2), t] = 1
    g5 = np.maximum(head.backward(dy, ch), 0)
    g2 = np.maximum(mid.backward(g5, c5), 0)
    want = (0.3 * interpolate((a2 * g2).sum(1, keepdims=True), (28, 28), "bilinear")
            + 2.0 * interpolate((a5 * g5).sum(1, keepdims=True), (28, 28), "bilinear"))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # the authors' top signal: the output vector itself
    g5o = np.maximum(head.backward(y.copy(), ch), 0)
    g2o = np.maximum(mid.backward(g5o, c5), 0)
    want_o = (interpolate((a2 * g2o).sum(1, keepdims=True), (28, 28), "bilinear")
              + interpolate((a5 * g5o).sum(1, keepdims=True), (28, 28), "bilinear"))
    np.testing.assert_allclose(attribute(lenet, x, t, "cues", sigma=0, backward_from="output"),
                               want_o, rtol=1e-12, atol=1e-15)


def test_cues_center_bias_and_blur(lenet, rng):
    from convprop.explain.cues import center_prior
    from convprop.explain.resample import gaussian_blur
    x = rng.standard_normal((1, 1, 28, 28))
    raw = attribute(lenet, x, 2, "cues", sigma=0)
    np.testing.assert_allclose(attribute(lenet, x, 2, "cues", sigma=1.5, center_bias=True),
                               gaussian_blur(raw * center_prior((28, 28)), 1.5), rtol=1e-12)
    p = center_prior((5, 5))
    assert p[2, 2] == 1.0 and np.allclose(p[[0, 0, 4, 4], [0, 4, 0, 4]], 0.25)
    d = np.zeros((1, 1, 9, 9))
    d[0, 0, 4, 4] = 1
    k = np.exp(-0.5 * (np.arange(-2, 3) / 1.0) ** 2)
    k /= k.sum()
    b = gaussian_blur(d, 1.0)[0, 0]
    np.testing.assert_allclose(b[2:7, 2:7], np.outer(k, k), rtol=1e-12)
    assert abs(b.sum() - 1) < 1e-12


def test_cues_default_layers(lenet, resnet, rng):
    from convprop.explain import default_cue_layers
    assert default_cue_layers(lenet, rng.standard_normal((1, 1, 28, 28))) == ["2", "5"]
    assert default_cue_layers(resnet, rng.standard_normal((1, 3, 8, 8))) == ["3", "4", "5"]


def test_saliency_map_reductions(rng):
    a = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(saliency_map(a), np.abs(a).max(axis=1))
    np.testing.assert_array_equal(saliency_map(a, "abs_sum"), np.abs(a).sum(axis=1))
    np.testing.assert_array_equal(saliency_map(a, "sum"), a.sum(axis=1))
    with raises("saliency_map", "reduce must be"):
        saliency_map(a, "mean")
    with raises("saliency_map", "attributions must be an array"):
        saliency_map(np.ones(3))


def test_bad_input_is_named(lenet, rng):
    x = rng.standard_normal((2, 1, 28, 28))
    with raises("attribute", "unknown method 'gradients'; methods are gradient, guided"):
        attribute(lenet, x, 1, "gradients")
    with raises("attribute", r"target 10 is out of range for a model with 10 classes"):
        attribute(lenet, x, 10, "gradient")
    with raises("attribute", r"target -1 is out of range"):
        attribute(lenet, x, [0, -1], "guided")
    with raises("attribute", r"target must be an int or one int per example \(2\)", TypeError):
        attribute(lenet, x, [1, 2, 3], "gradient")
    with raises("attribute", "target must be an int", TypeError):
        attribute(lenet, x, 1.0, "gradient")
    with raises("attribute", "method 'gradcam' needs layer=", TypeError):
        attribute(lenet, x, 1, "gradcam")
    with raises("attribute", "layer 'conv9' is not a module of the model; its layer names "
                             "are '0', '1'"):
        attribute(lenet, x, 1, "gradcam", layer="conv9")
    with raises("attribute", "layer Conv2d is not a module of the model"):
        attribute(lenet, x, 1, "gradcam", layer=Conv2d(1, 1, 1))
    with raises("attribute", "layer '7' must output spatial maps", ValueError):
        attribute(lenet, x, 1, "gradcam", layer="7")
    with raises("attribute", "method 'gradient' takes no option 'layer'", TypeError):
        attribute(lenet, x, 1, "gradient", layer="3")
    with raises("attribute", "x must be a float32 or float64 numpy.ndarray", TypeError):
        attribute(lenet, x.tolist(), 1)
    with raises("attribute", "x has dtype float32 but the model's parameters are float64",
                TypeError):
        attribute(lenet, x.astype(np.float32), 1)
    with raises("attribute", "model must be a convprop Module", TypeError):
        attribute(lambda z: z, x, 1)
    with raises("attribute", r"the model must output class scores \(N, K\)"):
        attribute(Sequential(Conv2d(1, 2, 3, dtype=np.float64)), x, 0)
    with raises("attribute", "n_samples must be"):
        attribute(lenet, x, 1, "smoothgrad", n_samples=0)
    with raises("attribute", "integration must be one of"):
        attribute(lenet, x, 1, "integrated_gradients", integration="simpson")
    with raises("attribute", "baseline of shape"):
        attribute(lenet, x, 1, "integrated_gradients", baseline=np.zeros(3))
    with raises("attribute", "interpolate must be one of"):
        attribute(lenet, x, 1, "guided_gradcam", layer="3", interpolate="cubic")
    with raises("cues", "weights must give one number per layer"):
        attribute(lenet, x, 1, "cues", weights=[1.0])
    with raises("cues", r"weights must give one number per layer \(2\), got 2.0"):
        attribute(lenet, x, 1, "cues", weights=2.0)
    from convprop.explain import score_gradient
    with raises("attribute", r"seed must have the scores' shape \(2, 10\), got \(2, 9\)"):
        score_gradient(lenet, x, 1, seed=np.ones((2, 9)))
    with raises("cues", "layers name a module twice"):
        attribute(lenet, x, 1, "cues", layers=["2", lenet[2]])


def test_a_layer_that_runs_twice_is_refused(rng):
    shared = Conv2d(1, 1, 3, padding=1, rng=rng, dtype=np.float64)
    model = Sequential(shared, ReLU(), shared, MaxPool2d(2), Flatten(),
                       Linear(4, 2, rng=rng, dtype=np.float64))
    with raises("attribute", "layer '0' ran 2 times"):
        attribute(model, rng.standard_normal((1, 1, 4, 4)), 0, "gradcam", layer="0")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_input_is_refused(method, bad, lenet, rng):
    """A NaN pixel makes the score NaN while the back-propagated map stays finite: every
    method would return a plausible-looking map of a meaningless score."""
    x = rng.standard_normal((2, 1, 28, 28))
    x[1, 0, 3, 4] = bad
    with raises("attribute", r"x holds 1 NaN or infinite value \(example 1\)"):
        attribute(lenet, x, 1, method, **LAYER_OPTS.get(method, {}))


def test_option_values_are_checked(lenet, rng):
    x = rng.standard_normal((1, 1, 28, 28))
    with raises("attribute", "relu must be a bool", TypeError):
        attribute(lenet, x, 1, "gradcam", layer="3", relu="no")
    base = np.zeros_like(x)
    base[0, 0, 0, 0] = np.nan
    with raises("attribute", "baseline holds NaN or infinite values"):
        attribute(lenet, x, 1, "integrated_gradients", baseline=base)
    with raises("attribute", "baseline must be None, a number or an array", TypeError):
        attribute(lenet, x, 1, "integrated_gradients", baseline="black")
