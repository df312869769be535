"""Networks that come from a file, not from the zoo's code: ``build("onnx", path=...)``.

``convprop train --init model.onnx`` trains the network an ONNX file holds; its checkpoint
records ``{"name": "onnx", "path": ..., "sha256": ...}``, so ``build(**config)`` (what
``convprop evaluate``, ``predict``, ``explain`` and ``--resume`` call) imports the same file
again and refuses it when its bytes changed. The checkpoint's weights are then restored over
the file's.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

__all__ = ["IMPORTED", "onnx_network"]


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def onnx_network(*, path: str, sha256: str | None = None, in_channels: int | None = None,
                 num_classes: int | None = None, input_size=None,
                 rng: np.random.Generator | None = None, dtype=np.float32):
    """The network of the ONNX file ``path`` (:func:`convprop.onnx.load`), parameters in
    ``dtype``, weights from the file (``rng`` is unused).

    ``sha256``: the file must have this digest (a checkpoint's record of the file it started
    from). ``in_channels``, ``num_classes``, ``input_size``: when given, one forward pass on
    zeros of (1, in_channels, *input_size) must give (1, num_classes), so data of another
    shape or class count is refused here, naming both, not deep inside a layer."""
    op = "onnx"
    if not isinstance(path, str) or not path:
        raise TypeError(f"{op}: path must be the ONNX file's path, got {path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"{op}: {path} is not a file (the network's ONNX file; a checkpoint "
                         "records the path it was trained from)")
    digest = _sha256(path)
    if sha256 is not None and digest != sha256:
        raise ValueError(f"{op}: {path} has changed since the checkpoint was written (SHA-256 "
                         f"{digest[:16]}..., expected {str(sha256)[:16]}...)")
    from ..onnx import load
    net = load(path, dtype=dtype)
    if in_channels is not None and input_size is not None:
        size = (input_size,) * 2 if isinstance(input_size, int) else tuple(input_size)
        probe = np.zeros((1, in_channels, *size), dtype=dtype)
        try:
            y = net.predict(probe)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{op}: {path} does not take examples of shape "
                             f"{(in_channels, *size)}: {e}") from None
        if num_classes is not None and np.shape(y) != (1, num_classes):
            raise ValueError(f"{op}: {path} outputs shape {np.shape(y)[1:]} per example, but "
                             f"the data has {num_classes} classes")
    net.config = {"name": "onnx", "path": os.path.abspath(path), "sha256": digest}
    return net


#: Builders of networks read from files; ``models.build`` and ``check_config`` know them
#: beside the zoo's MODELS (which lists only the architectures written in code).
IMPORTED = {"onnx": onnx_network}
