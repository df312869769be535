"""ONNX export: every zoo model and every layer type, run in onnxruntime and compared with
convprop's evaluation-mode output in float32 (max abs difference <= 1e-5 of the output
scale); onnx.checker (full check) runs inside ``to_onnx``; refusals name the layer."""

import numpy as np
import pytest

from ortutil import onnx, rel_err, run_ort  # noqa: F401 (skips without onnx/onnxruntime)

from convprop import layers as L
from convprop.layers import lenet_classic as LC
from convprop.layers.module import Module
from convprop.models import MODELS, build
from convprop.onnx import ExportError, export, to_onnx

TOL = 1e-5

#: small configurations (fast tests) and input shapes of every zoo model
ZOO = {"lenet5": ({}, (2, 1, 28, 28)),
       "lenet5_classic": (dict(input_size=28), (2, 1, 28, 28)),  # the pad, S2/S4, C3, RBF
       "alexnet_cifar": (dict(width=4), (2, 3, 32, 32)),
       "vgg_cifar": (dict(stages=((4,), (8,)), hidden=8, input_size=16), (2, 3, 16, 16)),
       "resnet20": (dict(widths=(4, 8, 16), blocks_per_stage=1, input_size=16),
                    (2, 3, 16, 16)),
       "resnet20_B": (dict(widths=(4, 8), blocks_per_stage=2, input_size=8, shortcut="B"),
                      (2, 3, 8, 8)),
       "googlenet_mini": (dict(input_size=16), (2, 3, 16, 16)),
       "c3d_mini": (dict(input_size=(4, 8, 8), widths=(2, 4, 4)), (2, 1, 4, 8, 8)),
       "cnn1d": (dict(input_size=64, widths=(4, 4, 4), pools=(2, 2, 2)), (2, 1, 64))}


def zoo_model(key, rng):
    cfg, shape = ZOO[key]
    m = build(key.split("_B")[0], rng=rng, **cfg)
    for mod in m.modules():  # non-trivial running statistics, so BatchNormalization counts
        if isinstance(mod, (L.BatchNorm1d, L.BatchNorm2d, L.BatchNorm3d)):
            c = mod.num_features
            mod.set_buffer("running_mean", rng.normal(0, 0.3, c).astype(np.float32))
            mod.set_buffer("running_var", rng.uniform(0.5, 2, c).astype(np.float32))
            mod.weight.value = rng.uniform(0.5, 1.5, c).astype(np.float32)
            mod.bias.value = rng.normal(0, 0.3, c).astype(np.float32)
    return m, shape


def check(model, shape, rng, batch=3, x=None):
    """Export, run in onnxruntime with a batch size other than the export's, compare."""
    proto = to_onnx(model, shape)
    if x is None:
        x = rng.normal(size=(batch,) + tuple(shape[1:])).astype(np.float32)
    want = model.predict(x)
    got = run_ort(proto, x)[0]
    assert rel_err(got, want) <= TOL
    return proto


def test_zoo_covers_every_model():
    assert {k.split("_B")[0] for k in ZOO} == set(MODELS)


@pytest.mark.parametrize("key", sorted(ZOO))
def test_zoo_model_matches_onnxruntime(key, rng):
    model, shape = zoo_model(key, rng)
    proto = check(model, shape, rng)
    g = proto.graph
    assert g.input[0].type.tensor_type.shape.dim[0].dim_param == "N"   # dynamic batch
    assert g.input[0].name == "input" and g.output[0].name == "output"
    init = {i.name for i in g.initializer}
    # C3's fixed connection mask is folded into its exported weight (weight * mask)
    state = {k for k in model.state_dict() if "num_batches" not in k
             and not (key == "lenet5_classic" and k.endswith(".mask"))}
    assert state <= init  # initializers carry the state_dict names


def test_export_writes_a_file_that_loads(tmp_path, rng):
    model, shape = zoo_model("lenet5", rng)
    path = export(model, tmp_path / "m.onnx", shape, opset=18)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 18
    x = rng.normal(size=(1, 1, 28, 28)).astype(np.float32)
    assert rel_err(run_ort(proto, x)[0], model.predict(x)) <= TOL


def test_float64_model_is_written_as_float32_and_left_alone(rng):
    model, shape = zoo_model("lenet5", rng)
    model.astype(np.float64)
    proto = to_onnx(model, shape)
    assert model.parameters()[0].value.dtype == np.float64
    x = rng.normal(size=(2, 1, 28, 28))
    assert rel_err(run_ort(proto, x.astype(np.float32))[0], model.predict(x)) <= TOL


