"""Section 3: no garbage reported as success. Hyperparameters outside their domain or not
finite, state dicts with values that are not real finite numbers, and training runs that go
non-finite: each refused with the exact exception type and a message naming the argument,
key or cause."""

import math

import numpy as np
import pytest

from convprop.layers import Conv2d, CrossEntropyLoss, Linear, Sequential
from convprop.layers.module import Parameter, StateDictError
from convprop.optim import (SGD, Adam, AdamW, CosineAnnealingLR, ExponentialLR, LinearLR,
                            MultiStepLR, ReduceLROnPlateau, RMSprop, StepLR, adam_update,
                            rmsprop_update, sgd_update)
from convprop.train import Callback, NonFiniteLossError, fit

NAN, INF = float("nan"), float("inf")
# the runs that go non-finite on purpose overflow in NumPy, which warns
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _p():
    return [Parameter(np.ones(3))]


# (constructor, exception type, needle naming the argument)
HYPER = {
    "sgd-lr-nan": (lambda: SGD(_p(), lr=NAN), ValueError, "SGD: lr must be finite"),
    "sgd-lr-inf": (lambda: SGD(_p(), lr=INF), ValueError, "SGD: lr must be finite"),
    "sgd-lr-negative": (lambda: SGD(_p(), lr=-0.1), ValueError, "SGD: lr must be >= 0"),
    "sgd-lr-string": (lambda: SGD(_p(), lr="0.1"), TypeError, "SGD: lr must be a real"),
    "sgd-lr-bool": (lambda: SGD(_p(), lr=True), TypeError, "SGD: lr must be a real"),
    "sgd-lr-complex": (lambda: SGD(_p(), lr=1j), TypeError, "SGD: lr must be a real"),
    "sgd-momentum-inf": (lambda: SGD(_p(), momentum=INF), ValueError, "momentum must be finite"),
    "sgd-dampening-nan": (lambda: SGD(_p(), dampening=NAN), ValueError, "dampening must be"),
    "sgd-weight-decay-inf": (lambda: SGD(_p(), weight_decay=INF), ValueError,
                             "weight_decay must be finite"),
    "sgd-nesterov-string": (lambda: SGD(_p(), momentum=0.9, nesterov="no"), TypeError,
                            "nesterov must be a bool"),
    "adam-eps-zero": (lambda: Adam(_p(), eps=0.0), ValueError, "Adam: eps must be > 0"),
    "adam-eps-negative": (lambda: Adam(_p(), eps=-1e-8), ValueError, "eps must be > 0"),
    "adam-eps-inf": (lambda: Adam(_p(), eps=INF), ValueError, "eps must be finite"),
    "adam-beta1-one": (lambda: Adam(_p(), betas=(1.0, 0.999)), ValueError, r"betas[0]"),
    "adam-beta2-nan": (lambda: Adam(_p(), betas=(0.9, NAN)), ValueError, r"betas[1]"),
    "adam-betas-one-value": (lambda: Adam(_p(), betas=(0.9,)), TypeError, "betas must be a pair"),
    "adam-betas-string": (lambda: Adam(_p(), betas="ab"), TypeError, "betas must be a pair"),
    "adam-amsgrad-2": (lambda: Adam(_p(), amsgrad=2), TypeError, "amsgrad must be a bool"),
    "adamw-weight-decay-nan": (lambda: AdamW(_p(), weight_decay=NAN), ValueError,
                               "AdamW: weight_decay must be finite"),
    "rmsprop-alpha-negative": (lambda: RMSprop(_p(), alpha=-0.5), ValueError, "alpha must be >= 0"),
    "rmsprop-alpha-inf": (lambda: RMSprop(_p(), alpha=INF), ValueError, "alpha must be finite"),
    "rmsprop-eps-zero": (lambda: RMSprop(_p(), eps=0), ValueError, "RMSprop: eps must be > 0"),
    "rmsprop-momentum-nan": (lambda: RMSprop(_p(), momentum=NAN), ValueError, "momentum must"),
    "rule-sgd-lr-inf": (lambda: sgd_update(np.ones(2), np.ones(2), {}, lr=INF), ValueError,
                        "sgd_update: lr must be finite"),
    "rule-adam-eps-zero": (lambda: adam_update(np.ones(2), np.zeros(2), {}, eps=0.0),
                           ValueError, "adam_update: eps must be > 0"),
    "rule-rmsprop-centered-string": (lambda: rmsprop_update(np.ones(2), np.ones(2), {},
                                                            centered="yes"),
                                     TypeError, "centered must be a bool"),
    "lr-setter-inf": (lambda: setattr(SGD(_p(), lr=0.1), "lr", INF), ValueError,
                      "lr must be finite"),
    "steplr-gamma-inf": (lambda: StepLR(SGD(_p()), 1, gamma=INF), ValueError,
                         "StepLR: gamma must be finite"),
    "steplr-gamma-zero": (lambda: StepLR(SGD(_p()), 1, gamma=0.0), ValueError, "gamma must be in"),
    "steplr-gamma-nan": (lambda: StepLR(SGD(_p()), 1, gamma=NAN), TypeError, "gamma"),
    "multistep-gamma-inf": (lambda: MultiStepLR(SGD(_p()), [1], gamma=-INF), ValueError,
                            "gamma must be finite"),
    "exponential-gamma-inf": (lambda: ExponentialLR(SGD(_p()), INF), ValueError,
                              "ExponentialLR: gamma must be finite"),
    "cosine-eta-inf": (lambda: CosineAnnealingLR(SGD(_p()), 5, eta_min=INF), ValueError,
                       "eta_min must be finite"),
    "linear-start-zero": (lambda: LinearLR(SGD(_p()), start_factor=0.0), ValueError,
                          "start_factor"),
    "plateau-factor-one": (lambda: ReduceLROnPlateau(SGD(_p()), factor=1.0), ValueError,
                           "factor must be in"),
    "plateau-factor-inf": (lambda: ReduceLROnPlateau(SGD(_p()), factor=INF), ValueError,
                           "factor must be finite"),
    "plateau-min-lr-inf": (lambda: ReduceLROnPlateau(SGD(_p()), min_lr=INF), ValueError,
                           "min_lr must be finite"),
    "plateau-threshold-inf": (lambda: ReduceLROnPlateau(SGD(_p()), threshold=INF), ValueError,
                              "threshold must be finite"),
}


