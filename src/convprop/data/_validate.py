"""Argument checks shared by the data set builders (messages start with the caller's name)."""

from __future__ import annotations

import numpy as np


def gray_images(op: str, name: str, a) -> np.ndarray:
    """``a`` as (N, h, w) uint8: accepts (N, 1, h, w) (a view) or (N, h, w), N, h, w >= 1."""
    if not isinstance(a, np.ndarray) or a.dtype != np.uint8:
        raise TypeError(f"{op}: {name} must be a uint8 ndarray (N, 1, h, w) or (N, h, w), got "
                        f"{type(a).__name__} {getattr(a, 'dtype', '')}")
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3 or 0 in a.shape:
        raise ValueError(f"{op}: {name} must be (N, 1, h, w) or (N, h, w) with N, h, w >= 1, "
                         f"got shape {a.shape}")
    return a
