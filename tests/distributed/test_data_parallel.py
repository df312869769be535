"""DataParallel: K ranks (threads standing in for MPI processes), each with its slice of every
batch, end with the weights of one process training on the whole batch (float64, 1e-10),
batches smaller than K (placeholder ranks) and SyncBatchNorm included; the same seed gives
bit-identical runs; the checksum option names a rank that fell out of step."""

import os
import sys

import numpy as np
import pytest

import convprop.layers as L
from convprop.distributed import DataParallel, SingleProcess, SyncBatchNorm, state_checksum
from convprop.optim import SGD, Adam
from convprop.train import Callback, fit

sys.path.insert(0, os.path.dirname(__file__))
from group import ThreadGroup  # noqa: E402


def _model(seed, bn=None):
    rng = np.random.default_rng(seed)
    kw = {"rng": rng, "dtype": np.float64}
    layers = [L.Conv2d(1, 4, 3, padding=1, **kw)]
    if bn is not None:
        layers.append(bn)
    layers += [L.ReLU(), L.MaxPool2d(2), L.Flatten(), L.Linear(4 * 3 * 3, 3, **kw)]
    return L.Sequential(*layers)


def _data(n=23, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 6, 6)), rng.integers(0, 3, n)


def _train(comm=None, *, bn=False, epochs=3, batch=8, opt="adam", seed=0, init_seed=None,
           callbacks=()):
    bnmod = None
    if bn:
        bnmod = (SyncBatchNorm(4, dtype=np.float64, comm=comm) if comm is not None
                 else L.BatchNorm2d(4, dtype=np.float64))
    model = _model(seed if init_seed is None else init_seed, bnmod)
    params = model.parameters()
    optim = Adam(params, lr=0.01) if opt == "adam" else SGD(params, lr=0.1, momentum=0.9)
    cbs = list(callbacks) + ([DataParallel(comm, check=True)] if comm is not None else [])
    h = fit(model, L.CrossEntropyLoss(), optim, _data(), epochs=epochs, batch_size=batch,
            rng=np.random.default_rng(seed + 7), verbose=0, callbacks=cbs)
    return model, h


@pytest.mark.parametrize("size,batch", [(2, 8), (3, 8), (2, 11), (4, 3)])
@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_k_ranks_equal_one_process_on_the_whole_batch(size, batch, opt):
    # 23 examples: the last batch (7, 1 or 2 examples) leaves some ranks with a placeholder
    one, h1 = _train(batch=batch, opt=opt)
    out = ThreadGroup(size).run(lambda c: _train(c, batch=batch, opt=opt))
    for model, h in out:
        for (k, a), b in zip(model.state_dict().items(), one.state_dict().values()):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-10, err_msg=k)
    # every rank holds the same weights, bit for bit
    sums = {state_checksum(m) for m, _ in out}
    assert len(sums) == 1


@pytest.mark.parametrize("size", [2, 3])
def test_sync_batchnorm_over_ranks_equals_one_process_batchnorm(size):
    # SGD, not Adam: the conv bias before a batch norm has a zero gradient up to rounding,
    # which Adam's normalisation would blow up to full-size steps in either run
    one, _ = _train(bn=True, batch=8, opt="sgd")
    out = ThreadGroup(size).run(lambda c: _train(c, bn=True, batch=8, opt="sgd"))
    for model, _ in out:
        for (k, a), b in zip(model.state_dict().items(), one.state_dict().values()):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-10, err_msg=k)


def test_same_seed_same_k_is_bit_identical():
    runs = [ThreadGroup(2).run(lambda c: _train(c, epochs=2)) for _ in range(2)]
    for (m1, _), (m2, _) in zip(*runs):
        for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
            np.testing.assert_array_equal(a, b)


def test_single_process_data_parallel_changes_nothing():
    one, h1 = _train()
    dp, h2 = _train(SingleProcess())
    for a, b in zip(one.state_dict().values(), dp.state_dict().values()):
        np.testing.assert_array_equal(a, b)


class _Drift(Callback):
    """Rank 1 nudges one weight after an epoch: the check must name it."""

    def __init__(self, comm):
        self.comm = comm

    def on_epoch_end(self, state, logs):  # runs before DataParallel's check
        if self.comm.rank == 1 and logs["epoch"] == 2:
            state.model.parameters()[0].value[0, 0, 0, 0] += 1e-12


def test_checksum_names_the_rank_out_of_step():
    with pytest.raises(RuntimeError, match=r"rank\(s\) \[1\] differ from rank 0's after "
                                           r"epoch 2"):
        ThreadGroup(2).run(lambda c: _train(c, callbacks=[_Drift(c)]))


def test_start_from_rank_0s_weights():
    # ranks built from different seeds train as one: rank 0's initial weights win
    one, _ = _train(seed=0)
    out = ThreadGroup(2).run(lambda c: _train(c, init_seed=c.rank * 5))
    np.testing.assert_allclose(out[1][0].parameters()[0].value, one.parameters()[0].value,
                               atol=1e-10)


def test_bad_comm():
    with pytest.raises(TypeError, match="DataParallel: comm must be a convprop.distributed"):
        DataParallel(comm="mpi")
