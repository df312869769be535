"""The lazily imported ``onnx`` package and the errors of :mod:`convprop.onnx`."""

from __future__ import annotations

__all__ = ["OnnxError", "ExportError", "OnnxImportError", "Unsupported", "require_onnx"]

INSTALL_HINT = "pip install 'convprop[onnx]' (or: pip install onnx)"


class OnnxError(ValueError):
    """An ONNX file or graph convprop cannot read, or a model it cannot write."""


class ExportError(OnnxError):
    """A model (or one of its layers) that cannot be written as ONNX; the message names the
    layer and why."""


class OnnxImportError(OnnxError):
    """An ONNX graph convprop cannot turn into modules; the message names the node and its
    operator."""


class Unsupported(ValueError):
    """An attribute or input form of a node that convprop cannot import (the loader adds
    the node's name and operator and raises an OnnxImportError)."""


def require_onnx(what: str):
    """The ``onnx`` module, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError:
        raise ImportError(f"{what}: the 'onnx' package is required; {INSTALL_HINT}") from None
    return onnx
