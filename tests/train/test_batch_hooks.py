"""The per-step callback hooks of fit: their order, what each sees, and that a hook's
replacement of the batch's inputs or targets is what the model and the loss get."""

import numpy as np

from _tiny import data, setup
from convprop.train import Batch, Callback, fit


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_batch_begin(self, state, batch):
        assert batch.out is None and batch.loss is None
        self.events.append(("begin", batch.step))

    def on_loss_begin(self, state, batch):
        assert batch.out is not None and batch.loss is None
        self.events.append(("loss", batch.step))

    def on_backward_end(self, state, batch):
        # gradients are complete and the optimizer has not stepped yet
        assert np.isfinite(batch.loss)
        assert any(np.any(p.grad != 0) for p in state.model.parameters())
        self.events.append(("backward", batch.step))

    def on_batch_end(self, state, batch):
        self.events.append(("end", batch.step))


def test_hooks_run_in_order_once_per_step():
    model, loss, opt, rng = setup()
    x, y = data(60)
    rec = Recorder()
    fit(model, loss, opt, (x, y), epochs=2, batch_size=25, rng=rng, verbose=0,
        callbacks=[rec])
    steps = [1, 2, 3] * 2  # 60 examples in batches of 25: three steps per epoch
    want = [(e, s) for s in steps for e in ("begin", "loss", "backward", "end")]
    assert rec.events == want


class ZeroInputs(Callback):
    def on_batch_begin(self, state, batch):
        batch.x = np.zeros_like(batch.x)


class ShiftTargets(Callback):
    def on_loss_begin(self, state, batch):
        self.seen = batch.labels
        batch.y = (batch.y + 1) % 3


def test_replaced_inputs_and_targets_are_what_the_model_and_loss_get():
    # a model trained on zeroed inputs only ever sees zeros: its gradients equal a run on
    # zero data, so the weights after one step match that run bit for bit
    (m1, loss1, o1, r1), (m2, loss2, o2, r2) = setup(seed=5), setup(seed=5)
    x, y = data(40)
    fit(m1, loss1, o1, (x, y), epochs=1, batch_size=40, rng=r1, verbose=0,
        callbacks=[ZeroInputs()])
    fit(m2, loss2, o2, (np.zeros_like(x), y), epochs=1, batch_size=40, rng=r2, verbose=0)
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    # targets replaced after the forward reach the loss; the accuracy still uses the labels
    (m3, loss3, o3, r3), (m4, loss4, o4, r4) = setup(seed=5), setup(seed=5)
    shift = ShiftTargets()
    h = fit(m3, loss3, o3, (x, y), epochs=1, batch_size=40, rng=r3, verbose=0,
            callbacks=[shift])
    fit(m4, loss4, o4, (x, (y + 1) % 3), epochs=1, batch_size=40, rng=r4, verbose=0)
    for (k, a), b in zip(m3.state_dict().items(), m4.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    assert set(np.unique(shift.seen)) <= set(np.unique(y))
    assert 0.0 <= h["accuracy"][0] <= 1.0


def test_batch_is_exported():
    b = Batch(np.zeros(2), np.zeros(2), np.zeros(2), 1)
    assert b.out is None and b.loss is None
