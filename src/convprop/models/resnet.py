"""ResNet-20 for CIFAR (He et al. 2016, section 4.2): 6n+2 layers with n = 3."""

from __future__ import annotations

import numpy as np

from .._checks import positive_int
from ..layers import (BatchNorm2d, Conv2d, GlobalAvgPool2d, Identity, Linear, PadShortcut, ReLU,
                      Residual, Sequential)


def basic_block(cin: int, cout: int, stride: int, shortcut: str, kw: dict) -> Sequential:
    """relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x))."""
    body = Sequential(
        Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, **kw),
        BatchNorm2d(cout, dtype=kw["dtype"]), ReLU(),
        Conv2d(cout, cout, 3, padding=1, bias=False, **kw), BatchNorm2d(cout, dtype=kw["dtype"]))
    if stride == 1 and cin == cout:
        sc = Identity()
    elif shortcut == "A":
        sc = PadShortcut(cout, stride)
    else:
        sc = Sequential(Conv2d(cin, cout, 1, stride=stride, bias=False, **kw),
                        BatchNorm2d(cout, dtype=kw["dtype"]))
    return Sequential(Residual(body, sc), ReLU())


def resnet20(*, in_channels: int = 3, num_classes: int = 10, input_size: int = 32,
             blocks_per_stage: int = 3, widths=(16, 32, 64), shortcut: str = "A",
             rng: np.random.Generator | None = None, dtype=np.float32) -> Sequential:
    """conv3x3 16, BN, ReLU; three stages of ``blocks_per_stage`` basic blocks at widths
    16/32/64 (stride 2 entering stages 2 and 3); global average pooling; a linear
    classifier. ``shortcut="A"`` (the paper's CIFAR choice: zero-padded identity) or "B"
    (1x1 convolution + BN projection). He-normal initialisation as in the paper.
    ``input_size`` is accepted for a uniform model interface (global pooling adapts)."""
    if shortcut not in ("A", "B"):
        raise ValueError(f"resnet20: shortcut must be 'A' or 'B', got {shortcut!r}")
    positive_int("resnet20", "input_size", input_size)
    positive_int("resnet20", "blocks_per_stage", blocks_per_stage)
    if not isinstance(widths, (tuple, list)) or not widths:
        raise ValueError(f"resnet20: widths must be a non-empty list of channel counts, "
                         f"got {widths!r}")
    widths = [positive_int("resnet20", f"widths[{i}]", wd) for i, wd in enumerate(widths)]
    kw = {"rng": rng, "dtype": dtype, "init": "he_normal"}
    layers = [Conv2d(in_channels, widths[0], 3, padding=1, bias=False, **kw),
              BatchNorm2d(widths[0], dtype=dtype), ReLU()]
    c = widths[0]
    for i, wd in enumerate(widths):
        for b in range(blocks_per_stage):
            stride = 2 if (i > 0 and b == 0) else 1
            layers.append(basic_block(c, wd, stride, shortcut, kw))
            c = wd
    layers += [GlobalAvgPool2d(), Linear(c, num_classes, rng=rng, dtype=dtype)]
    return Sequential(*layers)
