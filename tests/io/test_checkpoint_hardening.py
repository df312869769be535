"""Review findings: the digest covers the metadata, malformed metadata is a CheckpointError,
and restore is all-or-nothing."""

import json

import numpy as np
import pytest

from convprop.io import CheckpointError, load_checkpoint, save_checkpoint
from convprop.io.checkpoint import _digest
from convprop.io.safetensors import load_file, save_file
from convprop.layers import Dropout, Linear, ReLU, Sequential
from convprop.optim import SGD, Adam, ExponentialLR, StepLR


def _model(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(Linear(3, 4, rng=rng), ReLU(),
                      Dropout(0.5, rng=np.random.default_rng(seed + 1)), Linear(4, 2, rng=rng))


def _saved(tmp_path, *, schedule=True):
    m = _model()
    opt = SGD(m.parameters(), lr=0.1, momentum=0.9)
    sched = StepLR(opt, step_size=1, gamma=0.5) if schedule else None
    for p in m.parameters():  # give the optimizer momentum buffers
        p.grad = np.ones_like(p.value)
    opt.step()
    if sched is not None:
        sched.step()
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, m, optimizer=opt, schedule=sched, epoch=3,
                    rng=np.random.default_rng(11))
    return path


def _rewrite(path, edit, *, resign=True, drop=()):
    """Apply ``edit`` to the metadata (and drop tensors); re-sign it unless told not to."""
    tensors, meta = load_file(path)
    for k in drop:
        del tensors[k]
    info = json.loads(meta["convprop"])
    info = edit(info)
    if resign and isinstance(info, dict):
        info["sha256"] = _digest(tensors, info)
    save_file(tensors, path, {"convprop": json.dumps(info)})


def _set(key, value):
    def edit(info):
        info[key] = value
        return info
    return edit


def _live(seed=99, *, opt_cls=SGD, sched_cls=StepLR, rng=None):
    m = _model(seed)
    opt = opt_cls(m.parameters(), lr=0.01)
    sched = (sched_cls(opt, step_size=2, gamma=0.1) if sched_cls is StepLR
             else sched_cls(opt, gamma=0.9))
    return m, opt, sched, rng if rng is not None else np.random.default_rng(5)


def _snapshot(m, opt, sched, rng):
    return (m.state_dict(), opt.state_dict(), sched.state_dict(), opt.lr,
            rng.bit_generator.state, m[2].rng.bit_generator.state)


def _assert_unchanged(before, after):
    (m0, o0, s0, lr0, r0, d0), (m1, o1, s1, lr1, r1, d1) = before, after
    assert list(m0) == list(m1)
    for k in m0:
        np.testing.assert_array_equal(m0[k], m1[k], err_msg=k)
    assert o0.keys() == o1.keys() and o0["hyperparams"] == o1["hyperparams"]
    assert o0["steps"] == o1["steps"] and o0["state"].keys() == o1["state"].keys()
    assert s0 == s1 and lr0 == lr1 and _same(r0, r1) and _same(d0, d1)


