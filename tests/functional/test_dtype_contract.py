"""The dy contract of every backward: the forward output's shape and the forward's dtype.

A float64 dy after a float32 forward used to come back as float64 gradients (which modules
then silently cast); now every backward raises TypeError naming the op, the expected and the
received dtype, and a dy of the forward dtype gives gradients of that dtype.
"""

import numpy as np
import pytest

import convprop.functional as F

# name -> forward(x_dtype, rng) -> (y, cache), with the backward it pairs with


def _arr(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


SPATIAL = {1: (5,), 2: (5, 4), 3: (4, 5, 3)}


def _conv(nd, mode="cross-correlation"):
    forward = getattr(F, f"conv{nd}d_forward")

    def make(dt, rng):
        return forward(_arr(rng, (2, 4, *SPATIAL[nd]), dt), _arr(rng, (6, 2, *(3,) * nd), dt),
                       _arr(rng, (6,), dt), stride=2, padding=1, groups=2, mode=mode)
    return make


def _conv_t(nd, mode="cross-correlation"):
    forward = getattr(F, f"conv_transpose{nd}d_forward")

    def make(dt, rng):
        return forward(_arr(rng, (2, 3, *(3,) * nd), dt), _arr(rng, (3, 2, *(3,) * nd), dt),
                       _arr(rng, (2,), dt), stride=2, output_padding=1, mode=mode)
    return make


def _linear(dt, rng):
    return F.linear_forward(_arr(rng, (3, 4), dt), _arr(rng, (5, 4), dt), _arr(rng, (5,), dt))


def _bn(training, spatial=(2, 2)):
    def make(dt, rng):
        c = 3
        return F.batch_norm_forward(_arr(rng, (4, c, *spatial), dt), _arr(rng, (c,), dt),
                                    _arr(rng, (c,), dt), np.zeros(c, dt), np.ones(c, dt),
                                    training=training)
    return make


def _dropout(training):
    def make(dt, rng):
        return F.dropout_forward(_arr(rng, (3, 4), dt), p=0.5, training=training, rng=rng)
    return make


def _ce(reduction):
    def make(dt, rng):
        return F.softmax_cross_entropy_forward(_arr(rng, (4, 3), dt), rng.integers(0, 3, 4),
                                               reduction=reduction)
    return make


def _ce_soft(reduction):
    def make(dt, rng):
        return F.softmax_cross_entropy_forward(_arr(rng, (4, 3), dt), _arr(rng, (4, 3), dt),
                                               reduction=reduction)
    return make


def _mse(reduction):
    def make(dt, rng):
        return F.mse_forward(_arr(rng, (3, 4), dt), _arr(rng, (3, 4), dt), reduction=reduction)
    return make


def _x4(forward, **kw):
    return lambda dt, rng: forward(_arr(rng, (2, 3, 5, 4), dt), **kw)


def _xn(nd, forward, **kw):
    return lambda dt, rng: forward(_arr(rng, (2, 3, *SPATIAL[nd]), dt), **kw)


def _unpool(nd):
    def make(dt, rng):
        _, pool = F.max_pool2d_forward(_arr(rng, (2, 3, 6, 6), np.float64), kernel_size=2)
        x = _arr(rng, (2, 3, 3, 3), dt)
        # the same indices as 1-D (flat over the plane) or 3-D (a depth-1 volume)
        shape = {1: (2, 3, 9), 2: (2, 3, 3, 3), 3: (2, 3, 1, 3, 3)}[nd]
        kw = {1: dict(kernel_size=4, output_size=(36,)), 2: dict(kernel_size=2),
              3: dict(kernel_size=(1, 2, 2))}[nd]
        forward = getattr(F, f"max_unpool{nd}d_forward")
        return forward(x.reshape(shape), pool.indices.reshape(shape), **kw)
    return make


def _alpha(dt, rng):
    return F.alpha_pool2d_forward(rng.uniform(0.5, 2.0, (2, 3, 5, 4)).astype(dt),
                                  np.array([0.5], dt), kernel_size=2, stride=1)


def _stochastic(nd, training=True):
    def make(dt, rng):
        x = np.abs(_arr(rng, (2, 3, *SPATIAL[nd]), dt))
        return getattr(F, f"stochastic_pool{nd}d_forward")(x, kernel_size=2, stride=1, rng=rng,
                                                            training=training)
    return make


def _mixed(nd, granularity="window", training=True):
    def make(dt, rng):
        return getattr(F, f"mixed_pool{nd}d_forward")(
            _arr(rng, (2, 3, *SPATIAL[nd]), dt), kernel_size=3, stride=2, padding=1, rng=rng,
            training=training, granularity=granularity,
            eval_lambda=None if training else [1, 0, 1])
    return make


def _mixed_maxavg(nd):
    def make(dt, rng):
        return getattr(F, f"mixed_maxavg_pool{nd}d_forward")(
            _arr(rng, (2, 3, *SPATIAL[nd]), dt), np.array([0.2, 0.5, 0.9], dt), kernel_size=2,
            stride=1)
    return make


def _gated(nd):
    def make(dt, rng):
        return getattr(F, f"gated_pool{nd}d_forward")(
            _arr(rng, (2, 3, *SPATIAL[nd]), dt), _arr(rng, (3,) + (2,) * nd, dt), kernel_size=2,
            stride=1)
    return make


def _by_dim(name, make, dims=(1, 2, 3)):
    """``name{nd}d`` -> (forward maker, backward) for each dimension."""
    return {f"{name}{nd}d": (make(nd), getattr(F, f"{name}{nd}d_backward")) for nd in dims}


def _named(fn, **kw):
    """``fn(dy, cache, **kw)`` under fn's own name (the checks match error messages on it)."""
    def backward(dy, cache):
        return fn(dy, cache, **kw)
    backward.__name__ = fn.__name__
    return backward


KERNELS = {
    **_by_dim("conv", _conv),
    "conv3d_true_convolution": (_conv(3, "convolution"), F.conv3d_backward),
    **_by_dim("conv_transpose", _conv_t),
    "conv_transpose1d_true_convolution": (_conv_t(1, "convolution"),
                                          F.conv_transpose1d_backward),
    "linear": (_linear, F.linear_backward),
    "linear_meprop": (_linear, _named(F.linear_meprop_backward, k=2)),
    "linear_meprop_unified": (_linear, _named(F.linear_meprop_backward, k=2, unified=True)),
    "conv2d_meprop_channels": (_conv(2), _named(F.conv2d_meprop_backward, k=2)),
    "conv2d_meprop_elements_unified": (_conv(2), _named(F.conv2d_meprop_backward, k=5,
                                                         unified=True, granularity="element")),
    "sign": (_x4(F.sign_forward), F.sign_backward),
    "sign_stochastic": (lambda dt, rng: F.sign_forward(
        _arr(rng, (2, 3, 5, 4), dt), stochastic=True, training=True, rng=rng), F.sign_backward),
    "binarize_weight": (lambda dt, rng: F.binarize_weight_forward(_arr(rng, (6, 2, 3, 3), dt)),
                        F.binarize_weight_backward),
    "binarize_weight_xnor": (lambda dt, rng: F.binarize_weight_forward(
        _arr(rng, (6, 2, 3, 3), dt), scale="mean"), F.binarize_weight_backward),
    "relu": (_x4(F.relu_forward), F.relu_backward),
    "leaky_relu": (_x4(F.leaky_relu_forward), F.leaky_relu_backward),
    "sigmoid": (_x4(F.sigmoid_forward), F.sigmoid_backward),
    "tanh": (_x4(F.tanh_forward), F.tanh_backward),
    "dropout_train": (_dropout(True), F.dropout_backward),
    "dropout_eval": (_dropout(False), F.dropout_backward),
    "batch_norm_train": (_bn(True), F.batch_norm_backward),
    "batch_norm_eval": (_bn(False), F.batch_norm_backward),
    "batch_norm_3d_input": (_bn(True, (5,)), F.batch_norm_backward),
    "batch_norm_5d_input": (_bn(True, (2, 3, 2)), F.batch_norm_backward),
    "local_response_norm": (_x4(F.local_response_norm_forward, size=3),
                            F.local_response_norm_backward),
    **_by_dim("max_pool", lambda nd: _xn(nd, getattr(F, f"max_pool{nd}d_forward"),
                                         kernel_size=3, stride=2, padding=1)),
    **_by_dim("avg_pool", lambda nd: _xn(nd, getattr(F, f"avg_pool{nd}d_forward"),
                                         kernel_size=2, ceil_mode=True)),
    "avg_pool3d_divisor": (_xn(3, F.avg_pool3d_forward, kernel_size=2, divisor_override=3),
                           F.avg_pool3d_backward),
    **_by_dim("adaptive_avg_pool", lambda nd: _xn(
        nd, getattr(F, f"adaptive_avg_pool{nd}d_forward"), output_size=3)),
    **_by_dim("adaptive_max_pool", lambda nd: _xn(
        nd, getattr(F, f"adaptive_max_pool{nd}d_forward"), output_size=3)),
    "adaptive_max_pool2d_ties_split": (_xn(2, F.adaptive_max_pool2d_forward, output_size=(4, 3),
                                           ties="split"), F.adaptive_max_pool2d_backward),
    "adaptive_max_pool1d_ties_all": (_xn(1, F.adaptive_max_pool1d_forward, output_size=4,
                                         ties="all"), F.adaptive_max_pool1d_backward),
    "global_max_pool3d_ties_split": (_xn(3, F.global_max_pool3d_forward, ties="split"),
                                     F.global_max_pool3d_backward),
    "global_max_pool2d_ties_all": (_xn(2, F.global_max_pool2d_forward, ties="all"),
                                   F.global_max_pool2d_backward),
    **_by_dim("global_avg_pool", lambda nd: _xn(nd, getattr(F, f"global_avg_pool{nd}d_forward"))),
    **_by_dim("global_max_pool", lambda nd: _xn(nd, getattr(F, f"global_max_pool{nd}d_forward"))),
    **_by_dim("max_unpool", _unpool),
    **_by_dim("lp_pool", lambda nd: _xn(nd, getattr(F, f"lp_pool{nd}d_forward"),
                                        norm_type=3, kernel_size=2, ceil_mode=True)),
    "lp_pool2d_inf": (_xn(2, F.lp_pool2d_forward, norm_type=float("inf"), kernel_size=2),
                      F.lp_pool2d_backward),
    "max_pool2d_ties_split": (_xn(2, F.max_pool2d_forward, kernel_size=3, stride=2, padding=1,
                                  ties="split"), F.max_pool2d_backward),
    "max_pool3d_ties_all": (_xn(3, F.max_pool3d_forward, kernel_size=2, ties="all"),
                            F.max_pool3d_backward),
    "wavelet_pool2d": (lambda dt, rng: F.wavelet_pool2d_forward(
        _arr(rng, (2, 3, 8, 4), dt), wavelet="db2"), F.wavelet_pool2d_backward),
    "wavelet_pool2d_paper": (lambda dt, rng: F.wavelet_pool2d_forward(
        _arr(rng, (2, 3, 8, 4), dt), backward_rule="paper"), F.wavelet_pool2d_backward),
    "dft_pool2d": (_x4(F.dft_pool2d_forward, output_size=(3, 2)), F.dft_pool2d_backward),
    "alpha_pool2d": (_alpha, F.alpha_pool2d_backward),
    **_by_dim("stochastic_pool", _stochastic),
    "stochastic_pool2d_eval": (_stochastic(2, training=False), F.stochastic_pool2d_backward),
    **_by_dim("mixed_pool", _mixed),
    "mixed_pool2d_layer": (_mixed(2, "layer"), F.mixed_pool2d_backward),
    "mixed_pool2d_channel": (_mixed(2, "channel"), F.mixed_pool2d_backward),
    "mixed_pool2d_eval": (_mixed(2, "channel", training=False), F.mixed_pool2d_backward),
    **_by_dim("mixed_maxavg_pool", _mixed_maxavg),
    **_by_dim("gated_pool", _gated),
    "roi_pool": (lambda dt, rng: F.roi_pool_forward(
        _arr(rng, (2, 3, 6, 7), dt), np.array([[0, 0, 0, 4, 3], [1, 1, 1, 6, 5]], dt),
        output_size=2), F.roi_pool_backward),
    "roi_align": (lambda dt, rng: F.roi_align_forward(
        _arr(rng, (2, 3, 6, 7), dt), np.array([[0, 0.5, 0, 4, 3.5], [1, 1, 1, 6, 5]], dt),
        output_size=2, sampling_ratio=2, aligned=True), F.roi_align_backward),
    "subsampling2d": (lambda dt, rng: F.subsampling2d_forward(
        _arr(rng, (2, 3, 5, 4), dt), _arr(rng, (3,), dt), _arr(rng, (3,), dt)),
        F.subsampling2d_backward),
    "euclidean_rbf": (lambda dt, rng: F.euclidean_rbf_forward(
        _arr(rng, (3, 6), dt), _arr(rng, (4, 6), dt)), F.euclidean_rbf_backward),
    "flatten": (_x4(F.flatten_forward), F.flatten_backward),
    "pad_shortcut": (_x4(F.pad_shortcut_forward, out_channels=6), F.pad_shortcut_backward),
    "ce_mean": (_ce("mean"), F.softmax_cross_entropy_backward),
    "ce_sum": (_ce("sum"), F.softmax_cross_entropy_backward),
    "ce_none": (_ce("none"), F.softmax_cross_entropy_backward),
    "ce_soft_mean": (_ce_soft("mean"), F.softmax_cross_entropy_backward),
    "ce_soft_none": (_ce_soft("none"), F.softmax_cross_entropy_backward),
    "mse_mean": (_mse("mean"), F.mse_backward),
    "mse_sum": (_mse("sum"), F.mse_backward),
    "mse_half_sum": (_mse("half_sum"), F.mse_backward),
    "mse_none": (_mse("none"), F.mse_backward),
}

LOSS_SCALAR = [k for k in KERNELS if k.startswith(("ce_", "mse_")) and not k.endswith("none")]


def _grads(out):
    return [g for g in (out if isinstance(out, tuple) else (out,)) if g is not None]


def test_every_backward_is_covered():
    public = {n for n in F.__all__ if n.endswith("_backward")}
    covered = {bwd.__name__ for _, bwd in KERNELS.values()}
    assert public == covered, f"backwards without a dtype-contract case: {public - covered}"


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("fwd_dtype,dy_dtype", [(np.float32, np.float64),
                                                (np.float64, np.float32)])
def test_dy_of_another_dtype_raises(name, fwd_dtype, dy_dtype, rng):
    forward, backward = KERNELS[name]
    y, cache = forward(fwd_dtype, rng)
    dy = rng.standard_normal(np.shape(y)).astype(dy_dtype)
    want = np.dtype(fwd_dtype).name
    with pytest.raises(TypeError, match=rf"^{backward.__name__}: dy must have the forward "
                                        rf"dtype {want}, got {np.dtype(dy_dtype).name}"):
        backward(dy, cache)


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dy_of_the_forward_dtype_gives_that_dtype(name, dtype, rng):
    forward, backward = KERNELS[name]
    y, cache = forward(dtype, rng)
    assert y.dtype == dtype
    grads = _grads(backward(rng.standard_normal(np.shape(y)).astype(dtype), cache))
    assert grads and all(g.dtype == dtype for g in grads), [g.dtype for g in grads]


@pytest.mark.parametrize("name", LOSS_SCALAR)
def test_loss_python_float_dy_does_not_upcast(name, rng):
    forward, backward = KERNELS[name]
    _, c32 = forward(np.float32, rng)
    g = backward(0.37, c32)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, backward(np.array(0.37, np.float32), c32), rtol=0)
    assert backward(np.float32(2), c32).dtype == np.float32
    assert backward(2, c32).dtype == np.float32  # a Python int counts as a Python number
    with pytest.raises(TypeError, match=rf"^{backward.__name__}: dy must have the forward "
                                        r"dtype float32, got float64"):
        backward(np.float64(0.37), c32)  # a NumPy scalar carries its dtype, like a 0-d array
    with pytest.raises(TypeError, match=rf"^{backward.__name__}: dy must be"):
        backward(True, c32)


