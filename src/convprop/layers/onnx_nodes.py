"""Small modules for the nodes of imported ONNX graphs that convprop's layers do not cover:
elementwise arithmetic with NumPy broadcasting (``Binary``, ``Sum``), ``ConcatAxis``,
``Softmax``, ``ReduceMean``, shape changes (``Reshape``, ``Transpose``, ``Slice``), the
whole-tensor index convention of ONNX's MaxPool / MaxUnpool (``IndexedMaxPool``,
``IndexedMaxUnpool``), and ``IntOp`` for shape arithmetic on integer tensors (no gradient).

Multi-input modules take a tuple and their backward returns a tuple with one gradient per
input (None for a non-differentiable one, e.g. a shape tensor).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array
from .module import Module, Parameter

__all__ = ["Binary", "ConcatAxis", "DynamicPad", "IndexedMaxPool", "IndexedMaxUnpool", "IntOp",
           "MatMulConst", "ReduceSum", "Reshaping", "RoiAlignNode", "Unary", "Where",
           "ReduceMean", "Reshape", "Slice", "Softmax", "Sum", "Transpose", "unbroadcast"]


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` down to ``shape`` (the adjoint of NumPy broadcasting)."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _is_float(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


class Binary(Module):
    """``y = a op b`` for op in add, sub, mul, div, pow, with broadcasting. With ``constant``
    one operand is fixed (``constant_first``: it is a): a trainable Parameter ``constant``
    when ``trainable`` (an ONNX initializer), else a buffer. Input: (a, b) or the one
    variable operand."""

    OPS = ("add", "sub", "mul", "div", "pow")

    def __init__(self, op: str, constant=None, *, constant_first: bool = False,
                 trainable: bool = True):
        super().__init__()
        if op not in self.OPS:
            raise ValueError(f"Binary: op must be one of {self.OPS}, got {op!r}")
        self.op, self.constant_first = op, bool(constant_first)
        if constant is None:
            self.constant = None
        elif trainable:
            self.constant = Parameter(np.asarray(constant))
        else:
            self.register_buffer("constant", np.array(constant))

    def _operands(self, x):
        if self.constant is None:
            a, b = x
        else:
            c = self.constant.value if isinstance(self.constant, Parameter) else self.constant
            a, b = (c, x) if self.constant_first else (x, c)
        return np.asarray(a), np.asarray(b)

    def forward(self, x, *, training: bool = False):
        a, b = self._operands(x)
        y = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
             "pow": np.power}[self.op](a, b)
        if not _is_float(y):  # integer arithmetic (e.g. shapes): ONNX Div truncates
            y = (np.trunc(a / b).astype(y.dtype) if self.op == "div" else y)
        return y, (a, b, y)

    def backward(self, dy, cache, *, need_dx: bool = True):
        a, b, y = cache
        if self.op == "pow":  # d/db needs log(a): only where a > 0 (0 elsewhere); d/da is
            with np.errstate(divide="ignore", invalid="ignore"):   # 0 where a^(b-1) is not
                t = np.power(a, b - 1)                               # finite (0^-k), as the
            da = dy * b * np.where(np.isfinite(t), t, 0)             # Lp pooling kernels do
            db = dy * y * np.log(np.where(a > 0, a, 1))
        elif self.op in ("add", "sub"):
            da, db = dy, (dy if self.op == "add" else -dy)
        elif self.op == "mul":
            da, db = dy * b, dy * a
        else:
            da, db = dy / b, -dy * a / (b * b)
        da = unbroadcast(da, a.shape) if _is_float(a) else None
        db = unbroadcast(db, b.shape) if _is_float(b) else None
        if self.constant is None:
            return da, db
        dc, dx = (da, db) if self.constant_first else (db, da)
        if isinstance(self.constant, Parameter) and dc is not None:
            self.constant.grad += dc.astype(self.constant.grad.dtype)
        return dx

    def extra_repr(self) -> str:
        return f"{self.op!r}" + ("" if self.constant is None else ", constant")


class Sum(Module):
    """``y = x_0 + x_1 + ... (+ constant)`` (ONNX Sum, with broadcasting); ``constant`` (a
    buffer) is the sum of the node's constant inputs."""

    def __init__(self, constant=None):
        super().__init__()
        if constant is None:
            self.constant = None
        else:
            self.register_buffer("constant", np.asarray(constant))

    def forward(self, x, *, training: bool = False):
        xs = list(x) if isinstance(x, (tuple, list)) else [x]
        y = xs[0]
        for v in xs[1:]:
            y = y + v
        if self.constant is not None:
            y = y + self.constant.astype(y.dtype, copy=False)
        return y, [np.shape(v) for v in xs]

    def backward(self, dy, cache, *, need_dx: bool = True):
        grads = tuple(unbroadcast(dy, s) for s in cache)
        return grads if len(grads) > 1 else grads[0]


