"""True convolution (``mode="convolution"``): cross-correlation with the kernel reversed along
every spatial axis, forward and all three gradients (dw reversed back), in 1, 2 and 3
dimensions, for convolution and transposed convolution; and the signal-processing
convolution of NumPy on one channel."""

import numpy as np
import pytest
from contract import Kernel, arrays

import convprop.functional as F
import loops

CONV = {1: (F.conv1d_forward, F.conv1d_backward), 2: (F.conv2d_forward, F.conv2d_backward),
        3: (F.conv3d_forward, F.conv3d_backward)}
CONV_T = {1: (F.conv_transpose1d_forward, F.conv_transpose1d_backward),
          2: (F.conv_transpose2d_forward, F.conv_transpose2d_backward),
          3: (F.conv_transpose3d_forward, F.conv_transpose3d_backward)}

# (x spatial, kernel, keyword arguments): asymmetric kernels, so a missing flip shows
CASES = {
    1: [((7,), (3,), dict(padding=1)),
        ((9,), (4,), dict(stride=2, dilation=2, groups=2)),
        ((6,), (2,), dict(padding="same"))],
    2: [((5, 6), (3, 2), dict(padding=1)),
        ((7, 6), (2, 3), dict(stride=(2, 1), dilation=(1, 2), groups=2)),
        ((5, 4), (4, 2), dict(padding="same"))],
    3: [((3, 4, 5), (2, 3, 2), dict(padding=1)),
        ((5, 3, 5), (3, 2, 2), dict(stride=(1, 2, 2), dilation=(2, 1, 1), groups=2))],
}
T_CASES = {
    1: [((4,), (3,), dict(stride=2, padding=1, output_padding=1)),
        ((3,), (2,), dict(dilation=2, groups=2))],
    2: [((3, 4), (3, 2), dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0))),
        ((3, 3), (2, 3), dict(groups=2))],
    3: [((2, 3, 2), (2, 3, 2), dict(stride=2, padding=(0, 1, 0), output_padding=(1, 0, 1))),
        ((2, 2, 3), (3, 2, 2), dict(dilation=(1, 2, 1), groups=2))],
}


def _grid(cases):
    return [(nd, i) for nd in cases for i in range(len(cases[nd]))]


def _inputs(rng, sp, k, kw, transposed):
    g = kw.get("groups", 1)
    c_in, c_out = 2 * g, 2 * g
    w = (c_in, c_out // g, *k) if transposed else (c_out, c_in // g, *k)
    return arrays(rng, (2, c_in, *sp), w, (c_out,))


def _check_flip_relation(ops, inputs, kw, rng):
    fwd, bwd = ops
    x, w, b = inputs
    y, cache = fwd(x, w, b, **kw, mode="convolution")
    y_cc, cache_cc = fwd(x, loops.flip(w).copy(), b, **kw)
    np.testing.assert_array_equal(y, y_cc)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = bwd(dy, cache)
    dx_cc, dw_cc, db_cc = bwd(dy, cache_cc)
    np.testing.assert_array_equal(dx, dx_cc)
    np.testing.assert_array_equal(dw, loops.flip(dw_cc))
    np.testing.assert_array_equal(db, db_cc)
    Kernel.of(fwd, bwd, names=("x", "w", "b"), mode="convolution", **kw).check_gradient(
        inputs, rng)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("nd,i", _grid(CASES))
def test_conv_is_correlation_with_the_reversed_kernel(nd, i, rng):
    sp, k, kw = CASES[nd][i]
    inputs = _inputs(rng, sp, k, kw, transposed=False)
    _check_flip_relation(CONV[nd], inputs, kw, rng)
    x, w, b = inputs
    y, _ = CONV[nd][0](x, w, b, mode="convolution", **kw)
    np.testing.assert_allclose(y, loops.conv(x, loops.flip(w), b, **kw), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("nd,i", _grid(T_CASES))
def test_conv_transpose_is_correlation_with_the_reversed_kernel(nd, i, rng):
    sp, k, kw = T_CASES[nd][i]
    _check_flip_relation(CONV_T[nd], _inputs(rng, sp, k, kw, transposed=True), kw, rng)


@pytest.mark.parametrize("length,k", [(7, 3), (8, 4), (5, 1), (3, 5), (6, 6)])
def test_conv1d_convolution_mode_is_numpys_convolve(length, k, rng):
    """The seeds' distinction, on one channel: ``mode="convolution"`` is ``np.convolve``
    (padding K-1: "full"; no padding: "valid"), and cross-correlation is ``np.correlate``.
    conv_transpose1d (stride 1, no padding) scatters the kernel: the full convolution too."""
    x, w = rng.standard_normal(length), rng.standard_normal(k)
    x3, w3 = x.reshape(1, 1, -1), w.reshape(1, 1, -1)
    full, _ = F.conv1d_forward(x3, w3, None, padding=k - 1, mode="convolution")
    np.testing.assert_allclose(full[0, 0], np.convolve(x, w, "full"), rtol=1e-12, atol=1e-12)
    if length >= k:
        valid, _ = F.conv1d_forward(x3, w3, None, mode="convolution")
        np.testing.assert_allclose(valid[0, 0], np.convolve(x, w, "valid"), rtol=1e-12,
                                   atol=1e-12)
        cc, _ = F.conv1d_forward(x3, w3, None)
        np.testing.assert_allclose(cc[0, 0], np.correlate(x, w, "valid"), rtol=1e-12,
                                   atol=1e-12)
    t, _ = F.conv_transpose1d_forward(x3, w3, None)
    np.testing.assert_allclose(t[0, 0], np.convolve(x, w, "full"), rtol=1e-12, atol=1e-12)


def test_a_symmetric_kernel_makes_both_modes_equal(rng):
    x = rng.standard_normal((2, 2, 4, 5, 6))
    w = rng.standard_normal((3, 2, 3, 3, 3))
    w = w + loops.flip(w)
    a, _ = F.conv3d_forward(x, w, None, padding=1)
    b, _ = F.conv3d_forward(x, w, None, padding=1, mode="convolution")
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
