"""Every zoo model against an independent PyTorch definition (twins/torch_zoo.py) in
float64, weights copied by name (strict): forward in training and evaluation mode, the loss,
the input gradient, every parameter gradient and the batch-norm buffers (atol 1e-10), and two
SGD steps (momentum 0.9, weight decay 5e-4) against torch.optim.SGD.

Dropout: with p > 0 in training mode, the torch side applies convprop's own keep-masks (read
from the forward caches), so the scaling and routing are compared exactly; the cases with
``dropout=0.0`` check the deterministic path without any injection.
LeNet-5 as published (``lenet5_classic``) outputs RBF penalties and trains with its own
criterion (``criterion_for``: eq. 9's RBFLoss), written again here in torch.
Shapes are kept small (batch 3, small widths and inputs) for speed; one evaluation-mode
forward per model runs the default configuration at its full input size.
"""

import numpy as np
import pytest

from convprop.layers import BatchNorm1d, BatchNorm2d, BatchNorm3d, Dropout
from convprop.layers.loss import criterion_for
from convprop.models import MODELS, build
from convprop.optim import SGD

ATOL = 1e-10

CASES = [  # (model name, config), small enough to run in well under a second each
    ("lenet5", {}),
    ("lenet5", {"in_channels": 3, "num_classes": 100, "input_size": 32}),
    ("lenet5_classic", {}),
    ("lenet5_classic", {"input_size": 28, "in_channels": 2}),
    ("alexnet_cifar", {"input_size": 20, "width": 8}),
    ("alexnet_cifar", {"input_size": 20, "width": 8, "dropout": 0.0}),
    ("vgg_cifar", {"input_size": 12, "stages": ((4, 4), (8,), (8, 8)), "hidden": 16}),
    ("vgg_cifar", {"input_size": 12, "stages": ((4,), (8,)), "hidden": 16, "dropout": 0.0}),
    ("resnet20", {"input_size": 7, "widths": (3, 8, 16)}),  # 3 -> 8: odd channel pad
    ("resnet20", {"input_size": 7, "widths": (4, 6, 6), "blocks_per_stage": 1,
                  "shortcut": "B"}),
    ("googlenet_mini", {"input_size": 7, "in_channels": 2, "num_classes": 5}),
    ("c3d_mini", {"input_size": (4, 8, 8), "widths": (3, 4, 5)}),
    ("cnn1d", {"input_size": 40, "in_channels": 2, "widths": (3, 5), "pools": (4, 2)}),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]


@pytest.fixture
def zoo(torch):
    from twins import torch_zoo  # needs torch: imported only once the fixture ran
    return torch_zoo


def test_every_model_has_a_case():
    assert {n for n, _ in CASES} == set(MODELS)


def randomize_bn(model, rng):
    """Non-trivial batch-norm affine parameters and running statistics, so a mix-up of
    weight/bias or of mean/var cannot hide behind ones and zeros."""
    for m in model.modules():
        if isinstance(m, (BatchNorm1d, BatchNorm2d, BatchNorm3d)):
            c = m.num_features
            m.weight.value = rng.uniform(0.5, 1.5, c)
            m.bias.value = rng.standard_normal(c) * 0.2
            m.set_buffer("running_mean", rng.standard_normal(c) * 0.3)
            m.set_buffer("running_var", rng.uniform(0.5, 2.0, c))


def make_pair(torch, zoo, name, config, rng):
    model = build(name, rng=rng, dtype=np.float64, **config)
    randomize_bn(model, rng)
    tmodel = zoo.TORCH_MODELS[name](**config).double()
    tmodel.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            model.state_dict().items()}, strict=True)
    return model, tmodel


#: (in_channels, input spatial shape, classes) of each model's default configuration
DEFAULTS = {"lenet5": (1, (28, 28), 10), "lenet5_classic": (1, (32, 32), 10),
            "c3d_mini": (1, (16, 32, 32), 8), "cnn1d": (1, (784,), 10)}


def inputs(name, config, rng, n=3):
    cin, shape, classes = DEFAULTS.get(name, (3, (32, 32), 10))
    cin = config.get("in_channels", cin)
    size = config.get("input_size")
    if size is not None:
        shape = tuple(size) if isinstance(size, tuple) else (size,) * len(shape)
    x = rng.standard_normal((n, cin, *shape))
    target = rng.integers(0, config.get("num_classes", classes), n)
    return x, target


def inject_dropout_masks(torch, model, cache, tmodel):
    """Give each torch MaskDropout the keep-mask convprop drew (dropout is top-level)."""
    for i, m in enumerate(model):
        if isinstance(m, Dropout):
            mask = cache[i].mask
            tmodel[i].mask = None if mask is None else torch.from_numpy(mask.astype(np.float64))


