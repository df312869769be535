"""NEM noise (Audhkhasi, Osoba, Kosko 2016): the condition itself against its definition,
and inside fit: every accepted draw satisfies it at the output the loss sees, rejected draws
never reach the loss, the annealing schedule, reproducibility from the seed."""

import math

import numpy as np
import pytest

from _tiny import data, setup
from convprop.layers.loss import CrossEntropyLoss, MSELoss
from convprop.train import fit
from convprop.train.nem import NEMNoise, nem_condition


class SpyLoss:
    """Wraps a loss; remembers every (prediction, targets) pair the loss was given."""

    def __init__(self, inner):
        self.inner, self.seen = inner, []

    def forward(self, pred, target):
        self.seen.append((np.array(pred, copy=True), np.array(target, copy=True)))
        return self.inner.forward(pred, target)

    def backward(self, dy, cache, *, need_dx=True):
        return self.inner.backward(dy, cache)


def _loglik_ce(t, out):
    """sum_k t_k log softmax(out)_k row by row, with loops (the multinomial log-likelihood)."""
    res = []
    for row, tr in zip(out, t):
        m = max(row)
        lse = m + math.log(sum(math.exp(v - m) for v in row))
        res.append(sum(tk * (zk - lse) for tk, zk in zip(tr, row)))
    return np.array(res)


def test_hyperplane_condition_is_the_likelihood_gain(rng):
    out = rng.standard_normal((200, 5)) * 2
    t = np.eye(5)[rng.integers(0, 5, 200)]
    n = rng.uniform(-0.5, 0.5, (200, 5))
    ok = nem_condition(n, out, t, "cross_entropy")
    gain = _loglik_ce(t + n, out) - _loglik_ce(t, out)
    np.testing.assert_array_equal(ok, gain >= 0)
    assert 0 < ok.sum() < 200


def test_hypersphere_condition_is_the_distance_drop(rng):
    out = rng.standard_normal((200, 4))
    t = np.eye(4)[rng.integers(0, 4, 200)]
    n = rng.standard_normal((200, 4)) * 0.7
    ok = nem_condition(n, out, t, "mse")
    before = [sum((a - b) ** 2 for a, b in zip(tr, o)) for tr, o in zip(t, out)]
    after = [sum((a + c - b) ** 2 for a, c, b in zip(tr, nr, o)) for tr, nr, o in zip(t, n, out)]
    np.testing.assert_array_equal(ok, np.array(after) <= np.array(before) + 1e-12)
    assert 0 < ok.sum() < 200


@pytest.mark.parametrize("distribution", ["uniform", "gaussian"])
def test_inside_fit_accepted_satisfy_rejected_never_reach_the_loss(distribution):
    model, _, opt, rng = setup()
    x, y = data(90)
    spy = SpyLoss(CrossEntropyLoss())
    nem = NEMNoise("cross_entropy", scale=1.0, decay=1.0, distribution=distribution,
                   seed=3, record=True)
    fit(model, spy, opt, (x, y), epochs=2, batch_size=32, rng=rng, verbose=0, callbacks=[nem])
    assert len(nem.draws) == len(spy.seen) == 6
    n_acc = n_rej = 0
    for d, (pred, target) in zip(nem.draws, spy.seen):
        onehot = d.targets
        assert set(np.unique(onehot)) <= {0.0, 1.0}
        # the loss got exactly the accepted noise and nothing of the rejected noise
        np.testing.assert_array_equal(target[d.accepted], (onehot + d.noise)[d.accepted])
        np.testing.assert_array_equal(target[~d.accepted], onehot[~d.accepted])
        # accepted draws satisfy the hyperplane condition at the output the loss saw
        gain = _loglik_ce(onehot + d.noise, pred) - _loglik_ce(onehot, pred)
        assert np.all(gain[d.accepted] >= -1e-6)
        assert np.all(gain[~d.accepted] < 1e-6)
        n_acc, n_rej = n_acc + d.accepted.sum(), n_rej + (~d.accepted).sum()
    assert n_acc > 0 and n_rej > 0
    assert nem.accepted == n_acc and nem.drawn == 90 * 2
    assert len(nem.epoch_accept_rate) == 2


