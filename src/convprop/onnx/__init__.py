"""ONNX export and import (optional extra ``onnx``: ``pip install 'convprop[onnx]'``).

- :func:`export` / :func:`to_onnx`: a convprop model -> an ONNX file (opset 17+, dynamic
  batch axis, readable names), validated by ``onnx.checker``.
- :func:`load` / :func:`from_onnx`: an ONNX file -> a convprop module (``Sequential`` for a
  chain, :class:`GraphModule` otherwise) with trainable ``Parameter``s; opsets 9 and newer.

The ``onnx`` package is imported only when one of these is called.
"""

from ._lib import ExportError, ImportError_ as OnnxImportError, OnnxError
from .export import DEFAULT_OPSET, export, to_onnx

__all__ = ["DEFAULT_OPSET", "ExportError", "GraphModule", "OnnxError", "OnnxImportError",
           "export", "from_onnx", "load", "to_onnx"]


def __getattr__(name):  # the import side loads on first use (it is the larger half)
    if name in ("load", "from_onnx"):
        from . import load as _load_mod
        return getattr(_load_mod, name)
    if name == "GraphModule":
        from .graph import GraphModule
        return GraphModule
    raise AttributeError(f"module 'convprop.onnx' has no attribute {name!r}")
