"""``python -m benchmarks``: run every workload for convprop and PyTorch, print a table.

Same shapes, float32, PyTorch on as many threads as NumPy's BLAS. By default every timing
block runs in a fresh process (``python -m benchmarks.child``, one per row, side and block),
because PyTorch ops leave NumPy's large-array work 2-3x slower in the same process for a long
while afterwards; the parent only checks in-process that both sides return the same gradients
and merges the blocks' times. In those children only convprop's training-step rows tune glibc's
allocator (``convprop.malloc.tune_malloc()``, as the ``convprop`` command does); kernel rows
and PyTorch keep its defaults. ``--no-isolate`` times both sides in this process, in alternating blocks: kernel
rows first with the allocator's defaults, training-step rows last, after the tuning, which
then applies to both frameworks alike (it is process-wide and cannot be undone). Warm-up calls
are excluded; each number is the median of ``--reps`` calls. Ratios are convprop / torch
(lower is better) and are reported against targets, never asserted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import traceback
from pathlib import Path

from .harness import (
    Row,
    Unavailable,
    _summary,
    blas_corename,
    blas_threads,
    matmul_callable,
    matmul_gflops,
    set_blas_threads,
    time_calls,
)
from .child import run_child
from .memory import ROOT, peak_rss_mb
from .models import MALLOC_NOTE
from .workloads import Workload, all_workloads

__all__ = ["format_table", "main", "run_suite"]

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"
MEMORY_RUNS = (("lenet5", "LeNet-5"), ("resnet20", "ResNet-20"))
MEMORY_TARGET = 1.5


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=30, help="timed calls per side (default 30)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed calls before timing (default: per workload, 2-5)")
    ap.add_argument("--only", action="append", default=[], metavar="SUBSTRING",
                    help="run only rows whose name contains SUBSTRING (case-insensitive; "
                         "repeatable; memory rows are named 'memory ...')")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="PATH",
                    help=f"where to write the results (default {DEFAULT_JSON.relative_to(ROOT)})")
    ap.add_argument("--markdown", nargs="?", const="-", default=None, metavar="PATH",
                    help="also write the table as Markdown, to PATH or stdout ('-')")
    ap.add_argument("--matmul-size", type=int, default=1024,
                    help="n of the NumPy float32 n^3 matmul reference (default 1024)")
    ap.add_argument("--rounds", type=int, default=6,
                    help="alternating timing blocks per side; reps are split among them "
                         "(default 6)")
    ap.add_argument("--settle", type=float, default=0.2, metavar="SECONDS",
                    help="pause before each timed block, so the other framework's thread "
                         "pool goes idle (default 0.2)")
    ap.add_argument("--threads", type=int, default=None,
                    help="set NumPy's BLAS and torch to this many threads (default: NumPy's)")
    ap.add_argument("--no-isolate", dest="isolate", action="store_false",
                    help="time both frameworks in this process (default: every block in a "
                         "fresh child process)")
    ap.add_argument("--no-torch", action="store_true", help="convprop only, even with torch")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory rows")
    ap.add_argument("--memory-steps", type=int, nargs=2, default=(50, 20),
                    metavar=("LENET", "RESNET"), help="training steps per memory run (50 20)")
    ap.add_argument("--openblas-coretype", default=None, metavar="NAME",
                    help="rerun this command with OPENBLAS_CORETYPE=NAME (e.g. SkylakeX, "
                         "Haswell), or with it unset for 'auto' (OpenBLAS detects the CPU), "
                         "before NumPy loads; every child inherits it. Default: the "
                         "environment as given. The kernel set in use is recorded either way")
    ap.add_argument("--list", action="store_true", help="list the workload names and exit")
    return ap


_REEXEC = "CONVPROP_BENCH_CORETYPE_SET"


def _reexec_for_coretype(name: str, argv: list[str]) -> None:
    """Replace this process by the same command with OPENBLAS_CORETYPE set (or unset for
    "auto"): OpenBLAS reads it once, when NumPy first loads, which has already happened."""
    if os.environ.get(_REEXEC) == name:
        return
    env = dict(os.environ)
    env[_REEXEC] = name
    if name.lower() == "auto":
        env.pop("OPENBLAS_CORETYPE", None)
    else:
        env["OPENBLAS_CORETYPE"] = name
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks", *argv], env)


def _selected(name: str, only: list[str]) -> bool:
    return not only or any(s.lower() in name.lower() for s in only)


def _prepare(build, warmup: int, row: Row, side: str):
    """Build one side's callable and run its warm-up calls (at least one): (fn, its last
    result), or (None, None) with a note if it cannot run (torch not installed), or an error
    note and a traceback if it fails: one broken row must not stop the suite."""
    try:
        fn = build()
        out = None
        for _ in range(max(warmup, 1)):
            out = fn()
        return fn, out
    except Unavailable as e:
        row.notes.append(f"{side}: {e}")
    except Exception as e:  # noqa: BLE001
        row.notes.append(f"{side}: error {type(e).__name__}: {e}")
        traceback.print_exc(limit=3, file=sys.stderr)
    return None, None


def _max_rel_diff(a, b) -> float | None:
    """Largest norm-wise relative difference between the gradients two sides returned."""
    import numpy as np
    a = a if isinstance(a, (tuple, list)) else (a,)
    b = b if isinstance(b, (tuple, list)) else (b,)
    if len(a) != len(b):
        return None
    worst = 0.0
    for u, v in zip(a, b, strict=True):
        u = np.asarray(u, np.float64)
        v = np.asarray(v.detach().numpy() if hasattr(v, "detach") else v, np.float64)
        if u.shape != v.shape:
            return float("inf")
        den = max(np.linalg.norm(u) + np.linalg.norm(v), 1e-30)
        worst = max(worst, float(np.linalg.norm(u - v) / den))
    return worst


def _time_isolated(wl: Workload, sides: list, row: Row, *, reps: int, warmup: int,
                   rounds: int, threads: int | None, mm_n: int) -> dict:
    """``{side: Timing}`` from fresh child processes, one per side and block, alternating
    sides block by block; the convprop children of a row with a flop count also time the
    matmul reference (key "matmul"). A failed child becomes a note and drops that side."""
    rounds = max(1, min(rounds, reps))
    times: dict = {s: [] for s in sides}
    if wl.flops is not None and "convprop" in sides:
        times["matmul"] = []
    for r in range(rounds):
        n = reps // rounds + (r < reps % rounds)
        for side in sides:
            if side not in times:
                continue  # an earlier block of this side failed
            mm = mm_n if side == "convprop" and "matmul" in times else 0
            res, note = run_child(wl.name, side, reps=n, warmup=warmup, threads=threads,
                                  matmul_size=mm)
            if res is None:
                row.notes.append(note)
                del times[side]
                if side == "convprop":
                    times.pop("matmul", None)
                continue
            times[side] += res["times_ms"]
            if mm:
                times["matmul"] += res["matmul_ms"]
    return {k: _summary(v) for k, v in times.items() if v}


def run_workload(wl: Workload, *, reps: int, warmup: int | None, use_torch: bool,
                 mm_rate: float | None, mm_n: int = 1024, settle_s: float = 0.2,
                 rounds: int = 6, isolate: bool = False, threads: int | None = None) -> Row:
    """Time the convprop and torch sides of ``wl`` in alternating blocks, after warm-up. A
    row with a flop count also times the reference matmul in the same blocks, so its
    "% matmul" compares rates measured under the same conditions (``mm_rate`` is the
    fallback). With ``isolate`` each block runs in a fresh child process (``wl`` must then be
    one of :func:`all_workloads`, by name; each child runs the warm-up calls) and this process
    only builds both sides once to compare their gradients; otherwise all in this process."""
    row = Row(wl.name, target=wl.target, flops=wl.flops, mm_target=wl.mm_target,
              matmul_gflops=mm_rate)
    w = wl.warmup if warmup is None else warmup
    pw = 1 if isolate else w  # isolated: one in-process call is enough for the comparison
    prepared = {"convprop": _prepare(wl.convprop, pw, row, "convprop")}
    if use_torch:
        prepared["torch"] = _prepare(wl.torch, pw, row, "torch")
    fns = {k: f for k, (f, _) in prepared.items() if f is not None}
    if wl.compare and len(fns) == 2:
        row.max_rel_diff = _max_rel_diff(prepared["convprop"][1], prepared["torch"][1])
        if row.max_rel_diff is None or row.max_rel_diff > 1e-4:
            row.notes.append(f"convprop and torch gradients DISAGREE (max relative "
                             f"difference {row.max_rel_diff}): the timing compares different "
                             "computations")
    mm_flops = 2.0 * mm_n ** 3
    if isolate:
        timings = _time_isolated(wl, list(fns), row, reps=reps, warmup=w, rounds=rounds,
                                 threads=threads, mm_n=mm_n) if fns else {}
    else:
        if fns and wl.flops is not None:
            fns["matmul"], mm_flops = matmul_callable(mm_n)
            fns["matmul"]()
        timings = time_calls(fns, reps=reps, warmup=0, settle_s=settle_s,
                             rounds=rounds) if fns else {}
    for side, t in timings.items():
        row.timings[side] = vars(t)
        if side == "matmul":
            row.matmul_gflops = mm_flops / (t.median_ms * 1e-3) / 1e9
        else:
            setattr(row, side, t.median_ms)
    row.notes[:0] = wl.notes
    return row


def run_memory(model: str, label: str, steps: int, *, use_torch: bool,
               threads: int | None) -> Row:
    """Peak RSS of ``steps`` training steps per framework; the note gives each framework's
    baseline (model built, 0 steps), so the training footprint above imports is visible."""
    row = Row(f"memory {label}, {steps} steps (peak RSS)", kind="memory", target=MEMORY_TARGET,
              notes=["convprop child: " + MALLOC_NOTE + "; torch child: allocator defaults"])
    base = []
    for side in ("convprop", "torch") if use_torch else ("convprop",):
        kw = {"threads": threads}
        mb, note = peak_rss_mb(side, model, steps, **kw)
        setattr(row, side, mb)
        if note:
            row.notes.append(note)
        elif mb is not None:
            mb0, _ = peak_rss_mb(side, model, 0, **kw)
            if mb0 is not None:
                base.append(f"{side} {mb0:.1f} MB (+{mb - mb0:.1f} training)")
    if base:
        row.notes.append("baseline with 0 steps: " + ", ".join(base))
    return row


def _fmt(v, unit: str) -> str:
    return "-" if v is None else f"{v:.2f} {unit}" if unit == "ms" else f"{v:.1f} {unit}"


def _cells(row: Row) -> list[str]:
    unit = "ms" if row.kind == "time" else "MB"
    return [row.name, _fmt(row.convprop, unit), _fmt(row.torch, unit),
            "-" if row.ratio is None else f"{row.ratio:.2f}", row.target_text(), row.verdict,
            "-" if row.gflops is None else f"{row.gflops:.1f}",
            "-" if row.mm_fraction is None else f"{row.mm_fraction:.0%}"]


HEADER = ["workload", "convprop", "torch", "ratio", "target", "result", "GFLOP/s",
          "% matmul"]


def format_table(rows: list[Row], *, markdown: bool = False) -> str:
    """The results as an aligned text table (or a Markdown table), then the notes."""
    body = [_cells(r) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(HEADER))) + "|"]
        lines += ["| " + " | ".join(c) + " |" for c in body]
    else:
        widths = [max(len(r[i]) for r in [HEADER, *body]) for i in range(len(HEADER))]
        fmt = lambda c: "  ".join(s.ljust(w) if i == 0 else s.rjust(w)
                                  for i, (s, w) in enumerate(zip(c, widths)))
        lines = [fmt(HEADER), "  ".join("-" * w for w in widths), *map(fmt, body)]
    notes = [f"- {r.name}: {n}" for r in rows for n in r.notes]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines)


def _environment(threads: int, mm_rate, mm_n: int, torch_mod, malloc_tuned: bool) -> dict:
    import numpy as np
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, check=False).stdout.strip() or None
    except OSError:
        commit = None
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "host": platform.node(), "platform": platform.platform(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__,
            "torch": getattr(torch_mod, "__version__", None), "threads": threads,
            "matmul_n": mm_n, "matmul_gflops": mm_rate,
            "openblas_core": blas_corename(),
            "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"), "malloc_tuned": malloc_tuned,
            "git_commit": commit,
            "loadavg_end": _loadavg()}


def _loadavg():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def run_suite(args) -> tuple[list[Row], dict]:
    """Run every selected workload and memory measurement; (rows, environment)."""
    if args.threads and not set_blas_threads(args.threads):
        print("warning: could not set NumPy's BLAS threads at run time", file=sys.stderr)
    threads = blas_threads()
    torch_mod = None
    if not args.no_torch:
        try:
            import torch as torch_mod
            torch_mod.set_num_threads(threads)
        except ImportError:
            print("torch not installed: convprop only", file=sys.stderr)
    use_torch = torch_mod is not None
    mm_rate = matmul_gflops(args.matmul_size)
    print(f"threads {threads}; NumPy float32 matmul {args.matmul_size}^3: {mm_rate:.1f} GFLOP/s"
          f" (OpenBLAS kernels: {blas_corename()})", file=sys.stderr)
    selected = [wl for wl in all_workloads() if _selected(wl.name, args.only)]
    by_name = {}
    # kernels first (allocator defaults), training steps last (they tune malloc for good)
    for wl in sorted(selected, key=lambda w: w.tunes_malloc):
        print(f"  {wl.name} ...", file=sys.stderr, flush=True)
        by_name[wl.name] = run_workload(wl, reps=args.reps, warmup=args.warmup,
                                        use_torch=use_torch, mm_rate=mm_rate,
                                        mm_n=args.matmul_size, settle_s=args.settle,
                                        rounds=args.rounds, isolate=args.isolate,
                                        threads=threads)
    rows = [by_name[wl.name] for wl in selected]
    for wl in selected:  # ops PyTorch lacks: their time as a multiple of a reference row's
        ref = by_name.get(wl.relative_to) if wl.relative_to else None
        row = by_name[wl.name]
        if ref is not None and ref.convprop and row.convprop:
            row.notes.append(f"{row.convprop / ref.convprop:.2f}x the time of {ref.name}")
    from convprop.malloc import tune_malloc
    malloc_tuned = tune_malloc() if any(w.tunes_malloc for w in selected) else False
    if not args.no_memory:
        for (model, label), steps in zip(MEMORY_RUNS, args.memory_steps):
            name = f"memory {label}, {steps} steps (peak RSS)"
            if not _selected(name, args.only):
                continue
            print(f"  {name} ...", file=sys.stderr, flush=True)
            rows.append(run_memory(model, label, steps, use_torch=use_torch,
                                   threads=args.threads))
    env = _environment(threads, mm_rate, args.matmul_size, torch_mod, malloc_tuned)
    env["isolated"] = args.isolate
    return rows, env


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    if args.openblas_coretype is not None:
        _reexec_for_coretype(args.openblas_coretype, argv)
    if args.reps < 1:
        _parser().error(f"--reps must be >= 1, got {args.reps}")
    if args.list:
        for wl in all_workloads():
            print(wl.name)
        for (_, label), steps in zip(MEMORY_RUNS, args.memory_steps):
            print(f"memory {label}, {steps} steps (peak RSS)")
        return 0
    load0 = _loadavg()
    rows, env = run_suite(args)
    env["loadavg_start"] = load0
    busy = [x for x in (load0, env["loadavg_end"]) if x is not None and x > env["threads"] + 0.5]
    if busy:
        print(f"warning: 1-minute load average {max(busy):.1f} with {env['threads']} threads: "
              "other processes were running; timings are noisy", file=sys.stderr)
    how = "each block in a fresh process" if args.isolate else "one process"
    print(f"\nconvprop vs PyTorch {env['torch'] or '(not installed)'}, float32, "
          f"{env['threads']} threads, median of {args.reps} ({how}); NumPy matmul "
          f"{env['matmul_gflops']:.1f} GFLOP/s (OpenBLAS {env['openblas_core']} kernels)\n")
    print(format_table(rows))
    if args.markdown:
        md = format_table(rows, markdown=True)
        if args.markdown == "-":
            print("\n" + md)
        else:
            Path(args.markdown).write_text(md + "\n")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"environment": env, "reps": args.reps,
                                     "rows": [r.to_json() for r in rows]}, indent=1) + "\n")
    print(f"\nresults written to {args.json}", file=sys.stderr)
    return 0