class ConcatAxis(Module):
    """Inputs (a tuple) joined along ``axis``; backward splits dy."""

    def __init__(self, axis: int):
        super().__init__()
        self.axis = int(axis)

    def forward(self, x, *, training: bool = False):
        xs = list(x) if isinstance(x, (tuple, list)) else [x]
        y = np.concatenate(xs, axis=self.axis)
        return y, np.cumsum([v.shape[self.axis] for v in xs])[:-1]

    def backward(self, dy, cache, *, need_dx: bool = True):
        parts = tuple(np.split(dy, cache, axis=self.axis))
        return parts if len(parts) > 1 else parts[0]


class Softmax(Module):
    """``y = exp(x - max) / sum exp(x - max)`` along ``axis``; ``coerce_2d`` (ONNX before
    opset 13): over all axes from ``axis`` on, as one flattened axis."""

    def __init__(self, axis: int = -1, coerce_2d: bool = False):
        super().__init__()
        self.axis, self.coerce_2d = int(axis), bool(coerce_2d)

    def forward(self, x, *, training: bool = False):
        x = as_float_array("Softmax", "x", x)
        axis = self.axis % x.ndim if x.ndim else 0
        z = x.reshape(x.shape[:axis] + (-1,)) if self.coerce_2d else x
        ax = -1 if self.coerce_2d else axis
        e = np.exp(z - z.max(axis=ax, keepdims=True))
        y = e / e.sum(axis=ax, keepdims=True)
        return y.reshape(x.shape), (y, ax)

    def backward(self, dy, cache, *, need_dx: bool = True):
        y, ax = cache
        g = dy.reshape(y.shape)
        return (y * (g - (g * y).sum(axis=ax, keepdims=True))).reshape(dy.shape)

    def extra_repr(self) -> str:
        return f"axis={self.axis}" + (", coerce_2d=True" if self.coerce_2d else "")


class ReduceMean(Module):
    """Mean over ``axes`` (None: all), keeping them as size 1 when ``keepdims``."""

    def __init__(self, axes=None, keepdims: bool = True):
        super().__init__()
        self.axes = None if axes is None else tuple(int(a) for a in axes)
        self.keepdims = bool(keepdims)

    def forward(self, x, *, training: bool = False):
        x = as_float_array("ReduceMean", "x", x)
        axes = tuple(range(x.ndim)) if self.axes is None else tuple(a % x.ndim
                                                                   for a in self.axes)
        return x.mean(axis=axes, keepdims=self.keepdims), (x.shape, axes)

    def backward(self, dy, cache, *, need_dx: bool = True):
        shape, axes = cache
        keep = tuple(1 if i in axes else n for i, n in enumerate(shape))
        count = int(np.prod([shape[a] for a in axes]))
        return np.broadcast_to(dy.reshape(keep) / count, shape).copy()


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
    """``x[starts:ends:steps]`` on ``axes`` (ONNX Slice with constant starts/ends)."""

    def __init__(self, starts, ends, axes=None, steps=None):
        super().__init__()
        self.starts = tuple(int(s) for s in starts)
        self.ends = tuple(int(e) for e in ends)
        self.axes = tuple(range(len(self.starts))) if axes is None else tuple(
            int(a) for a in axes)
        self.steps = (1,) * len(self.starts) if steps is None else tuple(int(s) for s in steps)

    def _index(self, ndim):
        idx = [slice(None)] * ndim
        for s, e, a, st in zip(self.starts, self.ends, self.axes, self.steps):
            idx[a % ndim] = slice(s, None if (st < 0 and e < -(2**62)) else e, st)
        return tuple(idx)

    def forward(self, x, *, training: bool = False):
        idx = self._index(np.ndim(x))
        return np.asarray(x)[idx], (np.shape(x), idx, np.asarray(x).dtype)

    def backward(self, dy, cache, *, need_dx: bool = True):
        shape, idx, dt = cache
        dx = np.zeros(shape, dtype=dy.dtype)
        dx[idx] = dy
        return dx


