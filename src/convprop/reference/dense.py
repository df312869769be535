"""Fully connected layer, elementwise activations, dropout and reshapes, element by element.

Linear::      y[n, o] = b[o] + sum_i x[n, i] w[o, i]
              dx[n, i] = sum_o dy[n, o] w[o, i];  dw[o, i] = sum_n dy[n, o] x[n, i];
              db[o] = sum_n dy[n, o]
Activation::  y = f(x) elementwise;  dx = dy * f'(x)
Dropout::     y = x * m / (1 - p) with the keep-mask m;  dx = dy * m / (1 - p)
"""

from __future__ import annotations

import math

import numpy as np

from ._grid import positions

__all__ = ["ACTIVATIONS", "activation", "activation_backward", "dropout", "dropout_backward",
           "flatten", "linear", "linear_backward", "pad_shortcut", "sigmoid"]


def linear(x, w, b):
    """y (N, D_out) = x (N, D_in) w^T (D_out, D_in) + b (D_out,) (b may be None)."""
    n, d_out, d_in = x.shape[0], w.shape[0], w.shape[1]
    y = np.zeros((n, d_out))
    for i in range(n):
        for o in range(d_out):
            y[i, o] = sum(float(x[i, k]) * float(w[o, k]) for k in range(d_in))
            y[i, o] += 0.0 if b is None else float(b[o])
    return y


def linear_backward(dy, x, w):
    """(dx, dw, db) of :func:`linear`."""
    n, d_out, d_in = x.shape[0], w.shape[0], w.shape[1]
    dx, dw, db = np.zeros((n, d_in)), np.zeros((d_out, d_in)), np.zeros(d_out)
    for i in range(n):
        for o in range(d_out):
            db[o] += dy[i, o]
            for k in range(d_in):
                dx[i, k] += dy[i, o] * w[o, k]
                dw[o, k] += dy[i, o] * x[i, k]
    return dx, dw, db


def sigmoid(v):
    """1 / (1 + exp(-v)) of one float, in the form whose exp never overflows."""
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


# name -> (f(v, slope), f'(v, slope)) on one float; the kink of the relu family gets 0 (slope)
ACTIVATIONS = {
    "relu": (lambda v, a: v if v > 0 else 0.0, lambda v, a: 1.0 if v > 0 else 0.0),
    "leaky_relu": (lambda v, a: v if v > 0 else a * v, lambda v, a: 1.0 if v > 0 else a),
    "sigmoid": (lambda v, a: sigmoid(v), lambda v, a: sigmoid(v) * (1 - sigmoid(v))),
    "tanh": (lambda v, a: math.tanh(v), lambda v, a: 1 - math.tanh(v) ** 2),
}


def activation(name, x, *, negative_slope=0.01):
    """f(x) elementwise for f in ACTIVATIONS."""
    f = ACTIVATIONS[name][0]
    y = np.empty(np.shape(x))
    for idx in np.ndindex(y.shape):
        y[idx] = f(float(x[idx]), negative_slope)
    return y


def activation_backward(name, dy, x, *, negative_slope=0.01):
    """dx = dy * f'(x) elementwise."""
    df = ACTIVATIONS[name][1]
    dx = np.empty(np.shape(x))
    for idx in np.ndindex(dx.shape):
        dx[idx] = float(dy[idx]) * df(float(x[idx]), negative_slope)
    return dx


def dropout(x, keep, p):
    """Inverted dropout with the keep-mask ``keep``: kept elements scaled by 1/(1-p),
    dropped ones zero (p == 1 drops everything); ``keep`` None keeps everything."""
    y = np.zeros(np.shape(x))
    for idx in np.ndindex(y.shape):
        if (keep is None or keep[idx]) and p < 1:
            y[idx] = x[idx] / (1.0 - p)
    return y


def dropout_backward(dy, keep, p):
    """The same mask and scale applied to dy."""
    return dropout(dy, keep, p)


def flatten(x):
    """(N, ...) -> (N, prod(...)), row-major."""
    y = np.empty((x.shape[0], math.prod(x.shape[1:])))
    for n in range(x.shape[0]):
        for f, idx in enumerate(positions(x.shape[1:])):
            y[n, f] = x[(n, *idx)]
    return y


def pad_shortcut(x, out_channels, stride):
    """ResNet's option-A shortcut: subsample by ``stride`` and zero-pad the channels evenly
    (the odd extra channel after)."""
    n, c, h, w = x.shape
    ho, wo = -(-h // stride), -(-w // stride)
    before = (out_channels - c) // 2
    y = np.zeros((n, out_channels, ho, wo))
    for b, k, i, j in positions((n, c, ho, wo)):
        y[b, before + k, i, j] = x[b, k, i * stride, j * stride]
    return y
