"""Argument checks shared by the data set builders (messages start with the caller's name)."""

from __future__ import annotations

import os
import stat

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


def open_regular_file(op: str, path):
    """Open ``path`` for binary reading; only a regular file (a directory, FIFO or device such
    as /dev/zero is refused before it is read: it would block or never end). Returns
    ``(file, size)``. FileNotFoundError / ValueError name the path."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{op}: {path} not found") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO (named pipe)"
                if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise ValueError(f"{op}: {path} is {kind}, not a regular file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    f = os.fdopen(fd, "rb")
    st = os.fstat(f.fileno())
    if not stat.S_ISREG(st.st_mode):
        f.close()
        raise ValueError(f"{op}: {path} is not a regular file")
    return f, st.st_size
