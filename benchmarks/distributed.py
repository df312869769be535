"""Data-parallel speed on this machine, and the expected scaling on a cluster.

    python -m benchmarks.distributed [--steps 15] [--out benchmarks/results/distributed]

Measures, for LeNet-5 and ResNet-20 training steps (float32, SGD, global batch 64):

- one process with 2 threads against 2 MPI processes of 1 thread each (``mpiexec -n 2``),
  each with half of every batch and one allreduce of the gradients per step
  (:class:`convprop.distributed.DataParallel`'s own ``average_gradients``);
- the allreduce time per step against the model's gradient bytes, and a sweep of buffer
  sizes (2 processes on this machine: shared memory, no network);
- the compute time per example of one process with one thread (LeNet-5, ResNet-20 and
  VGG-CIFAR), from which it writes a table of the expected scaling efficiency of
  data-parallel training on K = 2 to 64 processes over 10 and 100 Gbit/s networks with a
  ring allreduce (2 (K-1)/K times the gradient bytes per process and step; latency
  2 (K-1) alpha). The model is stated in the output; it ignores overlap of communication
  with the backward pass (convprop does not overlap), so it is a lower bound.

Needs the ``mpi`` extra (mpi4py and an MPI: ``pip install 'convprop[mpi]'``). Run it on a quiet
machine: other processes on its 2 cores change every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np

MODELS = {"lenet5": "LeNet-5", "resnet20": "ResNet-20", "vgg_cifar": "VGG-CIFAR"}
BATCH = 64
KS = (2, 4, 8, 16, 32, 64)
GLOBAL_BATCH = 256  # the strong-scaling table: a fixed global batch split over K processes
NETWORKS = {"10 Gbit/s": (10e9 / 8, 20e-6), "100 Gbit/s": (100e9 / 8, 3e-6)}


def _data(name, n, seed=0):
    from .models import make_data, SHAPES
    if name in SHAPES:
        return make_data(name, n, seed)
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 3, 32, 32), dtype=np.float32),
            rng.integers(0, 10, n).astype(np.int64))


def worker(name: str, steps: int) -> dict:
    """One rank's timings (run alone or under mpiexec): per step, compute and allreduce."""
    from convprop.distributed import DataParallel, world
    from convprop.distributed.data_parallel import _per_rank_buffers
    from convprop.layers import CrossEntropyLoss
    from convprop.malloc import tune_malloc
    from convprop.models import build
    from convprop.optim import SGD

    tune_malloc()
    comm = world()
    model = build(name, rng=np.random.default_rng(0), dtype=np.float32)
    params = model.parameters()
    opt, loss_fn, dp = SGD(params, lr=0.01), CrossEntropyLoss(), DataParallel(comm)
    buffers = _per_rank_buffers(model)  # batch norm's running statistics ride along, as in fit
    x, t = _data(name, BATCH)
    lo, hi = comm.rank * BATCH // comm.size, (comm.rank + 1) * BATCH // comm.size
    x, t = x[lo:hi], t[lo:hi]
    compute, wait, reduce = [], [], []
    for i in range(steps + 2):
        comm.barrier()
        t0 = time.perf_counter()
        y, cache = model.forward(x, training=True)
        loss, lc = loss_fn.forward(y, t)
        opt.zero_grad()
        model.backward(loss_fn.backward(1.0, lc), cache, need_dx=False)
        t1 = time.perf_counter()
        if comm.size > 1:
            comm.barrier()  # the wait for the slower rank, apart from the reduction itself
        tb = time.perf_counter()
        if comm.size > 1:
            dp.average_gradients(params, hi - lo, BATCH, buffers=buffers)
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if i >= 2:  # two warm-up steps
            compute.append(t1 - t0 + t3 - t2)
            wait.append(tb - t1)
            reduce.append(t2 - tb)
    grad_bytes = sum(p.value.nbytes for p in params)
    out = {"rank": comm.rank, "size": comm.size, "compute_s": float(np.median(compute)),
           "wait_s": float(np.median(wait)), "allreduce_s": float(np.median(reduce)),
           "grad_bytes": int(grad_bytes),
           "examples": hi - lo}
    if comm.size > 1:  # the sweep of buffer sizes
        sweep = {}
        for k in range(12, 27, 2):
            buf = np.ones(2**k // 4, np.float32)
            ts = []
            for _ in range(7):
                comm.barrier()
                s0 = time.perf_counter()
                comm.allreduce_(buf)
                ts.append(time.perf_counter() - s0)
            sweep[2**k] = float(np.median(ts))
        out["sweep"] = sweep
    return out


def _run(cmd, env) -> list:
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if r.returncode:
        raise SystemExit(f"benchmarks.distributed: {' '.join(cmd)} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _env(threads: int) -> dict:
    env = dict(os.environ)
    for var in ("CONVPROP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env[var] = str(threads)
    return env


def _mpiexec() -> str:
    found = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                         + os.environ.get("PATH", ""))
    if found is None:
        raise SystemExit("benchmarks.distributed: needs mpiexec: pip install 'convprop[mpi]'")
    return found


def _fmt_bytes(n: float) -> str:
    for unit, s in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= s:
            return f"{n / s:.3g} {unit}"
    return f"{n:.0f} B"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.distributed",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--out", default=os.path.join("benchmarks", "results", "distributed"),
                    help="writes OUT.md and OUT.json")
    ap.add_argument("--worker", nargs=2, metavar=("MODEL", "STEPS"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        from convprop.distributed import world
        every = world().allgather(worker(a.worker[0], int(a.worker[1])))
        if world().rank == 0:  # one writer: ranks printing at once interleave their lines
            print(json.dumps(every), flush=True)
        return 0
    me = [sys.executable, "-m", "benchmarks.distributed", "--worker"]
    mpi = _mpiexec()
    res = {"machine": {"cpu": platform.processor() or platform.machine(),
                       "cores": os.cpu_count(), "python": platform.python_version(),
                       "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "auto")},
           "models": {}}
    for name in MODELS:
        one1 = _run([*me, name, str(a.steps)], _env(1))[0]
        row = {"one_thread": one1, "per_example_s": one1["compute_s"] / BATCH}
        if name != "vgg_cifar":
            row["one_proc_two_threads"] = _run([*me, name, str(a.steps)], _env(2))[0]
            ranks = _run([mpi, "-n", "2", *me, name, str(a.steps)], _env(1))
            row["two_procs"] = ranks
            res["sweep"] = ranks[0]["sweep"]
        res["models"][name] = row
        print(f"{name}: done", file=sys.stderr)
    md = _markdown(res)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out + ".json", "w") as f:
        json.dump(res, f, indent=1)
    with open(a.out + ".md", "w") as f:
        f.write(md)
    print(md)
    print(f"wrote {a.out}.md and {a.out}.json", file=sys.stderr)
    return 0


def ring_allreduce_s(k: int, nbytes: float, bandwidth: float, latency: float) -> float:
    """Ring allreduce: 2 (K-1) steps, each moving nbytes / K per process."""
    return 2 * (k - 1) / k * nbytes / bandwidth + 2 * (k - 1) * latency


def _markdown(res) -> str:
    m = res["machine"]
    lines = [f"# Data-parallel training: measured on {m['cores']} cores ({m['cpu']}), "
             f"OPENBLAS_CORETYPE={m['openblas_coretype']}", "",
             f"Global batch {BATCH}, float32, SGD. Times are medians per training step.", "",
             "| model | gradient | 1 proc x 2 threads | 2 procs x 1 thread: step (compute + "
             "wait for the slower rank + allreduce) | allreduce share | speed-up of 2 procs |",
             "|---|---|---|---|---|---|"]
    for name, row in res["models"].items():
        if "two_procs" not in row:
            continue
        one = row["one_proc_two_threads"]["compute_s"]
        ranks = row["two_procs"]
        # a step ends when the slower rank's does: the slower compute, then the reduction
        comp = max(r["compute_s"] for r in ranks)
        red = max(r["allreduce_s"] for r in ranks)
        wait = max(r["compute_s"] + r["wait_s"] for r in ranks) - comp
        step = comp + wait + red
        lines.append(f"| {MODELS[name]} | {_fmt_bytes(ranks[0]['grad_bytes'])} | "
                     f"{one * 1e3:.1f} ms | {step * 1e3:.1f} ms ({comp * 1e3:.1f} + "
                     f"{wait * 1e3:.2f} + {red * 1e3:.2f}) | {red / step:.1%} | "
                     f"{one / step:.2f}x |")
    lines += ["", "Allreduce of one float32 buffer between the 2 processes (shared memory):", "",
              "| bytes | time | rate |", "|---|---|---|"]
    for b, t in sorted(res.get("sweep", {}).items(), key=lambda kv: int(kv[0])):
        lines.append(f"| {_fmt_bytes(int(b))} | {t * 1e6:.0f} us | "
                     f"{int(b) / t / 2**30:.2f} GiB/s |")
    lines += ["", "## Expected scaling on a cluster (a model, not a measurement)", "",
              "Per process and step: compute `b t` for its `b` examples (`t` = the measured "
              "compute time per example of one process with one thread, above), then a ring "
              "allreduce of the gradient bytes `G`: `2 (K-1)/K G / bandwidth + 2 (K-1) "
              "latency` (latency 20 us at 10 Gbit/s Ethernet, 3 us at 100 Gbit/s "
              "InfiniBand). Efficiency = compute / (compute + allreduce): the fraction of "
              "perfect K-fold speed-up, with no overlap of communication with the backward pass.",
              ""]
    head = " | ".join(f"K={k}" for k in KS)
    for title, per_rank in (
            (f"Weak scaling: {BATCH} examples per process", lambda k: BATCH),
            (f"Strong scaling: a global batch of {GLOBAL_BATCH}, {GLOBAL_BATCH}/K per "
             f"process", lambda k: GLOBAL_BATCH / k)):
        lines += [f"**{title}.**", "", f"| model | t per example | G | network | {head} |",
                  "|" + "---|" * (4 + len(KS))]
        for name, row in res["models"].items():
            t = row["per_example_s"]
            g = row["one_thread"]["grad_bytes"]
            for net, (bw, lat) in NETWORKS.items():
                effs = []
                for k in KS:
                    c = per_rank(k) * t
                    effs.append(c / (c + ring_allreduce_s(k, g, bw, lat)))
                lines.append(f"| {MODELS[name]} | {t * 1e3:.2f} ms | {_fmt_bytes(g)} | {net} | "
                             + " | ".join(f"{e:.0%}" for e in effs) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
