"""NumPy semantics of the ONNX operators that compute on shapes and constants.

:data:`EVAL` maps an operator to ``fn(inputs, attrs, opset) -> list of outputs``. The
importer uses it twice: to fold nodes whose inputs are all constants (initializers,
``Constant``, ``ConstantOfShape`` of a constant shape, ...) and, wrapped in
:class:`~convprop.layers.onnx_nodes.IntOp`, for integer shape arithmetic that depends on
the input at run time (``Shape`` -> ``Gather`` -> ``Concat`` -> ``Reshape``, as PyTorch's
exporter writes). Float arithmetic that carries gradients becomes modules instead.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EVAL", "attr_values", "tensor_dtype"]


def tensor_dtype(onnx, elem_type: int) -> np.dtype:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))


def _short(v: float) -> float:
    """A float32 attribute as the shortest decimal that rounds to it (eps 1e-5 stays 1e-5,
    not 9.999999747378752e-06)."""
    return float(str(np.float32(v)))


def attr_values(onnx, node) -> dict:
    """The node's attributes as Python values (tensors as arrays, float32 floats as their
    shortest decimal)."""
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if a.type == onnx.AttributeProto.FLOAT:
            v = _short(v)
        elif a.type == onnx.AttributeProto.FLOATS:
            v = [_short(x) for x in v]
        elif isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = onnx.numpy_helper.to_array(v)
        elif isinstance(v, (list, tuple)):
            v = [x.decode() if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def _axes(inputs, attrs, opset, since, pos=1):
    """``axes`` from an attribute (before ``since``) or an optional input."""
    if opset < since:
        return attrs.get("axes")
    return None if len(inputs) <= pos or inputs[pos] is None else \
        [int(a) for a in np.asarray(inputs[pos]).reshape(-1)]


def _unsqueeze(inputs, attrs, opset):
    x = np.asarray(inputs[0])
    axes = _axes(inputs, attrs, opset, 13)
    rank = x.ndim + len(axes)
    shape = list(x.shape)
    for a in sorted(a % rank for a in axes):
        shape.insert(a, 1)
    return [x.reshape(shape)]


def _squeeze(inputs, attrs, opset):
    x = np.asarray(inputs[0])
    axes = _axes(inputs, attrs, opset, 13)
    if axes is None:
        return [np.squeeze(x)]
    return [np.squeeze(x, axis=tuple(a % x.ndim for a in axes))]


def _slice(inputs, attrs, opset):
    from ..layers.onnx_shape import slice_index
    x = np.asarray(inputs[0])
    if opset < 10:
        starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
    else:
        starts, ends = (np.asarray(v).reshape(-1) for v in inputs[1:3])
        axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else None
        steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else None
    axes = None if axes is None else np.asarray(axes).reshape(-1)
    steps = None if steps is None else np.asarray(steps).reshape(-1)
    return [x[slice_index(x.shape, starts, ends, axes, steps)]]


def _gather(inputs, attrs, opset):
    return [np.take(np.asarray(inputs[0]), np.asarray(inputs[1]), axis=attrs.get("axis", 0))]


def _shape(inputs, attrs, opset):
    shape = np.array(np.shape(inputs[0]), np.int64)
    return [shape[attrs.get("start", 0):attrs.get("end", None)]]


MAX_ELEMENTS = 1 << 28  # a tensor a graph asks for by shape must stay below this


def _sized(op, shape) -> tuple:
    shape = tuple(int(s) for s in np.asarray(shape).reshape(-1))
    if min(shape, default=0) < 0 or int(np.prod(shape, dtype=object)) > MAX_ELEMENTS:
        raise ValueError(f"{op} asks for a tensor of shape {shape} (negative, or over "
                         f"{MAX_ELEMENTS} elements)")
    return shape


def _constant_of_shape(inputs, attrs, opset):
    v = np.asarray(attrs.get("value", np.zeros(1, np.float32))).reshape(-1)
    return [np.full(_sized("ConstantOfShape", inputs[0]), v[0], dtype=v.dtype)]


def _range(inputs, attrs, opset):
    start, limit, delta = (np.asarray(v) for v in inputs[:3])
    if delta == 0 or (limit - start) / delta > MAX_ELEMENTS:
        raise ValueError(f"Range from {start} to {limit} by {delta} is empty-stepped or over "
                         f"{MAX_ELEMENTS} elements")
    return [np.arange(start, limit, delta, dtype=start.dtype)]


def _expand(inputs, attrs, opset):
    x = np.asarray(inputs[0])
    shape = np.broadcast_shapes(x.shape, _sized("Expand", inputs[1]))
    _sized("Expand", shape)
    return [np.broadcast_to(x, shape).copy()]


def _cast(inputs, attrs, opset):
    import onnx
    return [np.asarray(inputs[0]).astype(tensor_dtype(onnx, attrs["to"]))]


def _reshape(inputs, attrs, opset):
    from ..layers.onnx_shape import onnx_shape
    x = np.asarray(inputs[0])
    shape = attrs["shape"] if opset < 5 else np.asarray(inputs[1]).reshape(-1)
    return [x.reshape(onnx_shape(x.shape, shape, bool(attrs.get("allowzero", 0))))]


def _binary(fn):
    def f(inputs, attrs, opset):
        a, b = np.asarray(inputs[0]), np.asarray(inputs[1])
        y = fn(a, b)
        if fn is np.divide and a.dtype.kind in "iu":
            y = np.trunc(y).astype(np.result_type(a, b))
        return [y]
    return f


def _unary(fn):
    return lambda inputs, attrs, opset: [fn(np.asarray(inputs[0]))]


def _constant(inputs, attrs, opset):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            v = attrs[key]
            dt = np.float32 if "float" in key else np.int64 if "int" in key else None
            return [np.asarray(v, dtype=dt) if dt else np.asarray(v)]
    raise ValueError(f"has none of the supported value attributes (got {sorted(attrs)})")


EVAL = {
    "Identity": lambda i, a, o: [np.asarray(i[0])],
    "Constant": _constant,
    "Shape": _shape,
    "Size": lambda i, a, o: [np.array(np.size(i[0]), np.int64)],
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": lambda i, a, o: [np.concatenate([np.asarray(v) for v in i], axis=a["axis"])],
    "Slice": _slice,
    "Cast": _cast,
    "Reshape": _reshape,
    "Transpose": lambda i, a, o: [np.transpose(np.asarray(i[0]), a.get("perm"))],
    "ConstantOfShape": _constant_of_shape,
    "Range": _range,
    "Add": _binary(np.add), "Sub": _binary(np.subtract), "Mul": _binary(np.multiply),
    "Div": _binary(np.divide), "Mod": _binary(np.mod), "Pow": _binary(np.power),
    "Equal": _binary(np.equal),
    "Where": lambda i, a, o: [np.where(np.asarray(i[0]), np.asarray(i[1]), np.asarray(i[2]))],
    "Expand": _expand,
    "CumSum": lambda i, a, o: [np.cumsum(np.asarray(i[0]), axis=int(np.asarray(i[1])),
                                         dtype=np.asarray(i[0]).dtype)],
    "Neg": _unary(np.negative), "Floor": _unary(np.floor), "Ceil": _unary(np.ceil),
    "Sqrt": _unary(np.sqrt), "Abs": _unary(np.abs),
}
