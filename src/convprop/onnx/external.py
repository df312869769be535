"""Tensors an ONNX file keeps in external data files (``model.onnx.data`` beside it, as
PyTorch's default exporter writes them), read safely.

Only files in the model's own folder (or below it) are read: a location must be relative,
without ``..``, and must resolve (symbolic links followed) inside that folder to a regular
file; ``offset``/``length`` must lie within it, and the length must be the one the
tensor's shape and type ask for, so a declaration cannot make convprop read elsewhere or
allocate more than the data file holds.
"""

from __future__ import annotations

import os

from ._lib import OnnxImportError

__all__ = ["external_tensors", "load_external_data", "sidecar_files"]


def external_tensors(onnx, proto) -> list:
    """The graph's tensors whose data is external: initializers and Constant values."""
    g = proto.graph
    out = [t for t in g.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    out += [a.t for n in g.node for a in n.attribute
            if a.HasField("t") and a.t.data_location == onnx.TensorProto.EXTERNAL]
    return out


def _info(t) -> dict:
    return {e.key: e.value for e in t.external_data}


def _resolve(base: str, location: str, tensor: str, where: str) -> str:
    bad = (not location or os.path.isabs(location) or "\\" in location
           or any(part == ".." for part in location.split("/")))
    path = os.path.realpath(os.path.join(base, location))
    root = os.path.realpath(base)
    if bad or os.path.commonpath([root, path]) != root:
        raise OnnxImportError(f"load: {where}: tensor {tensor!r} keeps its data in "
                              f"{location!r}, outside the model's folder; convprop reads "
                              "external data from files beside the model only")
    if not os.path.isfile(path):
        raise OnnxImportError(f"load: {where}: tensor {tensor!r} keeps its data in "
                              f"{location!r}, which is not a file beside the model")
    return path


def sidecar_files(onnx, proto, base: str, where: str = "<model>") -> list[str]:
    """The external data files of ``proto`` (a model read from folder ``base``), checked,
    sorted, each once."""
    return sorted({_resolve(base, _info(t).get("location", ""), t.name, where)
                   for t in external_tensors(onnx, proto)})


def load_external_data(onnx, proto, base: str, where: str) -> list[str]:
    """Read every external tensor of ``proto`` into it (``raw_data``); returns the files
    read. Raises OnnxImportError naming the tensor for a location outside ``base``, a
    missing file, or an offset/length that does not fit the file or the tensor."""
    import numpy as np
    used = set()
    for t in external_tensors(onnx, proto):
        info = _info(t)
        path = _resolve(base, info.get("location", ""), t.name, where)
        try:
            item = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
            offset = int(info.get("offset", 0))
            want = int(np.prod(list(t.dims), dtype=object)) * item
        except (TypeError, ValueError, KeyError) as e:
            raise OnnxImportError(f"load: {where}: external tensor {t.name!r} cannot be "
                                  f"read ({type(e).__name__}: {e})") from None
        length = int(info.get("length", want))
        size = os.path.getsize(path)
        if t.data_type == onnx.TensorProto.STRING or offset < 0 or length != want \
                or offset + length > size:
            raise OnnxImportError(
                f"load: {where}: external tensor {t.name!r} asks for {length} bytes at "
                f"offset {offset} of {os.path.basename(path)} ({size} bytes), but its shape "
                f"{list(t.dims)} and type need {want}")
        with open(path, "rb") as f:
            f.seek(offset)
            t.raw_data = f.read(length)
        del t.external_data[:]
        t.data_location = onnx.TensorProto.DEFAULT
        used.add(path)
    return sorted(used)
