"""Memory layout is preserved along a network: a convolution returns (C, *S, N) memory, and
every kernel that documents it allocates its outputs and input gradients in its input's
layout, in 1, 2 and 3 dimensions.

A kernel that returned C-ordered NCHW next to (C, H, W, N) activations would make every
following elementwise op (ReLU, batch norm, the residual add) stride across the batch: in a
ResNet-20 step that cost about 35 ms of 300. Values must equal the C-ordered input's results.
"""

import numpy as np
import pytest

import convprop.functional as F
from convprop.functional._engine.layout import axes_order

def batch_inner(x: np.ndarray) -> np.ndarray:
    """The same values as ``x`` (N, C, *S) in (C, *S, N) memory."""
    order = (*range(1, x.ndim), 0)
    return np.ascontiguousarray(x.transpose(order)).transpose(x.ndim - 1, *range(x.ndim - 1))


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("name", ["conv", "conv_transpose"])
def test_conv_output_and_input_gradient_are_batch_inner(rng, nd, name):
    """A convolution's y and dx are (C, *S, N) memory; fed on, such a view gives the values
    of C order."""
    fwd, bwd = getattr(F, f"{name}{nd}d_forward"), getattr(F, f"{name}{nd}d_backward")
    inner = (*range(1, nd + 2), 0)
    x = rng.standard_normal((3, 2, *(6, 5, 4)[:nd]))
    w = rng.standard_normal((2, 2, *(3,) * nd))
    y, cache = fwd(x, w, None, padding=1)
    assert axes_order(y) == inner
    dx, _, _ = bwd(batch_inner(rng.standard_normal(y.shape)), cache)
    assert axes_order(dx) == inner
    z, cache = fwd(y, w, None, padding=1)
    z_ref, cache_ref = fwd(np.ascontiguousarray(y), w, None, padding=1)
    np.testing.assert_allclose(z, z_ref, rtol=1e-13, atol=1e-13)
    dz = rng.standard_normal(z.shape)
    for a, e in zip(bwd(dz, cache), bwd(dz, cache_ref)):
        if a is not None:
            np.testing.assert_allclose(a, e, rtol=1e-13, atol=1e-13)


def _unpool(nd):
    """max_unpool{nd}d of pooled values, with the pooling's indices in the values' layout."""
    pool = getattr(F, f"max_pool{nd}d_forward")
    unpool = getattr(F, f"max_unpool{nd}d_forward")

    def forward(x):
        spatial = tuple(2 * s for s in x.shape[2:])
        _, cache = pool(np.arange(x.shape[0] * x.shape[1] * np.prod(spatial), dtype=x.dtype)
                        .reshape(*x.shape[:2], *spatial), kernel_size=2)
        idx = np.empty_like(x, dtype=np.int64)  # x's layout
        idx[...] = cache.indices
        return unpool(x, idx, kernel_size=2)
    return forward


def _bn(c):
    return (lambda x: F.batch_norm_forward(x, np.ones(c), np.zeros(c), None, None,
                                           training=True),
            lambda dy, cache: F.batch_norm_backward(dy, cache)[0])


def _op(nd, name, **kw):
    """(nd, forward(x), backward) of ``{name}{nd}d`` with ``kw`` bound."""
    fwd, bwd = getattr(F, f"{name}{nd}d_forward"), getattr(F, f"{name}{nd}d_backward")
    return nd, (lambda x: fwd(x, **kw)), bwd


# name -> (number of spatial axes, forward(x) -> (y, cache), backward(dy, cache) -> dx)
KERNELS = {
    "max_pool2d": _op(2, "max_pool", kernel_size=3, stride=2, padding=1),
    "avg_pool2d": _op(2, "avg_pool", kernel_size=2),
    "global_avg_pool2d": _op(2, "global_avg_pool"),
    "pad_shortcut": (2, lambda x: F.pad_shortcut_forward(x, out_channels=6, stride=2),
                     F.pad_shortcut_backward),
    "relu": (2, F.relu_forward, F.relu_backward),
    "batch_norm": (2, *_bn(3)),
    "batch_norm_3d_input": (1, *_bn(3)),
    "batch_norm_5d_input": (3, *_bn(3)),
}
for _nd in (1, 2, 3):
    KERNELS.update({
        f"max_pool{_nd}d_overlap": _op(_nd, "max_pool", kernel_size=3, stride=2, padding=1,
                                       ceil_mode=True),
        f"avg_pool{_nd}d_overlap": _op(_nd, "avg_pool", kernel_size=3, stride=2, padding=1,
                                       count_include_pad=False),
        f"adaptive_avg_pool{_nd}d": _op(_nd, "adaptive_avg_pool", output_size=3),
        f"adaptive_max_pool{_nd}d": _op(_nd, "adaptive_max_pool", output_size=3),
        f"global_avg_pool{_nd}d": _op(_nd, "global_avg_pool"),
        f"global_max_pool{_nd}d": _op(_nd, "global_max_pool"),
        f"max_unpool{_nd}d": (_nd, _unpool(_nd), getattr(F, f"max_unpool{_nd}d_backward")),
    })
del _nd
SHAPES = {1: (4, 3, 9), 2: (4, 3, 7, 6), 3: (4, 3, 5, 4, 6)}


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_keeps_batch_inner_layout_and_values(rng, name):
    nd, fwd, bwd = KERNELS[name]
    x = rng.standard_normal(SHAPES[nd])
    inner = tuple(range(1, nd + 2)) + (0,)
    y_ref, cache_ref = fwd(x)
    y, cache = fwd(batch_inner(x))
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    if y.ndim == nd + 2:
        assert axes_order(y) == inner, f"{name} forward left (C, *S, N) memory"
    dy = rng.standard_normal(y.shape)
    dx_ref = bwd(dy, cache_ref)
    dx = bwd(batch_inner(dy) if dy.ndim == nd + 2 else dy, cache)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    assert axes_order(dx) == inner, f"{name} backward returned another layout than x's"


def test_flatten_backward_returns_the_input_layout(rng):
    x = batch_inner(rng.standard_normal((4, 3, 2, 5)))
    y, cache = F.flatten_forward(x)
    dx = F.flatten_backward(rng.standard_normal(y.shape), cache)
    assert axes_order(dx) == (1, 2, 3, 0)
