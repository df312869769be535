"""``build``: names, configs (JSON round trip rebuilds the architecture), seeding, dtype,
the size arguments, builder validation, and AlexNet's distinctive parts."""

import json

import numpy as np
import pytest

from convprop.layers.lenet_classic import EuclideanRBF, RBFLoss
from convprop.layers.loss import criterion_for
from convprop.layers import (BatchNorm2d, Conv1d, Conv2d, Conv3d, CrossEntropyLoss, Dropout,
                             Flatten, Linear, LocalResponseNorm, MaxPool2d, PadShortcut)
from convprop.models import MODELS, build
from convprop.optim import SGD

SMALL = {  # fast configurations of every model (non-default values where possible)
    "lenet5": {"in_channels": 3, "num_classes": 100, "input_size": 32},
    "lenet5_classic": {"in_channels": 2, "input_size": 28, "c5_channels": 8},
    "alexnet_cifar": {"input_size": 20, "width": 8, "num_classes": 7},
    "vgg_cifar": {"input_size": 12, "stages": ((4, 4), (8,)), "hidden": 16, "in_channels": 1},
    "resnet20": {"input_size": 7, "widths": (3, 8, 16), "blocks_per_stage": 2},
    "googlenet_mini": {"input_size": 7, "in_channels": 2, "num_classes": 5},
    "c3d_mini": {"input_size": [4, 8, 12], "widths": [3, 4, 5], "in_channels": 2,
                 "num_classes": 3},
    "cnn1d": {"input_size": 24, "widths": [3, 5], "pools": [2, 3], "kernel_size": 3},
}
NAMES = sorted(MODELS)


def small_input(name, rng, n=2, dtype=np.float64):
    cfg = SMALL[name]
    s = cfg["input_size"]
    spatial = tuple(s) if isinstance(s, list) else (s,) if name == "cnn1d" else (s, s)
    c = cfg.get("in_channels", 1 if name == "cnn1d" else 3)
    return rng.standard_normal((n, c, *spatial)).astype(dtype)


def shapes(model):
    return {k: v.shape for k, v in model.state_dict().items()}


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="models.build: unknown model 'resnet21'") as e:
        build("resnet21")
    for n in MODELS:
        assert repr(n) in str(e.value)
    with pytest.raises(ValueError, match="models.build: unknown model"):
        build(["lenet5"])


def test_bad_arguments_name_the_builder():
    with pytest.raises(TypeError, match="models.build: lenet5.*unexpected keyword.*'depth'"):
        build("lenet5", depth=3)
    with pytest.raises(TypeError, match="models.build: rng must be a numpy.random.Generator"):
        build("lenet5", rng=0)
    with pytest.raises(TypeError, match="models.build: config must be JSON-serialisable"):
        build("lenet5", num_classes=object())


@pytest.mark.parametrize("name,config,match", [
    ("alexnet_cifar", {"width": 5}, "alexnet_cifar: width must be an even int"),
    ("resnet20", {"widths": ()}, "resnet20: widths must be a non-empty list"),
    ("resnet20", {"widths": (4, 0)}, r"resnet20: widths\[1\] must be >= 1"),
    ("resnet20", {"blocks_per_stage": 0}, "resnet20: blocks_per_stage must be >= 1"),
    ("resnet20", {"shortcut": "C"}, "resnet20: shortcut must be 'A' or 'B'"),
    ("googlenet_mini", {"input_size": 0}, "googlenet_mini: input_size must be >= 1"),
    ("lenet5", {"input_size": 4}, "models: input_size 4 is too small"),
    ("vgg_cifar", {"input_size": 4}, "models: input_size 4 is too small"),
    ("alexnet_cifar", {"input_size": 0}, "models: input_size 0 is too small"),
    ("lenet5_classic", {"input_size": 33}, r"lenet5_classic: input_size must be an int in"),
    ("lenet5_classic", {"num_classes": 7}, "lenet5_classic: the default codes are"),
])
def test_builder_validation(name, config, match):
    with pytest.raises(ValueError, match=match):
        build(name, **config)


@pytest.mark.parametrize("name", NAMES)
def test_config_json_round_trip_rebuilds_the_architecture(name, rng):
    model = build(name, rng=rng, **SMALL[name])
    text = json.dumps(model.config)
    assert model.config == {"name": name, **json.loads(json.dumps(SMALL[name]))}
    again = build(**json.loads(text))
    assert again.config == model.config
    assert shapes(again) == shapes(model)
    assert list(again.state_dict()) == list(model.state_dict())
    assert repr(again) == repr(model)
    default = build(name)
    assert default.config == {"name": name}
    if name != "googlenet_mini":  # googlenet_mini's sizes do not depend on the config
        assert shapes(default) != shapes(model)


def test_config_numpy_scalars_become_plain_numbers():
    model = build("lenet5", num_classes=np.int64(7), input_size=np.int32(28))
    assert model.config == {"name": "lenet5", "num_classes": 7, "input_size": 28}
    assert type(model.config["num_classes"]) is int
    json.dumps(model.config)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_model(name):
    a = build(name, rng=np.random.default_rng(5), **SMALL[name])
    b = build(name, rng=np.random.default_rng(5), **SMALL[name])
    c = build(name, rng=np.random.default_rng(6), **SMALL[name])
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    assert any(not np.array_equal(sa[k], sc[k]) for k in sa)
    x = small_input(name, np.random.default_rng(0), dtype=np.float32)
    # training mode: dropout masks come from generators seeded by the same rng
    np.testing.assert_array_equal(a.forward(x, training=True)[0],
                                  b.forward(x, training=True)[0])


