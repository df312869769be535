"""DataParallel keeps every rank's state one state where the ranks' slices would split it:
per-rank batch norm's running statistics (averaged over the ranks, weights n_r / n, so
validation, checkpoints and early stopping agree), random modules' generators (independent
streams per rank, derived from rank 0's, so a resumed run draws what the uninterrupted one
drew), and the learning rate in the checksum."""

import os
import sys

import numpy as np
import pytest

import convprop.layers as L
from convprop.distributed import DataParallel, OutOfSyncError, state_checksum
from convprop.io import load_checkpoint, save_checkpoint
from convprop.optim import SGD
from convprop.train import Callback, fit

sys.path.insert(0, os.path.dirname(__file__))
from group import ThreadGroup, shards  # noqa: E402


def _data(n=23, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6)) * 3 + 1, rng.integers(0, 3, n)


def _model(kind, seed=0):
    rng = np.random.default_rng(seed)
    kw = {"rng": rng, "dtype": np.float64}
    mid = (L.BatchNorm1d(5, dtype=np.float64) if kind == "bn"
           else L.Dropout(0.5, rng=np.random.default_rng(seed + 100)))
    return L.Sequential(L.Linear(6, 5, **kw), mid, L.ReLU(), L.Linear(5, 3, **kw))


def _fit(model, comm, *, epochs, initial_epoch=0, rng=None, optim=None, callbacks=(),
         val=True):
    optim = SGD(model.parameters(), lr=0.05, momentum=0.9) if optim is None else optim
    rng = np.random.default_rng(7) if rng is None else rng
    h = fit(model, L.CrossEntropyLoss(), optim, _data(), epochs=epochs, batch_size=8,
            val_data=_data(11, seed=2) if val else None, rng=rng, verbose=0,
            initial_epoch=initial_epoch,
            callbacks=[*callbacks, DataParallel(comm, check=True)])
    return model, optim, rng, h


@pytest.mark.parametrize("size", [2, 3])
def test_per_rank_batchnorm_statistics_are_one_weighted_average(size):
    # each rank's running mean would come from its own slice: the check found them apart
    out = ThreadGroup(size).run(lambda c: _fit(_model("bn"), c, epochs=2))
    assert len({state_checksum(m) for m, *_ in out}) == 1
    hist = [h["val_loss"] for *_, h in out]
    # every rank validates with the same buffers: early stopping, keep-best and a plateau
    # schedule decide alike on every rank
    assert all(v == hist[0] for v in hist)

    # the running mean is the n_r / n weighted average of the per-rank updates: for one step
    # from the same buffers it is the EMA of the global batch mean of the first layer's output
    x, y = _data()
    xb = x[:8]

    def one_step(comm):
        m = _model("bn")
        m[1].momentum = 1.0  # the running mean becomes the batch mean itself
        dp = DataParallel(comm)
        st = type("S", (), {"model": m, "optimizer": None})()
        dp.on_train_begin(st)
        sl = shards(8, comm.size)[comm.rank]
        m.forward(xb[sl], training=True)
        for p in m.parameters():
            p.grad[...] = 0
        dp.average_gradients(m.parameters(), sl.stop - sl.start, 8, buffers=dp._buffers)
        return m[1].running_mean

    ref = _model("bn")[0].predict(xb).mean(axis=0)
    for rm in ThreadGroup(size).run(one_step):
        np.testing.assert_allclose(rm, ref, atol=1e-12)


def test_ranks_draw_independent_dropout_masks():
    def run(comm):
        m = _model("drop")
        dp = DataParallel(comm)
        dp.on_train_begin(type("S", (), {"model": m, "optimizer": None})())
        return m[1].rng.random(16)

    one = _model("drop")[1].rng.random(16)
    r0, r1, r2 = ThreadGroup(3).run(run)
    np.testing.assert_array_equal(r0, one)  # rank 0 keeps its stream (the checkpointed one)
    assert not np.array_equal(r0, r1) and not np.array_equal(r1, r2)


def test_a_resumed_dropout_run_draws_what_the_uninterrupted_one_drew(tmp_path):
    # 23 examples, batch 8, 2 ranks: the last batch's slices (3 and 4) advance the ranks'
    # generators differently; the resumed run only has rank 0's states
    straight = ThreadGroup(2).run(lambda c: _fit(_model("drop"), c, epochs=3)[0])

    def first(comm):
        m, opt, rng, _ = _fit(_model("drop"), comm, epochs=1)
        if comm.rank == 0:
            save_checkpoint(tmp_path / "c.safetensors", m, optimizer=opt, epoch=1, rng=rng)

    ThreadGroup(2).run(first)

    def resume(comm):
        m = _model("drop", seed=5)
        opt = SGD(m.parameters(), lr=0.05, momentum=0.9)
        rng = np.random.default_rng()
        load_checkpoint(tmp_path / "c.safetensors").restore(m, opt, None, rng)
        return _fit(m, comm, epochs=3, initial_epoch=1, rng=rng, optim=opt)[0]

    for a, b in zip(straight, ThreadGroup(2).run(resume)):
        for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
            np.testing.assert_array_equal(v, w, err_msg=k)


class _Lr(Callback):
    def __init__(self, comm):
        self.comm = comm

    def on_epoch_end(self, state, logs):  # a schedule stepped with a rank's own metric
        if self.comm.rank == 1:
            state.optimizer.lr *= 0.5


def test_checksum_covers_the_learning_rate():
    with pytest.raises(OutOfSyncError, match=r"rank\(s\) \[1\] differ from rank 0's after "
                                             r"epoch 1"):
        ThreadGroup(2).run(lambda c: _fit(_model("drop"), c, epochs=2, callbacks=[_Lr(c)]))


def test_a_plateau_schedule_without_validation_data_steps_alike_on_every_rank():
    from convprop.optim.plateau import ReduceLROnPlateau

    def run(comm):
        m = _model("bn")
        opt = SGD(m.parameters(), lr=0.05)
        sch = ReduceLROnPlateau(opt, factor=0.5, patience=0)
        fit(m, L.CrossEntropyLoss(), opt, _data(), epochs=8, batch_size=8, schedule=sch,
            rng=np.random.default_rng(7), verbose=0, callbacks=[DataParallel(comm)])
        return opt.lr

    lrs = ThreadGroup(2).run(run)
    assert lrs[0] == lrs[1], lrs  # was 0.00039 on rank 0, 0.00078 on rank 1