def _seq(*mods):
    return L.Sequential(*mods)


def _mixed_trained(rng, granularity):
    m = L.MixedPool2d(2, granularity=granularity, rng=np.random.default_rng(3))
    for _ in range(3):
        m.forward(rng.normal(size=(2, 3, 6, 6)).astype(np.float32), training=True)
    return m


def _layers(rng):
    """(name, model, input shape) for every layer type."""
    r = np.random.default_rng(7)
    kw = {"rng": r}
    gated = L.GatedPool2d(2, per_channel=True, channels=3)
    gated.weight.value = r.normal(size=gated.weight.shape).astype(np.float32)
    gated1 = L.GatedPool2d(3, stride=2)
    gated1.weight.value = r.normal(size=gated1.weight.shape).astype(np.float32)
    mma = L.MixedMaxAvgPool2d(2, per_channel=True, channels=3)
    mma.logit.value = r.normal(size=3).astype(np.float32)
    bn_batch = L.BatchNorm2d(3, track_running_stats=False, affine=False)
    return [
        ("conv1d", _seq(L.Conv1d(2, 4, 3, stride=2, padding=1, **kw)), (2, 2, 9)),
        ("conv2d_same_dil_groups", _seq(L.Conv2d(4, 6, 3, padding="same", dilation=2,
                                                 groups=2, **kw)), (2, 4, 7, 8)),
        ("conv2d_convolution_mode", _seq(L.Conv2d(2, 3, (2, 3), mode="convolution",
                                                  bias=False, **kw)), (2, 2, 5, 6)),
        ("conv3d", _seq(L.Conv3d(1, 2, 3, padding=(1, 0, 1), **kw)), (2, 1, 4, 5, 5)),
        ("conv_transpose1d", _seq(L.ConvTranspose1d(2, 3, 3, stride=2, **kw)), (2, 2, 5)),
        ("conv_transpose2d", _seq(L.ConvTranspose2d(4, 2, 3, stride=2, padding=1,
                                                    output_padding=1, groups=2, **kw)),
         (2, 4, 4, 5)),
        ("conv_transpose3d", _seq(L.ConvTranspose3d(2, 2, 2, stride=2, **kw)), (2, 2, 2, 3, 3)),
        ("max_pool1d", _seq(L.MaxPool1d(3, stride=2, padding=1)), (2, 3, 9)),
        ("max_pool2d_ceil_dil", _seq(L.MaxPool2d(3, stride=2, dilation=2, ceil_mode=True)),
         (2, 3, 10, 9)),
        ("max_pool3d", _seq(L.MaxPool3d(2)), (2, 2, 4, 4, 4)),
        ("max_pool_ties_split", _seq(L.MaxPool2d(2, ties="split")), (2, 2, 4, 4)),
        ("max_pool_unpool", _seq(L.MaxPool2d(2, return_indices=True), L.MaxUnpool2d(2)),
         (2, 3, 6, 8)),
        ("unpool_other_size", _seq(L.MaxPool2d((1, 2), return_indices=True),
                                   L.MaxUnpool2d(2)), (2, 2, 2, 6)),
        ("avg_pool1d", _seq(L.AvgPool1d(3, stride=2, padding=1)), (2, 3, 8)),
        ("avg_pool2d_excl_pad", _seq(L.AvgPool2d(3, stride=2, padding=1,
                                                 count_include_pad=False)), (2, 3, 7, 8)),
        ("avg_pool2d_ceil", _seq(L.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)),
         (2, 3, 8, 8)),
        ("avg_pool2d_ceil_excl", _seq(L.AvgPool2d(2, stride=2, ceil_mode=True,
                                                  count_include_pad=False)), (2, 3, 5, 5)),
        ("avg_pool2d_divisor", _seq(L.AvgPool2d(2, padding=1, divisor_override=3)),
         (2, 3, 5, 6)),
        ("avg_pool3d", _seq(L.AvgPool3d(2)), (2, 2, 4, 4, 4)),
        ("sum_pool1d", _seq(L.SumPool1d(2)), (2, 3, 7)),
        ("sum_pool2d_ceil", _seq(L.SumPool2d(2, ceil_mode=True)), (2, 3, 5, 5)),
        ("sum_pool3d", _seq(L.SumPool3d(2)), (2, 2, 4, 4, 4)),
        ("lp_pool1d", _seq(L.LPPool1d(2, 3)), (2, 3, 9)),
        ("lp_pool2d_p3_ceil", _seq(L.ReLU(), L.LPPool2d(3, 2, ceil_mode=True)), (2, 3, 5, 5)),
        ("lp_pool2d_p1", _seq(L.LPPool2d(1, 2)), (2, 3, 4, 4)),
        ("lp_pool2d_inf", _seq(L.LPPool2d(float("inf"), 2)), (2, 3, 4, 4)),
        ("lp_pool3d", _seq(L.LPPool3d(2, 2)), (2, 2, 4, 4, 4)),
        ("adaptive_avg_uneven", _seq(L.AdaptiveAvgPool2d((3, 2))), (2, 3, 7, 5)),
        ("adaptive_avg1d", _seq(L.AdaptiveAvgPool1d(3)), (2, 3, 7)),
        ("adaptive_avg3d", _seq(L.AdaptiveAvgPool3d((2, None, 1))), (2, 2, 3, 4, 3)),
        ("adaptive_max_even", _seq(L.AdaptiveMaxPool2d(2)), (2, 3, 6, 4)),
        ("adaptive_max_uneven", _seq(L.AdaptiveMaxPool2d((3, 2))), (2, 3, 7, 5)),
        ("adaptive_max1d", _seq(L.AdaptiveMaxPool1d(2)), (2, 3, 6)),
        ("global_avg1d", _seq(L.GlobalAvgPool1d()), (2, 3, 5)),
        ("global_avg3d", _seq(L.GlobalAvgPool3d()), (2, 3, 2, 3, 4)),
        ("global_max2d", _seq(L.GlobalMaxPool2d()), (2, 3, 5, 4)),
        ("global_max1d", _seq(L.GlobalMaxPool1d()), (2, 3, 5)),
        ("global_max3d", _seq(L.GlobalMaxPool3d()), (2, 3, 2, 3, 4)),
        ("batch_norm1d_2d_input", _seq(L.BatchNorm1d(5)), (2, 5)),
        ("batch_norm_batch_stats", _seq(bn_batch), (4, 3, 3, 3)),
        ("lrn", _seq(L.LocalResponseNorm(3, alpha=0.1, beta=0.6, k=1.5)), (2, 5, 3, 3)),
        ("linear_no_bias", _seq(L.Linear(6, 3, bias=False, **kw)), (2, 6)),
        ("activations", _seq(L.LeakyReLU(0.2), L.Sigmoid(), L.Tanh(), L.ReLU()), (2, 7)),
        ("dropout_flatten_identity", _seq(L.Dropout(0.3), L.Identity(), L.Flatten()),
         (2, 3, 2, 2)),
        ("pad_shortcut", _seq(L.PadShortcut(5, 2)), (2, 2, 5, 6)),
        ("residual_concat", _seq(L.Residual(_seq(L.Conv2d(2, 2, 3, padding=1, **kw))),
                                 L.Concat(L.ReLU(), L.Sigmoid())), (2, 2, 4, 4)),
        ("stochastic_eval", _seq(L.ReLU(), L.StochasticPool2d(2)), (2, 3, 6, 6)),
        ("mixed_layer", _seq(L.MixedPool2d(3, stride=2, padding=1)), (2, 3, 7, 7)),
        ("mixed_channel", _seq(_mixed_trained(rng, "channel")), (2, 3, 6, 6)),
        ("mixed_maxavg", _seq(mma), (2, 3, 6, 6)),
        ("gated_per_channel", _seq(gated), (2, 3, 6, 6)),
        ("gated_layer_overlap", _seq(gated1), (2, 3, 7, 7)),
        ("alpha", _seq(L.Sigmoid(), L.AlphaPool2d(2, alpha_init=0.3)), (2, 3, 6, 6)),
        ("alpha_geometric", _seq(L.Sigmoid(), L.AlphaPool2d(2, alpha_init=1.0)), (2, 3, 6, 6)),
        ("wavelet_haar", _seq(L.WaveletPool2d("haar")), (2, 2, 8, 8)),
        ("wavelet_db2", _seq(L.WaveletPool2d("db2")), (2, 2, 8, 12)),
        ("dft", _seq(L.DFTPool2d(3)), (2, 2, 6, 5)),
        ("lenet_classic_parts", _seq(LC.ScaledTanh(), LC.Subsampling2d(6, **kw),
                                     LC.MaskedConv2d(6, 16, 3, **kw), L.Flatten(),
                                     L.Linear(64, 4, **kw), LC.EuclideanRBF(
                                         r.choice([-1.0, 1.0], (3, 4)))), (2, 6, 8, 8)),
        ("batch_norm3d", _seq(L.BatchNorm3d(2)), (2, 2, 2, 3, 3)),
        ("unpool1d", _seq(L.MaxPool1d(2, return_indices=True), L.MaxUnpool1d(2)), (2, 3, 6)),
        ("unpool3d", _seq(L.MaxPool3d(2, return_indices=True), L.MaxUnpool3d(2)),
         (2, 2, 4, 4, 2)),
        ("adaptive_max3d", _seq(L.AdaptiveMaxPool3d((1, 2, 2))), (2, 2, 2, 4, 6)),
        ("global_avg2d", _seq(L.GlobalAvgPool2d()), (2, 3, 5, 4)),
        ("stochastic1d", _seq(L.ReLU(), L.StochasticPool1d(2)), (2, 3, 6)),
        ("stochastic3d", _seq(L.ReLU(), L.StochasticPool3d(2)), (2, 2, 4, 4, 4)),
        ("mixed1d", _seq(L.MixedPool1d(3, stride=2, padding=1)), (2, 3, 7)),
        ("mixed3d", _seq(L.MixedPool3d(2)), (2, 2, 4, 4, 4)),
        ("mixed_maxavg1d", _seq(L.MixedMaxAvgPool1d(2)), (2, 3, 6)),
        ("mixed_maxavg3d", _seq(L.MixedMaxAvgPool3d(2)), (2, 2, 4, 4, 4)),
        ("gated1d", _seq(L.GatedPool1d(2)), (2, 3, 6)),
        ("gated3d", _seq(L.GatedPool3d(2)), (2, 2, 4, 4, 4)),
        # binarized layers: the exported weight is alpha * sign(W), never the latent W
        ("binary_linear", _seq(L.Flatten(), L.BinaryLinear(12, 5, **kw)), (2, 3, 2, 2)),
        ("binary_conv_xnor", _seq(L.BinaryConv2d(2, 3, 3, weight_scale="mean", **kw)),
         (2, 2, 5, 5)),
        ("sign", _seq(L.Sign()), (2, 3, 4, 4)),
    ]


