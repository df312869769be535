"""The size limit on any one array a layer, model or kernel is asked to create.

A hyperparameter is a few bytes of input that can ask for terabytes: ``padding=10**6`` on a
convolution, ``stride=10**5`` on a transposed one, ``num_classes=10**12``, an ``input_size``
from a hostile checkpoint. Every op that derives an array's size from its arguments checks
that size *before* allocating and raises :class:`ArrayTooLargeError` (a ValueError and a
MemoryError) naming the op, the array and the arguments behind it, instead of exhausting the
machine's memory or waiting on the OS to kill the process.

The limit is per array, ``DEFAULT_MAX_ARRAY_BYTES`` (4 GiB) unless the environment variable
``CONVPROP_MAX_ARRAY_BYTES`` (bytes, or with a K/M/G/T suffix: ``16G``) or
:func:`set_max_array_bytes` / :func:`array_limit` says otherwise. It is far below a training
machine's memory and far above any array of the zoo's models at the usual batch sizes (the
largest, VGG-style activations at batch 256, are about 0.1 GiB).
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager

import numpy as np

__all__ = ["DEFAULT_MAX_ARRAY_BYTES", "ArrayTooLargeError", "array_limit", "check_array",
           "max_array_bytes", "set_max_array_bytes"]

DEFAULT_MAX_ARRAY_BYTES = 4 * 2**30
ENV = "CONVPROP_MAX_ARRAY_BYTES"
_SUFFIX = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_override: int | None = None


class ArrayTooLargeError(ValueError, MemoryError):
    """An op was asked for an array above :func:`max_array_bytes`; nothing was allocated."""


def _parse(text: str) -> int:
    s = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = _SUFFIX.get(s[-1:], 1)
    digits = s[:-1] if s[-1:] in _SUFFIX else s
    if not digits.isdigit() or int(digits) * scale < 1:
        raise ValueError(f"{ENV} must be a positive number of bytes (e.g. 4294967296 or 4G), "
                         f"got {text!r}")
    return int(digits) * scale


def max_array_bytes() -> int:
    """The current limit in bytes: :func:`set_max_array_bytes`, else ``$CONVPROP_MAX_ARRAY_BYTES``,
    else ``DEFAULT_MAX_ARRAY_BYTES``. A malformed environment value is a ValueError naming it."""
    if _override is not None:
        return _override
    env = os.environ.get(ENV)
    return DEFAULT_MAX_ARRAY_BYTES if env is None or not env.strip() else _parse(env)


def set_max_array_bytes(n: int | None) -> int | None:
    """Set the per-array limit for this process (None: back to the environment or default);
    returns the previous override."""
    global _override
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"set_max_array_bytes: n must be a positive int or None, got {n!r}")
    prev, _override = _override, n
    return prev


@contextmanager
def array_limit(n: int | None):
    """``with array_limit(2**20): ...`` runs the block under another limit."""
    prev = set_max_array_bytes(n)
    try:
        yield
    finally:
        set_max_array_bytes(prev)


def _human(n: int) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def check_array(op: str, what: str, shape, dtype, *, because: str = "") -> None:
    """Raise :class:`ArrayTooLargeError` when an array of ``shape`` and ``dtype`` would
    exceed the limit. Sizes are Python ints (no int64 wrap-around); ``because`` names the
    arguments that made the shape (e.g. ``"padding=(100000, 100000)"``)."""
    n = math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize
    limit = max_array_bytes()
    if n > limit:
        why = f" (from {because})" if because else ""
        raise ArrayTooLargeError(
            f"{op}: {what} of shape {tuple(int(s) for s in shape)} would need {_human(n)}"
            f"{why}, above the per-array limit of {_human(limit)} (convprop.limits; raise it "
            f"with {ENV} or convprop.limits.set_max_array_bytes)")
