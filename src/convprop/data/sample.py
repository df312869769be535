"""The embedded ``mnist-sample``: a stratified 10,000/2,000 sample of MNIST shipped in the package.

``_sample/mnist_sample.npz`` holds ``x_train``/``x_test`` (N, 1, 28, 28) uint8, ``y_train``/
``y_test`` (N,) uint8 and ``idx_train``/``idx_test``, the source indices into the full MNIST
splits. ``_sample/mnist_sample.json`` records how it was made (source files and their sha256,
seed, method) and two checksums: ``file_sha256`` of the npz, verified on every load, and
``content_sha256`` of the arrays (:func:`content_sha256`), which a rebuild reproduces exactly
(the npz file itself carries zip timestamps, so its own hash changes from build to build).
Built by ``scripts/make_mnist_sample.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

__all__ = [
    "SAMPLE_DIR",
    "SAMPLE_JSON",
    "SAMPLE_KEYS",
    "SAMPLE_NPZ",
    "content_sha256",
    "load_sample_arrays",
]

SAMPLE_DIR = Path(__file__).resolve().parent / "_sample"
SAMPLE_NPZ = SAMPLE_DIR / "mnist_sample.npz"
SAMPLE_JSON = SAMPLE_DIR / "mnist_sample.json"
SAMPLE_KEYS = ("x_train", "y_train", "idx_train", "x_test", "y_test", "idx_test")


def content_sha256(arrays) -> str:
    """sha256 over each of :data:`SAMPLE_KEYS` in order: name, dtype, shape, then C-order bytes."""
    h = hashlib.sha256()
    for key in SAMPLE_KEYS:
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load_sample_arrays(npz_path=None, json_path=None) -> tuple[dict, dict]:
    """Verify the sample file's sha256 against its JSON record and return (arrays, record)."""
    npz_path = Path(npz_path) if npz_path is not None else SAMPLE_NPZ
    json_path = Path(json_path) if json_path is not None else SAMPLE_JSON
    for p in (npz_path, json_path):
        if not p.is_file():
            raise FileNotFoundError(
                f"mnist-sample: {p} is missing from the installed package; reinstall convprop, "
                "or rebuild it with scripts/make_mnist_sample.py")
    record = json.loads(json_path.read_text())
    raw = npz_path.read_bytes()
    got = hashlib.sha256(raw).hexdigest()
    if got != record.get("file_sha256"):
        raise ValueError(f"mnist-sample: checksum mismatch for {npz_path}: expected sha256 "
                         f"{record.get('file_sha256')}, got {got}; the file is damaged, "
                         "reinstall convprop or rebuild it with scripts/make_mnist_sample.py")
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        missing = [k for k in SAMPLE_KEYS if k not in z.files]
        if missing:
            raise ValueError(f"mnist-sample: {npz_path} lacks arrays {missing}, "
                             f"expected {list(SAMPLE_KEYS)}")
        arrays = {k: z[k] for k in SAMPLE_KEYS}
    return arrays, record
