"""Sizes in arguments: a kernel, layer or model whose arrays would exceed the per-array limit
(convprop.limits) raises ArrayTooLargeError naming the op, the array and the arguments behind
it, before allocating anything (each case below would otherwise ask for gigabytes to
terabytes, so a regression shows as a MemoryError or a killed process, not a pass)."""

import numpy as np
import pytest

import convprop.functional as F
import convprop.layers as L
from convprop import limits, models
from convprop.limits import ArrayTooLargeError, array_limit


def _x(*shape):
    return np.zeros(shape, np.float32)


KERNEL_CASES = {
    "conv2d_padding": (lambda: F.conv2d_forward(_x(1, 1, 4, 4), _x(1, 1, 3, 3), None,
                                                padding=10**5), r"conv2d: the output .*padding"),
    "conv1d_padding": (lambda: F.conv1d_forward(_x(2, 3, 8), _x(4, 3, 3), None,
                                                padding=10**9), r"conv1d: .*padding=\(1000000000,"),
    "conv3d_padding": (lambda: F.conv3d_forward(_x(1, 1, 2, 2, 2), _x(1, 1, 1, 1, 1), None,
                                                padding=3000), r"conv3d: .*padding=\(3000,"),
    "conv2d_dilation": (lambda: F.conv2d_forward(_x(1, 1, 4, 4), _x(1, 1, 3, 3), None,
                                                 padding=10**5, dilation=10**5),
                        r"conv2d: .*dilation=\(100000,"),
    "conv_transpose2d_stride": (lambda: F.conv_transpose2d_forward(
        _x(1, 1, 4, 4), _x(1, 1, 3, 3), None, stride=10**6),
        r"conv_transpose2d: the output .*stride=\(1000000,"),
    "conv_transpose1d_dilation": (lambda: F.conv_transpose1d_forward(
        _x(1, 1, 4), _x(1, 2**20, 3), None, dilation=10**6),
        r"conv_transpose1d: the output .*dilation=\(1000000,"),
    "max_pool2d_kernel": (lambda: F.max_pool2d_forward(_x(1, 1, 4, 4), kernel_size=10**6,
                                                       padding=5 * 10**5),
                          r"max_pool2d: the padded input .*kernel_size=\(1000000,"),
    "avg_pool3d_kernel": (lambda: F.avg_pool3d_forward(_x(1, 1, 2, 2, 2), kernel_size=4000,
                                                       padding=2000),
                          r"avg_pool3d: the padded input .*padding=\(2000,"),
    "adaptive_avg_pool2d": (lambda: F.adaptive_avg_pool2d_forward(
        _x(1, 1, 4, 4), output_size=10**6), r"adaptive_avg_pool2d: the output .*output_size"),
    "adaptive_max_pool1d": (lambda: F.adaptive_max_pool1d_forward(
        _x(1, 1, 4), output_size=10**10), r"adaptive_max_pool1d: the output .*output_size"),
    "max_unpool2d_stride": (lambda: F.max_unpool2d_forward(
        _x(1, 1, 2, 2), np.zeros((1, 1, 2, 2), np.int64), kernel_size=2, stride=10**6),
        r"max_unpool2d: the output .*stride=\(1000000,"),
    "roi_pool_output": (lambda: F.roi_pool_forward(
        _x(1, 1, 4, 4), np.array([[0, 0, 0, 3, 3]], np.float32), output_size=10**6),
        r"roi_pool: the output .*output_size"),
    "roi_align_output": (lambda: F.roi_align_forward(
        _x(1, 1, 4, 4), np.array([[0, 0, 0, 3, 3]], np.float32), output_size=(10**6, 10**4)),
        r"roi_align: the output .*output_size"),
    "conv_transpose2d_columns": (lambda: F.conv_transpose2d_forward(
        _x(1, 1, 800, 800), _x(1, 1, 700, 700), None),
        r"conv_transpose2d: the column buffer of shape \(490000, 640000\)"),
    "roi_align_adaptive_grid": (lambda: F.roi_align_forward(
        _x(1, 1, 8, 8), np.array([[0, 0, 0, 1e9, 1e9]], np.float32), output_size=2),
        r"roi_align: the sample positions of one box .*sampling_ratio=-1 \(adaptive\)"),
    "roi_align_spatial_scale": (lambda: F.roi_align_forward(
        _x(1, 1, 8, 8), np.array([[0, 0, 0, 4, 4]], np.float32), output_size=2,
        spatial_scale=1e12, allow_outside=True), r"roi_align: .*spatial_scale=1e\+12"),
    "pad_shortcut_channels": (lambda: F.pad_shortcut_forward(_x(1, 2, 4, 4),
                                                              out_channels=10**12),
                              r"pad_shortcut: the output .*out_channels=1000000000000"),
}

