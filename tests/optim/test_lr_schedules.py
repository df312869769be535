"""Learning-rate schedules against torch.optim.lr_scheduler, resume, factories and errors."""

import json
import math

import numpy as np
import pytest

from convprop.layers import Parameter
from convprop.optim import (SGD, CosineAnnealingLR, ExponentialLR, LinearLR, MultiStepLR,
                            ReduceLROnPlateau, SequentialLR, StepLR, build_schedule)

EPOCHS = 30

# (name, builder(module, optimizer)) with module = convprop.optim or torch.optim.lr_scheduler
CASES = [
    ("step", lambda m, o: m.StepLR(o, step_size=7, gamma=0.5)),
    ("multistep", lambda m, o: m.MultiStepLR(o, milestones=[3, 10, 10, 25], gamma=0.3)),
    ("exponential", lambda m, o: m.ExponentialLR(o, gamma=0.9)),
    ("cosine", lambda m, o: m.CosineAnnealingLR(o, T_max=12, eta_min=0.001)),
    ("cosine0", lambda m, o: m.CosineAnnealingLR(o, T_max=EPOCHS)),
    ("linear", lambda m, o: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=6)),
    ("linear_default", lambda m, o: m.LinearLR(o)),
    ("warmup_cosine", lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=4), m.CosineAnnealingLR(o, T_max=26)],
        milestones=[4])),
    ("three_phase", lambda m, o: m.SequentialLR(
        o, [m.ExponentialLR(o, gamma=0.8), m.StepLR(o, 3), m.MultiStepLR(o, [2, 5])],
        milestones=[5, 12])),
]
METRICS = [1.0, 0.9, 0.9, 0.95, 0.91, 0.9, 0.9, 0.5, 0.6, 0.6, 0.6, 0.6, 0.7, 0.49999, 0.6,
           0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45]
PLATEAU = [
    dict(patience=2),
    dict(patience=1, factor=0.5, cooldown=2, min_lr=0.004),
    dict(mode="max", patience=1, threshold=0.05, threshold_mode="abs", factor=0.3),
    dict(patience=0, threshold_mode="abs", threshold=0.0, eps=0.02),
]


def _opt(lr=0.1):
    return SGD([Parameter(np.zeros(2))], lr=lr, momentum=0.9)


def _ours(build, epochs=EPOCHS):
    import convprop.optim as m
    o = _opt()
    s = build(m, o)
    lrs = [o.lr]
    for _ in range(epochs - 1):
        o.step()
        s.step()
        lrs.append(o.lr)
        assert s.get_last_lr() == [o.lr]
    return lrs


@pytest.mark.parametrize("name,build", CASES, ids=[c[0] for c in CASES])
def test_schedule_matches_torch(torch, name, build):
    o = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
    s = build(torch.optim.lr_scheduler, o)
    want = [o.param_groups[0]["lr"]]
    for _ in range(EPOCHS - 1):
        o.step()
        s.step()
        want.append(o.param_groups[0]["lr"])
    np.testing.assert_allclose(_ours(build), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kw", PLATEAU, ids=[str(i) for i in range(len(PLATEAU))])
def test_plateau_matches_torch(torch, kw):
    metrics = METRICS if kw.get("mode") != "max" else [-m for m in METRICS]
    o = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    s = torch.optim.lr_scheduler.ReduceLROnPlateau(o, **kw)
    ours_o = _opt()
    ours = ReduceLROnPlateau(ours_o, **kw)
    for m in metrics:
        o.step()
        s.step(m)
        ours.step(m)
        assert ours.get_last_lr() == [ours_o.lr]
        assert ours_o.lr == pytest.approx(o.param_groups[0]["lr"], abs=1e-15)
    assert ours_o.lr < 0.1  # the case exercises at least one reduction


def test_cosine_by_hand():
    lrs = _ours(lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.01), epochs=11)
    want = [0.01 + 0.09 * (1 + math.cos(math.pi * e / 10)) / 2 for e in range(11)]
    np.testing.assert_allclose(lrs, want, rtol=0, atol=1e-12)


def test_warmup_cosine_factory_by_hand():
    o = _opt(0.2)
    s = build_schedule("warmup_cosine", o, 10, warmup_epochs=2, start_factor=0.5)
    lrs = [o.lr]
    for _ in range(9):
        s.step()
        lrs.append(o.lr)
    want = [0.1, 0.15] + [0.1 * (1 + math.cos(math.pi * k / 8)) for k in range(8)]
    np.testing.assert_allclose(lrs, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name,build", CASES[::2] + CASES[7:8],
                         ids=[c[0] for c in CASES[::2] + CASES[7:8]])
