"""SyncBatchNorm: over K ranks (threads standing in for MPI processes, unequal shards
included) the concatenated outputs, the input gradients, the parameter gradients weighted as
DataParallel weights them and the running statistics equal one BatchNorm over the whole
batch, in float64; with one process it is BatchNorm."""

import os
import sys

import numpy as np
import pytest

import convprop.layers as L
from convprop.distributed import SingleProcess, SyncBatchNorm

sys.path.insert(0, os.path.dirname(__file__))
from group import ThreadGroup, shards  # noqa: E402

SHAPES = {2: (7, 3), 3: (7, 3, 5), 4: (7, 3, 4, 5), 5: (7, 3, 2, 3, 4)}
REF = {2: L.BatchNorm1d, 3: L.BatchNorm1d, 4: L.BatchNorm2d, 5: L.BatchNorm3d}


def _pair(ndim, rng, **kw):
    ref = REF[ndim](3, dtype=np.float64, **kw)
    ref.weight.value = rng.standard_normal(3) + 1.5
    ref.bias.value = rng.standard_normal(3)
    return ref


@pytest.mark.parametrize("ndim", [2, 3, 4, 5])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_sync_batchnorm_equals_one_batchnorm_over_the_whole_batch(ndim, size, rng):
    ref = _pair(ndim, rng, momentum=0.3)
    x = rng.standard_normal(SHAPES[ndim]) * 2 + 0.5
    dy = rng.standard_normal(x.shape)
    y_ref, c_ref = ref.forward(x, training=True)
    ref.zero_grad()
    dx_ref = ref.backward(dy, c_ref)
    n = len(x)

    def rank(comm):
        m = SyncBatchNorm(3, momentum=0.3, dtype=np.float64, comm=comm)
        m.load_state_dict(_pair(ndim, np.random.default_rng(0)).state_dict())
        m.weight.value, m.bias.value = ref.weight.value.copy(), ref.bias.value.copy()
        m.load_state_dict({"running_mean": np.zeros(3), "running_var": np.ones(3),
                           "num_batches_tracked": np.array(0)}, strict=False)
        sl = shards(n, comm.size)[comm.rank]
        nr = sl.stop - sl.start
        y, cache = m.forward(x[sl], training=True)
        # the rank's upstream gradient is that of its own mean loss: N / n_r times the share
        m.zero_grad()
        dx = m.backward(dy[sl] * (n / nr), cache)
        return y, dx * (nr / n), m.weight.grad * (nr / n), m.bias.grad * (nr / n), \
            m.running_mean, m.running_var

    out = ThreadGroup(size).run(rank)
    np.testing.assert_allclose(np.concatenate([o[0] for o in out]), y_ref, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([o[1] for o in out]), dx_ref, atol=1e-12)
    np.testing.assert_allclose(sum(o[2] for o in out), ref.weight.grad, atol=1e-12)
    np.testing.assert_allclose(sum(o[3] for o in out), ref.bias.grad, atol=1e-12)
    for o in out:  # identical running statistics on every rank, the one-process ones
        np.testing.assert_allclose(o[4], ref.running_mean, atol=1e-13)
        np.testing.assert_allclose(o[5], ref.running_var, atol=1e-13)


def test_single_process_is_batchnorm_and_eval_uses_running_stats(rng):
    ref = _pair(4, rng)
    m = SyncBatchNorm.convert(L.Sequential(ref.__class__(3, dtype=np.float64)),
                              SingleProcess())[0]
    assert isinstance(m, SyncBatchNorm) and m.comm.size == 1
    m.load_state_dict(ref.state_dict())
    x, dy = rng.standard_normal((5, 3, 4, 4)), rng.standard_normal((5, 3, 4, 4))
    (y, c), (y2, c2) = m.forward(x, training=True), ref.forward(x, training=True)
    np.testing.assert_allclose(y, y2, atol=1e-12)
    m.zero_grad(), ref.zero_grad()
    np.testing.assert_allclose(m.backward(dy, c), ref.backward(dy, c2), atol=1e-12)
    np.testing.assert_allclose(m.weight.grad, ref.weight.grad, atol=1e-12)
    for k, v in ref.state_dict().items():
        np.testing.assert_allclose(m.state_dict()[k], v, atol=1e-13, err_msg=k)
    np.testing.assert_allclose(m.predict(x), ref.predict(x), atol=1e-12)  # running stats


def test_placeholder_rank_contributes_nothing(rng):
    x = rng.standard_normal((3, 2, 3))
    ref = L.BatchNorm1d(2, dtype=np.float64)
    y_ref, _ = ref.forward(x, training=True)

    def rank(comm):
        m = SyncBatchNorm(2, dtype=np.float64, comm=comm)
        comm.placeholder = comm.rank == 1          # rank 1 runs a stand-in example
        xs = x if comm.rank == 0 else x[:1] * 100  # (its values must not count)
        y, cache = m.forward(xs, training=True)
        m.backward(np.ones_like(y), cache)
        return y, m.running_mean

    out = ThreadGroup(2).run(rank)
    np.testing.assert_allclose(out[0][0], y_ref, atol=1e-12)
    np.testing.assert_allclose(out[1][1], ref.running_mean, atol=1e-13)


def test_errors(rng):
    m = SyncBatchNorm(3, comm=SingleProcess())
    with pytest.raises(ValueError, match=r"^SyncBatchNorm: x must be 2-D to 5-D with 3 "):
        m.forward(np.zeros((2, 4), np.float32), training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel over all ranks"):
        m.forward(np.zeros((1, 3), np.float32), training=True)
    with pytest.raises(TypeError, match="SyncBatchNorm.backward: cache must be the "):
        m.backward(np.zeros((2, 3), np.float32), None)
