import io
import json

import numpy as np
import pytest

from _tiny import data, setup
from convprop.optim import ReduceLROnPlateau, StepLR
from convprop.train import (Callback, EarlyStopping, History, KeepBest, NonFiniteLossError,
                            SaveCheckpoint, evaluate, fit, predict)
from convprop.io import load_checkpoint


def _weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def test_fit_learns_and_records_history():
    model, loss, opt, rng = setup()
    x, y = data()
    h = fit(model, loss, opt, (x, y), epochs=5, batch_size=32, val_data=data(90, seed=2),
            rng=rng, verbose=0)
    assert h["epoch"] == [1, 2, 3, 4, 5]
    assert h["loss"][-1] < h["loss"][0]
    assert h["val_accuracy"][-1] > 0.8
    for key in ("accuracy", "lr", "time", "examples_per_sec"):
        assert len(h[key]) == 5 and all(v is not None for v in h[key])
    assert History.from_json(h.to_json()).records == h.records
    csv = h.to_csv().splitlines()
    assert csv[0].split(",")[:3] == ["epoch", "loss", "accuracy"] and len(csv) == 6


def test_same_seed_gives_bit_identical_history_and_weights():
    runs = []
    for _ in range(2):
        model, loss, opt, rng = setup(seed=3)
        h = fit(model, loss, opt, data(), epochs=3, batch_size=20, rng=rng, verbose=0)
        runs.append(({k: v for k, v in h.records[-1].items() if k not in
                      ("time", "examples_per_sec")}, _weights(model)))
    assert runs[0][0] == runs[1][0]
    for k in runs[0][1]:
        np.testing.assert_array_equal(runs[0][1][k], runs[1][1][k])
    model, loss, opt, rng = setup(seed=4)
    fit(model, loss, opt, data(), epochs=3, batch_size=20, rng=rng, verbose=0)
    assert any(not np.array_equal(runs[0][1][k], v) for k, v in _weights(model).items())


def test_resume_from_checkpoint_is_bit_identical(tmp_path):
    x, y = data()
    model, loss, opt, rng = setup(seed=7)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    fit(model, loss, opt, (x, y), epochs=2, batch_size=32, rng=rng, schedule=sched, verbose=0)
    straight = _weights(model)

    model, loss, opt, rng = setup(seed=7)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    path = tmp_path / "ck.safetensors"
    fit(model, loss, opt, (x, y), epochs=1, batch_size=32, rng=rng, schedule=sched, verbose=0,
        callbacks=[SaveCheckpoint(path)])
    model, loss, opt, rng = setup(seed=123)  # a fresh process would start from other state
    sched = StepLR(opt, step_size=1, gamma=0.5)
    ck = load_checkpoint(path)
    ck.restore(model, opt, sched, rng)
    assert ck.epoch == 1
    fit(model, loss, opt, (x, y), epochs=2, batch_size=32, rng=rng, schedule=sched, verbose=0,
        initial_epoch=ck.epoch)
    for k, v in _weights(model).items():
        np.testing.assert_array_equal(v, straight[k], err_msg=k)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_non_finite_loss_stops_with_epoch_and_step_and_keeps_checkpoint(tmp_path):
    model, loss, opt, rng = setup(lr=0.1)
    path = tmp_path / "ck.safetensors"
    x, y = data()

    class Explode(Callback):
        def on_epoch_end(self, state, logs):
            if logs["epoch"] == 1:
                state.optimizer.lr = 1e30  # the next epoch diverges
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step \d+") as e:
        fit(model, loss, opt, (x, y), epochs=3, batch_size=32, rng=rng, verbose=0,
            callbacks=[SaveCheckpoint(path), Explode()])
    assert e.value.epoch == 2
    ck = load_checkpoint(path)
    assert ck.epoch == 1
    assert all(np.isfinite(v).all() for v in ck.model_state.values())


