"""The WaveletPool2d, DFTPool2d and AlphaPool2d modules: whole-module gradient checks (alpha
included), the kernels' results, alpha as a trainable parameter (accumulated over shared
use, in the state dict, float32 by default), constructor errors."""

import numpy as np
import pytest

from convprop.functional.alpha_pooling import alpha_pool2d_forward
from convprop.functional.dft_pooling import dft_pool2d_forward
from convprop.functional.wavelet_pooling import wavelet_pool2d_forward
from convprop.gradcheck import check_module
from convprop.layers import Sequential
from convprop.layers.transform_pooling import AlphaPool2d, DFTPool2d, WaveletPool2d


@pytest.mark.parametrize("module,x_shape", [
    (lambda: WaveletPool2d("haar"), (2, 3, 8, 12)),
    (lambda: WaveletPool2d("db2"), (1, 2, 8, 4)),
    (lambda: DFTPool2d((3, 2)), (2, 3, 6, 5)),
    (lambda: AlphaPool2d(2), (2, 3, 6, 6)),
    (lambda: AlphaPool2d((3, 2), stride=1, alpha_init=0.5), (1, 2, 5, 4)),
    (lambda: AlphaPool2d(3, 2, alpha_init=1.0), (2, 2, 7, 7)),
])
def test_module_gradcheck(module, x_shape, rng):
    x = rng.uniform(0.3, 2.0, x_shape)
    report = check_module(module(), x, rng=rng)
    assert report.passed, str(report)


def test_modules_match_their_kernels(rng):
    x = rng.uniform(0.3, 2.0, (2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(WaveletPool2d("db2").predict(x),
                                  wavelet_pool2d_forward(x, wavelet="db2")[0])
    np.testing.assert_array_equal(DFTPool2d(4).predict(x),
                                  dft_pool2d_forward(x, output_size=4)[0])
    m = AlphaPool2d(2, alpha_init=0.25)
    assert m.alpha.value.dtype == np.float32 and m.alpha.shape == (1,)
    np.testing.assert_array_equal(m.predict(x), alpha_pool2d_forward(
        x, np.array([0.25], np.float32), kernel_size=2)[0])


def test_paper_rule_module(rng):
    x = rng.standard_normal((1, 2, 8, 8))
    y, c_exact = WaveletPool2d().forward(x)
    _, c_paper = WaveletPool2d(backward_rule="paper").forward(x)
    dy = rng.standard_normal(y.shape)
    assert not np.allclose(WaveletPool2d().backward(dy, c_exact),
                           WaveletPool2d(backward_rule="paper").backward(dy, c_paper))


def test_alpha_grad_accumulates_over_shared_use_and_trains(rng):
    m = AlphaPool2d(2, alpha_init=-1.0, dtype=np.float64)
    x1, x2 = rng.uniform(0.3, 2.0, (2, 2, 2, 4, 4))
    y1, c1 = m.forward(x1, training=True)
    y2, c2 = m.forward(x2, training=True)
    dy1, dy2 = rng.standard_normal(y1.shape), rng.standard_normal(y2.shape)
    m.backward(dy1, c1)
    g1 = m.alpha.grad.copy()
    m.backward(dy2, c2)
    m2 = AlphaPool2d(2, alpha_init=-1.0, dtype=np.float64)
    m2.backward(dy2, m2.forward(x2)[1])
    np.testing.assert_allclose(m.alpha.grad, g1 + m2.alpha.grad, rtol=1e-14)
    # one gradient step on the sum of the outputs: alpha -> -inf raises every output
    m.zero_grad()
    y, c = m.forward(x1)
    m.backward(-np.ones_like(y), c)  # minimise -sum(y)
    m.alpha.value = m.alpha.value - 0.5 * m.alpha.grad
    assert m.alpha.value[0] < -1.0 and m.predict(x1).sum() > y.sum()


def test_state_dict_and_dtype(rng):
    m = AlphaPool2d(2, alpha_init=0.5)
    assert list(m.state_dict()) == ["alpha"]
    m.load_state_dict({"alpha": np.array([2.0], np.float32)})
    assert m.alpha.value[0] == 2.0
    with pytest.raises(TypeError, match="^AlphaPool2d: x has dtype float64"):
        m.forward(rng.uniform(0.5, 1.0, (1, 1, 4, 4)))
    m.astype(np.float64)
    assert m.predict(rng.uniform(0.5, 1.0, (1, 1, 4, 4))).dtype == np.float64
    assert WaveletPool2d().parameters() == [] and DFTPool2d(1).parameters() == []


def test_in_a_sequential(rng):
    net = Sequential(AlphaPool2d(2, dtype=np.float64), DFTPool2d(2))
    report = check_module(net, rng.uniform(0.3, 2.0, (2, 2, 8, 6)), rng=rng)
    assert report.passed, str(report)


def test_repr():
    assert repr(WaveletPool2d("db2")) == "WaveletPool2d(wavelet='db2', backward_rule='exact')"
    assert repr(DFTPool2d(3)) == "DFTPool2d(output_size=(3, 3))"
    assert repr(AlphaPool2d(2, alpha_init=0.5)) == (
        "AlphaPool2d(kernel_size=(2, 2), stride=(2, 2), alpha=0.5)")


def test_constructor_errors():
    with pytest.raises(ValueError, match="^WaveletPool2d: wavelet must be one of"):
        WaveletPool2d("db4")
    with pytest.raises(ValueError, match="^WaveletPool2d: backward_rule must be one of"):
        WaveletPool2d("haar", "adjoint")
    with pytest.raises(ValueError, match="^DFTPool2d: output_size must be >= 1"):
        DFTPool2d(0)
    with pytest.raises(ValueError, match="^AlphaPool2d: kernel_size must be >= 1"):
        AlphaPool2d(0)
    with pytest.raises(TypeError, match="^AlphaPool2d: alpha_init must be a real number"):
        AlphaPool2d(2, alpha_init="max")
    with pytest.raises(ValueError, match="^AlphaPool2d: alpha_init must be finite"):
        AlphaPool2d(2, alpha_init=float("inf"))
    with pytest.raises(TypeError, match="^AlphaPool2d: dtype must be float32 or float64"):
        AlphaPool2d(2, dtype=np.int32)
