"""The two kernels of LeNet-5 as published that no other layer has (LeCun, Bottou, Bengio,
Haffner 1998, section II.B); the modules are in :mod:`convprop.layers.lenet_classic`.

- S2 / S4, trainable subsampling: ``y[n, c] = coef[c] * sum_pool_2x2(x)[n, c] + bias[c]``, the
  block sums being sum pooling (average pooling with ``divisor_override=1``).
- The Euclidean RBF output units: ``y[n, i] = sum_j (x[n, j] - codes[i, j])^2``.

Loop reference: :func:`convprop.reference.subsampling`, :func:`convprop.reference.euclidean_rbf`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import (as_float_array, check_cache, check_dy, check_ndim, check_same_dtype,
                       check_shape)
from .pooling import AvgPoolCache, avg_pool2d_backward, avg_pool2d_forward

__all__ = ["Subsampling2dCache", "subsampling2d_forward", "subsampling2d_backward",
           "EuclideanRBFCache", "euclidean_rbf_forward", "euclidean_rbf_backward"]


class Subsampling2dCache(NamedTuple):
    pool: AvgPoolCache      # the 2x2 sum pooling's cache
    block_sum: np.ndarray   # (N, C, Ho, Wo): the sum of each 2x2 block
    coef: np.ndarray        # (C,)
    bias_dtype: np.dtype


def subsampling2d_forward(x, coef, bias):
    """``y[n, c, i, j] = coef[c] * sum_{a, b in {0, 1}} x[n, c, 2i + a, 2j + b] + bias[c]``.

    Args: x (N, C, H, W); coef, bias (C,). Returns y (N, C, H // 2, W // 2) and the cache.
    An odd last row or column is not read (floor, as 2x2 average pooling), and gets a zero
    gradient."""
    op = "subsampling2d"
    x = as_float_array(op, "x", x)
    coef, bias = as_float_array(op, "coef", coef), as_float_array(op, "bias", bias)
    check_ndim(op, "x", x, 4, "(N, C, H, W)")
    check_same_dtype(op, x=x, coef=coef, bias=bias)
    check_shape(op, "coef", coef, x.shape[1:2], "one per channel")
    check_shape(op, "bias", bias, x.shape[1:2], "one per channel")
    if x.shape[2] < 2 or x.shape[3] < 2:
        raise ValueError(f"{op}: x must be at least 2x2 spatially, got shape {x.shape}")
    s, pool = avg_pool2d_forward(x, kernel_size=2, divisor_override=1)
    y = s * coef[None, :, None, None] + bias[None, :, None, None]
    return y, Subsampling2dCache(pool, s, coef, bias.dtype)


def subsampling2d_backward(dy, cache: Subsampling2dCache):
    """Returns (dx, dcoef, dbias): dx spreads ``coef[c] * dy`` over each 2x2 block (sum
    pooling's backward), ``dcoef[c] = sum dy * block_sum``, ``dbias[c] = sum dy``."""
    op = "subsampling2d_backward"
    cache = check_cache(op, cache, Subsampling2dCache)
    dy = check_dy(op, dy, cache.block_sum.shape, cache.block_sum.dtype)
    dcoef = np.einsum("nchw,nchw->c", dy, cache.block_sum)
    dbias = dy.sum(axis=(0, 2, 3))
    dx = avg_pool2d_backward(dy * cache.coef[None, :, None, None], cache.pool)
    return dx, dcoef, dbias


class EuclideanRBFCache(NamedTuple):
    diff: np.ndarray  # (N, K, D): x_j - w_ij


def euclidean_rbf_forward(x, codes):
    """``y[n, i] = sum_j (x[n, j] - codes[i, j])^2``. x (N, D), codes (K, D) -> y (N, K)."""
    op = "euclidean_rbf"
    x, codes = as_float_array(op, "x", x), as_float_array(op, "codes", codes)
    check_ndim(op, "x", x, 2, "(N, D)")
    check_ndim(op, "codes", codes, 2, "(K, D)")
    check_same_dtype(op, x=x, codes=codes)
    if codes.shape[1] != x.shape[1]:
        raise ValueError(f"{op}: codes must be (K, {x.shape[1]}) to match x's D, "
                         f"got shape {codes.shape}")
    diff = x[:, None, :] - codes[None, :, :]
    return np.einsum("nkd,nkd->nk", diff, diff), EuclideanRBFCache(diff)


def euclidean_rbf_backward(dy, cache: EuclideanRBFCache):
    """``dx[n, j] = 2 sum_i dy[n, i] (x[n, j] - codes[i, j])``; the codes are fixed."""
    op = "euclidean_rbf_backward"
    cache = check_cache(op, cache, EuclideanRBFCache)
    dy = check_dy(op, dy, cache.diff.shape[:2], cache.diff.dtype)
    return 2 * np.einsum("nk,nkd->nd", dy, cache.diff)
