"""The 1-D and 3-D modules (and the new 2-D ones) against torch.nn in float64, the
``return_indices`` -> ``MaxUnpool`` chain, ``mode="convolution"`` on modules, and the one
hyperparameter check that modules share with their kernels."""

import numpy as np
import pytest
from torch_parity import assert_parity

import convprop.functional as F
import convprop.layers as L

CONV = [  # (dims, in, out, k, stride, padding, dilation, groups, bias, spatial)
    (1, 3, 4, 3, 1, 0, 1, 1, True, (9,)),
    (1, 4, 6, 5, 2, 2, 1, 2, False, (11,)),
    (1, 2, 2, 3, 1, "same", 2, 1, True, (8,)),
    (3, 2, 4, 3, 1, 1, 1, 1, True, (4, 5, 6)),
    (3, 4, 2, (1, 3, 2), (1, 2, 1), (0, 1, 0), 1, 2, False, (3, 6, 5)),
    (3, 1, 2, 2, 1, "valid", (1, 2, 1), 1, True, (3, 5, 4)),
]


@pytest.mark.parametrize("case", CONV)
def test_conv_modules(torch, rng, case):
    nd, cin, cout, k, s, p, d, g, bias, sp = case
    m = getattr(L, f"Conv{nd}d")(cin, cout, k, s, p, d, g, bias, rng=rng)
    t = getattr(torch.nn, f"Conv{nd}d")(cin, cout, k, s, p, d, g, bias)
    assert_parity(torch, m, t, rng.standard_normal((2, cin, *sp)))


CONV_T = [  # (dims, in, out, k, stride, padding, output_padding, groups, bias, dilation, sp)
    (1, 3, 2, 3, 2, 1, 1, 1, True, 1, (5,)),
    (1, 4, 6, 4, 3, 0, 2, 2, False, 1, (4,)),
    (3, 2, 3, 3, 2, 1, 1, 1, True, 1, (2, 3, 3)),
    (3, 4, 2, (2, 3, 1), (1, 2, 2), (0, 1, 0), (0, 1, 1), 2, False, (2, 1, 1), (3, 2, 3)),
]


@pytest.mark.parametrize("case", CONV_T)
def test_conv_transpose_modules(torch, rng, case):
    nd, cin, cout, k, s, p, op, g, bias, d, sp = case
    m = getattr(L, f"ConvTranspose{nd}d")(cin, cout, k, s, p, op, g, bias, d, rng=rng)
    t = getattr(torch.nn, f"ConvTranspose{nd}d")(cin, cout, k, s, p, op, g, bias, d)
    assert_parity(torch, m, t, rng.standard_normal((2, cin, *sp)))


def _pools(nn):
    return [
        (L.MaxPool1d(3, 2, 1), nn.MaxPool1d(3, 2, 1), (9,)),
        (L.MaxPool1d(2, 1, 0, 2, ceil_mode=True), nn.MaxPool1d(2, 1, 0, 2, ceil_mode=True), (7,)),
        (L.MaxPool3d(2), nn.MaxPool3d(2), (4, 4, 6)),
        (L.MaxPool3d((1, 3, 2), (1, 2, 2), (0, 1, 1), ceil_mode=True),
         nn.MaxPool3d((1, 3, 2), (1, 2, 2), (0, 1, 1), ceil_mode=True), (3, 7, 6)),
        (L.AvgPool1d(3, 2, 1, count_include_pad=False),
         nn.AvgPool1d(3, 2, 1, count_include_pad=False), (8,)),
        (L.AvgPool3d(2, 1, 1, True), nn.AvgPool3d(2, 1, 1, True), (3, 4, 3)),
        (L.AvgPool3d(3, 2, 1, divisor_override=5), nn.AvgPool3d(3, 2, 1, divisor_override=5),
         (5, 5, 4)),
        (L.AvgPool2d(2, divisor_override=1), nn.AvgPool2d(2, divisor_override=1), (4, 6)),
        (L.AdaptiveAvgPool1d(3), nn.AdaptiveAvgPool1d(3), (7,)),
        (L.AdaptiveAvgPool2d((3, None)), nn.AdaptiveAvgPool2d((3, None)), (7, 5)),
        (L.AdaptiveAvgPool3d((2, 3, 4)), nn.AdaptiveAvgPool3d((2, 3, 4)), (5, 7, 3)),
        (L.AdaptiveMaxPool1d(4), nn.AdaptiveMaxPool1d(4), (9,)),
        (L.AdaptiveMaxPool2d((2, 3)), nn.AdaptiveMaxPool2d((2, 3)), (5, 7)),
        (L.AdaptiveMaxPool3d(2), nn.AdaptiveMaxPool3d(2), (3, 5, 4)),
    ]


