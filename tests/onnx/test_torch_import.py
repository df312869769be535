"""Graphs written by ``torch.onnx.export`` (the TorchScript exporter, dynamo=False), imported
by convprop and compared with PyTorch: outputs, the input gradient and every parameter's
gradient, in float64. Networks: the zoo's torch twins (twins/torch_zoo.py: LeNet-5,
ResNet-20, ...) at opsets 9, 13 and 17 (PyTorch cannot write ResNet-20's strided slice at
opset 9), and AlexNet-, VGG-, GoogLeNet- and ResNet-50-shaped
networks built here with random weights (small widths and images, so the test stays fast)."""

import io
import os
import sys
import warnings

import numpy as np
import pytest

from ortutil import onnx  # noqa: F401 (skips without onnx)

from convprop.onnx import OnnxImportError, from_onnx

torch = pytest.importorskip("torch", reason="PyTorch not installed: torch import tests skipped")
nn = torch.nn
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from twins import torch_zoo  # noqa: E402
from zoo_configs import SMALL  # noqa: E402

TWINS = {k: v for k, v in SMALL.items() if k != "lenet5_classic"}  # not exported via torch here


def randomize(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.3)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


def torch_to_onnx(model, shape, opset):
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, *shape),), f, dynamo=False,
                          opset_version=opset, input_names=["x"], output_names=["y"],
                          training=torch.onnx.TrainingMode.PRESERVE,  # no Conv+BN fusion
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return f.getvalue()


def compare(model, shape, opset, rng):
    """Import the export of ``model``; outputs and all gradients equal PyTorch's."""
    imported = from_onnx(torch_to_onnx(model, shape, opset)).astype(np.float64)
    model = model.double()
    x = rng.normal(size=(3,) + shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = model(xt)
    y, cache = imported.forward(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-9, atol=1e-10)
    dy = rng.normal(size=y.shape)
    yt.backward(torch.tensor(dy))
    imported.zero_grad()
    dx = imported.backward(dy, cache)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-8, atol=1e-10)
    mine = {p.value.tobytes(): p for p in imported.parameters()}
    n = 0
    for name, p in model.named_parameters():
        q = mine.get(p.detach().numpy().tobytes())
        if q is None:  # Gemm with transB=0 stores the transpose
            q = mine[p.detach().numpy().T.copy().tobytes()]
            np.testing.assert_allclose(q.grad.T, p.grad.numpy(), rtol=1e-8, atol=1e-10)
        else:
            np.testing.assert_allclose(q.grad, p.grad.numpy(), rtol=1e-8, atol=1e-10)
        n += 1
    assert n == len(imported.parameters())
    return imported


@pytest.mark.parametrize("name,opset", [
    ("lenet5", 9), ("lenet5", 17), ("alexnet_cifar", 9), ("alexnet_cifar", 13),
    ("vgg_cifar", 17), ("resnet20", 13), ("resnet20", 17), ("googlenet_mini", 9),
    ("c3d_mini", 17), ("cnn1d", 9)])
def test_twin_matches_pytorch(name, opset, rng):
    cfg, shape = TWINS[name]
    model = randomize(torch_zoo.TORCH_MODELS[name](**cfg))
    if name == "alexnet_cifar" and opset > 9:
        # from opset 11 PyTorch writes LocalResponseNorm with an If node (control flow)
        with pytest.raises(OnnxImportError, match=r"node '.*If.*' \(If\): operator 'If'"):
            from_onnx(torch_to_onnx(model, shape, opset))
        return
    compare(model, shape, opset, rng)


def alexnet_shaped():
    return nn.Sequential(
        nn.Conv2d(3, 8, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(16, 24, 3, padding=1), nn.ReLU(), nn.Conv2d(24, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(), nn.Linear(16, 32), nn.ReLU(),
        nn.Dropout(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))


def vgg_shaped():
    layers, c = [], 3
    for v in (8, "M", 16, "M", 16, 16, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(16 * 2 * 2, 32), nn.ReLU(True),
                         nn.Dropout(), nn.Linear(32, 10))


class Inception(nn.Module):
    def __init__(self, cin, c1, c3r, c3, c5r, c5, pp):
        super().__init__()

        def cbr(i, o, k):
            return nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2, bias=False),
                                 nn.BatchNorm2d(o, eps=1e-3), nn.ReLU(True))
        self.b1 = cbr(cin, c1, 1)
        self.b2 = nn.Sequential(cbr(cin, c3r, 1), cbr(c3r, c3, 3))
        self.b3 = nn.Sequential(cbr(cin, c5r, 1), cbr(c5r, c5, 3))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), cbr(cin, pp, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class GoogLeNetShaped(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU(True), nn.MaxPool2d(3, 2, ceil_mode=True))
        self.a = Inception(8, 4, 4, 8, 2, 4, 4)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.b = Inception(20, 8, 4, 8, 2, 4, 4)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                                  nn.Linear(24, 10))

    def forward(self, x):
        return self.head(self.b(self.pool(self.a(self.stem(x)))))


class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        out = 4 * width
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(True), nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out))
        self.down = None if stride == 1 and cin == out else nn.Sequential(
            nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        return torch.relu(self.body(x) + (x if self.down is None else self.down(x)))


def resnet50_shaped():
    blocks, c = [], 8
    for i, (w, n) in enumerate([(2, 2), (4, 2), (8, 1)]):
        for b in range(n):
            blocks.append(Bottleneck(c, w, 2 if (b == 0 and i > 0) else 1))
            c = 4 * w
    return nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.BatchNorm2d(8),
                         nn.ReLU(True), nn.MaxPool2d(3, 2, 1), *blocks,
                         nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(c, 10))


SHAPED = {"alexnet": (alexnet_shaped, (3, 63, 63)), "vgg": (vgg_shaped, (3, 16, 16)),
          "googlenet": (GoogLeNetShaped, (3, 24, 24)), "resnet50": (resnet50_shaped, (3, 16, 16))}


@pytest.mark.parametrize("name,opset", [("alexnet", 17), ("vgg", 11), ("googlenet", 17),
                                        ("resnet50", 17)])
def test_shaped_network_matches_pytorch(name, opset, rng):
    torch.manual_seed(0)
    make, shape = SHAPED[name]
    compare(randomize(make()), shape, opset, rng)


@pytest.mark.parametrize("name", ["lenet5", "resnet20"])
def test_default_dynamo_exporter_with_its_external_data_file(name, tmp_path, rng):
    """PyTorch's default exporter (dynamo) writes the weights to ``model.onnx.data`` beside
    the model: ``load(path)`` reads them (refused before: 'keeps tensors in external
    files'), and the network computes what PyTorch does."""
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")
    from convprop.onnx import load
    cfg, shape = TWINS[name]
    model = randomize(torch_zoo.TORCH_MODELS[name](**cfg))
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, *shape),), str(path), dynamo=True,
                          dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
    assert onnx.load(str(path), load_external_data=False).graph.initializer[0].data_location \
        == onnx.TensorProto.EXTERNAL  # the case this test is about
    x = rng.normal(size=(3,) + tuple(shape)).astype(np.float32)
    want = model(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(load(path).predict(x), want, rtol=1e-4, atol=1e-5)
