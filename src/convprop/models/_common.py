"""Helpers shared by the model builders."""

from __future__ import annotations

import numpy as np

from ..limits import check_array


def spatial_shape(name: str, input_size, nd: int, minimum: int = 1) -> tuple:
    """``input_size`` (an int for every axis, or one size per spatial axis) as an nd-tuple."""
    from .._checks import ntuple
    return ntuple(name, "input_size", input_size, nd, minimum=minimum)


def feature_size(features, in_channels: int, input_size, dtype, nd: int = 2) -> int:
    """Number of features ``features`` produces per example: one forward pass on zeros, so
    the classifier width follows any input size without hand arithmetic. ``input_size`` is
    an int (every one of the ``nd`` spatial axes) or a tuple."""
    shape = spatial_shape("models", input_size, nd, minimum=0)  # 0: "too small" below
    check_array("models", "an input", (1, in_channels, *shape), dtype,
                because=f"input_size={input_size}, in_channels={in_channels}")
    try:
        y = features.predict(np.zeros((1, in_channels, *shape), dtype=dtype))
    except ValueError as e:
        raise ValueError(f"models: input_size {input_size} is too small for this network "
                         f"({e})") from None
    return int(np.prod(y.shape[1:]))