LAYER_CASES = {
    "linear_features": (lambda: L.Linear(10**6, 10**6), r"Linear: the weight of shape"),
    "conv2d_channels": (lambda: L.Conv2d(10**4, 10**4, 100), r"Conv2d: the weight of shape"),
    "conv3d_kernel": (lambda: L.Conv3d(1, 1, 10**4), r"Conv3d: the weight of shape"),
    "batchnorm_features": (lambda: L.BatchNorm2d(10**12), r"BatchNorm2d: .*num_features"),
    "lenet_num_classes": (lambda: models.build("lenet5", num_classes=10**12),
                          r"Linear: the weight of shape \(1000000000000, 84\)"),
    "mlp_input_size": (lambda: models.build("lenet5", input_size=10**5),
                       r"models: an input of shape \(1, 1, 100000, 100000\).*input_size=100000"),
}


@pytest.mark.parametrize("name", list(KERNEL_CASES) + list(LAYER_CASES))
def test_huge_sizes_are_refused_before_allocating(name):
    make, pattern = {**KERNEL_CASES, **LAYER_CASES}[name]
    with pytest.raises(ArrayTooLargeError, match=pattern) as info:
        make()
    msg = str(info.value)
    assert "per-array limit of 4 GiB" in msg and "CONVPROP_MAX_ARRAY_BYTES" in msg
    # one class for both readings: a bad argument, and memory the process will not get
    assert isinstance(info.value, ValueError) and isinstance(info.value, MemoryError)


def test_sizes_are_python_ints_no_int64_wraparound():
    # 2**62 * 2**4 wraps to 0 in int64 (np.prod); the check must still refuse it
    with pytest.raises(ArrayTooLargeError, match=r"\(4611686018427387904, 16\)"):
        limits.check_array("op", "an array", (2**62, 16), np.float64)


def test_the_limit_is_adjustable_and_restored(monkeypatch):
    monkeypatch.delenv(limits.ENV, raising=False)
    x, w = _x(2, 3, 16, 16), _x(4, 3, 3, 3)
    F.conv2d_forward(x, w, None, padding=1)  # 8 KiB output: fine under the default
    with array_limit(1024):
        with pytest.raises(ArrayTooLargeError, match=r"limit of 1 KiB"):
            F.conv2d_forward(x, w, None, padding=1)
    assert limits.max_array_bytes() == limits.DEFAULT_MAX_ARRAY_BYTES
    monkeypatch.setenv(limits.ENV, "2K")
    assert limits.max_array_bytes() == 2048
    with pytest.raises(ArrayTooLargeError, match=r"conv2d: the output"):
        F.conv2d_forward(x, w, None, padding=1)
    monkeypatch.setenv(limits.ENV, "16GiB")
    assert limits.max_array_bytes() == 16 * 2**30
    with array_limit(10**15):
        assert limits.max_array_bytes() == 10**15  # the API wins over the environment


@pytest.mark.parametrize("bad", ["abc", "-5", "0", "1.5G", "G", "12X"])
def test_a_malformed_environment_value_is_named(monkeypatch, bad):
    monkeypatch.setenv(limits.ENV, bad)
    with pytest.raises(ValueError, match=rf"CONVPROP_MAX_ARRAY_BYTES must be a positive "
                                         rf"number of bytes .*got {bad!r}"):
        F.conv2d_forward(_x(1, 1, 4, 4), _x(1, 1, 3, 3), None)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "1G"])
def test_set_max_array_bytes_rejects_non_positive_ints(bad):
    with pytest.raises(ValueError, match="set_max_array_bytes: n must be a positive int"):
        limits.set_max_array_bytes(bad)
