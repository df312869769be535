"""The workloads: each one builds a convprop callable and a PyTorch callable on the same data.

A workload's ``convprop()`` / ``torch()`` return a zero-argument function doing forward +
backward (every input and parameter gradient) in float32; ``torch()`` raises
:class:`~benchmarks.harness.Unavailable` when PyTorch is not installed.
Kernel workloads use a fixed random upstream gradient ``dy``; PyTorch uses autograd with
``x.requires_grad`` and ``torch.autograd.grad`` (so nothing accumulates between calls).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import models

__all__ = ["Workload", "all_workloads"]


@dataclass
class Workload:
    name: str
    convprop: Callable[[], Callable[[], object]]
    torch: Callable[[], Callable[[], object]]
    target: float | None = None
    flops: float | None = None
    mm_target: float | None = None
    warmup: int = 3
    compare: bool = True        # both sides return the same gradients: check they agree
    tunes_malloc: bool = False  # a training step: convprop tunes glibc malloc (as its CLI does)
    notes: list = field(default_factory=list)
    relative_to: str | None = None  # the row whose convprop time this one is reported against


def _arrays(seed: int, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s, dtype=np.float32) for s in shapes]


def _torch_grad_fn(op, x, params, dy):
    """PyTorch forward + backward of ``op(x, *params)`` w.r.t. x and every param."""
    torch = models.require_torch()
    leaves = [torch.from_numpy(a).requires_grad_(True) for a in (x, *params)]
    tdy = torch.from_numpy(dy)

    def run():
        y = op(*leaves)
        return torch.autograd.grad(y, leaves, tdy)

    return run


# -- convolution (1-D, 2-D, 3-D) --------------------------------------------------------------
def _out(sizes, k, s, p):
    return tuple((n + 2 * p - k) // s + 1 for n in sizes)


def conv_workload(n, c_in, h, w, c_out, k, stride, pad) -> Workload:
    return convnd_workload(n, c_in, (h, w), c_out, k, stride, pad, mm_target=True)


def convnd_workload(n, c_in, spatial, c_out, k, stride, pad, *, target=1.3,
                    mm_target=False) -> Workload:
    """conv{d}d forward + backward (dx, dw, db) on (n, c_in, *spatial), a k^d kernel."""
    nd = len(spatial)
    out = _out(spatial, k, stride, pad)
    x, wt, b, dy = _arrays(1, (n, c_in, *spatial), (c_out, c_in, *(k,) * nd), (c_out,),
                           (n, c_out, *out))
    wt *= np.float32(1.0 / np.sqrt(c_in * k ** nd))
    op = f"conv{nd}d"

    def cp():
        import convprop.functional as F
        fwd, bwd = getattr(F, f"{op}_forward"), getattr(F, f"{op}_backward")

        def run():
            _, cache = fwd(x, wt, b, stride=stride, padding=pad, dilation=1, groups=1)
            return bwd(dy, cache)
        return run

    def tc():
        tf = getattr(models.require_torch().nn.functional, op)
        return _torch_grad_fn(lambda a, ww, bb: tf(a, ww, bb, stride, pad), x, (wt, b), dy)

    flops = 3.0 * 2.0 * n * c_out * np.prod(out) * c_in * k ** nd
    dims = "x".join(str(v) for v in (n, c_in, *spatial))
    return Workload(f"{op} {dims}->{c_out} k{k} s{stride} p{pad}", cp, tc, target=target,
                    flops=float(flops), mm_target=0.6 if mm_target and c_in >= 32 else None)


# -- max pooling -------------------------------------------------------------------------------
def pool_workload(shape, k, s, *, target=1.0) -> Workload:
    """max_pool{d}d forward + backward on ``shape`` (N, C, *spatial), a k^d window."""
    nd = len(shape) - 2
    x, dy = _arrays(2, shape, (*shape[:2], *_out(shape[2:], k, s, 0)))
    op = f"max_pool{nd}d"

    def cp():
        import convprop.functional as F
        fwd, bwd = getattr(F, f"{op}_forward"), getattr(F, f"{op}_backward")

        def run():
            _, cache = fwd(x, kernel_size=k, stride=s)
            return bwd(dy, cache)
        return run

    def tc():
        tf = getattr(models.require_torch().nn.functional, op)
        return _torch_grad_fn(lambda a: tf(a, k, s), x, (), dy)

    return Workload(f"{op} {'x'.join(map(str, shape))} k{k} s{s}", cp, tc, target=target)


# -- the pooling zoo (issue 8) -----------------------------------------------------------------
ZOO_SHAPE = (64, 32, 32, 32)


def _no_torch_op(name: str):
    def build():
        from .harness import Unavailable
        raise Unavailable(f"PyTorch has no {name}")
    return build


def zoo_pool_workload(label: str, forward: str, backward: str, k: int | None, *, kwargs=None,
                      params=(), torch_op=None, positive=False) -> Workload:
    """``forward(x, *params, **kwargs)`` + its backward on ZOO_SHAPE (a k x k window, stride 2,
    when ``k`` is given); against ``torch_op(x)`` when PyTorch has the op, else reported as a
    multiple of max pooling's time on the same window."""
    kw = dict(kwargs or {})
    if k is not None:
        kw.update(kernel_size=k, stride=2)
    (x,) = _arrays(4, ZOO_SHAPE)
    if positive:
        x = np.abs(x) + np.float32(0.1)

    def cp():
        import convprop.functional as F
        fwd, bwd = getattr(F, forward), getattr(F, backward)
        extra = dict(kw)
        if "rng" in extra:
            extra["rng"] = np.random.default_rng(0)
        y, _ = fwd(x, *params, **extra)
        dy = np.random.default_rng(5).standard_normal(y.shape, dtype=np.float32)

        def run():
            _, cache = fwd(x, *params, **extra)
            return bwd(dy, cache)
        return run

    def tc():
        if torch_op is None:
            return _no_torch_op(label)()
        import convprop.functional as F
        y, _ = getattr(F, forward)(x, *params, **kw)
        dy = np.random.default_rng(5).standard_normal(y.shape, dtype=np.float32)
        tf = models.require_torch().nn.functional
        return _torch_grad_fn(lambda a: torch_op(tf, a), x, (), dy)

    window = f" k{k} s2" if k is not None else ""
    ref = f"max_pool2d {'x'.join(map(str, ZOO_SHAPE))} k{k or 2} s2"
    return Workload(f"{label} {'x'.join(map(str, ZOO_SHAPE))}{window}", cp, tc,
                    target=1.0 if torch_op is not None else None,
                    compare=torch_op is not None, relative_to=ref)


