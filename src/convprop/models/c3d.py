"""``c3d_mini``: a small 3-D CNN in the style of C3D (Tran et al. 2015: 3x3x3 convolutions
throughout, 3-D pooling that keeps the time axis in the first stage)."""

from __future__ import annotations

import numpy as np

from .._checks import positive_int
from ..layers import (BatchNorm3d, Conv3d, GlobalAvgPool3d, Linear, MaxPool3d, ReLU,
                      Sequential)
from ._common import spatial_shape


def c3d_mini(*, in_channels: int = 1, num_classes: int = 8, input_size=(16, 32, 32),
             widths=(8, 16, 32), rng: np.random.Generator | None = None,
             dtype=np.float32) -> Sequential:
    """Three stages of conv 3x3x3 (padding 1, no bias) + BatchNorm3d + ReLU + max pooling
    (1x2x2 after the first stage, so early layers see motion at the full frame rate, then
    2x2x2), global average pooling over (T, H, W) and a linear classifier.

    x (N, in_channels, T, H, W), e.g. the 16-frame 32x32 clips of the ``moving-mnist``
    data set -> logits (N, num_classes). ``input_size`` is (T, H, W) or one int, at least
    (4, 8, 8) for the three poolings."""
    t, h, w = spatial_shape("c3d_mini", input_size, 3)
    if t < 4 or h < 8 or w < 8:
        raise ValueError(f"c3d_mini: input_size must be at least (4, 8, 8), got {(t, h, w)}")
    if not isinstance(widths, (tuple, list)) or len(widths) != 3:
        raise ValueError(f"c3d_mini: widths must be 3 channel counts, got {widths!r}")
    widths = [positive_int("c3d_mini", "widths", c) for c in widths]
    kw = {"rng": rng, "dtype": dtype}
    layers, cin = [], in_channels
    for i, cout in enumerate(widths):
        layers += [Conv3d(cin, cout, 3, padding=1, bias=False, init="he_normal", **kw),
                   BatchNorm3d(cout, dtype=dtype), ReLU(),
                   MaxPool3d((1, 2, 2) if i == 0 else 2)]
        cin = cout
    return Sequential(*layers, GlobalAvgPool3d(), Linear(cin, num_classes, **kw))