def test_mse_targets_and_sphere_inside_fit():
    model, _, opt, rng = setup()
    x, y = data(64)
    spy = SpyLoss(MSELoss())
    nem = NEMNoise("mse", scale=0.8, seed=1, record=True)
    fit(model, spy, opt, (x, y), epochs=1, batch_size=32, rng=rng, verbose=0, callbacks=[nem])
    for d, (pred, target) in zip(nem.draws, spy.seen):
        dist0 = ((d.targets - pred) ** 2).sum(1)
        dist1 = ((d.targets + d.noise - pred) ** 2).sum(1)
        assert np.all(dist1[d.accepted] <= dist0[d.accepted] + 1e-6)
        np.testing.assert_array_equal(target[~d.accepted], d.targets[~d.accepted])


def test_annealing_schedule_and_noise_bounds():
    model, loss, opt, rng = setup()
    x, y = data(64)
    nem = NEMNoise(scale=0.6, decay=2.0, seed=0, record=True)
    fit(model, loss, opt, (x, y), epochs=3, batch_size=64, rng=rng, verbose=0, callbacks=[nem])
    assert [d.scale for d in nem.draws] == [0.6, 0.6 / 4, 0.6 / 9]
    for d in nem.draws:
        assert np.all(np.abs(d.noise) <= d.scale / 2)
    per_step = NEMNoise(scale=1.0, decay=1.0, anneal="step", seed=0, record=True)
    model, loss, opt, rng = setup()
    fit(model, loss, opt, (x, y), epochs=2, batch_size=32, rng=rng, verbose=0,
        callbacks=[per_step])
    assert [d.scale for d in per_step.draws] == [1.0, 1 / 2, 1 / 3, 1 / 4]


def test_reproducible_from_seed_and_leaves_fit_rng_alone():
    x, y = data(64)
    runs = []
    for seed in (5, 5, 6):
        model, loss, opt, rng = setup()
        nem = NEMNoise(seed=seed, record=True)
        fit(model, loss, opt, (x, y), epochs=1, batch_size=32, rng=rng, verbose=0,
            callbacks=[nem])
        runs.append((nem.draws[0].noise, model.state_dict()["0.weight"], rng.random()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0], runs[2][0])
    assert runs[0][2] == runs[2][2]          # fit's generator advanced the same way


def test_scale_zero_is_plain_training():
    x, y = data(64)
    weights = []
    for cbs in ([], [NEMNoise(scale=0.0)]):
        model, loss, opt, rng = setup()
        fit(model, loss, opt, (x, y), epochs=1, batch_size=32, rng=rng, verbose=0,
            callbacks=cbs)
        weights.append(model.state_dict()["3.weight"])
    np.testing.assert_allclose(weights[0], weights[1], rtol=1e-6, atol=1e-7)


def test_errors(rng):
    with pytest.raises(ValueError, match="^NEMNoise: loss must be one of"):
        NEMNoise("hinge")
    with pytest.raises(ValueError, match="^NEMNoise: scale must be .*>= 0"):
        NEMNoise(scale=-1)
    with pytest.raises(ValueError, match="^NEMNoise: decay must be .*finite"):
        NEMNoise(decay=float("nan"))
    with pytest.raises(ValueError, match="^NEMNoise: distribution must be"):
        NEMNoise(distribution="laplace")
    with pytest.raises(ValueError, match="^NEMNoise: anneal must be"):
        NEMNoise(anneal="batch")
    with pytest.raises(TypeError, match="^NEMNoise: seed must be an int"):
        NEMNoise(seed="x")
    with pytest.raises(ValueError, match=r"^nem_condition: noise and out must both be"):
        nem_condition(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((2, 4)))
    model, loss, opt, frng = setup()
    x, y = data(32)
    with pytest.raises(ValueError, match=r"^NEMNoise: class targets must lie in \[0, 3\)"):
        fit(model, loss, opt, (x, y + 5), epochs=1, batch_size=32, rng=frng, verbose=0,
            callbacks=[NEMNoise()])
