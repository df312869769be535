"""Shape and index modules for imported ONNX graphs: ``Reshape`` (a static or run-time
target shape, ONNX's 0 and -1), ``Reshaping`` (Flatten/Squeeze/Unsqueeze views),
``Transpose``, ``Slice``, ``DynamicPad`` (pads computed at run time), the whole-tensor index
convention of ONNX's MaxPool / MaxUnpool (``IndexedMaxPool``, ``IndexedMaxUnpool``) and
``RoiAlignNode`` (ONNX RoiAlign's three inputs). Backward of a view is the reverse view; of
a slice or pad, the adjoint scatter or slice.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .module import Module

__all__ = ["DynamicPad", "IndexedMaxPool", "IndexedMaxUnpool", "Reshape", "Reshaping",
           "RoiAlignNode", "Slice", "Transpose", "onnx_shape", "slice_index"]


def slice_index(shape, starts, ends, axes=None, steps=None) -> tuple:
    """ONNX Slice as a NumPy index: a negative start/end counts from the end, then starts
    clamp to [0, n] and ends to [0, n] for a positive step, to [0, n - 1] and [-1, n - 1]
    for a negative one (end -1: through index 0). NumPy alone differs for a negative step
    (its start -n - 2 gives an empty slice where ONNX starts at 0)."""
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    idx = [slice(None)] * len(shape)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a, s, e, st = int(a) % len(shape), int(s), int(e), int(st)
        n = int(shape[a])
        s, e = (s + n if s < 0 else s), (e + n if e < 0 else e)
        if st > 0:
            s, e = min(max(s, 0), n), min(max(e, 0), n)
        else:
            s, e = min(max(s, 0), n - 1), min(max(e, -1), n - 1)
        idx[a] = slice(s, None if e < 0 else e, st)
    return tuple(idx)


def onnx_shape(x_shape, shape, allowzero: bool = False) -> tuple:
    """ONNX Reshape's target: 0 copies the input's dimension (unless ``allowzero``), -1 is
    inferred."""
    out = [int(x_shape[i]) if (s == 0 and not allowzero) else int(s)
           for i, s in enumerate(shape)]
    if out.count(-1) > 1:
        raise ValueError(f"Reshape: at most one -1 in the shape, got {list(shape)}")
    return tuple(out)


class Reshape(Module):
    """ONNX Reshape (and Flatten, Squeeze, Unsqueeze): to ``shape`` (static) or to the
    shape given as the second input (x, shape); 0 copies a dimension, -1 is inferred."""

    def __init__(self, shape=None, allowzero: bool = False):
        super().__init__()
        self.shape = None if shape is None else tuple(int(s) for s in shape)
        self.allowzero = bool(allowzero)

    def forward(self, x, *, training: bool = False):
        if self.shape is None:
            x, shape = x
        else:
            shape = self.shape
        target = onnx_shape(np.shape(x), np.asarray(shape).reshape(-1), self.allowzero)
        try:
            y = np.reshape(x, target)
        except ValueError:
            raise ValueError(f"Reshape: cannot reshape an input of shape {np.shape(x)} to "
                             f"{tuple(int(s) for s in np.asarray(shape).reshape(-1))}") \
                from None
        return y, (np.shape(x), self.shape is None)

    def backward(self, dy, cache, *, need_dx: bool = True):
        shape, two = cache
        dx = dy.reshape(shape)
        return (dx, None) if two else dx

    def extra_repr(self) -> str:
        return "shape from input" if self.shape is None else f"shape={self.shape}"


class Transpose(Module):
    """Axes permuted by ``perm`` (None: reversed)."""

    def __init__(self, perm=None):
        super().__init__()
        self.perm = None if perm is None else tuple(int(p) for p in perm)

    def forward(self, x, *, training: bool = False):
        perm = self.perm or tuple(range(np.ndim(x)))[::-1]
        return np.transpose(x, perm), perm

    def backward(self, dy, cache, *, need_dx: bool = True):
        return np.transpose(dy, np.argsort(cache))


class Slice(Module):
    """``x[starts:ends:steps]`` on ``axes`` (ONNX Slice with constant starts/ends; ONNX's
    clamping, :func:`slice_index`)."""

    def __init__(self, starts, ends, axes=None, steps=None):
        super().__init__()
        self.starts = tuple(int(s) for s in starts)
        self.ends = tuple(int(e) for e in ends)
        self.axes = tuple(range(len(self.starts))) if axes is None else tuple(
            int(a) for a in axes)
        self.steps = (1,) * len(self.starts) if steps is None else tuple(int(s) for s in steps)

    def forward(self, x, *, training: bool = False):
        idx = slice_index(np.shape(x), self.starts, self.ends, self.axes, self.steps)
        return np.asarray(x)[idx], (np.shape(x), idx, np.asarray(x).dtype)

    def backward(self, dy, cache, *, need_dx: bool = True):
        shape, idx, dt = cache
        dx = np.zeros(shape, dtype=dy.dtype)
        dx[idx] = dy
        return dx


def _plane_offsets(shape, plane: int) -> np.ndarray:
    n, c = shape[:2]
    return (np.arange(n * c, dtype=np.int64) * plane).reshape((n, c) + (1,) * (len(shape) - 2))


class IndexedMaxPool(Module):
    """A convprop max pooling (``return_indices=True``) with ONNX's Indices: flat into the
    whole (N, C, *spatial) tensor, row-major (``storage_order=0``) or column-major within
    each plane (1)."""

    def __init__(self, pool: Module, storage_order: int = 0):
        super().__init__()
        self.pool, self.storage_order = pool, int(storage_order)

    def forward(self, x, *, training: bool = False):
        (y, idx), cache = self.pool.forward(x, training=training)
        size = np.shape(x)[2:]
        if self.storage_order:
            idx = np.ravel_multi_index(np.unravel_index(idx, size), size, order="F")
        return (y, idx + _plane_offsets(y.shape, int(np.prod(size)))), cache

    def backward(self, dy, cache, *, need_dx: bool = True):
        return self.pool.backward(dy, cache)


class UnpoolCache(NamedTuple):
    inner: object
    n_inputs: int


class IndexedMaxUnpool(Module):
    """A convprop max unpooling fed ONNX's (X, I[, output_shape]): I flat into the whole
    output tensor."""

    def __init__(self, unpool: Module):
        super().__init__()
        self.unpool = unpool

    def forward(self, x, *, training: bool = False):
        values, idx, *rest = x
        size = tuple(int(s) for s in np.asarray(rest[0])[2:]) if rest else None
        if size is None:
            size = tuple((n - 1) * s + k - 2 * p for n, s, k, p in zip(
                values.shape[2:], self.unpool.stride, self.unpool.kernel_size,
                self.unpool.padding))
        plane = np.asarray(idx, np.int64) - _plane_offsets(values.shape, int(np.prod(size)))
        y, cache = self.unpool.forward(values, indices=plane, output_size=size)
        return y, UnpoolCache(cache, len(x))

    def backward(self, dy, cache, *, need_dx: bool = True):
        dx = self.unpool.backward(dy, cache.inner)
        return (dx,) + (None,) * (cache.n_inputs - 1)


class Reshaping(Module):
    """A view change ``fn(x)`` that keeps the elements in order (Flatten with an axis,
    Squeeze, Unsqueeze, a float-to-float Cast): backward reshapes dy to x's shape (and
    dtype). ``name`` is the ONNX operator."""

    def __init__(self, name: str, fn):
        super().__init__()
        self.name, self.fn = name, fn

    def forward(self, x, *, training: bool = False):
        x = np.asarray(x)
        return self.fn(x), (x.shape, x.dtype)

    def backward(self, dy, cache, *, need_dx: bool = True):
        shape, dt = cache
        return np.asarray(dy).reshape(shape).astype(dt, copy=False)

    def extra_repr(self) -> str:
        return self.name


class DynamicPad(Module):
    """ONNX Pad (constant mode) whose pads come at run time: input (x, pads[, value]),
    pads ``(begin_0, ..., begin_r, end_0, ..., end_r)`` over all r axes, >= 0."""

    def forward(self, x, *, training: bool = False):
        arr, pads, *rest = x
        pads = [int(p) for p in np.asarray(pads).reshape(-1)]
        r = len(pads) // 2
        if r != np.ndim(arr) or min(pads, default=0) < 0:
            raise ValueError(f"Pad: pads must be 2 x {np.ndim(arr)} values >= 0 for an input "
                             f"of shape {np.shape(arr)}, got {pads}")
        value = float(np.asarray(rest[0]).reshape(-1)[0]) if rest and rest[0] is not None \
            else 0.0
        y = np.pad(arr, list(zip(pads[:r], pads[r:])), constant_values=value)
        inner = tuple(slice(b, b + n) for b, n in zip(pads[:r], np.shape(arr)))
        return y, (inner, len(x))

    def backward(self, dy, cache, *, need_dx: bool = True):
        inner, n = cache
        return (dy[inner],) + (None,) * (n - 1)


class RoiAlignNode(Module):
    """ONNX RoiAlign's inputs (X, rois (K, 4), batch_indices (K,)) fed to a convprop
    :class:`~convprop.layers.RoIAlign` (boxes (K, 5) rows (batch_index, x1, y1, x2, y2))."""

    def __init__(self, align: Module):
        super().__init__()
        self.align = align

    def forward(self, x, *, training: bool = False):
        feats, rois, idx = x
        boxes = np.concatenate([np.asarray(idx, feats.dtype).reshape(-1, 1),
                                np.asarray(rois, feats.dtype)], axis=1)
        return self.align.forward((feats, boxes), training=training)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return self.align.backward(dy, cache), None, None
