"""A small, dependency-free reader and writer for the safetensors format.

Layout: an 8-byte little-endian header length, a JSON header mapping each tensor name to
``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus an optional ``"__metadata__"``
dict of strings), then the raw little-endian C-order bytes. Nothing is ever unpickled:
loading only parses JSON and reinterprets bytes. Files written here load with the reference
``safetensors`` package and vice versa (tested).

The reader treats every byte as untrusted and validates before it allocates: the path must be
a regular file (a directory, FIFO or device such as ``/dev/zero`` is refused without being
opened for reading), the header length must fit the file, the header must be a JSON object
whose every entry has a known dtype, a shape that is a list of non-negative ints and a pair of
offsets; sizes are computed with Python ints (no int64 wrap-around), and the tensors' byte
ranges must tile the data section exactly, from 0 to its end with no gap, overlap or trailing
byte, as the reference reader requires. The data section may hold at most ``max_bytes``
(default :data:`MAX_BYTES`, 4 GiB; the ``CONVPROP_MAX_FILE_BYTES`` environment variable
overrides it): a sparse file costs nothing on disk, but every byte it announces would be
allocated when read. Only then is each tensor read by its byte range into its own array.
"""

from __future__ import annotations

import json
import os
import stat
import struct

import numpy as np

from .atomic import atomic_open

__all__ = ["save_file", "load_file", "SafetensorsError", "MAX_BYTES", "MAX_HEADER",
           "MAX_OBJECTS"]

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
           "U16": np.uint16, "U32": np.uint32, "U64": np.uint64, "BOOL": np.bool_}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
#: The largest JSON header accepted (the reference reader's limit).
MAX_HEADER = 100 * 1024 * 1024
#: The most JSON objects a header (or a checkpoint's metadata) may hold: one per tensor, so
#: at most this many tensors; a ResNet-20 checkpoint with Adam state has about 200.
MAX_OBJECTS = 100_000
#: The default bound on a file's data section: far above any convprop checkpoint (a ResNet-20
#: with Adam state is ~3 MB; 4 GiB is a billion float32 weights), far below a machine's memory.
MAX_BYTES = 4 << 30


class SafetensorsError(ValueError):
    """The file is not a valid safetensors file (truncated, corrupt or malformed)."""


