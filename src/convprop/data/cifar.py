"""Reader for CIFAR-10's binary version, straight from the tarball (no pickle, no extraction).

Each record is 1 label byte followed by 3072 pixel bytes: the 1024 red, then green, then blue
values of a 32x32 image in row-major order, so a record reshapes directly to (3, 32, 32).
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np

from ._validate import open_regular_file

__all__ = ["CIFAR10_ARCHIVE", "CIFAR10_CLASSES", "load_cifar10_split"]

CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
_DIR = "cifar-10-batches-bin"
_RECORD = 1 + 3 * 32 * 32
#: Bounds checked before a member or file is read: a batch holds 10,000 records (30.7 MB);
#: the limit leaves room, and keeps a forged tar header from claiming gigabytes.
MAX_BATCH_BYTES = 64 << 20
#: The most members read from an archive (the real one has 8, plus its folder).
_MAX_MEMBERS = 64
_MAX_META_BYTES = 1 << 16
_MEMBERS = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}
_ALL = _MEMBERS["train"] + _MEMBERS["test"]


def _parse_records(data: bytes, source: str, num_classes: int = 10):
    """Images (N, 3, 32, 32) uint8 (a read-only view of ``data``) and labels (N,) int64."""
    if len(data) % _RECORD:
        raise ValueError(f"cifar10: {source} is truncated or corrupt: {len(data)} bytes is not "
                         f"a whole number of {_RECORD}-byte records; download it again")
    records = np.frombuffer(data, np.uint8).reshape(-1, _RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.size and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise ValueError(f"cifar10: {source} has label {int(labels[bad])} in record {bad}, "
                         f"expected labels in 0..{num_classes - 1}")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _classes_from_meta(text: str, source: str) -> tuple[str, ...]:
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != 10:
        raise ValueError(f"cifar10: {source} lists {len(names)} class names, expected 10")
    return names


def _read_archive(archive: Path, split: str) -> tuple[list[tuple[str, bytes]], str | None]:
    wanted = {f"{_DIR}/{m}" for m in _MEMBERS[split]} | {f"{_DIR}/batches.meta.txt"}
    found: dict[str, bytes] = {}
    f, _ = open_regular_file("cifar10", archive)  # a FIFO or device is named, not opened
    try:
        with f, tarfile.open(fileobj=f, mode="r:gz") as tar:
            for count, member in enumerate(tar, 1):
                if count > _MAX_MEMBERS:  # tarfile keeps every member's header in memory
                    raise ValueError(f"cifar10: {archive} has more than {_MAX_MEMBERS} "
                                     "members; the CIFAR-10 archive has 8, refusing to read "
                                     "further")
                if member.name in wanted and member.isfile():
                    limit = (_MAX_META_BYTES if member.name.endswith(".txt")
                             else MAX_BATCH_BYTES)
                    if member.size > limit:
                        raise ValueError(f"cifar10: {archive}: member {member.name} claims "
                                         f"{member.size} bytes, more than the {limit} a CIFAR-10 "
                                         "file can hold; refusing to read it")
                    found[member.name] = tar.extractfile(member).read(member.size)
                    if set(found) == wanted:
                        break
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"cifar10: {archive} is a damaged or truncated archive ({exc}); "
                         "delete it and download it again") from exc
    parts = []
    for m in _MEMBERS[split]:
        key = f"{_DIR}/{m}"
        if key not in found:
            raise ValueError(f"cifar10: {archive} has no member {key}; is it the binary "
                             f"version ({CIFAR10_ARCHIVE}) and not the python or matlab one?")
        parts.append((f"{archive}:{key}", found[key]))
    meta = found.get(f"{_DIR}/batches.meta.txt")
    return parts, None if meta is None else meta.decode("ascii", "replace")


def _read_bounded(path: Path, limit: int) -> bytes:
    if not os.path.lexists(path):
        raise FileNotFoundError(f"cifar10: {path} not found (the folder has "
                                f"{_present(path.parent)}; expected {', '.join(_ALL)})")
    f, size = open_regular_file("cifar10", path)
    with f:
        if size > limit:
            raise ValueError(f"cifar10: {path} is {size} bytes, more than the {limit} a "
                             "CIFAR-10 file can hold; refusing to read it")
        return f.read(limit + 1)


def _present(directory: Path) -> str:
    have = [m for m in _ALL if os.path.lexists(directory / m)]
    return ", ".join(have) if have else "none of the batch files"


def _read_directory(directory: Path, split: str) -> tuple[list[tuple[str, bytes]], str | None]:
    parts = []
    for m in _MEMBERS[split]:
        path = directory / m
        parts.append((str(path), _read_bounded(path, MAX_BATCH_BYTES)))
    meta = directory / "batches.meta.txt"
    text = (_read_bounded(meta, _MAX_META_BYTES).decode("ascii", "replace")
            if os.path.lexists(meta) else None)
    return parts, text


def locate(root: Path) -> Path | None:
    """The archive or the extracted batch directory under ``root``, or None. A folder that
    holds any of the batch files counts (a missing one is then named when it is needed)."""
    if os.path.lexists(root / CIFAR10_ARCHIVE):  # a FIFO there is named when it is opened
        return root / CIFAR10_ARCHIVE
    for candidate in (root / _DIR, root):
        if any(os.path.lexists(candidate / m) for m in _ALL):
            return candidate
    return None


def load_cifar10_split(root, split: str, *, hint: str = ""):
    """Images (N, 3, 32, 32) uint8, labels (N,) int64 and class names of one split.

    ``root`` holds ``cifar-10-binary.tar.gz`` (read in place) or its extracted
    ``cifar-10-batches-bin/`` folder.
    """
    root = Path(root)
    where = locate(root)
    if where is None:
        raise FileNotFoundError(f"cifar10: neither {CIFAR10_ARCHIVE} nor {_DIR}/ found in "
                                f"{root}; {hint}")
    parts, meta = (_read_archive(where, split) if where.name == CIFAR10_ARCHIVE
                   else _read_directory(where, split))
    images, labels = zip(*(_parse_records(data, src) for src, data in parts))
    classes = CIFAR10_CLASSES if meta is None else _classes_from_meta(meta, f"{where} meta")
    # concatenate makes the one writeable, contiguous copy of the pixels.
    return np.concatenate(images), np.concatenate(labels), classes