@pytest.mark.parametrize("index", range(14))
def test_pool_modules(torch, rng, index):
    m, t, sp = _pools(torch.nn)[index]
    x = rng.permutation(2 * 3 * int(np.prod(sp))).reshape((2, 3, *sp)) * 0.1  # no ties
    assert_parity(torch, m, t, x)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_global_pools_are_adaptive_pools_to_one(torch, rng, nd):
    x = rng.standard_normal((2, 3) + (5, 4, 3)[:nd])
    for kind, tname in (("Avg", "AdaptiveAvgPool"), ("Max", "AdaptiveMaxPool")):
        m = getattr(L, f"Global{kind}Pool{nd}d")()
        t = getattr(torch.nn, f"{tname}{nd}d")(1)
        y, cache = m.forward(x)
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = t(xt).flatten(1)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=1e-12)
        dy = rng.standard_normal(y.shape)
        yt.backward(torch.from_numpy(dy))
        np.testing.assert_allclose(m.backward(dy, cache), xt.grad.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls, shape", [("BatchNorm1d", (2, 3, 7)),
                                        ("BatchNorm3d", (2, 2, 3, 4, 4))])
def test_batch_norm3d_and_1d_on_sequences(torch, rng, cls, shape):
    m, t = getattr(L, cls)(shape[1], momentum=0.3), getattr(torch.nn, cls)(shape[1], momentum=0.3)
    assert_parity(torch, m, t, rng.standard_normal(shape), steps=2)
    assert_parity(torch, m, t, rng.standard_normal(shape), training=False)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_return_indices_chain_into_max_unpool(torch, rng, nd):
    sp = (8, 6, 4)[:nd]
    x = rng.permutation(2 * 3 * int(np.prod(sp))).reshape((2, 3, *sp)).astype(np.float64)
    net = L.Sequential(getattr(L, f"MaxPool{nd}d")(2, return_indices=True),
                       getattr(L, f"MaxUnpool{nd}d")(2))
    y, cache = net.forward(x)
    xt = torch.from_numpy(x).requires_grad_(True)
    pooled, idx = getattr(torch.nn.functional, f"max_pool{nd}d")(xt, 2, return_indices=True)
    yt = getattr(torch.nn.functional, f"max_unpool{nd}d")(pooled, idx, 2)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(cache[0].indices, idx.numpy())
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(net.backward(dy, cache), xt.grad.numpy(), rtol=0, atol=1e-12)