def save_file(tensors: dict, path, metadata: dict | None = None) -> None:
    """Write ``tensors`` (name -> ndarray) durably and atomically (see :mod:`.atomic`): a
    crash or error mid-write leaves any previous ``path`` intact."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        if not isinstance(name, str) or name == "__metadata__":
            raise TypeError(f"safetensors: tensor names must be strings other than "
                            f"'__metadata__', got {name!r}")
        a = np.asarray(tensors[name])
        if a.dtype not in _NAMES:
            raise TypeError(f"safetensors: tensor {name!r} has unsupported dtype {a.dtype}")
        raw = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _NAMES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        bad = [k for k, v in metadata.items() if not isinstance(v, str)]
        if bad:
            raise TypeError(f"safetensors: metadata values must be strings, not for {bad}")
        header["__metadata__"] = dict(metadata)
    hbytes = json.dumps(header, separators=(",", ":")).encode()
    hbytes += b" " * (-len(hbytes) % 8)  # align the data section, as the reference does
    with atomic_open(path, "wb", suffix=".safetensors") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for c in chunks:
            f.write(c)


def max_bytes_default() -> int:
    """:data:`MAX_BYTES`, or the ``CONVPROP_MAX_FILE_BYTES`` environment variable when set
    (a positive integer number of bytes)."""
    env = os.environ.get("CONVPROP_MAX_FILE_BYTES", "").strip()
    if not env:
        return MAX_BYTES
    try:
        n = int(env)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"CONVPROP_MAX_FILE_BYTES: expected a positive integer number of "
                         f"bytes, got {env!r}")
    return n


def open_regular(path, what: str):
    """Open ``path`` for binary reading, refusing anything but a regular file (a directory,
    FIFO, socket or device is never read: ``/dev/zero`` would never end, a FIFO would block).
    Returns ``(file, size)``; raises SafetensorsError naming the path."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SafetensorsError(f"{what}: no such file {path}") from None
    except OSError as e:
        raise SafetensorsError(f"{what}: cannot read {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO (named pipe)"
                if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "not a regular file")
        raise SafetensorsError(f"{what}: {path} is {kind}, not a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise SafetensorsError(f"{what}: cannot read {path}: {e.strerror or e}") from None
    f = os.fdopen(fd, "rb")
    st = os.fstat(f.fileno())  # the file actually opened (it may have been swapped)
    if not stat.S_ISREG(st.st_mode):
        f.close()
        raise SafetensorsError(f"{what}: {path} is not a regular file")
    return f, st.st_size


def _read_exact(f, n: int, path, what: str) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = f.readinto(view[got:])
        if not k:
            raise SafetensorsError(f"safetensors: {path} ended after {got} of the {n} bytes "
                                   f"of {what} (the file shrank while being read?)")
        got += k
    return buf


def _reject_constant(s):
    raise ValueError(f"non-standard JSON constant {s}")


class _TooMany(ValueError):
    pass


def _strict_objects(limit: int):
    """A json object_pairs_hook refusing duplicate keys and more than ``limit`` objects
    (each costs hundreds of bytes: a 61 MiB header of a million empty tensors took 1.5 GB
    and 16 s to parse and check)."""
    count = 0

    def hook(pairs):
        nonlocal count
        count += 1
        if count > limit:
            raise _TooMany(f"more than {limit} JSON objects (at most {limit} tensors)")
        d = {}
        for k, v in pairs:
            if k in d:
                raise ValueError(f"duplicate key {k!r}")
            d[k] = v
        return d
    return hook


def _is_int(v) -> bool:
    return type(v) is int


def parse_header(raw: bytes, path) -> dict:
    """The JSON header as a dict; strict JSON (no NaN, no duplicate keys, bounded nesting,
    at most :data:`MAX_OBJECTS` objects)."""
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant,
                            object_pairs_hook=_strict_objects(MAX_OBJECTS))
    except _TooMany as e:
        raise SafetensorsError(f"safetensors: {path} has a header of {e}; refusing to read "
                               "it") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise SafetensorsError(f"safetensors: {path} has a corrupt header "
                               f"({str(e)[:200]})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"safetensors: {path} header is not a JSON object")
    return header


def _entries(header: dict, path, data_len: int) -> list:
    """Validate every tensor entry; return ``[(name, dtype, shape, begin, end)]`` sorted by
    ``begin``, after checking the ranges tile ``[0, data_len)`` exactly."""
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise SafetensorsError(f"safetensors: {path}: __metadata__ must be an object of "
                               "strings")
    out = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        where = f"safetensors: {path}: tensor {name[:100]!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            got = sorted(info)[:10] if isinstance(info, dict) else type(info).__name__
            raise SafetensorsError(f"{where} must be an object with exactly 'dtype', 'shape' "
                                   f"and 'data_offsets', got {got}")
        dt, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dt, str) or dt not in _DTYPES:
            raise SafetensorsError(f"{where} has dtype {str(dt)[:40]!r}; expected one of "
                                   f"{sorted(_DTYPES)}")
        if (not isinstance(shape, list) or len(shape) > 64
                or not all(_is_int(s) and s >= 0 for s in shape)):
            raise SafetensorsError(f"{where} has shape {str(shape)[:100]}; expected a list "
                                   "of at most 64 non-negative ints")
        if not (isinstance(offs, list) and len(offs) == 2 and all(
                _is_int(v) and v >= 0 for v in offs) and offs[0] <= offs[1]):
            raise SafetensorsError(f"{where} has data_offsets {str(offs)[:100]}; expected "
                                   "[begin, end] with 0 <= begin <= end")
        dtype = np.dtype(_DTYPES[dt])
        count, span = 1, dtype.itemsize
        for s in shape:  # Python ints: no wrap-around, however large the shape
            count *= s
            span *= max(s, 1)
        b, e = offs
        if e - b != count * dtype.itemsize:
            raise SafetensorsError(f"{where}: shape {shape} of {dt} needs "
                                   f"{count * dtype.itemsize} bytes but its data_offsets "
                                   f"{offs} span {e - b}")
        if span >= 2**63:  # empty (a 0 in the shape), yet past what NumPy can describe
            raise SafetensorsError(f"{where} has shape {str(shape)[:100]}, beyond any array's "
                                   "size even with a zero in it")
        out.append((name, dtype, tuple(shape), b, e))
    out.sort(key=lambda t: (t[3], t[4]))
    pos = 0
    for name, _, _, b, e in out:
        if b != pos:
            what = "overlaps the previous tensor" if b < pos else f"leaves a gap at byte {pos}"
            raise SafetensorsError(f"safetensors: {path}: tensor {name[:100]!r} at bytes "
                                   f"[{b}, {e}] {what}; the tensors must tile the data "
                                   "section exactly")
        pos = e
    if pos != data_len:
        what = (f"{data_len - pos} trailing bytes" if pos < data_len
                else f"{pos - data_len} bytes too few")
        raise SafetensorsError(f"safetensors: {path}: the tensors cover {pos} bytes but the "
                               f"data section is {data_len} ({what}; truncated or corrupt)")
    return out