def _same(a, b):
    """Equality for generator states, which may hold arrays (MT19937's key)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


# -- 1. the SHA-256 covers the metadata ---------------------------------------------------------

@pytest.mark.parametrize("edit", [
    _set("epoch", 4),
    lambda info: {**info, "optimizer": {**info["optimizer"], "hyperparams": {
        **info["optimizer"]["hyperparams"], "lr": 1.0}}},
    lambda info: {**info, "schedule": {**info["schedule"], "gamma": 0.9}},
    lambda info: {**info, "rng": {**info["rng"], "state": {**info["rng"]["state"],
                                                          "state": 12345}}},
], ids=["epoch", "lr", "schedule", "rng"])
def test_tampered_metadata_fails_the_checksum(tmp_path, edit):
    path = _saved(tmp_path)
    assert load_checkpoint(path).epoch == 3
    _rewrite(path, edit, resign=False)  # keeps the old sha256
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path)


def test_resigned_metadata_loads(tmp_path):
    # the checksum is over canonical JSON: a re-signed, re-ordered document still loads
    path = _saved(tmp_path)
    _rewrite(path, lambda info: dict(reversed(list({**info, "epoch": 5}.items()))))
    assert load_checkpoint(path).epoch == 5


# -- 2. malformed metadata ----------------------------------------------------------------------

@pytest.mark.parametrize("edit,drop,match", [
    (lambda info: [info], (), "not a JSON object"),
    (lambda info: {k: v for k, v in info.items() if k != "epoch"}, (), r"missing .*'epoch'"),
    (_set("epoch", "3"), (), "'epoch' must be an int"),
    (_set("epoch", -1), (), "'epoch' must be an int >= 0"),
    (_set("module_rngs", None), (), "'module_rngs' must be an object"),
    (_set("schedule", [1]), (), "'schedule' must be an object or null"),
    (lambda info: {**info, "optimizer": {k: v for k, v in info["optimizer"].items()
                                         if k != "state_keys"}}, (), "state_keys"),
    (lambda info: info, ("optimizer.0.momentum_buffer",), r"missing \['0.momentum_buffer'\]"),
    (_set("optimizer", None), (), "optimizer tensors"),
], ids=["not-a-dict", "no-epoch", "epoch-str", "epoch-neg", "module-rngs", "schedule-list",
        "no-state-keys", "missing-tensor", "unlisted-tensor"])
def test_malformed_metadata_is_a_checkpoint_error(tmp_path, edit, drop, match):
    path = _saved(tmp_path)
    tensors, _ = load_file(path)
    assert "optimizer.0.momentum_buffer" in tensors
    _rewrite(path, edit, drop=drop)
    with pytest.raises(CheckpointError, match=match) as e:
        load_checkpoint(path)
    assert "\n" not in str(e.value) and str(e.value).startswith("checkpoint: ")


# -- 3. restore is all-or-nothing ---------------------------------------------------------------

@pytest.mark.parametrize("kind,match", [
    ("optimizer", "cannot restore the optimizer.*Adam"),
    ("schedule", "cannot restore the schedule.*ExponentialLR"),
    ("rng", "cannot restore the training generator"),
])
def test_failed_restore_changes_nothing(tmp_path, kind, match):
    ck = load_checkpoint(_saved(tmp_path))
    live = _live(opt_cls=Adam if kind == "optimizer" else SGD,
                 sched_cls=ExponentialLR if kind == "schedule" else StepLR,
                 rng=np.random.Generator(np.random.MT19937(1)) if kind == "rng" else None)
    before = _snapshot(*live)
    with pytest.raises(CheckpointError, match=match):
        ck.restore(*live)
    _assert_unchanged(before, _snapshot(*live))
    ck.restore(*_live())  # the same checkpoint restores into matching objects


def test_schedule_without_saved_state_is_refused(tmp_path):
    ck = load_checkpoint(_saved(tmp_path, schedule=False))
    live = _live()
    before = _snapshot(*live)
    with pytest.raises(CheckpointError, match="no schedule state"):
        ck.restore(*live)
    _assert_unchanged(before, _snapshot(*live))
    ck.restore(live[0], live[1], None, live[3])


def test_generator_mismatch_restores_nothing(tmp_path):
    ck = load_checkpoint(_saved(tmp_path))
    rng = np.random.default_rng(0)
    other = Sequential(Linear(3, 4, rng=rng), ReLU(), ReLU(), Linear(4, 2, rng=rng))  # no rng
    before = other.state_dict()
    with pytest.raises(CheckpointError, match="random generators"):
        ck.restore(other)
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_restore_applies_everything(tmp_path):
    ck = load_checkpoint(_saved(tmp_path))
    m, opt, sched, rng = _live()
    ck.restore(m, opt, sched, rng)
    assert opt.lr == pytest.approx(0.05) and sched.state_dict() == ck.schedule_state
    assert rng.bit_generator.state == np.random.default_rng(11).bit_generator.state
    for k, v in ck.model_state.items():
        np.testing.assert_array_equal(m.state_dict()[k], v, err_msg=k)
