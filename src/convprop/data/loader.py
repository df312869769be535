"""Mini-batch iteration over in-memory arrays."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["batches"]


def batches(x, y, batch_size: int, *, shuffle: bool, rng: np.random.Generator | None = None,
            drop_last: bool = False):
    """Iterate once over ``(x[i], y[i])`` mini-batches: one epoch per call.

    With ``shuffle`` a fresh permutation is drawn from ``rng`` when iteration starts, so calling
    ``batches`` again with the same generator gives the next epoch's order. Without shuffling the
    batches are views (slices); with it, each batch is one gather (``x[idx]``) and nothing else
    is copied.

    Args:
        x: (N, ...) array; y: (N, ...) array, or None to yield ``x`` batches alone.
        batch_size: at least 1; the last batch is smaller unless ``drop_last``.
        rng: the explicit ``numpy.random.Generator``, required when ``shuffle`` is true.
    Yields:
        ``(xb, yb)`` (or ``xb`` when ``y`` is None).
    """
    if not (isinstance(batch_size, numbers.Integral) and not isinstance(batch_size, bool)):
        raise TypeError(f"batches: batch_size must be an int, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batches: batch_size must be >= 1, got {batch_size}")
    if not hasattr(x, "shape") or len(x.shape) < 1:
        raise TypeError(f"batches: x must be an array with a leading batch axis, "
                        f"got {type(x).__name__}")
    n = x.shape[0]
    if y is not None and (not hasattr(y, "shape") or len(y.shape) < 1 or y.shape[0] != n):
        raise ValueError(f"batches: x and y must have the same length, got x {x.shape} and y "
                         f"{getattr(y, 'shape', type(y).__name__)}")
    if shuffle and not isinstance(rng, np.random.Generator):
        raise TypeError("batches: shuffle=True needs rng=numpy.random.default_rng(seed), got "
                        f"{type(rng).__name__}")
    return _iterate(x, y, int(batch_size), shuffle, rng, drop_last, n)


def _iterate(x, y, batch_size, shuffle, rng, drop_last, n):
    order = rng.permutation(n) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            sel = slice(start, start + batch_size)
        else:
            sel = order[start:start + batch_size]
        yield x[sel] if y is None else (x[sel], y[sel])
