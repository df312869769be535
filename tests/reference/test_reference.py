"""convprop.reference (the loop tier) agrees with the vectorised kernels over a grid of hard
cases, forward and backward: overlapping windows, padding, dilation, groups, windows that do
not tile the input, 1-D/2-D/3-D, ties. Each side is also the other's oracle elsewhere (the
kernel tests hold the fast kernels to these loops), so a disagreement here names the bug."""

from __future__ import annotations

import math

import numpy as np
import pytest

import convprop.functional as F
from convprop import reference as R

TOL = dict(rtol=1e-12, atol=1e-12)


def same(a, b):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), **TOL)


CONV_FNS = {1: (F.conv1d_forward, F.conv1d_backward), 2: (F.conv2d_forward, F.conv2d_backward),
            3: (F.conv3d_forward, F.conv3d_backward)}
CT_FNS = {1: F.conv_transpose1d_forward, 2: F.conv_transpose2d_forward,
          3: F.conv_transpose3d_forward}

# (x shape, w shape, stride, padding, dilation, groups)
CONV_GRID = [
    ((2, 3, 7), (4, 3, 3), 1, 0, 1, 1),
    ((1, 4, 9), (4, 2, 2), 2, 1, 2, 2),
    ((2, 2, 5, 6), (3, 2, 3, 3), 1, 1, 1, 1),            # padding, non-square
    ((1, 4, 7, 7), (6, 2, 3, 2), (2, 1), (0, 1), 1, 2),   # groups, windows that do not tile
    ((2, 1, 6, 6), (2, 1, 2, 2), 1, "same", 2, 1),        # dilation, "same"
    ((1, 3, 5, 5), (2, 3, 1, 1), 2, 0, 1, 1),             # kernel 1
    ((1, 2, 4, 5, 4), (2, 2, 2, 3, 2), (1, 2, 1), 1, 1, 1),
]


@pytest.mark.parametrize("xs,ws,s,p,d,g", CONV_GRID)
def test_conv_forward_and_backward(rng, xs, ws, s, p, d, g):
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    fwd, bwd = CONV_FNS[len(xs) - 2]
    y, cache = fwd(x, w, b, stride=s, padding=p, dilation=d, groups=g)
    same(R.conv(x, w, b, stride=s, padding=p, dilation=d, groups=g), y)
    dy = rng.standard_normal(y.shape)
    for got, want in zip(bwd(dy, cache), R.conv_backward(dy, x, w, stride=s, padding=p,
                                                         dilation=d, groups=g)):
        same(want, got)


@pytest.mark.parametrize("xs,ws,s,p,op,d,g", [
    ((2, 3, 5), (3, 2, 3), 2, 1, 1, 1, 1),
    ((1, 4, 4, 5), (4, 1, 3, 2), (2, 1), (1, 0), (1, 0), 1, 2),
    ((1, 2, 3, 3, 2), (2, 2, 2, 2, 2), 2, 0, 0, 1, 1),
])
def test_conv_transpose_is_conv_input_gradient(rng, xs, ws, s, p, op, d, g):
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[1] * g)
    y, _ = CT_FNS[len(xs) - 2](x, w, b, stride=s, padding=p, output_padding=op, dilation=d,
                               groups=g)
    same(R.conv_transpose(x, w, b, stride=s, padding=p, output_padding=op, dilation=d,
                          groups=g), y)


POOL = {1: "1d", 2: "2d", 3: "3d"}
# (x shape, kernel, stride, padding, dilation, ceil_mode)
POOL_GRID = [
    ((2, 2, 8), 3, 2, 1, 1, False),
    ((1, 2, 6, 7), 2, 1, 0, 1, False),                   # overlapping windows
    ((2, 1, 7, 7), 3, 2, 1, 1, True),                    # ceil_mode, padding
    ((1, 2, 8, 6), (3, 2), (2, 1), (1, 0), (2, 1), False),
    ((1, 1, 4, 5, 4), 2, 1, 0, 1, False),
]