def layer_case(name, rng):
    """(model, input shape) of the case ``name`` of :func:`_layers`."""
    return next((m, s) for n, m, s in _layers(rng) if n == name)


CASES = [n for n, _, _ in _layers(np.random.default_rng(0))]


@pytest.mark.parametrize("name", CASES)
def test_layer_matches_onnxruntime(name, rng):
    model, shape = layer_case(name, rng)
    check(model, shape, rng)


def test_every_layer_type_is_covered(rng):
    cases = _layers(rng)
    seen = {type(m) for _, model, _ in cases for m in model.modules()}
    seen |= {L.RoIPool, L.RoIAlign}  # tested below (two inputs)
    public = {getattr(L, n) for n in L.__all__ if isinstance(getattr(L, n), type)
              and issubclass(getattr(L, n), Module) and not issubclass(getattr(L, n), L.Loss)}
    assert public - seen - {Module} == set()


@pytest.mark.parametrize("cls,kw", [(L.RoIPool, {}), (L.RoIAlign, {"sampling_ratio": 2}),
                                    (L.RoIAlign, {"sampling_ratio": 2, "aligned": True})])
def test_roi_layers_match_onnxruntime(cls, kw, rng):
    m = cls((2, 3), 0.5, **kw)
    x = rng.normal(size=(2, 3, 8, 9)).astype(np.float32)
    boxes = np.array([[0, 1, 1, 10, 12], [1, 0, 2, 6, 7], [1, 3.3, 0.5, 15, 9]], np.float32)
    proto = to_onnx(m, [(2, 3, 8, 9), (3, 5)], sample=[x, boxes])
    got = run_ort(proto, x, boxes)[0]
    assert rel_err(got, m.predict((x, boxes))) <= TOL


