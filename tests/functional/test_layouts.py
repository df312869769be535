"""Memory layout is preserved along a network: conv2d returns (C, H, W, N) memory, and every
kernel that documents it allocates its outputs and input gradients in its input's layout.

A kernel that returned C-ordered NCHW next to (C, H, W, N) activations would make every
following elementwise op (ReLU, batch norm, the residual add) stride across the batch: in a
ResNet-20 step that cost about 35 ms of 300. Values must equal the C-ordered input's results.
"""

import numpy as np
import pytest

import convprop.functional as F
from convprop.functional._engine.layout import axes_order

CHWN = (1, 2, 3, 0)  # axes outermost to innermost in (C, H, W, N) memory


def chwn(x: np.ndarray) -> np.ndarray:
    """The same values as ``x`` (N, C, H, W) in (C, H, W, N) memory."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


def test_conv2d_output_and_input_gradient_are_chwn(rng):
    x = rng.standard_normal((3, 2, 6, 5))
    w = rng.standard_normal((4, 2, 3, 3))
    y, cache = F.conv2d_forward(x, w, None, padding=1)
    assert axes_order(y) == CHWN
    dx, _, _ = F.conv2d_backward(chwn(rng.standard_normal(y.shape)), cache)
    assert axes_order(dx) == CHWN


KERNELS = {
    "max_pool2d": (lambda x: F.max_pool2d_forward(x, kernel_size=3, stride=2, padding=1),
                   F.max_pool2d_backward),
    "avg_pool2d": (lambda x: F.avg_pool2d_forward(x, kernel_size=2), F.avg_pool2d_backward),
    "global_avg_pool2d": (F.global_avg_pool2d_forward, F.global_avg_pool2d_backward),
    "pad_shortcut": (lambda x: F.pad_shortcut_forward(x, out_channels=6, stride=2),
                     F.pad_shortcut_backward),
    "relu": (F.relu_forward, F.relu_backward),
    "batch_norm": (lambda x: F.batch_norm_forward(x, np.ones(3), np.zeros(3), None, None,
                                                  training=True),
                   lambda dy, c: F.batch_norm_backward(dy, c)[0]),
}


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_keeps_chwn_layout_and_values(rng, name):
    fwd, bwd = KERNELS[name]
    x = rng.standard_normal((4, 3, 7, 6))
    y_ref, cache_ref = fwd(x)
    y, cache = fwd(chwn(x))
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    if y.ndim == 4:
        assert axes_order(y) == CHWN, f"{name} forward left (C, H, W, N) memory"
    dy = rng.standard_normal(y.shape)
    dx_ref = bwd(dy, cache_ref)
    dx = bwd(chwn(dy) if dy.ndim == 4 else dy, cache)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    assert axes_order(dx) == CHWN, f"{name} backward returned another layout than x's"


def test_flatten_backward_returns_the_input_layout(rng):
    x = chwn(rng.standard_normal((4, 3, 2, 5)))
    y, cache = F.flatten_forward(x)
    dx = F.flatten_backward(rng.standard_normal(y.shape), cache)
    assert axes_order(dx) == CHWN
