"""Networks that come from a file, not from the zoo's code: ``build("onnx", path=...)``.

``convprop train --init model.onnx`` trains the network an ONNX file holds; its checkpoint
records ``{"name": "onnx", "path": ..., "sha256": ...}`` (the digest covers the external
data files beside the model too), so ``build(**config)`` (what
``convprop evaluate``, ``predict``, ``explain`` and ``--resume`` call) imports the same file
again and refuses it when its bytes changed. The checkpoint's weights are then restored over
the file's.

A classifier file whose output is a Softmax over the classes (probabilities) is trained on
the Softmax's input: convprop's classification criterion (cross-entropy) takes logits and
applies its own softmax, and cross-entropy on probabilities trains far worse (LeNet-5 on
3,000 MNIST images, 2 epochs: 58.5% against 92.2% from the same file without the Softmax)
and makes ``predict`` report the softmax of probabilities. The network built here thus
outputs the logits; ``softmax(output)`` is the file's output, so predictions and
probabilities are the file's, and ``convprop export`` of such a checkpoint writes logits.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from ..layers.reshape import Identity

__all__ = ["IMPORTED", "onnx_network"]


def _sha256(path: str) -> str:
    """The file's SHA-256; for a model whose tensors live in data files beside it (PyTorch's
    default exporter), of the file followed by each data file's name and bytes."""
    h = hashlib.sha256()
    for k, name in enumerate([path] + _sidecars(path)):
        if k:
            h.update(os.path.basename(name).encode())
        with open(name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _sidecars(path: str) -> list:
    from ..onnx._lib import require_onnx
    from ..onnx.external import external_tensors, sidecar_files
    onnx = require_onnx("onnx")
    proto = onnx.ModelProto()
    try:
        with open(path, "rb") as f:
            proto.ParseFromString(f.read())
    except Exception:
        return []  # not ONNX: load() says so
    if not external_tensors(onnx, proto):
        return []
    return sidecar_files(onnx, proto, os.path.dirname(os.path.abspath(path)), path)


def onnx_network(*, path: str, sha256: str | None = None, in_channels: int | None = None,
                 num_classes: int | None = None, input_size=None,
                 rng: np.random.Generator | None = None, dtype=np.float32):
    """The network of the ONNX file ``path`` (:func:`convprop.onnx.load`), parameters in
    ``dtype``, weights from the file (``rng`` is unused).

    A last Softmax over the classes is left out (see the module docstring): the network
    outputs logits, ``net.softmax_removed`` names the ONNX node (None when there was none).

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
    net = _without_final_softmax(load(path, dtype=dtype))
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


def _without_final_softmax(net):
    """``net`` without a last Softmax over axis 1 / -1 before its only output (Identity
    nodes after it, as exporters write them, are looked through); the removed node's ONNX
    name is kept in ``net.softmax_removed`` (None when there was none)."""
    from ..onnx import GraphModule, ImportedSequential
    removed = None
    if isinstance(net, ImportedSequential):
        mods, names = list(net), list(net.onnx_names) or [None] * len(net)
        i = len(mods) - 1
        while i > 0 and isinstance(mods[i], Identity):
            i -= 1
        if i > 0 and _class_softmax(mods[i]):
            removed = names[i] or "Softmax"
            net = ImportedSequential(*mods[:i], *mods[i + 1:], input_spec=net.input_spec,
                                     onnx_names=names[:i] + names[i + 1:])
    elif isinstance(net, GraphModule) and len(net.output_names) == 1:
        node, walked = _producer(net, net.output_names[0]), False
        while node is not None and isinstance(getattr(net, node.name), Identity) \
                and _only_use(net, node.inputs[0]):
            node, walked = _producer(net, node.inputs[0]), True
        # the probabilities feed nothing else (a node reading them would get logits)
        if node is not None and (walked or not any(node.outputs[0] in n.inputs
                                                   for n in net.nodes)) \
                and len(node.inputs) == 1 and _class_softmax(
                getattr(net, node.name)) and node.inputs[0] not in {
                s.name for s in net.input_specs}:
            old, new = node.outputs[0], node.inputs[0]
            keep = [n._replace(inputs=tuple(new if t == old else t for t in n.inputs))
                    for n in net.nodes if n is not node]
            removed = node.onnx_name
            net = GraphModule(keep, net.input_specs,
                              [new if t == old else t for t in net.output_names],
                              [getattr(net, n.name) for n in keep])
    object.__setattr__(net, "softmax_removed", removed)
    return net


def _producer(net, tensor):
    return next((n for n in net.nodes if tensor in n.outputs), None)


def _only_use(net, tensor) -> bool:
    """``tensor`` feeds exactly one node and is not a graph output."""
    return sum(tensor in n.inputs for n in net.nodes) == 1 and tensor not in net.output_names


def _class_softmax(m) -> bool:
    from ..layers.onnx_nodes import Softmax
    return isinstance(m, Softmax) and m.axis in (1, -1)


#: Builders of networks read from files; ``models.build`` and ``check_config`` know them
#: beside the zoo's MODELS (which lists only the architectures written in code).
IMPORTED = {"onnx": onnx_network}
