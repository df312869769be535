"""Timing machinery: thread counts, median timing, the matmul reference rate, result rows.

Every workload is a zero-argument callable (one forward + backward, or one training step)
built once outside the timed region. It is called ``warmup`` times untimed, then ``reps``
times, each call timed alone with ``time.perf_counter``; the median is reported.
"""

from __future__ import annotations

import ctypes
import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = [
    "Row",
    "Timing",
    "Unavailable",
    "blas_corename",
    "blas_threads",
    "matmul_callable",
    "matmul_gflops",
    "set_blas_threads",
    "time_call",
    "time_calls",
]


class Unavailable(Exception):
    """A workload side cannot run yet (missing kernel/model, or torch absent): a note, not a
    failure."""


# -- threads ---------------------------------------------------------------------------------
def _openblas_lib():
    """The OpenBLAS that NumPy has loaded (found in /proc/self/maps), or None."""
    try:
        with open("/proc/self/maps") as fh:
            paths = {ln.split()[-1] for ln in fh if "openblas" in ln.lower() and "/" in ln}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


_GET = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
        "openblas_get_num_threads64_", "openblas_get_num_threads")
_SET = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
        "openblas_set_num_threads64_", "openblas_set_num_threads")


_CORENAME = ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
             "openblas_get_corename64_", "openblas_get_corename")


def blas_corename() -> str | None:
    """The kernel set NumPy's OpenBLAS runs ("Haswell", "SkylakeX", ...), or None.

    OpenBLAS picks it when it loads, from the CPU or from ``OPENBLAS_CORETYPE``; it decides
    the matmul rate (on the 2-core AMD EPYC machines here, float32 1024^3 measured 192-201
    GFLOP/s with the Haswell kernels the machines' ``OPENBLAS_CORETYPE=Haswell`` pins, 376
    with the SkylakeX kernels OpenBLAS detects on its own), so every result records it."""
    lib = _openblas_lib()
    for name in _CORENAME if lib is not None else ():
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = ctypes.c_char_p
            return fn().decode("ascii", "replace")
    return None


def blas_threads() -> int:
    """Threads NumPy's BLAS uses: asked from OpenBLAS, else the usual env vars, else CPUs."""
    lib = _openblas_lib()
    for name in _GET if lib is not None else ():
        fn = getattr(lib, name, None)
        if fn is not None:
            n = int(fn())
            if n > 0:
                return n
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        val = os.environ.get(var, "")
        if val.isdigit() and int(val) > 0:
            return int(val)
    return os.cpu_count() or 1


def set_blas_threads(n: int) -> bool:
    """Set OpenBLAS's thread count at run time; False when that is not possible here."""
    lib = _openblas_lib()
    for name in _SET if lib is not None else ():
        fn = getattr(lib, name, None)
        if fn is not None:
            fn(ctypes.c_int(int(n)))
            return blas_threads() == n
    return False


# -- timing ----------------------------------------------------------------------------------
@dataclass
class Timing:
    """Summary of ``reps`` timed calls, in milliseconds."""

    median_ms: float
    min_ms: float
    p25_ms: float
    p75_ms: float
    reps: int


def _summary(times: list[float]) -> Timing:
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return Timing(statistics.median(times), min(times), q[0], q[2], len(times))


