"""Peak memory of a training run: ``python -m benchmarks.memory <framework> <model> <steps>``.

The child (this module's ``main``) builds one model and runs ``steps`` training steps at
batch 64, nothing else; a convprop child never imports torch. Only the convprop child tunes
glibc's allocator (``convprop.malloc.tune_malloc()``, convprop's training configuration, as
the ``convprop`` command does); the PyTorch child runs with the allocator's defaults.
:func:`peak_rss_mb` measures it from a fresh launcher process that runs the child and reads
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``, so the number is that child's maximum
resident set alone, not the maximum over earlier measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["UNAVAILABLE_EXIT", "main", "peak_rss_mb"]

UNAVAILABLE_EXIT = 3
ROOT = Path(__file__).resolve().parent.parent

_LAUNCHER = """
import json, resource, subprocess, sys
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
if sys.platform == "darwin":
    kb /= 1024.0  # bytes there, kilobytes on Linux
print(json.dumps({"rc": r.returncode, "maxrss_kb": kb, "stderr": r.stderr[-2000:]}))
"""


def peak_rss_mb(framework: str, model: str, steps: int, *, threads: int | None = None,
                timeout: float = 900.0) -> tuple[float | None, str]:
    """(peak RSS in MB or None, note) of ``python -m benchmarks.memory`` in a fresh process."""
    child = [sys.executable, "-m", "benchmarks.memory", framework, model, str(steps)]
    if threads:
        child += ["--threads", str(threads)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    try:
        out = subprocess.run([sys.executable, "-c", _LAUNCHER, *child], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"{framework} {model}: timed out after {timeout:.0f} s"
    try:
        rep = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return None, f"{framework} {model}: launcher failed: {out.stderr.strip()[-300:]}"
    err = rep["stderr"].strip().splitlines()
    last = err[-1] if err else ""
    if rep["rc"] == UNAVAILABLE_EXIT:
        return None, f"{framework}: {last}"
    if rep["rc"] != 0:
        return None, f"{framework} {model}: child exited {rep['rc']}: {last}"
    return rep["maxrss_kb"] / 1024.0, ""


def _run(framework: str, model: str, steps: int) -> None:
    from . import models
    if framework == "convprop":
        step = models.convprop_step(model)[0]  # tunes malloc, as the convprop command does
    else:
        step = models.torch_step(model)[0]
    for _ in range(steps):
        step()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    ap.add_argument("framework", choices=["convprop", "torch"])
    ap.add_argument("model", choices=["lenet5", "resnet20"])
    ap.add_argument("steps", type=int)
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS / torch threads (default: what NumPy's BLAS uses)")
    args = ap.parse_args(argv)
    from .harness import Unavailable, blas_threads, set_blas_threads
    if args.threads:
        set_blas_threads(args.threads)
    try:
        if args.framework == "torch":
            from .models import require_torch
            require_torch().set_num_threads(args.threads or blas_threads())
        _run(args.framework, args.model, args.steps)
    except Unavailable as e:
        print(f"unavailable: {e}", file=sys.stderr)
        return UNAVAILABLE_EXIT
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
