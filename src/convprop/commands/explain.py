"""``convprop explain``: one training step written out layer by layer.

    convprop explain mazur                      Matt Mazur's 2-2-2 example, published digits
    convprop explain cnn4x4                     a 4x4 input, 2x2 filter, max pool, FC example
    convprop explain CHECKPOINT --input IMAGE --target K [--lr LR] [--eval]
    ... --json                                  the same as JSON (long tensors summarised)
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("explain", help="one training step of a worked example or a trained "
                       "model, layer by layer (forward, cache stack, deltas, update)",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("what", metavar="EXAMPLE|CHECKPOINT",
                   help="a worked example (mazur, cnn4x4) or a checkpoint file")
    p.add_argument("--input", metavar="IMAGE",
                   help="for a checkpoint: the example (.npy of raw 0..255 values, or "
                        "PNG/JPEG of the model's size and channels, for 2-D models)")
    p.add_argument("--target", type=int, metavar="K", help="for a checkpoint: the true class")
    p.add_argument("--invert", action="store_true", help="invert the image (255 - x)")
    p.add_argument("--lr", type=float, default=0.01,
                   help="learning rate of the update shown for a checkpoint (default 0.01)")
    p.add_argument("--eval", action="store_true",
                   help="forward in evaluation mode (no dropout, batch norm's running "
                        "statistics)")
    p.add_argument("--json", action="store_true", help="print the trace as JSON")


def _checkpoint_trace(a):
    from ..cli import _load_model
    from ..explain.trace import trace
    from ..layers.loss import criterion_for
    from ._example import read_example

    if a.input is None or a.target is None:
        raise ValueError(f"{a.what} is a checkpoint: give --input IMAGE and --target K")
    ckpt, model, pre = _load_model(a.what)
    x = read_example(a.input, pre, a.invert)[1]
    k = model.predict(x.astype(np.float32)).shape[1]
    if not 0 <= a.target < k:
        raise ValueError(f"target {a.target} is out of range: the model has {k} classes "
                         f"(0..{k - 1})")
    tr = trace(model, x, np.array([a.target]), loss=criterion_for(model), lr=a.lr,
               training=not a.eval)
    classes = ckpt.extra.get("classes")
    name = classes[a.target] if classes and a.target < len(classes) else str(a.target)
    tr.title = (f"{ckpt.model_config.get('name', 'model')} from {a.what} on {a.input}, "
                f"target class {a.target} ({name}): one SGD step")
    return tr


def run(a) -> int:
    from ..explain.worked import EXAMPLES, render_text, worked_example

    if a.what in EXAMPLES:
        if a.input is not None or a.target is not None:
            raise ValueError(f"the worked example {a.what!r} takes no --input or --target")
        tr = worked_example(a.what)
    elif os.path.exists(a.what):
        tr = _checkpoint_trace(a)
    else:
        raise ValueError(f"{a.what!r} is neither a worked example ({', '.join(sorted(EXAMPLES))})"
                         f" nor a checkpoint file")
    print(tr.to_json() if a.json else render_text(tr))
    return 0