@pytest.mark.parametrize("case", list(HYPER))
def test_hyperparameters_finite_and_in_domain(case):
    make, exc, needle = HYPER[case]
    with pytest.raises(exc) as e:
        make()
    assert type(e.value) is exc and needle in str(e.value), str(e.value)


def test_rmsprop_alpha_above_one_is_allowed_as_in_pytorch():
    """Documented, not refused: alpha > 1 weights g² negatively (PyTorch accepts it)."""
    from convprop.optim.updates import check_rmsprop
    opt = RMSprop(_p(), alpha=1.5)
    assert opt.hyperparams["alpha"] == 1.5
    assert "alpha > 1" in check_rmsprop.__doc__


@pytest.mark.parametrize("edit, exc, needle", [
    (lambda sd: sd["hyperparams"].update(lr=INF), ValueError, "lr must be finite"),
    (lambda sd: sd["hyperparams"].update(initial_lr=NAN), ValueError, "initial_lr"),
    (lambda sd: sd["state"].update({"0.exp_avg": np.full(3, NAN)}), ValueError,
     "'0.exp_avg' holds NaN"),
    (lambda sd: sd["state"].update({"0.exp_avg": np.ones(3, complex)}), TypeError,
     "'0.exp_avg' must be a real array"),
    (lambda sd: sd.update(state=[1, 2]), ValueError, "state must be a dict"),
], ids=["lr-inf", "initial-lr-nan", "buffer-nan", "buffer-complex", "state-list"])
def test_optimizer_state_is_validated(edit, exc, needle):
    opt = Adam(_p(), lr=0.1)
    opt.params[0].grad = np.ones(3)
    opt.step()
    sd = opt.state_dict()
    edit(sd)
    with pytest.raises(exc, match=needle):
        opt.load_state_dict(sd)


@pytest.mark.parametrize("cls, args, key, value", [
    (StepLR, (1,), "gamma", "0.5"), (StepLR, (1,), "step_size", 0),
    (CosineAnnealingLR, (4,), "T_max", 2.5), (ExponentialLR, (0.9,), "last_lr", -1.0),
], ids=["steplr-gamma-string", "steplr-step-size-0", "cosine-T-max-float", "last-lr-negative"])
def test_schedule_state_is_validated(cls, args, key, value):
    s = cls(SGD(_p(), lr=0.1), *args)
    sd = s.state_dict()
    sd[key] = value
    with pytest.raises((ValueError, TypeError), match=key):
        s.load_state_dict(sd)
    assert s.state_dict()[key] != value  # nothing was applied


# --- load_state_dict ------------------------------------------------------------------------

def _net():
    return Sequential(Linear(4, 3, rng=np.random.default_rng(0)))


