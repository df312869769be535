import json

import numpy as np
import pytest

from convprop.io import CheckpointError, load_checkpoint, save_checkpoint
from convprop.io.safetensors import load_file, save_file
from convprop.layers import BatchNorm1d, Dropout, Linear, ReLU, Sequential
from convprop.optim import SGD, StepLR


def _model(seed=0):
    rng = np.random.default_rng(seed)
    m = Sequential(Linear(4, 5, rng=rng), BatchNorm1d(5), ReLU(),
                   Dropout(0.5, rng=np.random.default_rng(seed + 1)), Linear(5, 3, rng=rng))
    m.config = {"name": "test", "width": 5}
    return m


def _train_step(m, opt, rng):
    x = rng.standard_normal((8, 4)).astype(np.float32)
    y, cache = m.forward(x, training=True)
    opt.zero_grad()
    m.backward(rng.standard_normal(y.shape).astype(np.float32), cache)
    opt.step()


def test_round_trip_restores_everything(tmp_path):
    rng = np.random.default_rng(5)
    m = _model()
    opt = SGD(m.parameters(), lr=0.1, momentum=0.9)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        _train_step(m, opt, rng)
    sched.step()
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, m, optimizer=opt, schedule=sched, epoch=7, rng=rng,
                    extra={"note": "x"})
    ck = load_checkpoint(path)
    assert ck.epoch == 7 and ck.model_config == {"name": "test", "width": 5}
    assert ck.extra == {"note": "x"}
    m2 = _model(seed=99)
    opt2 = SGD(m2.parameters(), lr=0.1, momentum=0.9)
    sched2 = StepLR(opt2, step_size=1, gamma=0.5)
    rng2 = np.random.default_rng(0)
    ck.restore(m2, opt2, sched2, rng2)
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    assert opt2.lr == opt.lr
    # continuing both gives bit-identical results (optimizer, dropout and data rngs restored)
    _train_step(m, opt, rng)
    _train_step(m2, opt2, rng2)
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)


def test_corrupt_checkpoint_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, _model(), epoch=1)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # flip bits in the tensor data: the header still parses
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_foreign_and_missing_files_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.safetensors")
    save_file({"x": np.zeros(2)}, tmp_path / "plain.safetensors")
    with pytest.raises(CheckpointError, match="not a convprop checkpoint"):
        load_checkpoint(tmp_path / "plain.safetensors")
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, _model())
    tensors, meta = load_file(path)
    info = json.loads(meta["convprop"])
    info["version"] = 99
    save_file(tensors, path, {"convprop": json.dumps(info)})
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(path)


def test_mismatched_model_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, _model())
    other = Sequential(Linear(4, 6), ReLU(), Linear(6, 3))
    with pytest.raises(CheckpointError, match="does not match the model"):
        load_checkpoint(path).restore(other)


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    m = _model()
    save_checkpoint(path, m, epoch=1)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr("os.fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, m, epoch=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]
    assert load_checkpoint(path).epoch == 1
