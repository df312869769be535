"""Readers for the IDX files of MNIST and Fashion-MNIST (gzip-compressed or plain).

IDX: a big-endian header (magic ``0x0803`` for 3-D uint8 images, ``0x0801`` for 1-D uint8
labels, then one uint32 per dimension), followed by the uint8 data in row-major order.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "load_idx_split", "read_idx", "split_files"]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def split_files(split: str) -> tuple[str, str]:
    """The (images, labels) file names of ``split`` ("train" or "test")."""
    return _FILES[split]


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw  # already decompressed
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"idx: {path} is a damaged or truncated gzip file ({exc}); "
                         "delete it and download it again") from exc


def read_idx(path, magic: int) -> np.ndarray:
    """Read one uint8 IDX file whose header must carry ``magic``.

    Returns:
        a writeable uint8 array of the shape in the header: (N, rows, cols) for images,
        (N,) for labels.
    """
    path = Path(path)
    data = _read_bytes(path)
    want = "images (0x00000803)" if magic == IMAGES_MAGIC else "labels (0x00000801)"
    if len(data) < 4:
        raise ValueError(f"idx: {path} is too short to be an IDX file ({len(data)} bytes); "
                         f"expected an IDX {want} file")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        raise ValueError(f"idx: {path} has magic number 0x{got:08x}, expected IDX {want}; "
                         "is it the wrong file of the pair, or not an IDX file?")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"idx: {path} is truncated: its header needs {header} bytes, "
                         f"the file has {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    need = int(np.prod(shape, dtype=np.int64))
    have = len(data) - header
    if have != need:
        what = "truncated" if have < need else "longer than its header says"
        raise ValueError(f"idx: {path} is {what}: the header says shape {shape} "
                         f"({need} bytes of data) but {have} bytes follow; "
                         "delete it and download it again")
    # bytearray makes the result writeable without a second copy.
    return np.frombuffer(bytearray(data), np.uint8, offset=header).reshape(shape)


def _find(directory: Path, filename: str, hint: str) -> Path:
    for candidate in (directory / filename, directory / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"idx: {filename} not found in {directory}; {hint}")


def load_idx_split(directory, split: str, *, num_classes: int = 10, hint: str = ""):
    """Images (N, 1, rows, cols) uint8 and labels (N,) int64 of one split in ``directory``."""
    directory = Path(directory)
    img_name, lab_name = split_files(split)
    img_path = _find(directory, img_name, hint)
    lab_path = _find(directory, lab_name, hint)
    images = read_idx(img_path, IMAGES_MAGIC)
    labels = read_idx(lab_path, LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"idx: {img_path.name} holds {images.shape[0]} images but "
                         f"{lab_path.name} holds {labels.shape[0]} labels; the files do not "
                         "belong together")
    if labels.size and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise ValueError(f"idx: {lab_path} has label {int(labels[bad])} at index {bad}, "
                         f"expected labels in 0..{num_classes - 1}")
    return images[:, None], labels.astype(np.int64)
