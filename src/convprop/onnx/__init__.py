"""ONNX export and import (optional extra ``onnx``: ``pip install 'convprop[onnx]'``).

- :func:`export` / :func:`to_onnx`: a convprop model -> an ONNX file (opset 17+, dynamic
  batch axis, readable names), validated by ``onnx.checker``.
- :func:`load` / :func:`from_onnx`: an ONNX file -> a convprop module (``Sequential`` for a
  chain, :class:`GraphModule` otherwise) with trainable ``Parameter``s; opsets 9 and newer.

The ``onnx`` package is imported only when one of these is called.
"""

from ._lib import ExportError, OnnxImportError, OnnxError
from .export import DEFAULT_OPSET, export, to_onnx
from .graph import GraphModule, ImportedSequential
from .importer import from_onnx, load

__all__ = ["DEFAULT_OPSET", "ExportError", "GraphModule", "ImportedSequential", "OnnxError",
           "OnnxImportError", "export", "from_onnx", "load", "to_onnx"]