def zoo_workloads() -> list[Workload]:
    a = np.array([0.3], np.float32)
    wl = []
    for k in (2, 3):
        wl += [
            zoo_pool_workload("avg_pool2d", "avg_pool2d_forward", "avg_pool2d_backward", k,
                              torch_op=lambda tf, t, k=k: tf.avg_pool2d(t, k, 2)),
            zoo_pool_workload("lp_pool2d p=2", "lp_pool2d_forward", "lp_pool2d_backward", k,
                              kwargs=dict(norm_type=2),
                              torch_op=lambda tf, t, k=k: tf.lp_pool2d(t, 2, k, 2)),
            zoo_pool_workload("max_pool2d ties=split", "max_pool2d_forward",
                              "max_pool2d_backward", k, kwargs=dict(ties="split")),
            zoo_pool_workload("stochastic_pool2d (training)", "stochastic_pool2d_forward",
                              "stochastic_pool2d_backward", k, positive=True,
                              kwargs=dict(rng=True, training=True)),
            zoo_pool_workload("mixed_pool2d (Yu, per window)", "mixed_pool2d_forward",
                              "mixed_pool2d_backward", k,
                              kwargs=dict(rng=True, training=True, granularity="window")),
            zoo_pool_workload("mixed_maxavg_pool2d (Lee)", "mixed_maxavg_pool2d_forward",
                              "mixed_maxavg_pool2d_backward", k, params=(a,)),
            zoo_pool_workload("gated_pool2d (Lee)", "gated_pool2d_forward",
                              "gated_pool2d_backward", k,
                              params=(np.full((k, k), 0.1, np.float32),)),
            zoo_pool_workload("alpha_pool2d", "alpha_pool2d_forward", "alpha_pool2d_backward",
                              k, params=(a,), positive=True),
        ]
    for wavelet in ("haar", "db2"):
        wl.append(zoo_pool_workload(f"wavelet_pool2d {wavelet}", "wavelet_pool2d_forward",
                                    "wavelet_pool2d_backward", None,
                                    kwargs=dict(wavelet=wavelet)))
    wl.append(zoo_pool_workload("dft_pool2d 16x16", "dft_pool2d_forward", "dft_pool2d_backward",
                                None, kwargs=dict(output_size=16)))
    return wl


