"""Optimizers against torch.optim: ten steps on one sequence of random gradients, float64."""

import numpy as np
import pytest

from convprop.layers import Parameter
from convprop.optim import SGD, Adam, AdamW, RMSprop

SHAPES = [(3, 4), (5,), (2, 1, 3, 3)]
STEPS = 10

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.5, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6)),
    ("RMSprop", dict(lr=0.01, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.01, maximize=True)),
]
OURS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop}


def _data(rng, dtype=np.float64):
    values = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(STEPS)]
    return values, grads


def _run_ours(cls, kw, values, grads, *, split=None):
    params = [Parameter(v) for v in values]
    opt = cls(params, **kw)
    for t, gs in enumerate(grads):
        if t == split:  # save, then continue in a fresh optimizer over fresh parameters
            sd = opt.state_dict()
            params = [Parameter(p.value) for p in params]
            opt = cls(params, **{**kw, "lr": 123.0})
            opt.load_state_dict(sd)
        for p, g in zip(params, gs, strict=True):
            p.grad = g.copy()
        opt.step()
    return [p.value for p in params]


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{'-'.join(k)}" for n, k in CASES])
def test_matches_torch_optim(torch, rng, name, kw):
    values, grads = _data(rng)
    ours = _run_ours(OURS[name], kw, values, grads)
    tparams = [torch.tensor(v, requires_grad=True) for v in values]
    topt = getattr(torch.optim, name)(tparams, **kw)
    for gs in grads:
        for p, g in zip(tparams, gs, strict=True):
            p.grad = torch.tensor(g)
        topt.step()
    for a, b in zip(ours, tparams, strict=True):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name,kw", CASES[1::2], ids=[n for n, _ in CASES[1::2]])
def test_state_dict_round_trip_is_bit_identical(rng, name, kw):
    values, grads = _data(rng)
    straight = _run_ours(OURS[name], kw, values, grads)
    resumed = _run_ours(OURS[name], kw, values, grads, split=5)
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name,kw", [CASES[1], CASES[9], CASES[19]], ids=["SGD", "Adam", "RMS"])
def test_float32_stays_float32_and_tracks_float64(rng, name, kw):
    values, grads = _data(rng, np.float32)
    ours32 = _run_ours(OURS[name], kw, values, grads)
    ours64 = _run_ours(OURS[name], kw, [v.astype(np.float64) for v in values],
                       [[g.astype(np.float64) for g in gs] for gs in grads])
    for a, b in zip(ours32, ours64, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


def test_step_rebinds_value_and_keeps_old_array(rng):
    p = Parameter(rng.standard_normal((2, 3)))
    old = p.value
    old_copy = old.copy()
    p.grad = rng.standard_normal((2, 3))
    opt = Adam([p], lr=0.1)
    opt.step()
    assert p.value is not old
    np.testing.assert_array_equal(old, old_copy)
    opt.zero_grad()
    assert not p.grad.any() and p.grad.shape == (2, 3)


def test_lr_is_settable_and_validated(rng):
    opt = SGD([Parameter(np.zeros(2))], lr=0.1)
    opt.lr = 0.5
    assert opt.lr == 0.5 and opt.state_dict()["hyperparams"]["lr"] == 0.5
    with pytest.raises(ValueError, match=r"^SGD: lr must be >= 0, got -1"):
        opt.lr = -1.0
