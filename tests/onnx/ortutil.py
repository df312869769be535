"""Shared helpers of the ONNX tests: run a model proto in onnxruntime, compare to convprop."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx not installed: ONNX tests skipped")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: ONNX tests skipped")


def run_ort(proto, *inputs):
    """Outputs of ``proto`` (ModelProto or bytes) for ``inputs`` in graph-input order."""
    data = proto if isinstance(proto, bytes) else proto.SerializeToString()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in s.get_inputs()]
    return s.run(None, dict(zip(names, inputs)))


def rel_err(got, want) -> float:
    """max |got - want| relative to the output scale max |want| (1 where that is 0)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(float(np.abs(want).max()), 1e-30) if want.size else 1.0
    return float(np.abs(got - want).max()) / scale if want.size else 0.0