def test_roi_outside_first_layer_is_refused():
    model = L.Sequential(L.ReLU(), L.RoIPool(2, 1.0))
    with pytest.raises(ExportError, match=r"layer '1' \(RoIPool\).*\(x, boxes\)"):
        to_onnx(model, (1, 2, 4, 4))


def test_adaptive_max_indices_are_refused_with_reason():
    with pytest.raises(ExportError, match=r"layer '0' \(AdaptiveMaxPool2d\) cannot be "
                                          r"exported: its indices .* have no ONNX form"):
        to_onnx(L.Sequential(L.AdaptiveMaxPool2d(3, return_indices=True)), (1, 2, 7, 7))


def test_unpool_to_another_size(rng):
    """2x6 -> 2x3 -> 4x6: the per-plane indices become whole-tensor ones at run time."""
    model = L.Sequential(L.MaxPool2d((1, 2), return_indices=True), L.MaxUnpool2d(2))
    check(model, (1, 2, 2, 6), rng)


def test_unknown_module_is_refused_by_name():
    class Mine(Module):
        def forward(self, x, *, training=False):
            return x * 2, None
    with pytest.raises(ExportError, match=r"layer '1' \(Mine\) has no ONNX mapping"):
        to_onnx(L.Sequential(L.ReLU(), Mine()), (1, 3))


