"""Durable atomic file writes: a reader sees the old file or the new one, never a mix.

The data goes to a temporary file in the target's directory (so the rename stays on one
filesystem), which is flushed and fsynced, renamed over the target with ``os.replace``, and
then the directory itself is fsynced so the rename survives a power cut. On any failure the
temporary file is removed and the previous target is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO

__all__ = ["atomic_open", "atomic_write"]


def _fsync_dir(d: str) -> None:
    # Best effort: some platforms (Windows) or filesystems refuse to open or fsync a directory.
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb", *, suffix: str = "") -> Iterator[IO]:
    """Yield a temporary file next to ``path``; on a clean exit flush, fsync and rename it
    over ``path`` (then fsync the directory). ``mode`` is ``"wb"`` or ``"w"`` (text, no
    newline translation). If the block raises, the temporary file is deleted and ``path``
    keeps its previous contents."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=d)
    try:
        kwargs = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(d)


def atomic_write(path, data: bytes | str) -> None:
    """Write ``data`` (bytes, or str encoded as UTF-8) to ``path`` durably and atomically."""
    if not isinstance(data, (bytes, bytearray, memoryview, str)):
        raise TypeError(f"atomic_write: data must be bytes or str, got {type(data).__name__}")
    with atomic_open(path, "w" if isinstance(data, str) else "wb") as f:
        f.write(data)
