"""Binarization with the straight-through estimator: BinaryConnect / BNN and XNOR-Net.

Courbariaux, Hubara, Soudry, El-Yaniv, Bengio, "Binarized Neural Networks: Training Deep
Neural Networks with Weights and Activations Constrained to +1 or -1" (arXiv:1602.02830,
2016), and BinaryConnect (Courbariaux, Bengio, David, NeurIPS 2015):

* deterministic binarization ``x_b = Sign(x) = +1 if x >= 0 else -1`` (their eq. 1: zero
  maps to +1, so every output is exactly +-1);
* stochastic binarization ``x_b = +1 with probability p = sigma(x), -1 with 1 - p``, where
  ``sigma(x) = clip((x + 1) / 2, 0, 1)`` is the "hard sigmoid" (eq. 2). Here an element is
  +1 when its uniform draw ``u`` (float64, from the Generator) satisfies ``u < sigma(x)``;
  every draw is kept in the cache and backward never draws. Outside training the stochastic
  form falls back to the deterministic Sign (a network is evaluated deterministically);
* the straight-through estimator ``g_r = g_q * 1_{|r| <= 1}`` (eq. 4): the gradient of
  ``Sign`` is taken as that of ``Htanh(x) = clip(x, -1, 1)``, cancelled where |r| > 1.

Rastegari, Ordonez, Redmon, Farhadi, "XNOR-Net: ImageNet Classification Using Binary
Convolutional Neural Networks" (ECCV 2016): a filter is approximated as ``W ~ alpha * B``
with ``B = sign(W)`` and ``alpha = ||W||_l1 / n = mean |W|`` over the filter (one alpha per
output filter: axis 0 of a (C_out, ...) weight); Binary-Weight-Networks binarize weights
only, XNOR-Networks also the layer input (``sign_forward`` before the layer). Their eq. for
the weight gradient, ``dC/dW_i = dC/dW~_i (1/n + dsign/dW_i * alpha)``, is written for the
dominant terms; :func:`binarize_weight_backward` computes the full chain rule of
``W~ = alpha(W) * B(W)`` with the STE for B:
``dW_i = g_i * alpha * 1_{|W_i| <= 1} + sign(W_i) / n * sum_j g_j B_j`` (sums over the
filter of W_i), which is what automatic differentiation of the same forward gives. The input
scaling K (the local mean of |I|) of XNOR-Networks is not implemented: ``sign_forward`` on
the input gives its unscaled binarization.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, boolean, check_cache, check_dy, one_of, training_rng

__all__ = ["SignCache", "sign_forward", "sign_backward", "hard_sigmoid",
           "BinarizeWeightCache", "binarize_weight_forward", "binarize_weight_backward",
           "BINARY_WEIGHT_SCALES"]

#: ``scale`` of :func:`binarize_weight_forward`: none (BinaryConnect/BNN: +-1) or the
#: XNOR-Net per-filter mean |W|.
BINARY_WEIGHT_SCALES = ("none", "mean")


def hard_sigmoid(x: np.ndarray) -> np.ndarray:
    """``clip((x + 1) / 2, 0, 1)``: BNN's probability of +1 under stochastic binarization."""
    return np.clip((x + 1.0) * 0.5, 0.0, 1.0)


def _binarize(op: str, x: np.ndarray, stochastic, training, rng):
    """(+-1 array in x's dtype, the uniform draws or None)."""
    stochastic = boolean(op, "stochastic", stochastic)
    training = training_rng(op, training, rng) if stochastic else boolean(
        op, "training", training)
    if stochastic and training:
        u = rng.random(x.shape)
        return np.where(u < hard_sigmoid(x.astype(np.float64)), 1, -1).astype(x.dtype), u
    return np.where(x >= 0, 1, -1).astype(x.dtype), None


class SignCache(NamedTuple):
    """``pass_mask`` = |x| <= 1 (where the STE lets the gradient through); the uniform
    draws of a stochastic forward (None otherwise); the forward dtype."""

    pass_mask: np.ndarray
    draws: np.ndarray | None
    dtype: np.dtype


