"""LeNet-5's published layers (LeCun et al. 1998): ScaledTanh, Subsampling2d (S2/S4),
MaskedConv2d (C3, Table I), EuclideanRBF with fixed codes, RBFLoss (eq. 9 / eq. 8) and the
argmin prediction. Forward against loops written here, float64 numerical gradients of the
input and every parameter, the C3 mask kept at zero by SGD and Adam, shapes, dtypes, errors."""

import math

import numpy as np
import pytest

from convprop.gradcheck import check_kernel, check_module
from convprop.layers.lenet_classic import (DIGIT_BITMAPS_7X12, LENET5_C3_TABLE, EuclideanRBF,
                                           MaskedConv2d, RBFLoss, ScaledTanh, Subsampling2d,
                                           digit_codes, rbf_predict)
from convprop.optim import SGD, Adam


# -- loop oracles (no convprop) ----------------------------------------------------------------

def subsample_loop(x, coef, bias):
    n, c, h, w = x.shape
    y = np.zeros((n, c, h // 2, w // 2))
    for a in range(n):
        for k in range(c):
            for i in range(h // 2):
                for j in range(w // 2):
                    s = sum(x[a, k, 2 * i + p, 2 * j + q] for p in range(2) for q in range(2))
                    y[a, k, i, j] = coef[k] * s + bias[k]
    return y


def masked_conv_loop(x, w, b, table):
    """C3 as the paper describes it: each output map sums 5x5 windows of its input maps."""
    n, cin, h, wd = x.shape
    cout, _, kh, kw = w.shape
    y = np.zeros((n, cout, h - kh + 1, wd - kw + 1))
    for a in range(n):
        for o in range(cout):
            for i in range(h - kh + 1):
                for j in range(wd - kw + 1):
                    acc = b[o]
                    for c in range(cin):
                        if table[c][o]:
                            for p in range(kh):
                                for q in range(kw):
                                    acc += x[a, c, i + p, j + q] * w[o, c, p, q]
                    y[a, o, i, j] = acc
    return y


def rbf_loop(x, codes):
    return np.array([[sum((x[n, j] - codes[i, j]) ** 2 for j in range(x.shape[1]))
                      for i in range(codes.shape[0])] for n in range(x.shape[0])])


def eq9_loop(y, t, j):
    out = []
    for n in range(y.shape[0]):
        out.append(y[n, t[n]] + math.log(math.exp(-j) + sum(math.exp(-v) for v in y[n])))
    return sum(out) / len(out)


# -- Table I and the codes -----------------------------------------------------------------------

def test_table_one_structure():
    t = LENET5_C3_TABLE
    assert t.shape == (6, 16) and t.dtype == bool
    assert t.sum() == 60  # 60 * 25 + 16 biases = 1,516 parameters (the paper)
    for k in range(6):   # contiguous (cyclic) triples
        assert set(np.flatnonzero(t[:, k])) == {k % 6, (k + 1) % 6, (k + 2) % 6}
    for k in range(6):   # contiguous quadruples
        assert set(np.flatnonzero(t[:, 6 + k])) == {(k + d) % 6 for d in range(4)}
    assert [set(np.flatnonzero(t[:, k])) for k in (12, 13, 14)] == [
        {0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5}]
    assert t[:, 15].all()


def test_digit_codes():
    codes = digit_codes()
    assert codes.shape == (10, 84) and codes.dtype == np.float32
    assert set(np.unique(codes)) == {-1.0, 1.0}
    assert digit_codes(np.float64).dtype == np.float64
    assert [d for d, _ in DIGIT_BITMAPS_7X12] == [str(i) for i in range(10)]
    for _, rows in DIGIT_BITMAPS_7X12:
        assert len(rows) == 12 and all(len(r) == 7 and set(r) <= {"#", "."} for r in rows)
    # distinct codes: the squared distance between two codes is 4 * Hamming; the closest
    # pair, 3 and 8, differs in 6 of the 84 pixels
    d = ((codes[:, None] - codes[None]) ** 2).sum(-1)
    assert d[~np.eye(10, dtype=bool)].min() == 4 * 6 and d[3, 8] == 4 * 6


# -- ScaledTanh -------------------------------------------------------------------------------

def test_scaled_tanh_forward_and_constants(rng):
    m = ScaledTanh()
    x = rng.standard_normal((3, 4)).astype(np.float32)
    y, _ = m.forward(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, 1.7159 * np.tanh(2 * x.astype(np.float64) / 3), rtol=1e-6)
    one = m.forward(np.array([1.0, -1.0]))[0]
    np.testing.assert_allclose(one, [1.0, -1.0], atol=2e-4)  # f(+-1) = +-1 (appendix A)


def test_scaled_tanh_gradcheck(rng):
    check_module(ScaledTanh(), rng.standard_normal((2, 3, 4, 5)) * 2,
                 rng=rng).raise_if_failed()


def test_scaled_tanh_errors():
    with pytest.raises(TypeError, match="ScaledTanh: amplitude"):
        ScaledTanh(amplitude="big")
    with pytest.raises(TypeError, match="ScaledTanh"):
        ScaledTanh().forward(np.array([1, 2]))


# -- Subsampling2d ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 6, 4), (1, 1, 2, 2), (2, 2, 5, 7), (1, 4, 4, 6)])
def test_subsampling_forward_against_loop(rng, shape):
    m = Subsampling2d(shape[1], rng=rng, dtype=np.float64)
    x = rng.standard_normal(shape)
    x.flags.writeable = False
    y, _ = m.forward(x)
    assert y.shape == (shape[0], shape[1], shape[2] // 2, shape[3] // 2)
    np.testing.assert_allclose(y, subsample_loop(x, m.weight.value, m.bias.value), rtol=1e-12)


def test_subsampling_noncontiguous_input(rng):
    m = Subsampling2d(3, rng=rng, dtype=np.float64)
    base = rng.standard_normal((2, 6, 8, 10))
    x = base[:, ::2, :, ::-1]
    assert not x.flags.c_contiguous
    np.testing.assert_allclose(m.forward(x)[0], subsample_loop(x, m.weight.value, m.bias.value),
                               rtol=1e-12)


@pytest.mark.parametrize("shape", [(2, 3, 4, 6), (1, 2, 5, 3), (3, 1, 2, 2)])
def test_subsampling_gradcheck(rng, shape):
    m = Subsampling2d(shape[1], rng=rng)
    report = check_module(m, rng.standard_normal(shape), rng=rng)
    assert set(report.errors) == {"input", "weight", "bias"}
    report.raise_if_failed()


def test_subsampling_odd_edge_gets_zero_gradient(rng):
    m = Subsampling2d(1, rng=rng, dtype=np.float64)
    x = rng.standard_normal((1, 1, 5, 5))
    y, c = m.forward(x)
    dx = m.backward(rng.standard_normal(y.shape), c)
    assert np.all(dx[..., 4, :] == 0) and np.all(dx[..., :, 4] == 0)


def test_subsampling_default_is_average_pooling(rng):
    m = Subsampling2d(2, dtype=np.float64)
    x = rng.standard_normal((1, 2, 4, 4))
    np.testing.assert_allclose(m.forward(x)[0], x.reshape(1, 2, 2, 2, 2, 2).mean((3, 5)))
    assert m.num_parameters() == 4  # a coefficient and a bias per map


def test_subsampling_float32_and_errors(rng):
    m = Subsampling2d(2, rng=rng)
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    y, c = m.forward(x)
    assert y.dtype == np.float32 and m.backward(np.ones_like(y), c).dtype == np.float32
    with pytest.raises(ValueError, match=r"Subsampling2d: expected x of shape \(N, 2, H, W\)"):
        m.forward(np.zeros((1, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="subsampling2d: x must be at least 2x2"):
        m.forward(np.zeros((1, 2, 1, 4), np.float32))
    with pytest.raises(TypeError, match="Subsampling2d: x has dtype float64"):
        m.forward(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match="Subsampling2d: channels"):
        Subsampling2d(0)
    with pytest.raises(TypeError, match="Subsampling2d: rng"):
        Subsampling2d(2, rng=3)


# -- MaskedConv2d -------------------------------------------------------------------------------

def test_masked_conv_c3_counts(rng):
    m = MaskedConv2d(6, 16, 5, rng=rng)
    assert m.weight.shape == (16, 6, 5, 5)
    assert m.num_connections() == 1516
    assert np.all(m.weight.value[m.mask == 0] == 0)
    assert np.count_nonzero(m.weight.value) == 1500
    # initial bound 2.4 / fan-in, per output map
    fan_in = LENET5_C3_TABLE.sum(0) * 25
    assert np.all(np.abs(m.weight.value).max(axis=(1, 2, 3)) <= 2.4 / fan_in + 1e-7)


def test_masked_conv_forward_against_loop(rng):
    m = MaskedConv2d(6, 16, 5, rng=rng, dtype=np.float64)
    # non-zero values where the mask is zero must still have no effect
    m.weight.value = rng.standard_normal(m.weight.shape)
    x = rng.standard_normal((2, 6, 7, 6))
    x.flags.writeable = False
    y, _ = m.forward(x)
    assert y.shape == (2, 16, 3, 2)
    np.testing.assert_allclose(y, masked_conv_loop(x, m.weight.value, m.bias.value,
                                                   LENET5_C3_TABLE), rtol=1e-10, atol=1e-12)


def test_masked_conv_gradcheck_and_masked_grad_zero(rng):
    table = np.array([[1, 0, 1], [0, 1, 1]], dtype=bool)
    m = MaskedConv2d(2, 3, 3, table, rng=rng)
    check_module(m, rng.standard_normal((2, 2, 5, 4)), rng=rng).raise_if_failed()
    m.zero_grad()
    x = rng.standard_normal((2, 2, 5, 4))
    y, c = m.forward(x)
    m.backward(rng.standard_normal(y.shape), c)
    assert np.all(m.weight.grad[m.mask == 0] == 0)
    assert np.all(m.weight.grad[m.mask == 1] != 0)


@pytest.mark.parametrize("make_opt", [
    lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
    lambda p: Adam(p, lr=0.01, weight_decay=1e-3),
], ids=["sgd", "adam"])
def test_masked_weights_stay_zero_under_training(rng, make_opt):
    m = MaskedConv2d(6, 16, 5, rng=rng)
    opt = make_opt(m)
    before = m.weight.value.copy()
    x = rng.standard_normal((4, 6, 9, 9)).astype(np.float32)
    for _ in range(5):
        y, c = m.forward(x, training=True)
        m.backward(rng.standard_normal(y.shape).astype(np.float32), c)
        opt.step()
        opt.zero_grad()
    assert np.all(m.weight.value[m.mask == 0] == 0)  # exactly zero
    assert np.all(m.weight.value[m.mask == 1] != before[m.mask == 1])  # the others trained


def test_masked_conv_errors(rng):
    with pytest.raises(ValueError, match="MaskedConv2d: connections is required"):
        MaskedConv2d(3, 4, 5)
    with pytest.raises(ValueError, match=r"MaskedConv2d: connections must have shape"):
        MaskedConv2d(2, 3, 3, np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="MaskedConv2d: connections must be boolean or 0/1"):
        MaskedConv2d(2, 2, 3, np.full((2, 2), 2))
    with pytest.raises(ValueError, match=r"output maps \[1\] have none"):
        MaskedConv2d(2, 2, 3, np.array([[1, 0], [1, 0]]))
    m = MaskedConv2d(6, 16, 5, rng=rng)
    with pytest.raises(ValueError, match=r"MaskedConv2d: expected x of shape \(N, 6, H, W\)"):
        m.forward(np.zeros((1, 5, 9, 9), np.float32))
    assert "connections=60/96" in repr(m)


# -- EuclideanRBF and the criterion ------------------------------------------------------------

def test_rbf_forward_against_loop(rng):
    codes = np.where(rng.random((4, 6)) < 0.5, -1.0, 1.0)
    m = EuclideanRBF(codes, dtype=np.float64)
    x = rng.standard_normal((3, 6))
    y, _ = m.forward(x)
    assert y.shape == (3, 4)
    np.testing.assert_allclose(y, rbf_loop(x, codes), rtol=1e-12)
    # a state equal to a code scores 0 for its class
    assert m.forward(codes[2:3].copy())[0][0, 2] == 0


def test_rbf_gradcheck_and_codes_fixed(rng):
    codes = np.where(rng.random((3, 5)) < 0.5, -1.0, 1.0)
    m = EuclideanRBF(codes)
    assert m.parameters() == [] and "codes" in m.state_dict()
    check_module(m, rng.standard_normal((4, 5)), rng=rng).raise_if_failed()


def test_rbf_errors():
    with pytest.raises(ValueError, match="EuclideanRBF: codes must be a non-empty 2-D"):
        EuclideanRBF(np.ones(3))
    with pytest.raises(ValueError, match="EuclideanRBF: codes must be finite"):
        EuclideanRBF(np.array([[np.nan, 1.0]]))
    m = EuclideanRBF(digit_codes())
    with pytest.raises(ValueError, match=r"EuclideanRBF: expected x of shape \(N, 84\)"):
        m.forward(np.zeros((2, 80), np.float32))
    with pytest.raises(TypeError, match="EuclideanRBF: x has dtype float64"):
        m.forward(np.zeros((2, 84)))


@pytest.mark.parametrize("j", [1.0, 5.0, None])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_rbf_loss_value_and_gradient(rng, j, reduction):
    y = rng.uniform(0, 6, (5, 4))
    t = np.array([0, 3, 1, 1, 2])
    loss_fn = RBFLoss(j=j, reduction=reduction)
    loss, _ = loss_fn.forward(y, t)
    expect = eq9_loop(y, t, j) if j is not None else np.mean(y[np.arange(5), t])
    if reduction == "sum":
        expect *= 5
    np.testing.assert_allclose(loss, expect, rtol=1e-12)
    check_kernel(lambda p: loss_fn.forward(p, t), lambda dy, c: loss_fn.backward(dy, c), [y],
                 rng=rng).raise_if_failed()


def test_rbf_loss_stable_for_large_penalties():
    y = np.array([[800.0, 900.0, 1000.0]])
    loss, c = RBFLoss(j=1.0).forward(y, np.array([0]))
    np.testing.assert_allclose(loss, 800.0 - 1.0)  # log(e^-1 + ~0) = -1
    np.testing.assert_allclose(RBFLoss(j=1.0).backward(1.0, c), [[1.0, 0.0, 0.0]], atol=1e-12)
    assert np.isfinite(RBFLoss(j=1.0).forward(-y, np.array([0]))[0])


def test_rbf_loss_keeps_dtype_and_errors():
    y = np.ones((2, 3), np.float32)
    loss, c = RBFLoss().forward(y, np.array([0, 2]))
    assert loss.dtype == np.float32 and RBFLoss().backward(1.0, c).dtype == np.float32
    with pytest.raises(ValueError, match=r"RBFLoss: target must be integer class indices"):
        RBFLoss().forward(y, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"RBFLoss: target values must be in \[0, 3\)"):
        RBFLoss().forward(y, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"RBFLoss: pred must be float RBF outputs"):
        RBFLoss().forward(np.ones(3), np.array([0]))
    with pytest.raises(ValueError, match="RBFLoss: j must be a positive"):
        RBFLoss(j=0)
    with pytest.raises(ValueError, match="RBFLoss: reduction"):
        RBFLoss(reduction="none")


def test_rbf_predict_is_argmin():
    y = np.array([[3.0, 1.0, 2.0], [0.5, 0.5, 4.0]])
    np.testing.assert_array_equal(rbf_predict(y), [1, 0])  # first on a tie
    with pytest.raises(ValueError, match="rbf_predict: expected RBF outputs"):
        rbf_predict(np.ones(3))
