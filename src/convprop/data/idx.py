"""Readers for the IDX files of MNIST and Fashion-MNIST (gzip-compressed or plain).

IDX: a big-endian header (magic ``0x0803`` for 3-D uint8 images, ``0x0801`` for 1-D uint8
labels, then one uint32 per dimension), followed by the uint8 data in row-major order.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ._validate import open_regular_file

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "MAX_IDX_BYTES", "load_idx_split", "read_idx",
           "split_files"]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def split_files(split: str) -> tuple[str, str]:
    """The (images, labels) file names of ``split`` ("train" or "test")."""
    return _FILES[split]


#: The largest IDX data accepted: 1 GiB, 20 times MNIST's training images (47 MB) and above
#: EMNIST's largest file (0.55 GB). Overridable per call (``read_idx(..., max_bytes=)``).
MAX_IDX_BYTES = 1 << 30
_CHUNK = 1 << 20


def _open(path: Path):
    """A binary stream of the decompressed file (gzip detected by its magic bytes) and the
    size on disk; only regular files are opened (a FIFO or /dev/zero would block or never
    end)."""
    f, size = open_regular_file("idx", path)
    head = f.read(2)
    f.seek(0)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb"), size, f
    return f, size, f


def _read_into(stream, buf: memoryview, path: Path) -> int:
    """Fill ``buf`` from ``stream`` in bounded chunks (gzip inflates at most one chunk of
    output at a time); return how many bytes arrived."""
    got = 0
    while got < len(buf):
        try:
            k = stream.readinto(buf[got:got + _CHUNK])
        except (EOFError, OSError, zlib.error) as exc:
            raise ValueError(f"idx: {path} is a damaged or truncated gzip file ({exc}); "
                             "delete it and download it again") from None
        if not k:
            break
        got += k
    return got


def read_idx(path, magic: int, *, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read one uint8 IDX file whose header must carry ``magic``.

    The header is read and checked first (its sizes multiplied as Python ints, so they cannot
    wrap, and bounded by ``max_bytes``); then exactly the bytes it announces are read (a gzip
    file is inflated in 1 MiB chunks into one buffer of that size), and one byte more is
    refused: a small .gz that inflates to gigabytes fails after the announced size, having
    allocated only that.

    Returns:
        a writeable uint8 array of the shape in the header: (N, rows, cols) for images,
        (N,) for labels.
    """
    path = Path(path)
    want = "images (0x00000803)" if magic == IMAGES_MAGIC else "labels (0x00000801)"
    stream, disk_size, raw = _open(path)
    with raw, stream:
        head = bytearray(4)
        n = _read_into(stream, memoryview(head), path)
        if n < 4:
            raise ValueError(f"idx: {path} is too short to be an IDX file ({n} bytes); "
                             f"expected an IDX {want} file")
        got = int.from_bytes(head, "big")
        if got != magic:
            raise ValueError(f"idx: {path} has magic number 0x{got:08x}, expected IDX {want}; "
                             "is it the wrong file of the pair, or not an IDX file?")
        ndim = magic & 0xFF
        header = 4 + 4 * ndim
        dims = bytearray(4 * ndim)
        n = _read_into(stream, memoryview(dims), path)
        if n < len(dims):
            raise ValueError(f"idx: {path} is truncated: its header needs {header} bytes, "
                             f"the file has {4 + n}")
        shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
        need = span = 1
        for s in shape:  # Python ints: no wrap-around
            need *= s
            span *= max(s, 1)  # an empty file (a 0 in the shape) of 2**64-byte images too
        if need > max_bytes or span > max_bytes:
            raise ValueError(f"idx: {path}: the header says shape {shape} ({need} bytes), more "
                             f"than the limit of {max_bytes} bytes (max_bytes); refusing to "
                             "read it")
        if stream is raw and disk_size - header != need:
            have = disk_size - header
            what = "truncated" if have < need else "longer than its header says"
            raise ValueError(f"idx: {path} is {what}: the header says shape {shape} "
                             f"({need} bytes of data) but {have} bytes follow; "
                             "delete it and download it again")
        out = np.empty(need, np.uint8)
        have = _read_into(stream, memoryview(out), path)
        extra = _read_into(stream, memoryview(bytearray(1)), path) if have == need else 0
        if have != need or extra:
            what = ("truncated" if have < need
                    else "longer than its header says (a decompression bomb?)")
            raise ValueError(f"idx: {path} is {what}: the header says shape {shape} "
                             f"({need} bytes of data) but "
                             f"{'only ' + str(have) if have < need else 'more'} bytes follow; "
                             "delete it and download it again")
    return out.reshape(shape)


def _find(directory: Path, filename: str, hint: str) -> Path:
    for candidate in (directory / filename, directory / filename.removesuffix(".gz")):
        if os.path.lexists(candidate):  # a FIFO or a directory is refused by name when opened
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
