"""``convprop export``: a trained checkpoint as an ONNX file.

    convprop export CHECKPOINT OUT.onnx [--opset 17] [--raw-input] [--no-check]

Writes the checkpoint's model in evaluation mode, float32, with a dynamic batch axis, and
checks it with ``onnx.checker``. ``--raw-input`` puts the checkpoint's preprocessing into the
graph (``(x - 255 mean) / (255 std)`` per channel), so the file takes raw 0..255 pixels as
``convprop predict`` does; without it the file takes standardised inputs, as the model does
in convprop. Unless ``--no-check``, and when onnxruntime is installed, the file is run on a
random batch and compared with convprop; the largest difference relative to the output
scale is printed (and an error raised above 1e-4).
"""

from __future__ import annotations

import numpy as np

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="write a checkpoint's model as an ONNX file (onnx "
                       "package required)")
    p.add_argument("checkpoint")
    p.add_argument("out", metavar="OUT.onnx")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 17 (default) or newer")
    p.add_argument("--raw-input", action="store_true", help="include the preprocessing: the "
                   "file takes raw 0..255 pixels")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")


def _raw_input_model(model, pre, nd):
    from ..layers.container import Sequential
    from ..layers.onnx_nodes import Binary
    shape = (1, -1) + (1,) * nd
    mean = (np.asarray(pre["mean"], np.float32) * 255).reshape(shape)
    std = (np.asarray(pre["std"], np.float32) * 255).reshape(shape)
    return Sequential(Binary("sub", mean, trainable=False), Binary("div", std, trainable=False),
                      model)


def run(args) -> int:
    from ..cli import _load_model
    from ..onnx import export
    from ..onnx._lib import require_onnx

    try:  # the CLI reports ValueErrors in one line; a missing package is one too
        require_onnx("convprop export")
    except ImportError as e:
        raise ValueError(str(e)) from None
    if not str(args.out).endswith(".onnx"):
        raise ValueError(f"export: OUT must end in .onnx, got {args.out!r}")
    _, model, pre = _load_model(args.checkpoint)
    spatial = tuple(pre.get("shape") or (pre["size"], pre["size"]))
    shape = (1, int(pre["channels"]), *spatial)
    if args.raw_input:
        model = _raw_input_model(model, pre, len(spatial))
    path = export(model, args.out, shape, opset=args.opset)
    what = "raw 0..255 pixels" if args.raw_input else "standardised inputs"
    print(f"wrote {path}: opset {args.opset}, input 'input' of shape (N, "
          f"{', '.join(map(str, shape[1:]))}) ({what}), output 'output'")
    if args.no_check:
        return 0
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime not installed: the file was checked by onnx.checker only")
        return 0
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (4, *shape[1:])) if args.raw_input else rng.normal(
        size=(4, *shape[1:]))
    x = x.astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0]
    want = model.predict(x)
    err = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))
    print(f"onnxruntime agrees with convprop: max |difference| / output scale = {err:.2e}")
    if not err <= 1e-4:
        raise ValueError(f"export: onnxruntime's output differs from convprop's by {err:.2e} "
                         f"of the output scale in {path}")
    return 0