@pytest.mark.parametrize("value, needle", [
    (np.ones((3, 4), complex), "complex128 is not a real"),
    (np.full((3, 4), "w"), "<U1 is not a real"),
    (np.array([[object()] * 4] * 3), "object is not a real"),
    (np.full((3, 4), np.nan), "12 NaN or infinite"),
    (np.where(np.eye(3, 4) > 0, np.inf, 0.0), "3 NaN or infinite"),
    ([[1, 2], [3]], "not an array"),
    (np.zeros((3, 4), "M8[s]"), "datetime64[s] is not a real"),
], ids=["complex", "string", "object", "nan", "inf", "ragged", "datetime"])
def test_load_state_dict_refuses_non_real_values(value, needle):
    net = _net()
    sd = net.state_dict()
    before = {k: v.copy() for k, v in sd.items()}
    sd["0.weight"] = value
    with pytest.raises(StateDictError, match="bad values for") as e:
        net.load_state_dict(sd)
    assert "0.weight" in str(e.value) and needle in str(e.value), str(e.value)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_refuses_fractional_counts():
    from convprop.layers import BatchNorm2d
    bn = BatchNorm2d(2)
    sd = bn.state_dict()
    sd["num_batches_tracked"] = np.array(2.5)
    with pytest.raises(StateDictError, match="num_batches_tracked .*non-integral"):
        bn.load_state_dict(sd)


# --- fit says what went non-finite first ----------------------------------------------------

def _setup(lr=0.01):
    rng = np.random.default_rng(3)
    model = Sequential(Conv2d(1, 2, 3, rng=rng), __import__("convprop.layers", fromlist=["x"])
                       .Flatten(), Linear(2 * 4 * 4, 3, rng=rng))
    x = rng.standard_normal((16, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    return model, SGD(model.parameters(), lr=lr), x, y, rng


def _fit(model, opt, x, y, rng, callbacks=(), loss=None):
    fit(model, loss or CrossEntropyLoss(), opt, (x, y), epochs=2, batch_size=8, rng=rng,
        verbose=0, callbacks=list(callbacks))


def test_non_finite_inputs_are_blamed_not_the_learning_rate():
    model, opt, x, y, rng = _setup()
    x[5, 0, 2, 2] = np.nan
    with pytest.raises(NonFiniteLossError) as e:
        _fit(model, opt, x, y, rng)
    assert e.value.cause == "inputs" and "inputs of this batch" in str(e.value)
    assert "learning rate" not in str(e.value)


def test_non_finite_parameters_blame_the_learning_rate():
    model, opt, x, y, rng = _setup()

    class Poison(Callback):
        def on_batch_end(self, state, batch):
            state.model.parameters()[0].value[0, 0, 0, 0] = np.inf
    with pytest.raises(NonFiniteLossError) as e:
        _fit(model, opt, x, y, rng, [Poison()])
    assert e.value.cause == "parameters" and "parameter '0.weight'" in str(e.value)
    assert "learning rate (0.01) is likely too high" in str(e.value)


def test_a_diverging_run_blames_the_learning_rate():
    model, opt, x, y, rng = _setup(lr=1e30)
    with pytest.raises(NonFiniteLossError) as e:
        _fit(model, opt, x, y, rng)
    assert "learning rate (1e+30) is likely too high" in str(e.value)


def test_forward_overflow_with_sane_weights_is_the_outputs():
    model, opt, x, y, rng = _setup()
    for p in model.parameters():
        p.value = np.abs(p.value)  # no cancellation: the first conv sum overflows
    x[:] = 3e38  # finite float32
    with pytest.raises(NonFiniteLossError) as e:
        _fit(model, opt, x, y, rng)
    assert e.value.cause == "outputs" and "outputs went non-finite first" in str(e.value)
    assert "inputs are very large" in str(e.value) and "learning rate" not in str(e.value)


def test_huge_inputs_are_blamed_when_they_blow_up_the_weights():
    model, opt, x, y, rng = _setup()
    x[:] = 1e30
    with pytest.raises(NonFiniteLossError) as e:
        _fit(model, opt, x, y, rng)
    assert "inputs are very large (largest |x| 1e+30)" in str(e.value)
    assert "learning rate" not in str(e.value)


def test_a_non_finite_loss_of_finite_outputs_is_the_loss():
    model, opt, x, y, rng = _setup()

    class BadLoss(CrossEntropyLoss):
        def forward(self, out, target):
            value, cache = super().forward(out, target)
            return math.nan, cache
    with pytest.raises(NonFiniteLossError) as e:
        _fit(model, opt, x, y, rng, loss=BadLoss())
    assert e.value.cause == "loss" and "the loss itself" in str(e.value).lower()
    assert "learning rate" not in str(e.value)
