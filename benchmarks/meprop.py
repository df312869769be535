"""meProp backward rows (issue 12): the time of a sparsified backward against the full one,
as ratios measured in the same run::

    OPENBLAS_NUM_THREADS=1 python -m benchmarks.meprop [--reps 40] [--markdown PATH]

times, per shape, the full backward and every meProp variant in this one process, in
alternating blocks (:func:`benchmarks.harness.time_calls`), and prints each as a multiple of
the full backward's time. :func:`meprop_workloads` gives the same rows as suite
:class:`~benchmarks.workloads.Workload` objects (their names start with "meprop"), for
``all_workloads`` to include.

Each row times the *backward only* (the forward runs once when the row is built; its cache
is reused, which the kernels allow: they never write it). The full-backward row of each
shape is compared with PyTorch's backward of the same op (``torch.autograd.grad`` on a
retained graph); the meProp rows, which PyTorch does not have, are reported as a multiple of
that row's convprop time. Shapes: the paper's MNIST MLP hidden layer (batch 100, 500 -> 500;
Sun et al. 2017 keep k = 80) and a mid-size convolution (top-k over output channels, Wei et
al. 2017's "5%" is k = 3 of 64).
"""

from __future__ import annotations

import numpy as np

from . import models
from .workloads import Workload, _arrays


def _torch_backward(op, x, params, dy):
    """PyTorch's backward alone: the graph is built once and kept (``retain_graph``)."""
    torch = models.require_torch()
    leaves = [torch.from_numpy(a).requires_grad_(True) for a in (x, *params)]
    y = op(*leaves)
    tdy = torch.from_numpy(dy)

    def run():
        return torch.autograd.grad(y, leaves, tdy, retain_graph=True)
    return run


def _unavailable():
    from .harness import Unavailable
    raise Unavailable("PyTorch has no meProp backward")


def _linear_rows(n, d_in, d_out, ks) -> list[Workload]:
    x, w, b, dy = _arrays(11, (n, d_in), (d_out, d_in), (d_out,), (n, d_out))
    w *= np.float32(1.0 / np.sqrt(d_in))
    full = f"meprop linear {n}x{d_in}->{d_out} full backward"

    def build(k, unified):
        def cp():
            from convprop.functional.linear import linear_backward, linear_forward
            from convprop.functional.meprop import linear_meprop_backward
            _, cache = linear_forward(x, w, b)
            if k is None:
                return lambda: linear_backward(dy, cache)
            return lambda: linear_meprop_backward(dy, cache, k=k, unified=unified)
        return cp

    def tc():
        tf = models.require_torch().nn.functional
        return _torch_backward(tf.linear, x, (w, b), dy)

    rows = [Workload(full, build(None, False), tc, target=1.3)]
    for k in ks:
        for unified in (False, True):
            name = (f"meprop linear {n}x{d_in}->{d_out} k={k}"
                    f"{' unified' if unified else ' per-example'}")
            rows.append(Workload(name, build(k, unified), _unavailable, compare=False,
                                 relative_to=full))
    return rows


def _conv_rows(n, c_in, hw, c_out, ks) -> list[Workload]:
    x, w, b, dy = _arrays(12, (n, c_in, hw, hw), (c_out, c_in, 3, 3), (c_out,),
                          (n, c_out, hw, hw))
    w *= np.float32(1.0 / np.sqrt(c_in * 9))
    full = f"meprop conv2d {n}x{c_in}x{hw}x{hw}->{c_out} k3 p1 full backward"

    def build(k, unified):
        def cp():
            from convprop.functional.conv import conv2d_backward, conv2d_forward
            from convprop.functional.meprop import conv2d_meprop_backward
            _, cache = conv2d_forward(x, w, b, padding=1)
            if k is None:
                return lambda: conv2d_backward(dy, cache)
            return lambda: conv2d_meprop_backward(dy, cache, k=k, unified=unified)
        return cp

    def tc():
        tf = models.require_torch().nn.functional
        return _torch_backward(lambda a, ww, bb: tf.conv2d(a, ww, bb, 1, 1), x, (w, b), dy)

    rows = [Workload(full, build(None, False), tc, target=1.3)]
    for k in ks:
        for unified in (False, True):
            name = (f"meprop conv2d {n}x{c_in}x{hw}x{hw}->{c_out} k3 p1 channels k={k}"
                    f"{' unified' if unified else ' per-example'}")
            rows.append(Workload(name, build(k, unified), _unavailable, compare=False,
                                 relative_to=full))
    return rows


def meprop_workloads() -> list[Workload]:
    """The full backward and meProp at several k, per example and unified."""
    return _linear_rows(100, 500, 500, (10, 40, 80, 160)) + _conv_rows(64, 32, 16, 64, (3, 16))


def main(argv=None) -> int:
    """Time every meProp row against its shape's full backward, in one process."""
    import argparse

    from .harness import time_calls
    ap = argparse.ArgumentParser(description="meProp backward time against k")
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--markdown", default=None, help="also write the table here")
    a = ap.parse_args(argv)
    rows = meprop_workloads()
    fulls = [w for w in rows if w.relative_to is None]
    lines = ["| backward | median (ms) | p25-p75 (ms) | time / full backward | speed-up |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for full in fulls:
        group = [full] + [w for w in rows if w.relative_to == full.name]
        t = time_calls({w.name: w.convprop() for w in group}, reps=a.reps, warmup=3,
                       rounds=a.rounds)
        base = t[full.name].median_ms
        for w in group:
            r = t[w.name]
            m = r.median_ms
            lines.append(f"| {w.name} | {m:.2f} | {r.p25_ms:.2f}-{r.p75_ms:.2f} | "
                         f"{m / base:.2f} | {base / m:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
