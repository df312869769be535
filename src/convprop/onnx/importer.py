"""``load(path)``: an ONNX file as a convprop module.

Steps: parse the protobuf (nothing is executed: no custom operator libraries; external
data is read only from files beside a model loaded from its path, :mod:`.external`);
check the structure (every node input produced somewhere or a graph input/initializer,
no cycle, opset >= 9, the default domain only) and then ``onnx.checker``;
infer shapes; walk the nodes in topological order, folding those whose inputs are all
constants (:data:`~.evaluate.EVAL`) and turning the rest into modules
(:data:`~.import_ops.IMPORTERS`; integer shape arithmetic into run-time ``IntOp``\\ s). A
graph where each node feeds only the next becomes an ``ImportedSequential``, any other a
:class:`~.graph.GraphModule`. Initializers become trainable ``Parameter``\\ s, one per node
that uses them: ONNX cannot tell weights a network shares from equal ones an exporter
merged (PyTorch's writes one initializer for equal constants), so none are tied.
"""

from __future__ import annotations

import os
import heapq
from collections import Counter
from typing import NamedTuple

import numpy as np

from ._lib import OnnxImportError, Unsupported, require_onnx
from .evaluate import EVAL, MAX_ELEMENTS, attr_values
from .external import load_external_data
from .graph import GraphModule, GraphNode, ImportedSequential, InputSpec, attribute_name
from .import_ops import IMPORTERS, int_op

__all__ = ["MIN_IMPORT_OPSET", "from_onnx", "load"]

MIN_IMPORT_OPSET = 9
_NO_GRAD = {"Shape", "Size", "ConstantOfShape", "Range", "Equal", "Mod"}


class Node(NamedTuple):
    name: str
    op: str
    inputs: list
    outputs: list
    attrs: dict


def _label(node: Node) -> str:
    return f"node {node.name!r} ({node.op})"


class _Ctx:
    def __init__(self, onnx, opset, consts, inits, shapes):
        self.onnx, self.opset = onnx, opset
        self.consts, self.inits, self.shapes = consts, inits, shapes

    def const(self, name):
        return self.consts.get(name) if name else None

    def is_init(self, name) -> bool:
        return name in self.inits

    def rank(self, name, node) -> int:
        if name in self.shapes and self.shapes[name][0] is not None:
            return len(self.shapes[name][0])
        raise Unsupported(f"the rank of input {name!r} is unknown (the file has no shape "
                          "for it)")


def _read(onnx, source):
    if isinstance(source, onnx.ModelProto):
        return source, "<ModelProto>"
    if isinstance(source, (bytes, bytearray)):
        data, where = bytes(source), "<bytes>"
    else:
        where = os.fspath(source)
        with open(where, "rb") as f:
            data = f.read()
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as e:  # google.protobuf.message.DecodeError and friends
        raise OnnxImportError(f"load: {where} is not an ONNX model (truncated or corrupt: "
                           f"{type(e).__name__}: {e})") from None
    if not proto.HasField("graph") or not proto.graph.node:
        raise OnnxImportError(f"load: {where} is not an ONNX model (no graph with nodes; an "
                           f"empty, truncated or foreign file)")
    if not isinstance(source, (bytes, bytearray)):  # a path: its folder holds the data files
        load_external_data(onnx, proto, os.path.dirname(os.path.abspath(where)), where)
    return proto, where