class IntOp(Module):
    """Shape arithmetic on integer (or any non-differentiable) tensors: ``fn(*inputs)``
    evaluated at run time, no gradient. ``name`` is the ONNX operator."""

    def __init__(self, name: str, fn):
        super().__init__()
        self.name, self.fn = name, fn

    def forward(self, x, *, training: bool = False):
        xs = x if isinstance(x, tuple) else (x,)
        return self.fn(*xs), len(xs)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return (None,) * cache if cache > 1 else None

    def extra_repr(self) -> str:
        return self.name


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


class MatMulConst(Module):
    """``y = x @ weight`` for x (..., K) and a trainable weight (K, M) (ONNX MatMul by an
    initializer on inputs of rank other than 2; rank 2 imports as ``Linear``)."""

    def __init__(self, weight):
        super().__init__()
        self.weight = Parameter(np.asarray(weight))

    def forward(self, x, *, training: bool = False):
        x = as_float_array("MatMulConst", "x", x)
        if x.shape[-1:] != self.weight.value.shape[:1]:
            raise ValueError(f"MatMulConst: x's last axis must be {self.weight.value.shape[0]},"
                             f" got shape {x.shape}")
        return x @ self.weight.value, x

    def backward(self, dy, cache, *, need_dx: bool = True):
        x = cache
        k, m = self.weight.value.shape
        self.weight.grad += x.reshape(-1, k).T @ dy.reshape(-1, m)
        return dy @ self.weight.value.T


_UNARY = {"abs": (np.abs, lambda x, y: np.sign(x)), "neg": (np.negative, lambda x, y: -1.0),
          "exp": (np.exp, lambda x, y: y), "log": (np.log, lambda x, y: 1.0 / x),
          "sqrt": (np.sqrt, lambda x, y: np.where(y > 0, 0.5 / np.where(y > 0, y, 1), 0.0))}


class Unary(Module):
    """Elementwise ``y = f(x)`` for f in abs, neg, exp, log, sqrt; ``dx = dy f'(x)`` (the
    derivative of abs at 0 is 0, of sqrt at 0 taken as 0)."""

    def __init__(self, op: str):
        super().__init__()
        if op not in _UNARY:
            raise ValueError(f"Unary: op must be one of {tuple(_UNARY)}, got {op!r}")
        self.op = op

    def forward(self, x, *, training: bool = False):
        x = as_float_array(f"Unary({self.op})", "x", x)
        y = _UNARY[self.op][0](x)
        return y, (x, y)

    def backward(self, dy, cache, *, need_dx: bool = True):
        x, y = cache
        return (dy * _UNARY[self.op][1](x, y)).astype(dy.dtype, copy=False)

    def extra_repr(self) -> str:
        return repr(self.op)


class ReduceSum(ReduceMean):
    """Sum over ``axes`` (None: all), keeping them as size 1 when ``keepdims``."""

    def forward(self, x, *, training: bool = False):
        y, cache = super().forward(x, training=training)
        shape, axes = cache
        return y * np.prod([shape[a] for a in axes], dtype=y.dtype), cache

    def backward(self, dy, cache, *, need_dx: bool = True):
        shape, axes = cache
        return super().backward(dy, cache) * np.prod([shape[a] for a in axes], dtype=dy.dtype)


class Where(Module):
    """``y = where(cond, a, b)`` with broadcasting; input (cond, a, b) with the constant ones
    given as ``constants`` ({1: a} or {2: b}); the gradient goes to the chosen operand."""

    def __init__(self, constants=None):
        super().__init__()
        self.constants = {int(k): np.asarray(v) for k, v in (constants or {}).items()}

    def forward(self, x, *, training: bool = False):
        it = iter(x if isinstance(x, tuple) else (x,))
        args = [self.constants[i] if i in self.constants else next(it) for i in range(3)]
        cond, a, b = (np.asarray(v) for v in args)
        return np.where(cond, a, b), (cond, a.shape, b.shape)

    def backward(self, dy, cache, *, need_dx: bool = True):
        cond, sa, sb = cache
        grads = [None, unbroadcast(np.where(cond, dy, 0), sa),
                 unbroadcast(np.where(cond, 0, dy), sb)]
        out = tuple(g for i, g in enumerate(grads) if i not in self.constants)
        return out if len(out) > 1 else out[0]
