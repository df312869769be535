"""Helpers shared by the model builders."""

from __future__ import annotations

import numpy as np


def feature_size(features, in_channels: int, input_size: int, dtype) -> int:
    """Number of features ``features`` produces per image: one forward pass on zeros, so
    the classifier width follows any input size without hand arithmetic."""
    try:
        y = features.predict(np.zeros((1, in_channels, input_size, input_size), dtype=dtype))
    except ValueError as e:
        raise ValueError(f"models: input_size {input_size} is too small for this network "
                         f"({e})") from None
    return int(np.prod(y.shape[1:]))
