"""A small VGG (Simonyan and Zisserman 2014) with batch normalisation, for 28-32 px images."""

from __future__ import annotations

import numpy as np

from ..layers import (BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU,
                      Sequential)
from ._common import feature_size


def vgg_cifar(*, in_channels: int = 3, num_classes: int = 10, input_size: int = 32,
              stages=((32, 32), (64, 64), (128, 128)), hidden: int = 256,
              dropout: float = 0.3, rng: np.random.Generator | None = None,
              dtype=np.float32) -> Sequential:
    """Stages of 3x3 convolutions (padding 1) each followed by batch norm and ReLU, a 2x2
    max pool after every stage, then dropout, a hidden fully-connected layer and the
    classifier. Convolutions use He initialisation (they feed ReLUs)."""
    kw = {"rng": rng, "dtype": dtype}
    layers, c = [], in_channels
    for stage in stages:
        for width in stage:
            layers += [Conv2d(c, width, 3, padding=1, bias=False, init="he_normal", **kw),
                       BatchNorm2d(width, dtype=dtype), ReLU()]
            c = width
        layers.append(MaxPool2d(2))
    features = Sequential(*layers, Flatten())
    n = feature_size(features, in_channels, input_size, dtype)
    seed = (rng if rng is not None else np.random.default_rng()).integers(2**63)
    return Sequential(*features, Dropout(dropout, rng=np.random.default_rng(seed)),
                      Linear(n, hidden, **kw), ReLU(), Linear(hidden, num_classes, **kw))