# -- transposed convolution --------------------------------------------------------------------
def conv_transpose_workload(n, c_in, h, w, c_out, k, stride, pad) -> Workload:
    ho, wo = (h - 1) * stride - 2 * pad + k, (w - 1) * stride - 2 * pad + k
    x, wt, b, dy = _arrays(3, (n, c_in, h, w), (c_in, c_out, k, k), (c_out,),
                           (n, c_out, ho, wo))
    wt *= np.float32(1.0 / np.sqrt(c_in * k * k))

    def cp():
        from convprop.functional import conv_transpose2d_backward as bwd
        from convprop.functional import conv_transpose2d_forward as fwd

        def run():
            _, cache = fwd(x, wt, b, stride=stride, padding=pad)
            return bwd(dy, cache)
        return run

    def tc():
        tf = models.require_torch().nn.functional
        return _torch_grad_fn(
            lambda a, ww, bb: tf.conv_transpose2d(a, ww, bb, stride, pad), x, (wt, b), dy)

    # same GEMM work as the conv whose input gradient this is: (ho, wo) -> (h, w), c_out -> c_in
    flops = 3.0 * 2.0 * n * c_in * h * w * c_out * k * k
    return Workload(f"conv_transpose2d {n}x{c_in}x{h}x{w}->{c_out} k{k} s{stride} p{pad}",
                    cp, tc, flops=flops)


# -- training steps ----------------------------------------------------------------------------
def step_workload(model: str, label: str, target: float, warmup: int) -> Workload:
    """A training step of ``model`` on each side (see :mod:`benchmarks.models`); the notes
    say how each side was built and flag parameter counts that differ."""
    notes: list = []
    counts: dict = {}

    def check():
        if len(counts) == 2 and counts["convprop"] != counts["torch"]:
            notes.append(f"PARAMETER COUNTS DIFFER (convprop {counts['convprop']}, torch "
                         f"{counts['torch']}): not the same model")

    def cp():
        step, how, counts["convprop"] = models.convprop_step(model)
        notes.append(f"convprop: {how}")
        check()
        return step

    def tc():
        step, how, counts["torch"] = models.torch_step(model)
        notes.append(f"torch: {how}")
        check()
        return step

    return Workload(label, cp, tc, target=target, warmup=warmup, compare=False, notes=notes,
                    tunes_malloc=True)


def all_workloads() -> list[Workload]:
    """Every workload, in table order (construction is cheap: arrays only, no kernels run)."""
    wl = [step_workload("lenet5", "LeNet-5 train step, batch 64", 1.0, warmup=5)]
    for shape in [(64, 3, 32, 32, 32, 3, 1, 1), (64, 32, 16, 16, 64, 3, 1, 1),
                  (32, 64, 8, 8, 128, 3, 1, 1), (64, 1, 28, 28, 6, 5, 1, 2),
                  (64, 64, 32, 32, 64, 3, 2, 1)]:
        wl.append(conv_workload(*shape))
    wl.append(pool_workload((64, 32, 32, 32), 2, 2))
    wl.append(pool_workload((64, 32, 32, 32), 3, 2))
    wl.append(conv_transpose_workload(64, 64, 8, 8, 32, 4, 2, 1))
    wl.append(step_workload("resnet20", "ResNet-20 train step, batch 64", 1.3, warmup=2))
    # 1-D and 3-D (issue 9): targets 1.5x PyTorch
    wl.append(convnd_workload(8, 16, (16, 32, 32), 32, 3, 1, 1, target=1.5))
    wl.append(pool_workload((8, 16, 16, 32, 32), 2, 2, target=1.5))
    wl.append(convnd_workload(64, 64, (1024,), 64, 5, 1, 2, target=1.5))
    wl.append(step_workload("c3d_mini", "c3d_mini train step, batch 32", 1.5, warmup=2))
    return wl + zoo_workloads()