def assert_close(a, b, what):
    np.testing.assert_allclose(np.asarray(a), b.detach().numpy(), rtol=0, atol=ATOL,
                               err_msg=what)


def assert_same_state(model, tmodel):
    tstate = tmodel.state_dict()
    state = model.state_dict()
    assert sorted(state) == sorted(tstate)  # torch interleaves buffers; order is free
    for k, v in state.items():
        assert_close(v, tstate[k], f"state_dict[{k!r}]")


def torch_loss(torch, name, yt, target):
    """The criterion in torch: cross-entropy of logits, or for LeNet-5's RBF penalties the
    paper's eq. 9, mean_n (y_n,t_n + log(exp(-j) + sum_i exp(-y_n,i))) with j = 1."""
    t = torch.from_numpy(target)
    if name != "lenet5_classic":
        return torch.nn.functional.cross_entropy(yt, t)
    z = torch.cat([torch.full((len(yt), 1), -1.0, dtype=yt.dtype), -yt], dim=1)
    return (yt.gather(1, t[:, None])[:, 0] + torch.logsumexp(z, dim=1)).mean()


def step_and_compare(torch, model, tmodel, x, target, name=None):
    """One training forward/backward on both; compare everything observable."""
    model.zero_grad()
    tmodel.zero_grad()
    y, cache = model.forward(x, training=True)
    inject_dropout_masks(torch, model, cache, tmodel)
    loss_fn = criterion_for(model)
    loss, lcache = loss_fn.forward(y, target)
    dx = model.backward(loss_fn.backward(1.0, lcache), cache)

    tmodel.train()
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = tmodel(xt)
    lt = torch_loss(torch, name, yt, target)
    lt.backward()

    assert_close(y, yt, "logits")
    assert_close(loss, lt, "loss")
    assert_close(dx, xt.grad, "input gradient")
    tparams = dict(tmodel.named_parameters())
    names = [n for n, _ in model.named_parameters()]
    assert names == list(tparams)
    for n, p in model.named_parameters():
        assert tparams[n].grad is not None, n
        assert_close(p.grad, tparams[n].grad, f"grad of {n}")
    assert_same_state(model, tmodel)  # batch-norm running statistics after the update


@pytest.mark.parametrize("name,config", CASES, ids=IDS)
def test_training_forward_backward_parity(torch, zoo, rng, name, config):
    model, tmodel = make_pair(torch, zoo, name, config, rng)
    x, target = inputs(name, config, rng)
    step_and_compare(torch, model, tmodel, x, target, name)


@pytest.mark.parametrize("name,config", CASES, ids=IDS)
def test_eval_forward_parity(torch, zoo, rng, name, config):
    model, tmodel = make_pair(torch, zoo, name, config, rng)
    x, _ = inputs(name, config, rng)
    before = model.state_dict()
    y, _ = model.forward(x, training=False)
    tmodel.eval()
    with torch.no_grad():
        assert_close(y, tmodel(torch.from_numpy(x)), "eval logits")
    for k, v in model.state_dict().items():  # evaluation leaves the statistics alone
        np.testing.assert_array_equal(v, before[k], err_msg=k)


@pytest.mark.parametrize("name,config", CASES, ids=IDS)
def test_sgd_training_steps_parity(torch, zoo, rng, name, config):
    """Two full steps (the second uses the momentum buffer), then an evaluation forward
    with the updated running statistics."""
    model, tmodel = make_pair(torch, zoo, name, config, rng)
    hyper = dict(lr=0.05, momentum=0.9, weight_decay=5e-4)
    opt = SGD(model.parameters(), **hyper)
    topt = torch.optim.SGD(tmodel.parameters(), **hyper)
    for _ in range(2):
        x, target = inputs(name, config, rng)
        step_and_compare(torch, model, tmodel, x, target, name)
        opt.step()
        topt.step()
        assert_same_state(model, tmodel)  # parameters and buffers after the update
    x, _ = inputs(name, config, rng)
    tmodel.eval()
    with torch.no_grad():
        assert_close(model.predict(x), tmodel(torch.from_numpy(x)), "eval logits after SGD")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_default_config_eval_parity(torch, zoo, rng, name):
    """The default architecture at its full input size (one image, forward only)."""
    model, tmodel = make_pair(torch, zoo, name, {}, rng)
    x, _ = inputs(name, {}, rng, n=1)
    tmodel.eval()
    with torch.no_grad():
        assert_close(model.predict(x), tmodel(torch.from_numpy(x)), "eval logits")
