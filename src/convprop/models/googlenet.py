"""A small GoogLeNet (Szegedy et al. 2015): inception blocks joined with Concat."""

from __future__ import annotations

import numpy as np

from .._checks import positive_int
from ..layers import (BatchNorm2d, Concat, Conv2d, GlobalAvgPool2d, Linear, MaxPool2d, ReLU,
                      Sequential)


def _conv(cin, cout, k, kw):
    return Sequential(Conv2d(cin, cout, k, padding=k // 2, bias=False, **kw),
                      BatchNorm2d(cout, dtype=kw["dtype"]), ReLU())


def inception(cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int,
              kw: dict) -> Concat:
    """Four parallel branches on the same input, joined along channels: 1x1; 1x1 -> 3x3;
    1x1 -> 5x5; 3x3 max pool (stride 1) -> 1x1. Output channels c1 + c3 + c5 + pool_proj."""
    return Concat(
        _conv(cin, c1, 1, kw),
        Sequential(_conv(cin, c3r, 1, kw), _conv(c3r, c3, 3, kw)),
        Sequential(_conv(cin, c5r, 1, kw), _conv(c5r, c5, 5, kw)),
        Sequential(MaxPool2d(3, stride=1, padding=1), _conv(cin, pool_proj, 1, kw)))


def googlenet_mini(*, in_channels: int = 3, num_classes: int = 10, input_size: int = 32,
                   rng: np.random.Generator | None = None, dtype=np.float32) -> Sequential:
    """Stem conv 3x3 (32), two inception blocks, 3x3/2 max pool, two more inception
    blocks, global average pooling and a linear classifier. Every convolution is followed
    by batch norm and ReLU. ``input_size`` is accepted for a uniform interface."""
    positive_int("googlenet_mini", "input_size", input_size)
    kw = {"rng": rng, "dtype": dtype, "init": "he_normal"}
    return Sequential(
        _conv(in_channels, 32, 3, kw),
        inception(32, 16, 16, 24, 4, 8, 8, kw),        # -> 56
        inception(56, 24, 24, 32, 8, 16, 16, kw),      # -> 88
        MaxPool2d(3, stride=2, padding=1),
        inception(88, 32, 24, 48, 8, 16, 16, kw),      # -> 112
        inception(112, 40, 32, 56, 8, 16, 16, kw),     # -> 128
        GlobalAvgPool2d(), Linear(128, num_classes, rng=rng, dtype=dtype))
