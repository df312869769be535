"""One example for a command that explains a checkpoint (``explain``, ``saliency``, ``show
features``): read, checked against what the model takes, and normalised as its training
data was.

Unlike ``convprop predict``, which resizes a picture and converts its colours so that any
photo of a digit can be classified, these commands refuse a picture of another size or
channel count: a saliency map, a feature map or a trace is about the pixels the network saw,
and a silent resize would explain an image the user never gave.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["example_shape", "read_example"]

_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def example_shape(pre: dict) -> tuple:
    """The spatial shape the checkpoint's model takes (older checkpoints record a side)."""
    return tuple(pre.get("shape") or (pre["size"], pre["size"]))


def _channels(img) -> int:
    """1 for a grey picture (a grey palette counts as grey), 3 otherwise."""
    if img.mode in _GREY_MODES:
        return 1
    if img.mode == "P":
        rgb = np.asarray(img.convert("RGB"))
        return 1 if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all() \
            else 3
    return 3


def _check_picture(path: str, channels: int, shape: tuple) -> None:
    """Refuse a picture (already decoded once, safely, by ``_read_image``) whose size or
    channel count differs from the model's."""
    from PIL import Image

    from .. import cli
    with Image.open(path, formats=getattr(cli, "_PICTURE_FORMATS", None)) as img:
        size, got = img.size, _channels(img)
    if size != (shape[1], shape[0]):
        raise ValueError(f"{path} is {size[0]}x{size[1]} pixels; the model takes "
                         f"{shape[1]}x{shape[0]} (nothing is resized: the explanation is "
                         "about the pixels the network sees)")
    if got != channels:
        raise ValueError(f"{path} has {got} channel{'s' * (got > 1)}; the model takes "
                         f"{channels}")


def read_example(path: str, pre: dict, invert: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(image, x)``: the example at ``path`` as raw float64 (C, *shape) values in 0..255
    (``invert``: 255 - value), and normalised as one batch (1, C, *shape), float64.

    ``path``: a .npy array or, for 2-D models, a picture of exactly the model's size and
    channel count. Raises ValueError (one line) for anything else."""
    from ..cli import _read_image

    path = os.fspath(path)
    shape, channels = example_shape(pre), pre["channels"]
    try:
        img = _read_image(path, channels, shape, invert)
    except (ValueError, OSError) as e:   # the shared reader names predict, not this command
        msg = str(e)
        raise ValueError(msg[len("predict: "):] if msg.startswith("predict: ") else msg) \
            from None
    if not path.endswith(".npy"):
        _check_picture(path, channels, shape)
    bshape = (1, -1) + (1,) * len(shape)
    mean = np.asarray(pre["mean"], np.float64).reshape(bshape) * 255.0
    std = np.asarray(pre["std"], np.float64).reshape(bshape) * 255.0
    return img, (img[None] - mean) / std