def test_early_stopping_and_keep_best():
    model, loss, opt, rng = setup()
    seen = []

    class Plateau(Callback):  # feed a fake metric that stops improving after epoch 2
        def on_epoch_end(self, state, logs):
            logs["val_loss"] = [5.0, 1.0, 2.0, 3.0, 4.0, 5.0][logs["epoch"] - 1]
            seen.append(logs["epoch"])
    stop = EarlyStopping("val_loss", patience=2)
    h = fit(model, loss, opt, data(), epochs=6, batch_size=32, rng=rng, verbose=0,
            callbacks=[Plateau(), stop])
    assert seen == [1, 2, 3, 4] and len(h) == 4 and stop.stopped_epoch == 4

    model, loss, opt, rng = setup()
    keep = KeepBest("val_accuracy")
    snapshots = []

    class Snap(Callback):
        def on_epoch_end(self, state, logs):
            snapshots.append((logs["val_accuracy"], _weights(state.model)))
    fit(model, loss, opt, data(), epochs=4, batch_size=32, rng=rng, verbose=0,
        val_data=data(60, seed=9), callbacks=[Snap(), keep])
    best = max(range(4), key=lambda i: (snapshots[i][0], -i))
    assert keep.best_epoch == best + 1
    for k, v in _weights(model).items():
        np.testing.assert_array_equal(v, snapshots[best][1][k])


def test_monitor_missing_is_a_clear_error():
    model, loss, opt, rng = setup()
    with pytest.raises(KeyError, match="val_loss.*pass val_data"):
        fit(model, loss, opt, data(), epochs=1, batch_size=32, rng=rng, verbose=0,
            callbacks=[EarlyStopping("val_loss")])


def test_plateau_schedule_gets_the_validation_loss():
    model, loss, opt, rng = setup()
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=0)
    h = fit(model, loss, opt, data(), epochs=4, batch_size=32, rng=rng, verbose=0,
            val_data=data(60, seed=9), schedule=sched)
    assert h["lr"][0] == pytest.approx(0.1)
    assert len(h["lr"]) == 4


def test_progress_output_modes():
    x, y = data()
    buf = io.StringIO()  # not a terminal: one line per epoch
    model, loss, opt, rng = setup()
    fit(model, loss, opt, (x, y), epochs=2, batch_size=32, rng=rng, verbose=1, file=buf)
    lines = buf.getvalue().strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2 - loss")
    assert "ex/s" in lines[0]
    buf = io.StringIO()
    model, loss, opt, rng = setup()
    fit(model, loss, opt, (x, y), epochs=2, batch_size=32, rng=rng, verbose=0, file=buf)
    assert buf.getvalue() == ""


def test_bad_arguments():
    model, loss, opt, rng = setup()
    x, y = data()
    with pytest.raises(ValueError, match="fit: train_data has 240 inputs but 10 targets"):
        fit(model, loss, opt, (x, y[:10]), epochs=1, batch_size=8, rng=rng)
    with pytest.raises(TypeError, match="fit: rng must be a numpy.random.Generator"):
        fit(model, loss, opt, (x, y), epochs=1, batch_size=8, rng=3)
    with pytest.raises(TypeError, match="fit: train_data must be a pair"):
        fit(model, loss, opt, x, epochs=1, batch_size=8, rng=rng)


def test_evaluate_metrics_and_predict():
    model, loss, opt, rng = setup()
    x, y = data(100)
    fit(model, loss, opt, data(), epochs=3, batch_size=32, rng=rng, verbose=0)
    m = evaluate(model, loss, (x, y), batch_size=7, topk=(1, 2, 3))
    logits = model.predict(x)
    pred = logits.argmax(1)
    assert m["accuracy"] == pytest.approx(np.mean(pred == y))
    assert m["top3"] == 1.0 and m["accuracy"] <= m["top2"] <= 1.0
    conf = m["confusion"]
    assert conf.sum() == 100 and np.trace(conf) == np.sum(pred == y)
    assert conf[y[0], pred[0]] >= 1
    p = predict(model, x, batch_size=13)
    np.testing.assert_allclose(p.sum(1), 1.0)
    np.testing.assert_array_equal(p.argmax(1), pred)
    json.dumps({k: v for k, v in m.items() if k != "confusion"})


def test_fit_leaves_the_allocator_alone():
    """No process-wide side effect in a library call: a fresh process that only fits never
    runs convprop.malloc.tune_malloc (the command and the benchmarks call it themselves)."""
    import subprocess
    import sys

    code = ("import numpy as np, convprop.malloc as m\n"
            "from convprop.layers import CrossEntropyLoss, Flatten, Linear, Sequential\n"
            "from convprop.optim import SGD\n"
            "from convprop.train import fit\n"
            "rng = np.random.default_rng(0)\n"
            "net = Sequential(Flatten(), Linear(4, 2, rng=rng))\n"
            "fit(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.1),\n"
            "    (rng.standard_normal((8, 1, 2, 2)).astype(np.float32), rng.integers(0, 2, 8)),\n"
            "    epochs=1, batch_size=4, rng=rng, verbose=0)\n"
            "assert m._done is None, m._done\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
