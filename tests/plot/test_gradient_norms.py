"""GradientNorms: fit records every layer's gradient norm on request, the history and the
checkpoint carry it, and the numbers are the gradients' norms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convprop.io import load_checkpoint
from convprop.layers.activation import ReLU
from convprop.layers.container import Sequential
from convprop.layers.linear import Linear
from convprop.layers.loss import CrossEntropyLoss
from convprop.optim import SGD
from convprop.train import Callback, History, SaveCheckpoint, fit
from convprop.train.gradient_norms import (GradientNorms, gradient_norm_series,
                                           layer_gradient_norms)


def tiny(seed=0):
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(4, 8, rng=rng), ReLU(), Linear(8, 3, rng=rng))
    g = np.random.default_rng(1)
    y = g.integers(0, 3, 96)
    x = (np.eye(3, 4)[y] * 2 + g.standard_normal((96, 4))).astype(np.float32)
    return model, (x, y)


class Spy(Callback):
    """The gradients as on_backward_end sees them, by hand."""

    def __init__(self):
        self.seen = []

    def on_backward_end(self, state, batch):
        m = state.model
        self.seen.append({n: math.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum())
                                           for p in (m[int(n)].weight, m[int(n)].bias)))
                          for n in ("0", "2")})


def run(tmp_path, every=1, epochs=2):
    model, data = tiny()
    gn, spy = GradientNorms(every=every), Spy()
    path = tmp_path / "ck.safetensors"
    hist = fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), data, epochs=epochs,
               batch_size=32, rng=np.random.default_rng(2), verbose=0,
               callbacks=[gn, spy, SaveCheckpoint(path)])
    return hist, gn, spy, path


def test_norms_are_the_gradients_norms(tmp_path):
    hist, gn, spy, _ = run(tmp_path)
    assert len(gn.records) == len(spy.seen) == 6          # 3 steps x 2 epochs
    for (pos, got), want in zip(gn.records, spy.seen):
        assert got == pytest.approx(want, rel=1e-12)
    assert [p for p, _ in gn.records] == pytest.approx([1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2])
    for e, r in enumerate(hist.records):
        steps = spy.seen[3 * e: 3 * e + 3]
        assert r["grad_norm/0"] == pytest.approx(np.mean([s["0"] for s in steps]), rel=1e-12)
        assert r["grad_norm_max/2"] == pytest.approx(max(s["2"] for s in steps), rel=1e-12)


def test_every_samples_fewer_steps(tmp_path):
    _, gn, spy, _ = run(tmp_path, every=2)
    assert len(gn.records) == 4                            # steps 1 and 3 of each epoch
    assert gn.records[1][1] == pytest.approx(spy.seen[2], rel=1e-12)


def test_history_and_checkpoint_carry_them(tmp_path):
    hist, _, _, path = run(tmp_path)
    ck = load_checkpoint(path)
    assert ck.extra["history"] == hist.records
    epochs, means, maxes = gradient_norm_series(ck.extra["history"])
    np.testing.assert_array_equal(epochs, [1, 2])
    assert list(means) == ["0", "2"]
    assert np.all(maxes["0"] >= means["0"])
    assert "grad_norm/0" in hist.to_csv().splitlines()[0]
    assert gradient_norm_series(History.from_json(hist.to_json()))[1]["2"] == pytest.approx(
        means["2"])


def test_non_finite_norms_are_none_and_no_record_is_an_error():
    model, _ = tiny()
    for p in model.parameters():
        p.grad = np.full_like(p.value, np.inf)
    assert layer_gradient_norms(model) == {"0": math.inf, "2": math.inf}
    with pytest.raises(ValueError, match="no gradient norms; record them"):
        gradient_norm_series([{"epoch": 1, "loss": 0.5}])
    with pytest.raises(ValueError, match="GradientNorms: every"):
        GradientNorms(every=0)