def load_file(path, *, max_bytes: int | None = None) -> tuple[dict, dict]:
    """Read ``path``; return ``(tensors, metadata)``.

    Raises SafetensorsError naming the path on any inconsistency (not a regular file, short
    file, header larger than the file, malformed header, ranges that do not tile the data
    exactly, a data section over ``max_bytes``), before reading any tensor data. A BOOL
    tensor must hold only 0 and 1 bytes."""
    limit = max_bytes_default() if max_bytes is None else max_bytes
    f, size = open_regular(path, "safetensors")
    with f:
        if size < 8:
            raise SafetensorsError(f"safetensors: {path} is too short ({size} bytes)")
        (n,) = struct.unpack("<Q", _read_exact(f, 8, path, "the header length"))
        if n > MAX_HEADER:
            raise SafetensorsError(f"safetensors: {path} declares a header of {n} bytes, more "
                                   f"than the limit of {MAX_HEADER} (corrupt or not "
                                   "safetensors)")
        if 8 + n > size:
            raise SafetensorsError(f"safetensors: {path} has a header of {n} bytes but the "
                                   f"file is {size} bytes (truncated or not safetensors)")
        if n < 2:
            raise SafetensorsError(f"safetensors: {path} has an empty header ({n} bytes; "
                                   "not a safetensors file)")
        header = parse_header(bytes(_read_exact(f, n, path, "the header")), path)
        data_len = size - 8 - n
        if data_len > limit:
            raise SafetensorsError(f"safetensors: {path} holds {data_len} bytes of tensor data, "
                                   f"more than the limit of {limit} (max_bytes, or "
                                   "CONVPROP_MAX_FILE_BYTES)")
        entries = _entries(header, path, data_len)
        tensors = {}
        for name, dtype, shape, b, e in entries:  # sorted by offset: one forward pass
            buf = _read_exact(f, e - b, path, f"tensor {name[:100]!r}")
            a = np.frombuffer(buf, dtype=dtype.newbyteorder("<"))
            if dtype == np.bool_ and a.size and np.frombuffer(buf, np.uint8).max() > 1:
                raise SafetensorsError(f"safetensors: {path}: BOOL tensor {name[:100]!r} "
                                       "holds bytes other than 0 and 1")
            tensors[name] = a.astype(dtype, copy=False).reshape(shape)
    meta = header.get("__metadata__", {})
    return tensors, dict(meta)
