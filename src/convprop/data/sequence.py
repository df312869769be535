"""Sequential MNIST: each image read as a 1-D sequence, the 1-D task of the zoo's ``cnn1d``.

Pixel-by-pixel MNIST (Le, Jaitly & Hinton, "A Simple Way to Initialize Recurrent Networks of
Rectified Linear Units", 2015): the 28x28 image is read in raster order as 784 steps of one
channel, so a 1-D network sees a stroke only as pixels 1 apart along a row and 28 apart down a
column; it has to build its receptive field along the sequence to recognise the digit. The
"rows" form reads 28 steps (the rows) of 28 channels (the pixels of a row), the easier variant
used for small recurrent networks.
"""

from __future__ import annotations

import numpy as np

from ._validate import gray_images

__all__ = ["SEQUENCE_FORMS", "sequential_mnist"]

#: ``"pixels"``: (N, 1, h * w); ``"rows"``: (N, w, h), time along the rows.
SEQUENCE_FORMS = ("pixels", "rows")


def sequential_mnist(images: np.ndarray, *, form: str = "pixels") -> np.ndarray:
    """Images as sequences for a 1-D network, (N, C, L) with the time axis last.

    ``"pixels"``: ``x[n, 0, r * w + c] = image[n, r, c]`` (raster order), L = h * w, C = 1.
    ``"rows"``: ``x[n, c, r] = image[n, r, c]``: step r is row r, its w pixels the channels.

    Args:
        images: (N, 1, h, w) or (N, h, w) uint8 (the MNIST layout of :func:`load_dataset`).
        form: one of :data:`SEQUENCE_FORMS`.
    Returns:
        uint8, (N, 1, h * w) or (N, w, h); a new array (never a view of ``images``).
    """
    images = gray_images("sequential_mnist", "images", images)
    if form == "pixels":
        return images.reshape(len(images), 1, -1).copy()
    if form == "rows":
        return images.transpose(0, 2, 1).copy()  # copy() is C order
    raise ValueError(f"sequential_mnist: form must be one of {SEQUENCE_FORMS}, got {form!r}")