def time_calls(fns: dict, *, reps: int, warmup: int, rounds: int = 3,
               settle_s: float = 0.2) -> dict:
    """Median wall time of each ``fns[name]()`` over ``reps`` calls after ``warmup`` untimed
    calls of each; ``{name: Timing}``.

    The reps are split into ``rounds`` blocks per callable, run in turn (a-block, b-block,
    a-block, ...), so a change in machine load during the run shifts every side alike. Calls
    are not interleaved one by one: a BLAS or OpenMP pool keeps spinning for a while after a
    call and would slow the other framework's next call. Each block therefore starts after a
    ``settle_s`` pause and one untimed call. The cyclic garbage collector is paused during
    the timed calls (as ``timeit`` does).
    """
    if reps < 1:
        raise ValueError(f"time_calls: reps must be >= 1, got {reps}")
    rounds = max(1, min(rounds, reps))
    for fn in fns.values():
        for _ in range(max(warmup, 0)):
            fn()
    times: dict = {name: [] for name in fns}
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for r in range(rounds):
            n = reps // rounds + (r < reps % rounds)
            for name, fn in fns.items():
                if len(fns) > 1 or r > 0:
                    time.sleep(settle_s)
                    fn()
                for _ in range(n):
                    t0 = time.perf_counter()
                    fn()
                    times[name].append((time.perf_counter() - t0) * 1e3)
    finally:
        if was_enabled:
            gc.enable()
    return {name: _summary(t) for name, t in times.items()}


def time_call(fn: Callable[[], object], *, reps: int, warmup: int) -> Timing:
    """:func:`time_calls` for a single callable."""
    return time_calls({"fn": fn}, reps=reps, warmup=warmup)["fn"]


def matmul_callable(n: int = 1024) -> tuple[Callable[[], object], float]:
    """(a NumPy float32 ``n x n @ n x n`` product into a preallocated output, its flops)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    return (lambda: np.matmul(a, b, out=out)), 2.0 * n ** 3


def matmul_gflops(n: int = 1024, *, reps: int = 10, warmup: int = 2) -> float:
    """NumPy float32 ``n x n`` matmul rate in GFLOP/s (2 n^3 flops per product), median."""
    fn, flops = matmul_callable(n)
    return flops / (time_call(fn, reps=reps, warmup=warmup).median_ms * 1e-3) / 1e9


# -- results ---------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the table (a timed workload or a memory measurement)."""

    name: str
    kind: str = "time"                      # "time" (ms) or "memory" (MB)
    target: float | None = None          # ratio convprop/torch must be <= target
    convprop: float | None = None        # ms (median) or MB
    torch: float | None = None
    flops: float | None = None           # per call, for GFLOP/s
    mm_target: float | None = None       # fraction of the matmul rate convprop must reach
    matmul_gflops: float | None = None
    max_rel_diff: float | None = None       # convprop vs torch gradients (kernel rows)
    notes: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.convprop is None or self.torch is None or self.torch <= 0:
            return None
        return self.convprop / self.torch

    @property
    def gflops(self) -> float | None:
        if self.flops is None or self.convprop is None or self.kind != "time":
            return None
        return self.flops / (self.convprop * 1e-3) / 1e9

    @property
    def torch_gflops(self) -> float | None:
        if self.flops is None or self.torch is None or self.kind != "time":
            return None
        return self.flops / (self.torch * 1e-3) / 1e9

    @property
    def mm_fraction(self) -> float | None:
        if self.gflops is None or not self.matmul_gflops:
            return None
        return self.gflops / self.matmul_gflops

    @property
    def verdict(self) -> str:
        """'pass', 'FAIL: ratio' / 'FAIL: matmul %' / both, or 'n/a' when nothing to judge."""
        failed, judged = [], False
        if self.target is not None and self.ratio is not None:
            judged = True
            if self.ratio > self.target:
                failed.append("ratio")
        if self.mm_target is not None and self.mm_fraction is not None:
            judged = True
            if self.mm_fraction < self.mm_target:
                failed.append("matmul %")
        if not judged:
            return "n/a"
        return "FAIL: " + ", ".join(failed) if failed else "pass"

    def target_text(self) -> str:
        parts = []
        if self.target is not None:
            parts.append(f"<= {self.target:.2f}")
        if self.mm_target is not None:
            parts.append(f">= {self.mm_target:.0%} mm")
        return "; ".join(parts) or "-"

    def to_json(self) -> dict:
        d = asdict(self)
        d.update(ratio=self.ratio, gflops=self.gflops, torch_gflops=self.torch_gflops,
                 mm_fraction=self.mm_fraction, verdict=self.verdict)
        return d
