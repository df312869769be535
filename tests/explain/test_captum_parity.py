"""Parity with Captum (test-only, like torch) in float64 on the same weights: Saliency,
GuidedBackprop, Deconvolution, LayerGradCam, GuidedGradCam and IntegratedGradients on
LeNet-5 and ResNet-20 (the verified torch twins of twins/torch_zoo.py, weights copied by
name), several targets at once. Also the up-sampling against torch's interpolate."""

import numpy as np
import pytest

from convprop.explain import attribute
from convprop.explain.resample import interpolate

pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU")

ATOL = 1e-10
RESNET_CONFIG = {"input_size": 8, "widths": (4, 6, 8), "blocks_per_stage": 1}

#: (name, config, input shape, Grad-CAM layer by its dotted name in both models)
MODELS = [
    ("lenet5", {}, (3, 1, 28, 28), "3"),
    ("resnet20", RESNET_CONFIG, (3, 3, 8, 8), "4"),
    # the paper's ResNet-20 (3 blocks per stage, 32 x 32): Grad-CAM on the last block
    ("resnet20", {}, (2, 3, 32, 32), "11"),
]
IDS = ["lenet5", "resnet20-small", "resnet20"]


@pytest.fixture(params=range(len(MODELS)), ids=IDS)
def pair(request, twin):
    name, config, shape, layer = MODELS[request.param]
    rng = np.random.default_rng(request.param + 30)
    model, tmodel = twin(name, config, rng)
    x = rng.standard_normal(shape)
    target = rng.integers(0, 10, shape[0])
    return model, tmodel, x, target, layer


def _module(tmodel, dotted):
    return dict(tmodel.named_modules())[dotted]


def _run(torch, explainer, x, target, **kw):
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    return explainer.attribute(xt, target=torch.from_numpy(target), **kw).detach().numpy()


def test_saliency_guided_deconvolution(pair, torch, captum):
    model, tmodel, x, target, _ = pair
    for ours, theirs, kw in (("gradient", captum.Saliency, {"abs": False}),
                             ("guided", captum.GuidedBackprop, {}),
                             ("deconvnet", captum.Deconvolution, {})):
        want = _run(torch, theirs(tmodel), x, target, **kw)
        got = attribute(model, x, target, ours)
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL, err_msg=ours)
        assert np.abs(want).max() > 1e-6  # not a trivial all-zero agreement


@pytest.mark.parametrize("relu", [True, False])
def test_layer_gradcam(pair, torch, captum, relu):
    model, tmodel, x, target, layer = pair
    want = _run(torch, captum.LayerGradCam(tmodel, _module(tmodel, layer)), x, target,
                relu_attributions=relu)
    got = attribute(model, x, target, "gradcam", layer=layer, relu=relu)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
    assert np.abs(want).max() > 1e-6


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_guided_gradcam(pair, torch, captum, mode):
    model, tmodel, x, target, layer = pair
    want = _run(torch, captum.GuidedGradCam(tmodel, _module(tmodel, layer)), x, target,
                interpolate_mode=mode)
    got = attribute(model, x, target, "guided_gradcam", layer=layer, interpolate=mode)
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


@pytest.mark.parametrize("integration", ["gausslegendre", "riemann_left", "riemann_middle",
                                         "riemann_trapezoid"])
def test_integrated_gradients(pair, torch, captum, integration):
    """Captum builds its Riemann points with torch.linspace in the default dtype, so the
    comparison runs with float64 as torch's default. Its "riemann_trapezoid" gives every
    point the weight 1/n (halved at the ends), summing to (n-1)/n; ours is the trapezoid rule
    (1/(n-1), halved at the ends), so its attributions are Captum's times n/(n-1). Captum
    also rounds the quadrature weights to float32 (``torch.tensor(step_sizes).float()``),
    hence the tolerance: float32's relative rounding (6e-8) times the largest attribution."""
    model, tmodel, x, target, _ = pair
    base = np.random.default_rng(3).standard_normal(x.shape) * 0.1
    n = 8
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        want = _run(torch, captum.IntegratedGradients(tmodel), x, target,
                    baselines=torch.from_numpy(base), n_steps=n, method=integration)
    finally:
        torch.set_default_dtype(old)
    if integration == "riemann_trapezoid":
        want = want * n / (n - 1)
    got = attribute(model, x, target, "integrated_gradients", baseline=base, steps=n,
                    integration=integration)
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL + 1e-7 * np.abs(want).max())
    assert np.abs(want).max() > 1e-6


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("src, dst", [((5, 5), (28, 28)), ((3, 7), (8, 9)), ((4, 4), (8, 8)),
                                      ((6, 5), (4, 11))])
def test_interpolate_matches_torch(torch, mode, src, dst, rng):
    a = rng.standard_normal((2, 3, *src))
    want = torch.nn.functional.interpolate(torch.from_numpy(a), size=dst, mode=mode,
                                           **({"align_corners": False}
                                              if mode == "bilinear" else {})).numpy()
    np.testing.assert_allclose(interpolate(a, dst, mode), want, rtol=0, atol=1e-13)
