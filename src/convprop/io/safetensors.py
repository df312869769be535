"""A small, dependency-free reader and writer for the safetensors format.

Layout: an 8-byte little-endian header length, a JSON header mapping each tensor name to
``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus an optional ``"__metadata__"``
dict of strings), then the raw little-endian C-order bytes. Nothing is ever unpickled:
loading only parses JSON and reinterprets bytes. Files written here load with the reference
``safetensors`` package and vice versa (tested).
"""

from __future__ import annotations

import json
import struct

import numpy as np

from .atomic import atomic_open

__all__ = ["save_file", "load_file", "SafetensorsError"]

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
           "U16": np.uint16, "U32": np.uint32, "U64": np.uint64, "BOOL": np.bool_}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    """The file is not a valid safetensors file (truncated, corrupt or malformed)."""


def save_file(tensors: dict, path, metadata: dict | None = None) -> None:
    """Write ``tensors`` (name -> ndarray) durably and atomically (see :mod:`.atomic`): a
    crash or error mid-write leaves any previous ``path`` intact."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
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


def load_file(path) -> tuple[dict, dict]:
    """Read ``path``; return ``(tensors, metadata)``. Raises SafetensorsError on any
    inconsistency (short file, bad header, overlapping or out-of-range offsets)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise SafetensorsError(f"safetensors: {path} is too short ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        raise SafetensorsError(f"safetensors: {path} has a header of {n} bytes but the file "
                               f"is {len(data)} bytes (truncated or not safetensors)")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"safetensors: {path} has a corrupt header ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"safetensors: {path} header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + n:]
    tensors, spans = {}, []
    for name, info in header.items():
        try:
            dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
            shape = tuple(int(s) for s in info["shape"])
            b, e = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"safetensors: {path}: bad entry for {name!r}: {info}") \
                from None
        if not 0 <= b <= e <= len(body) or e - b != int(np.prod(shape)) * dtype.itemsize:
            raise SafetensorsError(f"safetensors: {path}: tensor {name!r} offsets {[b, e]} do "
                                   f"not match its shape {shape} or the file size")
        spans.append((b, e))
        tensors[name] = np.frombuffer(body[b:e], dtype=dtype).reshape(shape).astype(
            dtype.newbyteorder("="), copy=True)
    spans.sort()
    if any(e0 > b1 for (_, e0), (b1, _) in zip(spans, spans[1:])):
        raise SafetensorsError(f"safetensors: {path}: tensors overlap")
    return tensors, meta