def test_max_unpool_takes_indices_by_keyword_and_checks_them(rng):
    x = rng.standard_normal((1, 2, 6))
    (y, idx), _ = L.MaxPool1d(2, return_indices=True).forward(x)
    up = L.MaxUnpool1d(2)
    a, _ = up.forward((y, idx))
    b, _ = up.forward(y, indices=idx, output_size=(7,))
    np.testing.assert_array_equal(a, b[..., :6])
    with pytest.raises(TypeError, match="^MaxUnpool1d: indices are required"):
        up.forward(y)
    with pytest.raises(ValueError, match=r"^max_unpool1d: indices must lie in \[0, 6\)"):
        up.forward(y, indices=idx + 6)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_module_mode_convolution_flips_the_kernel(rng, nd):
    sp = (7, 6, 5)[:nd]
    k = (3, 2, 2)[:nd]
    a = getattr(L, f"Conv{nd}d")(2, 3, k, padding=1, rng=rng, dtype=np.float64,
                                 mode="convolution")
    b = getattr(L, f"Conv{nd}d")(2, 3, k, padding=1, rng=rng, dtype=np.float64)
    b.weight.value = a.weight.value[(slice(None), slice(None)) + (slice(None, None, -1),) * nd]
    b.bias.value = a.bias.value.copy()
    x = rng.standard_normal((2, 2, *sp))
    ya, ca = a.forward(x)
    yb, cb = b.forward(x)
    np.testing.assert_allclose(ya, yb, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(ya.shape)
    np.testing.assert_allclose(a.backward(dy, ca), b.backward(dy, cb), rtol=1e-12, atol=1e-12)
    flip = (slice(None), slice(None)) + (slice(None, None, -1),) * nd
    np.testing.assert_allclose(a.weight.grad, b.weight.grad[flip], rtol=1e-12, atol=1e-12)
    assert "mode='convolution'" in repr(a)


@pytest.mark.parametrize("make, message", [
    (lambda: L.Conv3d(2, 2, 3, stride=2, padding="same"), "^Conv3d: padding='same' needs stride 1"),
    (lambda: L.Conv1d(2, 2, 3, mode="flipped"), "^Conv1d: mode must be one of"),
    (lambda: L.ConvTranspose3d(2, 2, 3, stride=2, output_padding=2),
     "^ConvTranspose3d: output_padding must be smaller than stride or dilation"),
    (lambda: L.ConvTranspose1d(2, 2, 3, padding="same"), "^ConvTranspose1d: padding must be"),
    (lambda: L.MaxPool3d(2, padding=2), "^MaxPool3d: padding must be at most half"),
    (lambda: L.BatchNorm3d(4, eps=0), "^BatchNorm3d: eps must be a finite number > 0"),
    (lambda: L.BatchNorm2d(4, momentum=1.5), r"^BatchNorm2d: momentum must be in \[0, 1\]"),
    (lambda: L.BatchNorm1d(4, eps=float("nan")), "^BatchNorm1d: eps must be a finite number"),
    (lambda: L.LocalResponseNorm(3, k=0.0), "^LocalResponseNorm: k must be a finite number > 0"),
    (lambda: L.LocalResponseNorm(3, alpha=float("inf")), "^LocalResponseNorm: alpha must be a "),
    (lambda: L.LocalResponseNorm(3, beta=float("nan")), "^LocalResponseNorm: beta must be a "),
    (lambda: L.LocalResponseNorm(0), "^LocalResponseNorm: size must be >= 1"),
    (lambda: L.Conv1d(2, 2, (3, 3)), "^Conv1d: kernel_size must be an int or a tuple of 1"),
    (lambda: L.AdaptiveAvgPool2d(2, return_indices=True), "^AdaptiveAvgPool2d: return_indices"),
])
def test_modules_share_the_kernels_checks(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_kernel_and_module_accept_the_same_eps(rng):
    """The drift this check closes: the kernel accepted eps = 0, the module refused it."""
    x = rng.standard_normal((4, 3, 2, 2))
    g, b = np.ones(3), np.zeros(3)
    with pytest.raises(ValueError, match="^batch_norm: eps must be a finite number > 0"):
        F.batch_norm_forward(x, g, b, None, None, training=True, eps=0.0)
    with pytest.raises(ValueError, match="^BatchNorm2d: eps must be a finite number > 0"):
        L.BatchNorm2d(3, eps=0.0)


@pytest.mark.parametrize("nd", [1, 3])
def test_need_dx_false_skips_the_first_layers_input_gradient(rng, nd):
    m = getattr(L, f"Conv{nd}d")(2, 3, 3, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 2) + (6, 5, 5)[:nd])
    y, cache = m.forward(x)
    assert m.backward(np.ones_like(y), cache, need_dx=False) is None
    assert np.abs(m.weight.grad).sum() > 0
