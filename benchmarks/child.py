"""One timing block in a fresh process: ``python -m benchmarks.child --workload NAME --side S``.

The parent (:func:`benchmarks.cli.run_workload` with ``isolate=True``) starts one child per
workload row, side and alternating block, so neither framework runs in the process that
times the other (PyTorch ops leave NumPy's large-array work 2-3x slower in the same process
for a long while afterwards). The child builds that side of the workload named exactly
``NAME`` in :func:`benchmarks.workloads.all_workloads`, sets NumPy's BLAS threads (and torch's,
on the torch side) to ``--threads``, runs ``--warmup`` untimed calls (at least one, and for at
least ``--warm-seconds``, default 0.3), then times
``--reps`` calls one by one with ``time.perf_counter`` and the cyclic GC paused. With
``--matmul-size N`` it then times the NumPy float32 ``N^3`` matmul reference the same way, in
the same process. The last stdout line is JSON: ``{"times_ms": [...], "matmul_ms": [...]}``.

Exit status: 0 ok; 2 bad arguments or unknown workload; 3 side unavailable (torch not
installed), the reason on stderr's last line; anything else: the side failed.
A convprop child never imports torch. Training-step children run convprop's step as built by
:func:`benchmarks.models.convprop_step`, which tunes glibc's allocator (as the ``convprop``
command does); kernel-row children and torch children keep the allocator's defaults.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["UNAVAILABLE_EXIT", "main", "run_child", "time_fn"]

UNAVAILABLE_EXIT = 3
ROOT = Path(__file__).resolve().parent.parent


def run_child(workload: str, side: str, *, reps: int, warmup: int, threads: int | None = None,
              matmul_size: int = 0, timeout: float = 600.0) -> tuple[dict | None, str]:
    """(the child's JSON result or None, a note saying why not) for one block of ``reps``
    calls of ``side`` of ``workload`` timed in a fresh ``python -m benchmarks.child``."""
    cmd = [sys.executable, "-m", "benchmarks.child", "--workload", workload, "--side", side,
           "--reps", str(reps), "--warmup", str(warmup)]
    if threads:
        cmd += ["--threads", str(threads)]
    if matmul_size > 0:
        cmd += ["--matmul-size", str(matmul_size)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    try:
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"{side}: child timed out after {timeout:.0f} s"
    err = r.stderr.strip().splitlines()
    last = err[-1] if err else ""
    if r.returncode == UNAVAILABLE_EXIT:
        return None, f"{side}: {last}"
    if r.returncode != 0:
        return None, f"{side}: child exited {r.returncode}: {last}"
    try:
        res = json.loads(r.stdout.strip().splitlines()[-1])
        if len(res["times_ms"]) != reps:
            raise ValueError(f"{len(res['times_ms'])} times for {reps} reps")
    except (IndexError, KeyError, TypeError, ValueError) as e:
        return None, f"{side}: child output unreadable ({e}): {r.stdout.strip()[-200:]}"
    return res, ""


def time_fn(fn, reps: int, warmup: int, warm_s: float = 0.3) -> list[float]:
    """Untimed calls of ``fn`` (at least ``max(warmup, 1)`` and ``warm_s`` seconds, at most
    100 calls past ``warmup``), then the wall time of ``reps`` calls in ms. A fresh process
    needs the time floor: PyTorch's first timed calls after 3 warm-up calls measured up to 3x
    slower than later ones."""
    t_end = time.perf_counter() + warm_s
    for i in range(max(warmup, 1) + 100):
        fn()
        if i + 1 >= max(warmup, 1) and time.perf_counter() >= t_end:
            break
    times = []
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    finally:
        if was_enabled:
            gc.enable()
    return times


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.child", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", required=True, help="exact workload name (see --list)")
    ap.add_argument("--side", required=True, choices=["convprop", "torch"])
    ap.add_argument("--reps", type=int, required=True)
    ap.add_argument("--warmup", type=int, required=True)
    ap.add_argument("--threads", type=int, default=None,
                    help="NumPy BLAS (and torch) threads (default: NumPy's)")
    ap.add_argument("--warm-seconds", type=float, default=0.3,
                    help="keep warming up for at least this long (default 0.3)")
    ap.add_argument("--matmul-size", type=int, default=0,
                    help="also time the NumPy float32 n^3 matmul reference (0: no)")
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.reps < 1:
        _parser().error(f"--reps must be >= 1, got {args.reps}")
    from .harness import Unavailable, blas_threads, matmul_callable, set_blas_threads
    from .workloads import all_workloads

    if args.threads and blas_threads() != args.threads and not set_blas_threads(args.threads):
        print("warning: could not set NumPy's BLAS threads at run time", file=sys.stderr)
    found = [wl for wl in all_workloads() if wl.name == args.workload]
    if not found:
        print(f"unknown workload {args.workload!r}", file=sys.stderr)
        return 2
    wl = found[0]
    try:
        if args.side == "torch":
            from .models import require_torch
            require_torch().set_num_threads(args.threads or blas_threads())
        fn = (wl.convprop if args.side == "convprop" else wl.torch)()
    except Unavailable as e:
        print(f"{e}", file=sys.stderr)
        return UNAVAILABLE_EXIT
    out = {"times_ms": time_fn(fn, args.reps, args.warmup, args.warm_seconds), "threads": blas_threads()}
    if args.matmul_size > 0:
        mm, _ = matmul_callable(args.matmul_size)
        out["matmul_ms"] = time_fn(mm, args.reps, 1, args.warm_seconds / 3)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
