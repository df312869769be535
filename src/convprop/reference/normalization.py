"""Batch normalization and local response normalization, channel by channel.

Batch norm (training)::  mu_c, var_c = mean and biased variance of channel c over N and space
    xhat = (x - mu_c) / sqrt(var_c + eps);  y = gamma_c xhat + beta_c
    backward (CS231n's batchnorm_backward_alt), with m values per channel:
    dbeta_c = sum dy;  dgamma_c = sum dy xhat
    dx = gamma_c / (m sqrt(var_c + eps)) (m dy - sum dy - xhat sum dy xhat)
LRN::  y[n, c] = x[n, c] / (k + alpha / size * sum_{j near c} x[n, j]^2) ^ beta
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["batch_norm", "batch_norm_backward", "local_response_norm"]


def batch_norm(x, gamma, beta, rm, rv, training, momentum, eps):
    """y and the NEW running mean and variance (PyTorch's rule: the running variance moves
    toward the *unbiased* batch variance); evaluation uses rm, rv and leaves them."""
    x = np.asarray(x, np.float64)
    C = x.shape[1]
    y = np.empty_like(x)
    new_rm, new_rv = np.empty(C), np.empty(C)
    for c in range(C):
        vals = [float(v) for v in x[:, c].ravel()]
        m = len(vals)
        mu = sum(vals) / m
        var = sum((v - mu) ** 2 for v in vals) / m
        if training:
            new_rm[c] = (1 - momentum) * rm[c] + momentum * mu
            new_rv[c] = (1 - momentum) * rv[c] + momentum * var * m / (m - 1)
        else:
            mu, var = rm[c], rv[c]
            new_rm[c], new_rv[c] = rm[c], rv[c]
        y[:, c] = gamma[c] * (x[:, c] - mu) / math.sqrt(var + eps) + beta[c]
    return y, new_rm, new_rv


def batch_norm_backward(dy, x, gamma, eps):
    """(dx, dgamma, dbeta) of training-mode batch norm."""
    x, dy = np.asarray(x, np.float64), np.asarray(dy, np.float64)
    C = x.shape[1]
    dx = np.empty_like(x)
    dgamma, dbeta = np.zeros(C), np.zeros(C)
    for c in range(C):
        xs, gs = x[:, c].ravel(), dy[:, c].ravel()
        m = len(xs)
        mu = sum(xs) / m
        inv_std = 1.0 / math.sqrt(sum((v - mu) ** 2 for v in xs) / m + eps)
        xhat = [(v - mu) * inv_std for v in xs]
        dbeta[c] = sum(gs)
        dgamma[c] = sum(g * h for g, h in zip(gs, xhat))
        d = [gamma[c] * inv_std / m * (m * g - dbeta[c] - h * dgamma[c])
             for g, h in zip(gs, xhat)]
        dx[:, c] = np.reshape(d, x[:, c].shape)
    return dx, dgamma, dbeta


def local_response_norm(x, size, alpha, beta, k):
    """AlexNet's LRN across channels (the window of ``size`` channels centred on c, as
    ``torch.nn.functional.local_response_norm``)."""
    x = np.asarray(x, np.float64)
    N, C = x.shape[:2]
    y = np.empty_like(x)
    for n in range(N):
        for c in range(C):
            s = np.zeros(x.shape[2:])
            for j in range(c - size // 2, c + (size - 1) // 2 + 1):
                if 0 <= j < C:
                    s = s + x[n, j] ** 2
            y[n, c] = x[n, c] / (k + alpha / size * s) ** beta
    return y