def test_resume_matches_straight_run(name, build):
    import convprop.optim as m
    straight = _ours(build)
    o = _opt()
    s = build(m, o)
    lrs = [o.lr]
    for _ in range(12):
        s.step()
        lrs.append(o.lr)
    saved = json.loads(json.dumps({"opt": {k: v for k, v in o.state_dict().items()
                                           if k != "state"}, "sched": s.state_dict()},
                                  allow_nan=False))
    o2 = _opt(lr=7.0)
    o2.load_state_dict({**saved["opt"], "state": {}})
    s2 = build(m, o2)  # built after loading the optimizer: load_state_dict restores lr anyway
    s2.load_state_dict(saved["sched"])
    for _ in range(EPOCHS - 13):
        s2.step()
        lrs.append(o2.lr)
    assert lrs == straight


def test_plateau_resume_and_json():
    o = _opt()
    s = ReduceLROnPlateau(o, patience=1)
    json.dumps(s.state_dict(), allow_nan=False)  # the initial best (inf) is stored as None
    for m in METRICS[:10]:
        s.step(m)
    o2 = _opt()
    s2 = ReduceLROnPlateau(o2, patience=1)
    s2.load_state_dict(json.loads(json.dumps(s.state_dict(), allow_nan=False)))
    for m in METRICS[10:]:
        s.step(m)
        s2.step(m)
        assert o2.lr == o.lr


@pytest.mark.parametrize("name", ["step", "multistep", "exponential", "cosine", "warmup_cosine",
                                  "plateau"])
def test_build_schedule_names(name):
    o = _opt()
    s = build_schedule(name, o, 20)
    for e in range(19):
        s.step(1.0) if name == "plateau" else s.step()
    assert 0 <= o.lr <= 0.1 and s.get_last_lr() == [o.lr]
    assert build_schedule("none", _opt(), 20) is None


@pytest.mark.parametrize("call,exc,match", [
    (lambda o: build_schedule("cosine_warmup", o, 10), ValueError,
     r"^build_schedule: unknown schedule 'cosine_warmup', expected one of \['none', 'step', "),
    (lambda o: build_schedule("step", o, 10, T_max=3), TypeError,
     r"^build_schedule: schedule 'step' takes options \['step_size', 'gamma'\], got \['T_max'\]"),
    (lambda o: build_schedule("warmup_cosine", o, 5, warmup_epochs=5), ValueError,
     r"^build_schedule: warmup_epochs must be < epochs \(5\), got 5"),
    (lambda o: StepLR(o, step_size=0), ValueError, r"^StepLR: step_size must be an int >= 1"),
    (lambda o: CosineAnnealingLR(o, T_max=10, eta_min=-1), ValueError,
     r"^CosineAnnealingLR: eta_min must be in"),
    (lambda o: LinearLR(o, start_factor=0.0), ValueError, r"^LinearLR: start_factor must be in"),
    (lambda o: ExponentialLR(o, gamma="x"), TypeError, r"^ExponentialLR: gamma must be a real"),
    (lambda o: MultiStepLR(o, milestones=5), TypeError, r"^MultiStepLR: milestones must be a list"),
    (lambda o: ReduceLROnPlateau(o, factor=1.0), ValueError, r"^ReduceLROnPlateau: factor must be"),
    (lambda o: ReduceLROnPlateau(o, mode="lowest"), ValueError, r"^ReduceLROnPlateau: mode must"),
    (lambda o: StepLR(object(), 3), TypeError, r"^StepLR: optimizer must be a convprop.optim"),
    (lambda o: SequentialLR(o, [StepLR(o, 2), ReduceLROnPlateau(o)], [3]), TypeError,
     r"^SequentialLR: schedulers\[1\] must be a chainable"),
    (lambda o: SequentialLR(o, [StepLR(o, 2), StepLR(_opt(), 2)], [3]), ValueError,
     r"^SequentialLR: schedulers\[1\] \(StepLR\) belongs to another optimizer"),
    (lambda o: SequentialLR(o, [StepLR(o, 2), StepLR(o, 2)], []), ValueError,
     r"^SequentialLR: expected len\(milestones\)"),
    (lambda o: StepLR(o, 2).load_state_dict(ExponentialLR(o, 0.5).state_dict()), ValueError,
     r"^StepLR.load_state_dict: expected the state of a StepLR, got 'ExponentialLR'"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call(_opt())
