import numpy as np
import pytest
from contract import Kernel, raises
from helpers import readonly

from convprop import reference as R
from convprop.functional import dropout_backward, dropout_forward


def seeded(p, seed, training=True):
    """dropout with a Generator made afresh from ``seed`` on every call: a deterministic
    forward, as the contract's checks need."""
    return Kernel("dropout", lambda x: dropout_forward(x, p=p, training=training,
                                                       rng=np.random.default_rng(seed)),
                  dropout_backward)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_mask_statistics(p):
    x = np.ones((200, 500))
    y, cache = dropout_forward(x, p=p, training=True, rng=np.random.default_rng(1))
    keep = cache.mask
    assert keep.dtype == np.bool_ and keep.shape == x.shape
    n = keep.size
    frac = keep.mean()
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(frac - (1 - p)) < 5 * sigma, (frac, 1 - p)
    # inverted scaling: the expectation is kept, kept values are exactly 1/(1-p)
    np.testing.assert_allclose(y[keep], 1 / (1 - p), rtol=1e-15)
    assert np.all(y[~keep] == 0)
    assert abs(y.mean() - 1) < 5 * sigma / (1 - p)
    # not a fixed pattern: rows differ
    assert not np.array_equal(keep[0], keep[1])


def test_forward_matches_loop(rng):
    x = rng.standard_normal((3, 2, 4, 5))
    y, cache = dropout_forward(x, p=0.3, training=True, rng=np.random.default_rng(5))
    np.testing.assert_allclose(y, R.dropout(x, cache.mask, 0.3), rtol=1e-15, atol=0)


def test_same_seed_same_mask_any_dtype(rng):
    x = rng.standard_normal((4, 3, 6, 6))
    _, c1 = dropout_forward(x, p=0.4, training=True, rng=np.random.default_rng(7))
    _, c2 = dropout_forward(x.astype(np.float32), p=0.4, training=True,
                            rng=np.random.default_rng(7))
    _, c3 = dropout_forward(x, p=0.4, training=True, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(c1.mask, c2.mask)
    assert not np.array_equal(c1.mask, c3.mask)


def test_backward_uses_the_forward_mask(rng):
    x = rng.standard_normal((3, 4, 5))
    dy = rng.standard_normal(x.shape)
    _, cache = dropout_forward(x, p=0.5, training=True, rng=np.random.default_rng(3))
    dx = dropout_backward(dy, cache)
    np.testing.assert_allclose(dx, R.dropout_backward(dy, cache.mask, 0.5), rtol=1e-15, atol=0)


@pytest.mark.parametrize("p", [0.25, 0.9])
def test_gradcheck_with_reseeded_generator(p, rng):
    seeded(p, 11).check_gradient([rng.standard_normal((2, 3, 3, 3))], rng)


@pytest.mark.parametrize("training,p", [(False, 0.5), (True, 0.0), (False, 1.0)])
def test_identity_cases(training, p, rng):
    x = rng.standard_normal((2, 3, 4))
    dy = rng.standard_normal(x.shape)
    r = np.random.default_rng(0) if training else None
    y, cache = dropout_forward(readonly(x), p=p, training=training, rng=r)
    np.testing.assert_array_equal(y, x)
    assert y.flags.writeable and not np.shares_memory(y, x)
    np.testing.assert_array_equal(dropout_backward(dy, cache), dy)


def test_p_one_gives_zeros(rng):
    x = rng.standard_normal((3, 4))
    y, cache = dropout_forward(x, p=1.0, training=True, rng=rng)
    assert np.all(y == 0) and not cache.mask.any()
    dx = dropout_backward(rng.standard_normal(x.shape), cache)
    assert np.all(dx == 0) and np.all(np.isfinite(dx))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_hostile_inputs(dtype, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    seeded(0.3, 4).check_dtypes([x], rng, dtypes=(dtype,), rtol=1e-6, atol=1e-6)
    seeded(0.3, 4).check_hostile([x.astype(dtype)], rng)


def test_errors():
    x = np.zeros((2, 3))
    g = np.random.default_rng(0)
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"^dropout: p must be in \[0, 1\].*" + str(p)):
            dropout_forward(x, p=p, training=True, rng=g)
    with pytest.raises(TypeError, match="^dropout: p"):
        dropout_forward(x, p="0.5", training=True, rng=g)
    with pytest.raises(TypeError, match="^dropout: rng must be a numpy.random.Generator.*NoneType"):
        dropout_forward(x, p=0.5, training=True, rng=None)
    with pytest.raises(TypeError, match="^dropout: rng must be a numpy.random.Generator.*int"):
        dropout_forward(x, p=0.5, training=True, rng=0)
    with pytest.raises(TypeError, match="^dropout: rng .*RandomState"):
        dropout_forward(x, p=0.5, training=False, rng=np.random.RandomState(0))
    _, cache = dropout_forward(x, p=0.5, training=True, rng=g)
    with raises("dropout_backward", r"dy .*\(2, 3\)"):
        dropout_backward(np.zeros((3, 2)), cache)
    for training in (True, False):
        seeded(0.5, 0, training).check_type_errors([x])
        seeded(0.5, 0, training).check_dy_errors([x])


def test_parity_with_torch_given_the_mask(torch, rng):
    # torch draws its own mask; parity is checked on the scaling given the same mask
    x = rng.standard_normal((4, 5, 3))
    dy = rng.standard_normal(x.shape)
    y, cache = dropout_forward(x, p=0.35, training=True, rng=rng)
    dx = dropout_backward(dy, cache)
    tx = torch.tensor(x, requires_grad=True)
    tm = torch.tensor(cache.mask.astype(np.float64))
    ty = tx * tm / (1 - 0.35)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=0, atol=1e-10)
    # and torch's own dropout has the same semantics: kept values scaled by 1/(1-p)
    tyd = torch.nn.functional.dropout(torch.ones(10000, dtype=torch.float64), p=0.35,
                                      training=True)
    assert set(np.unique(tyd.numpy()).round(12)) <= {0.0, round(1 / 0.65, 12)}