def sign_forward(x, *, stochastic: bool = False, training: bool = False, rng=None):
    """Binarize ``x`` to +-1: ``Sign(x)`` (+1 for x >= 0), or, when ``stochastic`` and
    ``training``, +1 with probability ``hard_sigmoid(x)`` drawn from ``rng``.

    Args: x any shape, float32/float64; rng a numpy Generator (required when stochastic and
    training). Returns: y (same shape and dtype, every entry +-1) and a :class:`SignCache`.
    """
    op = "sign"
    x = as_float_array(op, "x", x)
    y, draws = _binarize(op, x, stochastic, training, rng)
    return y, SignCache(np.abs(x) <= 1, draws, x.dtype)


def sign_backward(dy, cache: SignCache):
    """The straight-through estimator: ``dx = dy * 1_{|x| <= 1}`` (BNN eq. 4)."""
    op = "sign_backward"
    cache = check_cache(op, cache, SignCache)
    dy = check_dy(op, dy, cache.pass_mask.shape, cache.dtype)
    return dy * cache.pass_mask


class BinarizeWeightCache(NamedTuple):
    """What the weight STE needs: the binary B (+-1), alpha per filter (None without
    scaling, else shape (C_out, 1, ...)), ``sign(W)`` / n for alpha's own derivative, the
    STE pass mask |W| <= 1, and a stochastic forward's draws."""

    b: np.ndarray
    alpha: np.ndarray | None
    dalpha: np.ndarray | None
    pass_mask: np.ndarray
    draws: np.ndarray | None


def binarize_weight_forward(w, *, scale: str = "none", stochastic: bool = False,
                            training: bool = False, rng=None):
    """``W~ = alpha * B`` with ``B`` the (deterministic or stochastic) binarization of the
    latent real weight ``W`` and, per output filter f (axis 0),
    ``alpha_f = mean |W[f]|`` for ``scale="mean"`` (XNOR-Net / BWN) or 1 for ``"none"``
    (BinaryConnect / BNN).

    Args: w (C_out, ...) float32/float64 (a linear or convolution weight); stochastic,
    training, rng as :func:`sign_forward`.
    Returns: W~ (w's shape and dtype) and a :class:`BinarizeWeightCache`.
    """
    op = "binarize_weight"
    w = as_float_array(op, "w", w)
    if w.ndim < 2:
        raise ValueError(f"binarize_weight: w must be at least 2-D (C_out, ...), got shape "
                         f"{w.shape}")
    one_of(op, "scale", scale, BINARY_WEIGHT_SCALES)
    b, draws = _binarize(op, w, stochastic, training, rng)
    mask = np.abs(w) <= 1
    if scale == "none":
        return b, BinarizeWeightCache(b, None, None, mask, draws)
    axes = tuple(range(1, w.ndim))
    n = w[0].size
    alpha = np.abs(w).mean(axis=axes, keepdims=True)
    dalpha = np.sign(w) / w.dtype.type(n)
    return alpha * b, BinarizeWeightCache(b, alpha, dalpha, mask, draws)


def binarize_weight_backward(dy, cache: BinarizeWeightCache):
    """Gradient of :func:`binarize_weight_forward` w.r.t. the latent W, ``dy`` = dL/dW~:
    ``dW = dy * 1_{|W| <= 1}`` without scaling (BNN's STE), and with alpha
    ``dW_i = dy_i * alpha * 1_{|W_i| <= 1} + sign(W_i) / n * sum_{j in filter} dy_j B_j``.
    """
    op = "binarize_weight_backward"
    cache = check_cache(op, cache, BinarizeWeightCache)
    dy = check_dy(op, dy, cache.b.shape, cache.b.dtype)
    if cache.alpha is None:
        return dy * cache.pass_mask
    axes = tuple(range(1, dy.ndim))
    through_b = dy * cache.alpha * cache.pass_mask
    through_alpha = cache.dalpha * (dy * cache.b).sum(axis=axes, keepdims=True)
    return through_b + through_alpha
