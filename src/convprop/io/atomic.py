"""Durable atomic file writes: a reader sees the old file or the new one, never a mix.

The data goes to a temporary file in the target's directory (so the rename stays on one
filesystem), which is flushed and fsynced, renamed over the target with ``os.replace``, and
then the directory itself is fsynced so the rename survives a power cut. On any failure the
temporary file is removed and the previous target is left untouched.

Two details a user sees:

- File mode: the new file gets the mode an ordinary ``open(path, "w")`` would give it: the
  existing target's permission bits when it is replaced, else ``0o666`` minus the umask (not
  the ``0600`` of a bare temporary file).
- Leftovers: a process killed mid-write (SIGKILL, power cut) cannot remove its temporary
  file. Temporary files are named ``.<target>.<pid>-<random>.convprop-tmp``; every
  successful write removes the ones in its directory whose writing process no longer exists
  (and which the current user owns), so leftovers never accumulate. A live writer's file is
  never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from typing import IO

__all__ = ["atomic_open", "atomic_write", "TEMP_SUFFIX"]

TEMP_SUFFIX = ".convprop-tmp"
_TEMP_RE = re.compile(r"^\..*\.(\d+)-[A-Za-z0-9_]+" + re.escape(TEMP_SUFFIX) + "$")


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


def _umask() -> int:
    """The process umask, read without changing it where the OS says it (Linux >= 4.7);
    elsewhere by the classic set-and-restore."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be writing
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or unknown: keep the file
    return True


def clean_leftovers(directory) -> list[str]:
    """Remove the temporary files of interrupted atomic writes in ``directory``: those whose
    writing process is gone and which the current user owns. Best effort (errors ignored);
    returns the names removed."""
    removed = []
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        m = _TEMP_RE.match(name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        p = os.path.join(directory, name)
        try:
            st = os.lstat(p)
            if not stat.S_ISREG(st.st_mode) or (uid is not None and st.st_uid != uid):
                continue
            os.unlink(p)
            removed.append(name)
        except OSError:
            pass
    return removed


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb", *, suffix: str = "") -> Iterator[IO]:
    """Yield a temporary file next to ``path``; on a clean exit flush, fsync and rename it
    over ``path`` (then fsync the directory, and remove leftovers of interrupted writes).
    ``mode`` is ``"wb"`` or ``"w"`` (text, no newline translation). If the block raises, the
    temporary file is deleted and ``path`` keeps its previous contents. ``suffix`` is kept
    for compatibility and ignored (every temporary file ends in ``.convprop-tmp``)."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    if os.path.isdir(path):
        raise IsADirectoryError(f"atomic_open: {path} is a directory")
    base = os.path.basename(path)[:100]
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.{os.getpid()}-", suffix=TEMP_SUFFIX, dir=d)
    try:
        kwargs = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), _mode_for(path))
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(d)
    clean_leftovers(d)


def atomic_write(path, data: bytes | str) -> None:
    """Write ``data`` (bytes, or str encoded as UTF-8) to ``path`` durably and atomically."""
    if not isinstance(data, (bytes, bytearray, memoryview, str)):
        raise TypeError(f"atomic_write: data must be bytes or str, got {type(data).__name__}")
    with atomic_open(path, "w" if isinstance(data, str) else "wb") as f:
        f.write(data)