@pytest.mark.parametrize("name", ["relu", "linear", "max_pool2d", "ce_none"])
def test_dy_shape_still_checked_first(name, rng):
    forward, backward = KERNELS[name]
    y, cache = forward(np.float32, rng)
    bad = np.zeros(np.shape(y)[:-1] + (np.shape(y)[-1] + 1,), np.float64)
    with pytest.raises(ValueError, match=rf"^{backward.__name__}: dy must have shape "
                                         rf"\({np.shape(y)[0]},"):
        backward(bad, cache)


@pytest.mark.parametrize("name", list(KERNELS))
def test_cache_of_another_op_or_none_raises(name, rng):
    """Every backward checks its cache's type first: another op's cache, or None, is a
    TypeError naming this backward, the cache it needs and what it got."""
    forward, backward = KERNELS[name]
    y, own = forward(np.float64, rng)
    dy = rng.standard_normal(np.shape(y))
    other_name = "flatten" if not name.startswith("flatten") else "relu"
    _, other = KERNELS[other_name][0](np.float64, rng)
    if type(other) is type(own):  # e.g. two kernels sharing a cache type
        other_name = "linear"
        _, other = KERNELS[other_name][0](np.float64, rng)
    for bad, got in ((other, type(other).__name__), (None, "None")):
        with pytest.raises(TypeError, match=rf"^{backward.__name__}: cache must be the "
                                            rf"{type(own).__name__} .* got (a )?{got}"):
            backward(dy, bad)
