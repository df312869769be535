"""The pure update rules: hand-computed first steps, purity, hostile inputs, dtype, errors."""

import json

import numpy as np
import pytest
from helpers import hostile

from convprop.layers import Parameter
from convprop.optim import (SGD, Adam, AdamW, RMSprop, adam_update, adamw_update, build_optimizer,
                            rmsprop_update, sgd_update)

RULES = [
    (sgd_update, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (adam_update, dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    (adamw_update, dict(lr=0.01, amsgrad=True)),
    (rmsprop_update, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)),
]
IDS = [f.__name__ for f, _ in RULES]


def test_sgd_by_hand():
    p, g = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    p1, s1 = sgd_update(p, g, {}, lr=0.1, momentum=0.9, dampening=0.5)
    np.testing.assert_array_equal(s1["momentum_buffer"], g)  # first step: undamped copy
    np.testing.assert_allclose(p1, p - 0.1 * g, rtol=1e-15)
    p2, s2 = sgd_update(p1, g, s1, lr=0.1, momentum=0.9, dampening=0.5)
    np.testing.assert_allclose(s2["momentum_buffer"], 0.9 * g + 0.5 * g, rtol=1e-15)
    np.testing.assert_allclose(p2, p1 - 0.1 * 1.4 * g, rtol=1e-15)
    assert s2["step"] == 2


def test_adam_first_step_is_lr_times_sign():
    p, g = np.array([1.0, -2.0, 3.0]), np.array([0.5, -4.0, 1e-3])
    p1, s1 = adam_update(p, g, {}, lr=0.01, eps=1e-300)
    np.testing.assert_allclose(p1, p - 0.01 * np.sign(g), rtol=1e-14)
    np.testing.assert_allclose(s1["exp_avg"], 0.1 * g, rtol=1e-14)
    np.testing.assert_allclose(s1["exp_avg_sq"], 0.001 * g * g, rtol=1e-12)


def test_adamw_decays_before_the_step():
    p, g = np.array([2.0]), np.array([1.0])
    p1, _ = adamw_update(p, g, {}, lr=0.1, weight_decay=0.5, eps=1e-300)
    np.testing.assert_allclose(p1, 2.0 * (1 - 0.05) - 0.1, rtol=1e-15)


def test_rmsprop_first_step_by_hand():
    p, g = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    p1, s1 = rmsprop_update(p, g, {}, lr=0.01, alpha=0.9, eps=1e-300)
    np.testing.assert_allclose(p1, p - 0.01 * g / np.sqrt(0.1 * g * g), rtol=1e-14)
    np.testing.assert_allclose(s1["square_avg"], 0.1 * g * g, rtol=1e-15)


@pytest.mark.parametrize("rule,kw", RULES, ids=IDS)
def test_pure_on_hostile_inputs(rng, rule, kw):
    p, g = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    state = {}
    for _ in range(2):
        _, state = rule(p, g, state, **kw)
    frozen = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}
    for v in state.values():
        if isinstance(v, np.ndarray):
            v.flags.writeable = False
    want_p, want_s = rule(p, g, frozen, **kw)
    got_p, got_s = rule(hostile(p), hostile(g), state, **kw)
    np.testing.assert_array_equal(got_p, want_p)
    assert set(got_s) == set(want_s) and got_s["step"] == 3
    for k in got_s:
        np.testing.assert_array_equal(got_s[k], want_s[k])
        np.testing.assert_array_equal(state[k], frozen[k])  # input state untouched


@pytest.mark.parametrize("rule,kw", RULES, ids=IDS)
def test_float32_kept(rng, rule, kw):
    p = rng.standard_normal((2, 3)).astype(np.float32)
    g = rng.standard_normal((2, 3)).astype(np.float32)
    state = {}
    for _ in range(3):
        p, state = rule(p, g, state, **kw)
    assert p.dtype == np.float32
    assert all(v.dtype == np.float32 for v in state.values() if isinstance(v, np.ndarray))


