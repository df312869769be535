"""LeNet-5 (LeCun et al. 1998) in its common modern form: ReLU and max pooling."""

from __future__ import annotations

import numpy as np

from ..layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
from ._common import feature_size


def lenet5(*, in_channels: int = 1, num_classes: int = 10, input_size: int = 28,
           rng: np.random.Generator | None = None, dtype=np.float32) -> Sequential:
    """conv 6@5x5 pad 2, ReLU, max pool 2, conv 16@5x5, ReLU, max pool 2, then fully
    connected 120, 84, ``num_classes`` with ReLU between (16*5*5 = 400 features at 28x28)."""
    kw = {"rng": rng, "dtype": dtype}
    features = Sequential(
        Conv2d(in_channels, 6, 5, padding=2, **kw), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 5, **kw), ReLU(), MaxPool2d(2), Flatten())
    n = feature_size(features, in_channels, input_size, dtype)
    return Sequential(*features, Linear(n, 120, **kw), ReLU(), Linear(120, 84, **kw), ReLU(),
                      Linear(84, num_classes, **kw))
