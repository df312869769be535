"""A tiny classifier and dataset for fast training-loop tests (no convolution needed)."""

import numpy as np

from convprop.layers import CrossEntropyLoss, Dropout, Linear, ReLU, Sequential
from convprop.optim import SGD


def data(n=240, seed=1):
    g = np.random.default_rng(seed)
    y = g.integers(0, 3, n)
    centers = np.array([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    x = (centers[y] + g.standard_normal((n, 4))).astype(np.float32)
    return x, y


def setup(seed=0, lr=0.1):
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(4, 16, rng=rng), ReLU(),
                       Dropout(0.2, rng=np.random.default_rng(rng.integers(2**63))),
                       Linear(16, 3, rng=rng))
    opt = SGD(model.parameters(), lr=lr, momentum=0.9)
    return model, CrossEntropyLoss(), opt, rng