def _structure(proto, where) -> tuple[list[Node], int]:
    """Nodes in topological order; errors for foreign domains, old opsets, dangling inputs
    and cycles, each naming the node."""
    import onnx
    opset = None
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx"):
            opset = imp.version
    if opset is None or opset < MIN_IMPORT_OPSET:
        raise OnnxImportError(f"load: {where} uses opset {opset}; convprop imports opset "
                           f"{MIN_IMPORT_OPSET} and newer (convert it with "
                           "onnx.version_converter)")
    g = proto.graph
    nodes = []
    for i, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{i}"
        try:  # a tensor attribute whose data does not fill its declared shape fails here
            attrs = attr_values(onnx, n)
        except Exception as e:
            raise OnnxImportError(f"load: node {name!r} ({n.op_type}) has an attribute that "
                                  f"cannot be read: {type(e).__name__}: {e}") from None
        node = Node(name, n.op_type, list(n.input), list(n.output), attrs)
        if n.domain not in ("", "ai.onnx"):
            raise OnnxImportError(f"load: {_label(node)} is in domain {n.domain!r}; convprop "
                               "imports the standard operators only")
        nodes.append(node)
    external = [t.name for t in g.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    external += [f"{n.name} (Constant)" for n in g.node for a in n.attribute
                 if a.HasField("t") and a.t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise OnnxImportError(f"load: {where} keeps tensors {external[:5]} in external files; "
                              "give convprop the model's path (it then reads the data files "
                              "beside it), or save the model with its weights inside")
    known = {i.name for i in g.input} | {t.name for t in g.initializer}
    producer = {}
    for k, node in enumerate(nodes):
        for o in node.outputs:
            if o:
                if o in producer or o in known:
                    raise OnnxImportError(f"load: {_label(node)} writes tensor {o!r}, which "
                                       "another node or the graph already defines")
                producer[o] = k
    for node in nodes:
        for name in node.inputs:
            if name and name not in known and name not in producer:
                raise OnnxImportError(f"load: {_label(node)} reads tensor {name!r}, which no "
                                   "node, graph input or initializer provides (a dangling "
                                   "input)")
    for o in g.output:
        if o.name not in known and o.name not in producer:
            raise OnnxImportError(f"load: graph output {o.name!r} is produced by no node")
    deps = [{producer[n] for n in node.inputs if n in producer} for node in nodes]
    users = [[] for _ in nodes]
    for k, d in enumerate(deps):
        for j in d:
            users[j].append(k)
    indeg = [len(d) for d in deps]
    queue = [k for k, d in enumerate(indeg) if d == 0]  # a heap: the file's order if it is
    order = []                                            # already topological
    while queue:
        k = heapq.heappop(queue)
        order.append(k)
        for u in users[k]:
            indeg[u] -= 1
            if indeg[u] == 0:
                heapq.heappush(queue, u)
    if len(order) != len(nodes):
        stuck = [_label(nodes[k]) for k in range(len(nodes)) if indeg[k] > 0]
        raise OnnxImportError(f"load: the graph has a cycle through {', '.join(stuck[:6])}")
    return [nodes[k] for k in order], opset


def _shapes(onnx, proto) -> dict:
    """tensor name -> (shape tuple with None for symbolic axes or None, elem type)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:
        inferred = proto
    g = inferred.graph
    out = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        t = vi.type.tensor_type
        shape = None
        if t.HasField("shape"):
            shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
        out[vi.name] = (shape, t.elem_type)
    return out


def _complete_outputs(onnx, proto):
    """A copy for the checker in which graph outputs declared without a shape (ONNX Runtime
    runs such files, the checker refuses them) get the one shape inference finds."""
    outs = proto.graph.output
    if all(o.type.tensor_type.HasField("shape") for o in outs):
        return proto
    try:
        g = onnx.shape_inference.infer_shapes(proto).graph
        inferred = {v.name: v for v in list(g.value_info) + list(g.output)}
    except Exception:
        return proto
    proto = type(proto).FromString(proto.SerializeToString())
    for o in proto.graph.output:
        if o.type.tensor_type.HasField("shape"):
            continue
        if inferred.get(o.name, o).type.tensor_type.HasField("shape"):
            o.CopyFrom(inferred[o.name])
        else:  # data-dependent (e.g. Reshape to a computed shape): present, of unknown size
            o.type.tensor_type.shape.SetInParent()
    return proto


def from_onnx(proto, *, where: str = "<ModelProto>"):
    """The module for an ``onnx.ModelProto`` (see :func:`load`)."""
    onnx = require_onnx("load")
    proto, where = _read(onnx, proto) if not isinstance(proto, onnx.ModelProto) else (
        proto, where)
    nodes, opset = _structure(proto, where)
    try:
        onnx.checker.check_model(_complete_outputs(onnx, proto))
    except Exception as e:
        raise OnnxImportError(f"load: {where} fails onnx.checker: {e}") from None
    g = proto.graph
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    inits = set(consts)
    shapes = _shapes(onnx, proto)
    ctx = _Ctx(onnx, opset, consts, inits, shapes)
    float_kinds = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE}
    built = []  # (Node, module, runtime inputs)
    for node in nodes:
        ins = [n for n in node.inputs if n]
        try:
            if node.op in EVAL and all(n in consts for n in ins):
                vals = [consts.get(n) if n else None for n in node.inputs]
                for name, v in zip(node.outputs, EVAL[node.op](vals, node.attrs, opset)):
                    consts[name] = np.asarray(v)
                continue
            _check_sizes(node, shapes)
            out_type = shapes.get(node.outputs[0], (None, 0))[1]
            int_out = out_type and out_type not in float_kinds
            if node.op in EVAL and (node.op in _NO_GRAD or int_out or node.op not in IMPORTERS):
                module, runtime = int_op(ctx, node)
            elif node.op in IMPORTERS:
                module, runtime = IMPORTERS[node.op](ctx, node)
            else:
                raise Unsupported(f"operator {node.op!r} is outside convprop's set "
                                  f"({', '.join(sorted(IMPORTERS))})")
        except (Unsupported, KeyError, ValueError, TypeError) as e:
            why = f"missing attribute {e}" if isinstance(e, KeyError) else str(e)
            raise OnnxImportError(f"load: {_label(node)}: {why}") from None
        built.append((node, module, runtime))
    return _assemble(g, built, consts, shapes, where)


def _check_sizes(node, shapes) -> None:
    """Refuse a node whose inferred output holds over MAX_ELEMENTS per example (e.g. a Pad
    of 2^31): a file of a few bytes must not make convprop allocate gigabytes."""
    for o in node.outputs:
        shape = shapes.get(o, (None, 0))[0]
        if shape and int(np.prod([d for d in shape[1:] if d], dtype=object)) > MAX_ELEMENTS:
            raise Unsupported(f"its output {o!r} has shape {shape} (None: dynamic), over "
                              f"{MAX_ELEMENTS} elements per example")


def _specs(g, consts, shapes):
    specs = []
    for i in g.input:
        if i.name in consts:
            continue
        shape = shapes.get(i.name, (None, 0))[0]
        specs.append(InputSpec(i.name, tuple(shape) if shape is not None else None))
    return specs


def _assemble(g, built, consts, shapes, where):
    specs = _specs(g, consts, shapes)
    outputs = [o.name for o in g.output]
    for o in outputs:
        if o in consts:
            raise OnnxImportError(f"load: graph output {o!r} is a constant; convprop imports "
                               "graphs whose outputs depend on the input")
    specs = [s if s.shape is not None else InputSpec(s.name, None) for s in specs]
    uses = Counter(n for _, _, rt in built for n in rt) + Counter(outputs)
    chain = len(specs) == 1 and len(outputs) == 1 and specs[0].shape is not None and built
    prev = specs[0].name if specs else None
    for node, _, rt in built if chain else ():
        live = [o for o in node.outputs if o and uses[o]]
        if rt != [prev] or len(live) != 1 or uses[live[0]] != 1 or live[0] != node.outputs[0]:
            chain = False
            break
        prev = live[0]
    if chain and prev == outputs[0]:
        return ImportedSequential(*[m for _, m, _ in built], input_spec=_spec(specs[0]),
                                  onnx_names=[n.name for n, _, _ in built])
    taken = set()
    nodes = [GraphNode(attribute_name(n.name, taken), n.name, n.op, tuple(rt),
                       tuple(n.outputs)) for n, _, rt in built]
    return GraphModule(nodes, [_spec(s) for s in specs], outputs, [m for _, m, _ in built])


def _spec(s: InputSpec) -> InputSpec:
    if s.shape is None:
        raise OnnxImportError(f"load: graph input {s.name!r} has no shape in the file")
    return InputSpec(s.name, tuple(None if (i == 0 or d is None) else int(d)
                                   for i, d in enumerate(s.shape)))


def load(path, *, dtype=None):
    """Read the ONNX file ``path`` (or bytes) as a convprop module.

    Returns an ``ImportedSequential`` (a :class:`~convprop.layers.Sequential`) where the
    graph is a chain, else a :class:`~.graph.GraphModule`; initializers are trainable
    ``Parameter``\\ s (float32 unless ``dtype`` casts them). Axis 0 of every input is the
    batch (any size); other axes must match the file's shapes at run time.

    Raises OnnxImportError (a ValueError) for a file that is not ONNX (truncated, corrupt,
    foreign), a graph with a cycle or a dangling input, an opset below 9, and any operator
    or attribute outside convprop's set, naming the node and its operator.
    """
    onnx = require_onnx("load")
    proto, where = _read(onnx, path)
    model = from_onnx(proto, where=where)
    if dtype is not None:
        model.astype(dtype)
    return model
