"""Arithmetic modules for the nodes of imported ONNX graphs that convprop's layers do not
cover: elementwise arithmetic with NumPy broadcasting (``Binary``, ``Sum``, ``Unary``,
``Where``), ``ConcatAxis``, ``Softmax``, ``ReduceMean``/``ReduceSum``, ``MatMulConst``, and
``IntOp`` for shape arithmetic on integer tensors (no gradient). Shape and index modules are
in :mod:`.onnx_shape`.

Multi-input modules take a tuple and their backward returns a tuple with one gradient per
input (None for a non-differentiable one, e.g. a shape tensor).
"""

from __future__ import annotations

import numpy as np

from .._checks import as_float_array
from .module import Module, Parameter

__all__ = ["Binary", "ConcatAxis", "IntOp", "MatMulConst", "ReduceMax", "ReduceMean", "ReduceSum",
           "Softmax", "Sum", "Unary", "Where", "unbroadcast"]


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


class ReduceMax(ReduceMean):
    """Maximum over ``axes`` (None: all); the gradient goes to the first maximum in
    row-major order over the reduced axes (convprop's max pooling rule)."""

    def forward(self, x, *, training: bool = False):
        x = as_float_array("ReduceMax", "x", x)
        axes = tuple(range(x.ndim)) if self.axes is None else tuple(sorted(
            a % x.ndim for a in self.axes))
        keep = [i for i in range(x.ndim) if i not in axes]
        moved = np.transpose(x, keep + list(axes))
        flat = moved.reshape(moved.shape[:len(keep)] + (-1,))
        arg = flat.argmax(axis=-1)
        y = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
        shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
        return (y.reshape(shape) if self.keepdims else y), (x.shape, axes, keep, arg)

    def backward(self, dy, cache, *, need_dx: bool = True):
        shape, axes, keep, arg = cache
        k = int(np.prod([shape[a] for a in axes]))
        flat = np.zeros(arg.shape + (k,), dtype=dy.dtype)
        np.put_along_axis(flat, arg[..., None], dy.reshape(arg.shape + (1,)), axis=-1)
        moved = flat.reshape(tuple(shape[i] for i in keep) + tuple(shape[a] for a in axes))
        return np.transpose(moved, np.argsort(keep + list(axes)))
