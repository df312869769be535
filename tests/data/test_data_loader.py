"""batches(): every sample once per epoch, fresh permutation per epoch, views when not shuffled."""

import numpy as np
import pytest
from helpers import hostile

from convprop.data import batches


def _xy(n):
    x = np.arange(n * 6, dtype=np.float32).reshape(n, 1, 2, 3)
    return x, np.arange(n, dtype=np.int64)


@pytest.mark.parametrize("n, bs, drop_last", [(10, 3, False), (10, 3, True), (9, 3, True),
                                             (1, 4, False), (5, 1, False), (4, 10, True)])
def test_sequential(n, bs, drop_last):
    x, y = _xy(n)
    got = list(batches(x, y, bs, shuffle=False, drop_last=drop_last))
    sizes = [len(b[1]) for b in got]
    expect = [bs] * (n // bs) + ([] if drop_last or n % bs == 0 else [n % bs])
    assert sizes == expect
    if got:
        np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), y[:sum(sizes)])
        assert all(np.shares_memory(xb, x) for xb, _ in got)  # slices, no copies


def test_shuffle_is_a_permutation_and_fresh_each_epoch():
    x, y = _xy(23)
    rng = np.random.default_rng(1)
    epochs = []
    for _ in range(3):
        got = list(batches(x, y, 5, shuffle=True, rng=rng))
        assert [len(yb) for _, yb in got] == [5, 5, 5, 5, 3]
        order = np.concatenate([yb for _, yb in got])
        assert sorted(order.tolist()) == list(range(23))
        for xb, yb in got:
            np.testing.assert_array_equal(xb, x[yb])  # images stay with their labels
        epochs.append(order.tolist())
    assert epochs[0] != epochs[1] != epochs[2]
    replay = np.concatenate([yb for _, yb in batches(x, y, 5, shuffle=True,
                                                     rng=np.random.default_rng(1))])
    assert replay.tolist() == epochs[0]  # reproducible from the seed


def test_shuffle_drop_last_and_x_only():
    x, _ = _xy(11)
    got = list(batches(x, None, 4, shuffle=True, rng=np.random.default_rng(0), drop_last=True))
    assert [len(b) for b in got] == [4, 4]
    assert len({float(b[i, 0, 0, 0]) for b in got for i in range(4)}) == 8


def test_hostile_input():
    x, y = _xy(7)
    got = list(batches(hostile(x), y, 3, shuffle=True, rng=np.random.default_rng(2)))
    for xb, yb in got:
        np.testing.assert_array_equal(xb, x[yb])


def test_errors():
    x, y = _xy(4)
    with pytest.raises(TypeError, match=r"batches: shuffle=True needs rng"):
        batches(x, y, 2, shuffle=True)
    with pytest.raises(TypeError, match=r"batches: shuffle=True needs rng"):
        batches(x, y, 2, shuffle=True, rng=3)
    with pytest.raises(ValueError, match=r"batches: batch_size must be >= 1, got 0"):
        batches(x, y, 0, shuffle=False)
    with pytest.raises(TypeError, match=r"batches: batch_size must be an int"):
        batches(x, y, 2.0, shuffle=False)
    with pytest.raises(ValueError, match=r"batches: x and y must have the same length"):
        batches(x, y[:3], 2, shuffle=False)
    with pytest.raises(TypeError, match=r"batches: x must be an array"):
        batches([1, 2], None, 2, shuffle=False)