@pytest.mark.parametrize("xs,k,s,p,d,ceil", POOL_GRID)
def test_max_pool_and_its_switches(rng, xs, k, s, p, d, ceil):
    x = np.round(rng.standard_normal(xs), 1)  # rounded: ties
    nd = len(xs) - 2
    fwd = getattr(F, f"max_pool{POOL[nd]}_forward")
    bwd = getattr(F, f"max_pool{POOL[nd]}_backward")
    y, cache = fwd(x, kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    ry, idx = R.max_pool(x, kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    same(ry, y)
    dy = rng.standard_normal(y.shape)
    same(R.max_pool_backward(dy, idx, x.shape), bwd(dy, cache))
    wins = R.pool_windows(x.shape, kernel_size=k, stride=s, padding=p, dilation=d,
                          ceil_mode=ceil)
    assert len(wins) == math.prod(y.shape[2:])
    for o, members in wins.items():  # every switch lies in its own window
        at = np.unravel_index(idx[(0, 0, *o)], xs[2:])
        assert tuple(int(a) for a in at) in members


@pytest.mark.parametrize("xs,k,s,p,ceil,cip,div", [
    ((2, 2, 8), 3, 2, 1, False, True, None),
    ((1, 2, 7, 6), 3, 2, 1, True, False, None),
    ((1, 1, 6, 6), 2, 1, 0, False, True, 1),             # LeNet's sum pooling
    ((1, 1, 4, 5, 4), 2, 2, 1, True, True, None),
])
def test_avg_pool(rng, xs, k, s, p, ceil, cip, div):
    x = rng.standard_normal(xs)
    nd = len(xs) - 2
    kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=cip,
              divisor_override=div)
    y, cache = getattr(F, f"avg_pool{POOL[nd]}_forward")(x, **kw)
    same(R.avg_pool(x, **kw), y)
    dy = rng.standard_normal(y.shape)
    same(R.avg_pool_backward(dy, x.shape, **kw),
         getattr(F, f"avg_pool{POOL[nd]}_backward")(dy, cache))


@pytest.mark.parametrize("norm", [1, 2, 3.5, math.inf])
def test_lp_pool(rng, norm):
    x = np.abs(rng.standard_normal((2, 2, 7, 6))) + 0.1
    y, _ = F.lp_pool2d_forward(x, norm_type=norm, kernel_size=3, stride=2, ceil_mode=True)
    same(R.lp_pool(x, norm_type=norm, kernel_size=3, stride=2, ceil_mode=True), y)


@pytest.mark.parametrize("xs,out", [((2, 3, 7, 5), (3, 2)), ((1, 2, 9), 4),
                                    ((1, 1, 5, 4, 6), (2, None, 4))])
def test_adaptive_pools(rng, xs, out):
    x = rng.standard_normal(xs)
    nd = POOL[len(xs) - 2]
    same(R.adaptive_avg_pool(x, output_size=out),
         getattr(F, f"adaptive_avg_pool{nd}_forward")(x, output_size=out)[0])
    same(R.adaptive_max_pool(x, output_size=out)[0],
         getattr(F, f"adaptive_max_pool{nd}_forward")(x, output_size=out)[0])
    same(R.global_avg_pool(x), getattr(F, f"global_avg_pool{nd}_forward")(x)[0].reshape(
        xs[:2]))
    same(R.global_max_pool(x)[0], getattr(F, f"global_max_pool{nd}_forward")(x)[0].reshape(
        xs[:2]))


def test_max_unpool_puts_values_back_at_the_switches(rng):
    x = rng.standard_normal((2, 2, 6, 6))
    pooled, idx = R.max_pool(x, kernel_size=2)
    y, cache = F.max_unpool2d_forward(pooled, idx, kernel_size=2)
    ry, won = R.max_unpool(pooled, idx, (6, 6))
    same(ry, y)
    dy = rng.standard_normal(y.shape)
    same(R.max_unpool_backward(dy, idx, won), F.max_unpool2d_backward(dy, cache))


@pytest.mark.parametrize("name", sorted(R.ACTIVATIONS))
def test_activations(rng, name):
    x = rng.standard_normal((2, 3, 4))
    x.flat[::5] = 0.0  # the relu family's kink
    kw = {"negative_slope": 0.2} if name == "leaky_relu" else {}
    y, cache = getattr(F, f"{name}_forward")(x, **kw)
    same(R.activation(name, x, **kw), y)
    dy = rng.standard_normal(x.shape)
    same(R.activation_backward(name, dy, x, **kw), getattr(F, f"{name}_backward")(dy, cache))


def test_linear(rng):
    x, w, b = rng.standard_normal((3, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    y, cache = F.linear_forward(x, w, b)
    same(R.linear(x, w, b), y)
    dy = rng.standard_normal(y.shape)
    for got, want in zip(F.linear_backward(dy, cache), R.linear_backward(dy, x, w)):
        same(want, got)


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_dropout_with_the_recorded_mask(rng, p):
    x = rng.standard_normal((3, 4, 2))
    y, cache = F.dropout_forward(x, p=p, training=True, rng=np.random.default_rng(5))
    same(R.dropout(x, cache.mask, p), y)
    dy = rng.standard_normal(x.shape)
    same(R.dropout_backward(dy, cache.mask, p), F.dropout_backward(dy, cache))


def test_flatten_and_pad_shortcut(rng):
    x = rng.standard_normal((2, 3, 5, 4))
    same(R.flatten(x), F.flatten_forward(x)[0])
    same(R.pad_shortcut(x, 8, 2), F.pad_shortcut_forward(x, out_channels=8, stride=2)[0])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(rng, reduction):
    z, t = rng.standard_normal((4, 5)) * 3, np.array([0, 4, 2, 2])
    loss, cache = F.softmax_cross_entropy_forward(z, t, reduction=reduction)
    same(R.cross_entropy(z, t, reduction), loss)
    dy = rng.standard_normal(np.shape(loss))
    same(R.cross_entropy_backward(dy, z, t, reduction),
         F.softmax_cross_entropy_backward(dy, cache))


@pytest.mark.parametrize("reduction", ["mean", "sum", "half_sum", "none"])
def test_mse(rng, reduction):
    y, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    loss, cache = F.mse_forward(y, t, reduction=reduction)
    same(R.mse(y, t, reduction), loss)
    dy = rng.standard_normal(np.shape(loss))
    same(R.mse_backward(dy, y, t, reduction), F.mse_backward(dy, cache))


@pytest.mark.parametrize("xs", [(6, 3), (4, 2, 3, 3), (2, 3, 4)])
def test_batch_norm_training(rng, xs):
    C = xs[1]
    x, g, b = rng.standard_normal(xs), rng.standard_normal(C), rng.standard_normal(C)
    rm, rv = rng.standard_normal(C), rng.random(C) + 0.5
    y, cache = F.batch_norm_forward(x, g, b, rm, rv, training=True, momentum=0.1, eps=1e-5)
    ry, nrm, nrv = R.batch_norm(x, g, b, rm, rv, True, 0.1, 1e-5)
    same(ry, y)
    same(nrm, cache.running_mean)
    same(nrv, cache.running_var)
    dy = rng.standard_normal(xs)
    for got, want in zip(F.batch_norm_backward(dy, cache), R.batch_norm_backward(dy, x, g,
                                                                                 1e-5)):
        same(want, got)


def test_local_response_norm(rng):
    x = rng.standard_normal((2, 6, 3, 3))
    same(R.local_response_norm(x, 3, 1e-2, 0.75, 2.0),
         F.local_response_norm_forward(x, size=3, alpha=1e-2, beta=0.75, k=2.0)[0])


@pytest.mark.parametrize("alpha", [np.array(1.0), np.array(-2.5), np.array([0.3, 4.0])])
def test_alpha_pool(rng, alpha):
    x = rng.uniform(0.3, 2.0, (2, 2, 5, 6))
    y, _ = F.alpha_pool2d_forward(x, alpha, kernel_size=(3, 2), stride=(2, 1))
    same(R.alpha_pool(x, alpha, (3, 2), (2, 1)), y)


def test_dft_pool(rng):
    x = rng.standard_normal((2, 2, 5, 6))
    same(R.dft_pool(x, (3, 4)), F.dft_pool2d_forward(x, output_size=(3, 4))[0])


def test_lenet_classic_subsampling_and_rbf(rng):
    x, (coef, bias) = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((2, 3))
    same(R.subsampling(x, coef, bias), F.subsampling2d_forward(x, coef, bias)[0])
    v, codes = rng.standard_normal((4, 7)), rng.choice([-1.0, 1.0], (10, 7))
    same(R.euclidean_rbf(v, codes), F.euclidean_rbf_forward(v, codes)[0])


def test_the_reference_tier_imports_nothing_from_the_fast_tier():
    import ast
    import pathlib

    for path in pathlib.Path(R.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 1 or not (node.module or "").startswith("convprop"), path
                assert not (node.level >= 2), path
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("convprop") for a in node.names), path