@pytest.mark.parametrize("name", NAMES)
def test_float32_by_default_end_to_end(name, rng):
    model = build(name, rng=rng, **SMALL[name])
    for k, v in model.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert v.dtype == np.float32, k
    x = small_input(name, rng, dtype=np.float32)
    y, cache = model.forward(x, training=True)
    assert y.dtype == np.float32
    loss_fn = criterion_for(model)  # RBFLoss for lenet5_classic's penalties
    assert isinstance(loss_fn, RBFLoss if name == "lenet5_classic" else CrossEntropyLoss)
    loss, lc = loss_fn.forward(y, rng.integers(0, y.shape[1], len(x)))
    dx = model.backward(loss_fn.backward(1.0, lc), cache)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    opt.step()
    for n, p in model.named_parameters():
        assert p.value.dtype == np.float32 and p.grad.dtype == np.float32, n
        assert np.all(np.isfinite(p.value)), n
    assert model.predict(x).dtype == np.float32


@pytest.mark.parametrize("name", NAMES)
def test_size_arguments_are_respected(name, rng):
    cfg = SMALL[name]
    model = build(name, rng=rng, dtype=np.float64, **cfg)
    x = small_input(name, rng)
    assert model.predict(x).shape == (2, cfg.get("num_classes", 10))
    first = next(m for m in model.modules() if isinstance(m, (Conv1d, Conv2d, Conv3d)))
    assert first.in_channels == x.shape[1]
    if name == "lenet5_classic":  # one RBF unit per class after F6
        assert list(model.modules())[-1].num_classes == cfg.get("num_classes", 10)
        assert isinstance(list(model.modules())[-1], EuclideanRBF)
    else:
        last = [m for m in model.modules() if isinstance(m, Linear)][-1]
        assert last.out_features == cfg.get("num_classes", 10)
    wrong = np.zeros((1, x.shape[1] + 1) + x.shape[2:])
    with pytest.raises(ValueError, match="channels"):
        model.predict(wrong)


def test_lenet5_on_cifar_sized_input(rng):
    """3x32x32 with 100 classes: 16 x 6 x 6 = 576 features into the first Linear."""
    model = build("lenet5", rng=rng, in_channels=3, num_classes=100, input_size=32)
    lin = [m for m in model.modules() if isinstance(m, Linear)]
    assert [(m.in_features, m.out_features) for m in lin] == [(576, 120), (120, 84), (84, 100)]
    assert model[0].weight.shape == (6, 3, 5, 5)
    assert model.predict(np.zeros((2, 3, 32, 32), np.float32)).shape == (2, 100)
    assert build("lenet5")[7].in_features == 400  # the classic 16*5*5 at 28x28
    with pytest.raises(ValueError):  # sized for 32, so a 28x28 image does not fit
        model.predict(np.zeros((1, 3, 28, 28), np.float32))


def test_alexnet_has_alexnets_parts():
    model = build("alexnet_cifar", rng=np.random.default_rng(0))
    mods = list(model)
    convs = [m for m in mods if isinstance(m, Conv2d)]
    assert convs[0].kernel_size == (5, 5) and convs[0].stride == (2, 2)  # large strided stem
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]  # AlexNet's two-GPU split
    lrns = [m for m in mods if isinstance(m, LocalResponseNorm)]
    assert len(lrns) == 2
    for m in lrns:
        assert (m.size, m.alpha, m.beta, m.k) == (5, 1e-4, 0.75, 2.0)
    pools = [m for m in mods if isinstance(m, MaxPool2d)]
    assert len(pools) == 3
    for p in pools:  # overlapping: stride < kernel
        assert p.kernel_size == (3, 3) and p.stride == (2, 2)
    flat = next(i for i, m in enumerate(mods) if isinstance(m, Flatten))
    drops = [i for i, m in enumerate(mods) if isinstance(m, Dropout)]
    assert len(drops) == 2 and all(i > flat for i in drops)  # dropout in the classifier
    assert all(mods[i].p == 0.5 for i in drops)
    assert all(isinstance(mods[i + 1], Linear) for i in drops)
    assert not any(isinstance(m, BatchNorm2d) for m in mods)
    assert build("alexnet_cifar", dropout=0.2)[drops[0]].p == 0.2


def test_resnet20_has_twenty_weighted_layers_and_option_a_shortcuts():
    model = build("resnet20", rng=np.random.default_rng(0))
    convs = [m for m in model.modules() if isinstance(m, Conv2d)]
    lins = [m for m in model.modules() if isinstance(m, Linear)]
    assert len(convs) + len(lins) == 20
    pads = [m for m in model.modules() if isinstance(m, PadShortcut)]
    assert [(p.out_channels, p.stride) for p in pads] == [(32, 2), (64, 2)]
    assert model.num_parameters() == 269722  # the paper's ~0.27M
    b = build("resnet20", shortcut="B", rng=np.random.default_rng(0))
    assert not any(isinstance(m, PadShortcut) for m in b.modules())
    assert len([m for m in b.modules() if isinstance(m, Conv2d)]) == 21
