"""An AlexNet-style network for small (32x32) images, with AlexNet's distinctive parts."""

from __future__ import annotations

import numbers

import numpy as np

from ..layers import (Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU,
                      Sequential)
from ._common import feature_size


def alexnet_cifar(*, in_channels: int = 3, num_classes: int = 10, input_size: int = 32,
                  width: int = 32, dropout: float = 0.5,
                  rng: np.random.Generator | None = None, dtype=np.float32) -> Sequential:
    """Large first kernel with stride (5x5, stride 2), ReLU, local response normalisation
    (size 5, alpha 1e-4, beta 0.75, k 2, as in the paper), overlapping max pooling (3x3,
    stride 2), grouped convolutions (groups=2, AlexNet's two-GPU split), and dropout in the
    classifier. ``width`` scales the channel counts (AlexNet's own ratios 64:192:384:256:256
    at width 64)."""
    if (isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 2
            or width % 2):
        raise ValueError(f"alexnet_cifar: width must be an even int >= 2 (groups=2 splits "
                         f"every grouped layer's channels in two), got {width!r}")
    w = width
    kw = {"rng": rng, "dtype": dtype}
    c1, c2, c3, c4 = w, 3 * w, 6 * w, 4 * w
    features = Sequential(
        Conv2d(in_channels, c1, 5, stride=2, padding=2, **kw), ReLU(),
        LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0), MaxPool2d(3, stride=2, padding=1),
        Conv2d(c1, c2, 5, padding=2, groups=2, **kw), ReLU(),
        LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0), MaxPool2d(3, stride=2, padding=1),
        Conv2d(c2, c3, 3, padding=1, **kw), ReLU(),
        Conv2d(c3, c4, 3, padding=1, groups=2, **kw), ReLU(),
        Conv2d(c4, c4, 3, padding=1, groups=2, **kw), ReLU(),
        MaxPool2d(3, stride=2, padding=1), Flatten())
    n = feature_size(features, in_channels, input_size, dtype)
    drop_rng = rng if rng is not None else np.random.default_rng()
    return Sequential(
        *features, Dropout(dropout, rng=np.random.default_rng(drop_rng.integers(2**63))),
        Linear(n, 8 * w, **kw), ReLU(),
        Dropout(dropout, rng=np.random.default_rng(drop_rng.integers(2**63))),
        Linear(8 * w, 8 * w, **kw), ReLU(), Linear(8 * w, num_classes, **kw))