def test_bad_arguments():
    m = L.Sequential(L.ReLU())
    with pytest.raises(ValueError, match="opset must be an int from 17"):
        to_onnx(m, (1, 3), opset=13)
    with pytest.raises(ValueError, match="input_shape"):
        to_onnx(m, (1, -3))
    with pytest.raises(TypeError, match="convprop Module"):
        to_onnx(object(), (1, 3))


def test_indices_output_is_per_plane(rng):
    m = L.Sequential(L.MaxPool2d(2, return_indices=True))
    proto = to_onnx(m, (2, 3, 4, 6))
    x = rng.normal(size=(2, 3, 4, 6)).astype(np.float32)
    y, idx = m.predict(x)
    got_y, got_idx = run_ort(proto, x)
    assert rel_err(got_y, y) == 0 and np.array_equal(got_idx, idx)


@pytest.mark.parametrize("opset", [18, "newest"])
def test_newer_opsets(opset, rng):
    """Reduce* take axes as an input from opset 18; every opset up to onnx's newest runs."""
    opset = onnx.defs.onnx_opset_version() if opset == "newest" else opset
    cases = {n: (m, s) for n, m, s in _layers(rng)}
    for name in ("batch_norm_batch_stats", "adaptive_max_uneven", "lenet_classic_parts",
                 "unpool_other_size", "pad_shortcut"):
        model, shape = cases[name]
        proto = to_onnx(model, shape, opset=opset)
        x = rng.normal(size=(3,) + tuple(shape[1:])).astype(np.float32)
        assert rel_err(run_ort(proto, x)[0], model.predict(x)) <= TOL, name
        if opset == 18:
            from convprop.onnx import from_onnx
            np.testing.assert_allclose(from_onnx(proto).predict(x), model.predict(x),
                                       rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make,shape", [
    (lambda: L.MaxPool2d(2, 2, 1, ceil_mode=True), (2, 3, 3, 3)),
    (lambda: L.MaxPool2d(2, 2, 1, ceil_mode=True, return_indices=True), (2, 3, 5, 4)),
    (lambda: L.MaxPool1d(1, 3, 0, ceil_mode=True), (2, 3, 5)),
    (lambda: L.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 2, 8, 7)),
])
def test_max_pool_ceil_mode_whose_last_window_would_start_in_the_pad(make, shape, rng):
    """convprop (as PyTorch) drops a ceil-mode window that would start in the end padding;
    ONNX's MaxPool does so only from opset 22, so at 17 the file is written in floor mode
    with the end pads cut to the last window (the export had failed onnx's shape check)."""
    m = make()
    proto = to_onnx(m, shape, opset=17)
    x = rng.normal(size=(3,) + shape[1:]).astype(np.float32)
    want = m.predict(x)
    got = run_ort(proto, x)
    for g, w in zip(got, want if isinstance(want, tuple) else (want,)):
        assert g.shape == w.shape and rel_err(g, w) <= TOL


def test_checker_failure_is_an_export_error(monkeypatch):
    """onnx.checker's errors are not ValueErrors: the CLI would print a traceback."""
    def refuse(proto, full_check=False):
        raise onnx.checker.ValidationError("planted")
    monkeypatch.setattr(onnx.checker, "check_model", refuse)
    with pytest.raises(ExportError, match=r"export: the graph written for ReLU fails "
                                          r"onnx.checker .*ValidationError: planted"):
        to_onnx(L.ReLU(), (1, 3))