@pytest.mark.parametrize("call,match", [
    (lambda: sgd_update(np.ones(2), np.ones(2), {}, lr=-0.1), r"^sgd_update: lr must be >= 0"),
    (lambda: sgd_update(np.ones(2), np.ones(2), {}, lr=0.1, nesterov=True),
     r"^sgd_update: nesterov momentum requires momentum > 0"),
    (lambda: sgd_update(np.ones(2), np.ones(3), {}, lr=0.1), r"^sgd_update: grad must have the"),
    (lambda: adam_update(np.ones(2), np.ones(2), {}, betas=(1.0, 0.9)),
     r"^adam_update: betas\[0\] must be in \[0, 1\), got 1.0"),
    (lambda: adamw_update(np.ones(2), np.ones(2), {}, betas=(0.9, -0.1)),
     r"^adamw_update: betas\[1\] must be in"),
    (lambda: adam_update(np.ones(2), np.ones(2), {}, eps=-1.0), r"^adam_update: eps must be > 0"),
    (lambda: rmsprop_update(np.ones(2), np.ones(2), {}, alpha=-0.5),
     r"^rmsprop_update: alpha must be >= 0"),
    (lambda: rmsprop_update(np.ones(2), np.ones(2), {"step": 1, "square_avg": np.ones(3)}),
     r"^rmsprop_update: state\['square_avg'\] must be an array of shape \(2,\)"),
    (lambda: SGD([Parameter(np.ones(2))], lr=0.1, momentum=-1), r"^SGD: momentum must be >= 0"),
    (lambda: SGD([Parameter(np.ones(2))], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     r"^SGD: nesterov momentum requires"),
    (lambda: Adam([Parameter(np.ones(2))], betas=(0.9, 1.0)), r"^Adam: betas\[1\] must be in"),
    (lambda: AdamW([Parameter(np.ones(2))], lr=-1), r"^AdamW: lr must be >= 0"),
    (lambda: RMSprop([Parameter(np.ones(2))], weight_decay=-1),
     r"^RMSprop: weight_decay must be >= 0"),
    (lambda: Adam([]), r"^Adam: got an empty parameter list"),
    (lambda: build_optimizer("adagrad", [Parameter(np.ones(2))]),
     r"^build_optimizer: unknown optimizer 'adagrad', expected one of \['adam', 'adamw', "
     r"'rmsprop', 'sgd'\]"),
])
def test_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call,match", [
    (lambda: sgd_update([1.0], np.ones(1), {}, lr=0.1), r"^sgd_update: param must be a numpy"),
    (lambda: adam_update(np.ones(2), np.ones(2, np.float32), {}), r"^adam_update: grad must have "
     r"the dtype of param \(float64\), got float32"),
    (lambda: rmsprop_update(np.ones(2, int), np.ones(2, int), {}), r"^rmsprop_update: param must "
     r"be float32 or float64"),
    (lambda: SGD([np.ones(2)], lr=0.1), r"^SGD: params\[0\] must be a Parameter"),
    (lambda: build_optimizer("sgd", [Parameter(np.ones(2))], lr=0.1, betas=(0.9, 0.9)),
     r"^build_optimizer: SGD got an unexpected hyperparameter"),
])
def test_type_errors(call, match):
    with pytest.raises(TypeError, match=match):
        call()


def _trained(cls, n=2, **kw):
    params = [Parameter(np.ones((2, 3))), Parameter(np.ones(4))][:n]
    opt = cls(params, **kw)
    for p in params:
        p.grad = np.full(p.value.shape, 0.5)
    opt.step()
    return opt


def test_state_dict_is_json_plus_arrays():
    sd = _trained(Adam, amsgrad=True).state_dict()
    json.dumps({k: v for k, v in sd.items() if k != "state"}, allow_nan=False)
    assert sd["type"] == "Adam" and sd["steps"] == {"0": 1, "1": 1}
    assert sorted(sd["state"]) == sorted(f"{i}.{k}" for i in "01"
                                         for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"))


def test_load_state_dict_refuses_mismatches():
    sd = _trained(SGD, lr=0.1, momentum=0.9).state_dict()
    with pytest.raises(ValueError, match=r"^Adam.load_state_dict: the state is of a SGD"):
        _trained(Adam).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"^SGD.load_state_dict: the state is for 2 parameters, "
                                         r"this optimizer has 1"):
        _trained(SGD, n=1, lr=0.1).load_state_dict(sd)
    params = [Parameter(np.ones((3, 2))), Parameter(np.ones(4))]
    with pytest.raises(ValueError, match=r"^SGD.load_state_dict: state '0.momentum_buffer' has "
                                         r"shape \(2, 3\), but parameter 0 has shape \(3, 2\)"):
        SGD(params, lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"^SGD.load_state_dict: expected hyperparams"):
        SGD(params, lr=0.1).load_state_dict({**sd, "hyperparams": {"lr": 0.1}})
    bad = {**sd, "state": {**sd["state"], "0.exp_avg": np.ones((2, 3))}}
    with pytest.raises(ValueError, match=r"^SGD.load_state_dict: unexpected state entry"):
        _trained(SGD, lr=0.1).load_state_dict(bad)


def test_load_state_dict_keeps_param_dtype_and_copies():
    sd = _trained(RMSprop, momentum=0.5).state_dict()
    params = [Parameter(np.ones((2, 3), np.float32)), Parameter(np.ones(4, np.float32))]
    opt = RMSprop(params)
    opt.load_state_dict(sd)
    assert opt.state[0]["square_avg"].dtype == np.float32
    assert opt.state[1]["step"] == 1 and opt.hyperparams["momentum"] == 0.5
    sd["state"]["0.square_avg"][...] = 7.0  # the optimizer holds its own copy
    assert not (opt.state[0]["square_avg"] == 7.0).any()
