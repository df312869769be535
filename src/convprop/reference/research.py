"""The research and classic ops, one window (one output) at a time.

Alpha-integration pooling (Eom and Choi)::  y = f^-1((1/K) Σ_R f(x)),  f(s) = s^((1-α)/2)
                                            (log s at α = 1: the geometric mean)
DFT magnitude pooling::  y[u, v] = |(1/HW) Σ_{m,n} x[m, n] exp(-2πi (um/H + vn/W))|
LeNet-5's subsampling (S2, S4)::  y[c, i, j] = coef[c] Σ_{2x2 block} x + bias[c]
LeNet-5's Euclidean RBF output::  y[n, i] = Σ_j (x[n, j] - codes[i, j])²
"""

from __future__ import annotations

import cmath
import math

import numpy as np

from ._grid import ntuple, positions

__all__ = ["alpha_mean", "alpha_pool", "dft_pool", "euclidean_rbf", "subsampling"]


def alpha_mean(values, alpha):
    """f^-1(mean f(s)) with f(s) = s^((1-alpha)/2), or log s at alpha = 1."""
    k = len(values)
    if alpha == 1:
        return math.exp(sum(math.log(v) for v in values) / k)
    p = (1 - alpha) / 2
    return (sum(v ** p for v in values) / k) ** (1 / p)


def alpha_pool(x, alpha, kernel_size, stride=None):
    """Alpha pooling of x (N, C, H, W) > 0 over unpadded windows; alpha () or (C,)."""
    kh, kw = ntuple(kernel_size, 2)
    sh, sw = ntuple(kernel_size if stride is None else stride, 2)
    n, c, h, w = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    a = np.broadcast_to(np.asarray(alpha, np.float64).reshape(-1), (c,))
    y = np.zeros((n, c, ho, wo))
    for b, ch, i, j in positions((n, c, ho, wo)):
        win = [float(x[b, ch, i * sh + di, j * sw + dj]) for di in range(kh) for dj in range(kw)]
        y[b, ch, i, j] = alpha_mean(win, float(a[ch]))
    return y


def dft_pool(x, output_size):
    """|F[u, v]| for 0 <= u < KH, 0 <= v < KW: the lowest frequencies' magnitudes."""
    kh, kw = ntuple(output_size, 2)
    n, c, h, w = x.shape
    y = np.zeros((n, c, kh, kw))
    for b, ch, u, v in positions((n, c, kh, kw)):
        f = 0j
        for m, q in positions((h, w)):
            f += x[b, ch, m, q] * cmath.exp(-2j * cmath.pi * (u * m / h + v * q / w))
        y[b, ch, u, v] = abs(f) / (h * w)
    return y


def subsampling(x, coef, bias):
    """LeNet-5's trainable subsampling: a weighted 2x2 block sum plus a bias, per channel
    (an odd last row or column is not read)."""
    n, c, h, w = x.shape
    y = np.zeros((n, c, h // 2, w // 2))
    for b, ch, i, j in positions(y.shape):
        block = sum(float(x[b, ch, 2 * i + a, 2 * j + d]) for a in (0, 1) for d in (0, 1))
        y[b, ch, i, j] = coef[ch] * block + bias[ch]
    return y


def euclidean_rbf(x, codes):
    """The squared distance of each example x[n] (D,) to each class code codes[i] (D,)."""
    y = np.zeros((x.shape[0], codes.shape[0]))
    for n, i in positions(y.shape):
        y[n, i] = sum((float(x[n, j]) - float(codes[i, j])) ** 2 for j in range(x.shape[1]))
    return y
