"""convprop -> ONNX -> convprop: the same outputs and the same gradients (input and every
parameter), in float64, for every zoo model and every layer type (for the compositions of
layers without an ONNX operator: output and input gradient); the imported parameters are
trainable (an SGD step changes them)."""

import numpy as np
import pytest

from ortutil import onnx  # noqa: F401 (skips without onnx)

from convprop.layers.container import Sequential
from convprop.onnx import GraphModule, ImportedSequential, from_onnx, to_onnx
from convprop.onnx.export_compose import COMPOSED
from test_export import CASES, ZOO, layer_case, zoo_model


def roundtrip(model, shape, rng, x=None, flip=False, params=True, rtol=1e-9):
    """``flip``: the model's convolution is mode="convolution", whose ONNX Conv holds the
    reversed kernel (so its gradient is the reversed one too)."""
    model.astype(np.float64)
    imported = from_onnx(to_onnx(model, shape)).astype(np.float64)
    if x is None:
        x = rng.normal(size=(2,) + tuple(shape[1:]))
    y, c = model.forward(x)
    yi, ci = imported.forward(x)
    ys, yis = (y, yi) if isinstance(y, tuple) else ((y,), (yi,))
    for a, b in zip(ys, yis):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol)
    dy = rng.normal(size=ys[0].shape)
    model.zero_grad()
    imported.zero_grad()
    dx = model.backward(dy, c)
    dxi = imported.backward(dy, ci)
    np.testing.assert_allclose(dxi, dx, rtol=rtol, atol=rtol)
    if not params:
        return imported
    g, gi = [p.grad for p in model.parameters()], [p.grad for p in imported.parameters()]
    assert len(g) == len(gi)
    for a, b in zip(g, gi):
        if flip and a.ndim > 2:
            a = a[:, :, ::-1, ::-1]
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-10)
    return imported


def _composed(model) -> bool:
    """A model with a layer ONNX has no operator for: its ONNX form has parameters of its own
    (e.g. a depthwise Conv's window), so only outputs and input gradients compare."""
    return any(isinstance(m, tuple(COMPOSED)) or getattr(m, "divisor_override", None) or
               getattr(m, "ceil_mode", False) or getattr(m, "track_running_stats", 1) is False
               or hasattr(m, "binary_weight")  # the file holds alpha * sign(W), not W
               for m in model.modules())


@pytest.mark.parametrize("key", sorted(ZOO))
def test_zoo_round_trip(key, rng):
    model, shape = zoo_model(key, rng)
    imported = roundtrip(model, shape, rng, params=not _composed(model))
    chain = key in ("lenet5", "alexnet_cifar", "vgg_cifar", "c3d_mini", "cnn1d")
    assert isinstance(imported, ImportedSequential if chain else GraphModule)
    if chain:
        assert isinstance(imported, Sequential)


# Sign exports as Where(Less(x, 0), -1, 1), its evaluation-time function; the importer's set
# has no comparison operators, and its straight-through backward is a training rule, not the
# derivative of that function, so it has no round trip to check (onnxruntime checks the export)
NO_ROUND_TRIP = {"sign"}


@pytest.mark.parametrize("name", [n for n in CASES if n not in NO_ROUND_TRIP])
def test_layer_round_trip(name, rng):
    model, shape = layer_case(name, rng)
    composed = _composed(model)
    # float attributes and composed constants (1/divisor, 1/p, ...) are float32 in the file;
    # a composed layer's ONNX form has parameters of its own (e.g. a depthwise Conv's window)
    roundtrip(model, shape, rng, flip=name == "conv2d_convolution_mode",
              params=not composed, rtol=1e-6)


def test_imported_parameters_train(rng):
    model, shape = zoo_model("lenet5", rng)
    imported = from_onnx(to_onnx(model, shape))
    x = rng.normal(size=(2, 1, 28, 28)).astype(np.float32)
    y, c = imported.forward(x, training=True)
    imported.zero_grad()
    imported.backward(np.ones_like(y), c)
    before = [p.value.copy() for p in imported.parameters()]
    for p in imported.parameters():
        p.value = p.value - 0.1 * p.grad
    assert all(not np.array_equal(a, p.value) for a, p in zip(before, imported.parameters()))
    assert len(imported.state_dict()) == len(model.state_dict()) - 0  # no BN here


def test_graph_node_names_are_readable(rng):
    model, shape = zoo_model("resnet20", rng)
    imported = from_onnx(to_onnx(model, shape))
    names = [n.onnx_name for n in imported.nodes]
    assert "0/Conv" in names and any(n.endswith("body.1/BatchNormalization") for n in names)
    assert "0_Conv.weight" in imported.state_dict()


@pytest.mark.parametrize("key", ["resnet20", "googlenet_mini", "lenet5"])
def test_imported_model_exports_again(key, rng):
    """ONNX -> convprop -> ONNX -> convprop: a fine-tuned import can be written back."""
    model, shape = zoo_model(key, rng)
    once = from_onnx(to_onnx(model, shape))
    twice = from_onnx(to_onnx(once, shape))
    x = rng.normal(size=(2,) + shape[1:]).astype(np.float32)
    np.testing.assert_allclose(twice.predict(x), model.predict(x), rtol=1e-5, atol=1e-5)


def test_imported_graph_fine_tunes_with_fit(rng):
    """An imported DAG trains with convprop's own loop: the loss falls."""
    from convprop.layers import CrossEntropyLoss
    from convprop.optim import SGD
    from convprop.train import fit
    model, shape = zoo_model("resnet20", rng)
    net = from_onnx(to_onnx(model, shape))
    x = rng.normal(size=(32,) + shape[1:]).astype(np.float32)
    y = rng.integers(0, 10, 32)
    hist = fit(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.05, momentum=0.9), (x, y),
               epochs=4, batch_size=16, rng=rng, verbose=0)
    losses = [r["loss"] for r in hist.records]
    assert losses[-1] < losses[0]
