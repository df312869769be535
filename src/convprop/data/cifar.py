"""Reader for CIFAR-10's binary version, straight from the tarball (no pickle, no extraction).

Each record is 1 label byte followed by 3072 pixel bytes: the 1024 red, then green, then blue
values of a 32x32 image in row-major order, so a record reshapes directly to (3, 32, 32).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

__all__ = ["CIFAR10_ARCHIVE", "CIFAR10_CLASSES", "load_cifar10_split"]

CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
_DIR = "cifar-10-batches-bin"
_RECORD = 1 + 3 * 32 * 32
_MEMBERS = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}


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
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    found[member.name] = tar.extractfile(member).read()
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


def _read_directory(directory: Path, split: str) -> tuple[list[tuple[str, bytes]], str | None]:
    parts = []
    for m in _MEMBERS[split]:
        path = directory / m
        if not path.is_file():
            raise FileNotFoundError(f"cifar10: {path} not found")
        parts.append((str(path), path.read_bytes()))
    meta = directory / "batches.meta.txt"
    return parts, meta.read_text("ascii", "replace") if meta.is_file() else None


def locate(root: Path) -> Path | None:
    """The archive or the extracted batch directory under ``root``, or None."""
    for candidate in (root / CIFAR10_ARCHIVE, root / _DIR, root):
        if candidate.is_file() or (candidate / "test_batch.bin").is_file():
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
    parts, meta = _read_archive(where, split) if where.is_file() else _read_directory(where, split)
    images, labels = zip(*(_parse_records(data, src) for src, data in parts))
    classes = CIFAR10_CLASSES if meta is None else _classes_from_meta(meta, f"{where} meta")
    # concatenate makes the one writeable, contiguous copy of the pixels.
    return np.concatenate(images), np.concatenate(labels), classes
