"""``cnn1d``: a small 1-D CNN for sequences, e.g. sequential MNIST (784 pixels in scan order)."""

from __future__ import annotations

import numpy as np

from .._checks import positive_int
from ..layers import BatchNorm1d, Conv1d, Flatten, Linear, MaxPool1d, ReLU, Sequential
from ._common import feature_size, spatial_shape


def cnn1d(*, in_channels: int = 1, num_classes: int = 10, input_size=784,
          widths=(16, 32, 64), kernel_size: int = 5, pools=(4, 4, 2),
          rng: np.random.Generator | None = None, dtype=np.float32) -> Sequential:
    """Three stages of conv1d (``kernel_size``, "same" padding, no bias) + BatchNorm1d + ReLU
    + max pooling by ``pools``, then a linear classifier on the flattened features (the
    position along the sequence matters: a pixel sequence's position is the row and
    column). x (N, in_channels, L) -> logits (N, num_classes)."""
    (length,) = spatial_shape("cnn1d", input_size, 1)
    if not isinstance(widths, (tuple, list)) or not isinstance(pools, (tuple, list)) \
            or len(widths) != len(pools) or not widths:
        raise ValueError(f"cnn1d: widths and pools must be equally long non-empty sequences, "
                         f"got {widths!r} and {pools!r}")
    k = positive_int("cnn1d", "kernel_size", kernel_size)
    kw = {"rng": rng, "dtype": dtype}
    layers, cin = [], in_channels
    for cout, pool in zip(widths, pools):
        cout, pool = positive_int("cnn1d", "widths", cout), positive_int("cnn1d", "pools", pool)
        layers += [Conv1d(cin, cout, k, padding="same", bias=False, init="he_normal", **kw),
                   BatchNorm1d(cout, dtype=dtype), ReLU(), MaxPool1d(pool)]
        cin = cout
    features = Sequential(*layers, Flatten())
    n = feature_size(features, in_channels, length, dtype, nd=1)
    return Sequential(*features, Linear(n, num_classes, **kw))
