"""The thread pool of the engine: memory-bound loops (im2col, col2im, pooling) split over cores.

NumPy releases the GIL inside large copy and ufunc loops, so two Python threads that each
handle a contiguous share of the channels (or batch) really run on two cores. The pool is
created on first use; its size is the number of usable cores, or ``CONVPROP_NUM_THREADS``
(1 means fully serial: no pool at all). Each chunk runs exactly the serial code on its own
slice, so threaded results are bit-identical to serial ones.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["num_threads", "parallel_chunks", "MIN_WORK", "MAX_THREADS", "ThreadSettingError"]

#: Below this many elements of work a call stays serial: handing a chunk to a thread costs
#: ~20-50 us, more than it saves on small arrays. Tuned on 2 cores: a LeNet-5 step (largest
#: split ~1M elements) measured ~9 vs ~10 ms serial vs threaded, so it stays serial.
MIN_WORK = 1 << 20

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_num_threads: int | None = None  # resolved on first use; tests may monkeypatch it
_local = threading.local()
_fork_hook = False


#: The largest CONVPROP_NUM_THREADS accepted (more threads than this only cost memory).
MAX_THREADS = 1024


class ThreadSettingError(ValueError):
    """The CONVPROP_NUM_THREADS environment variable is not a valid thread count."""


def _default_threads() -> int:
    raw = os.environ.get("CONVPROP_NUM_THREADS", "")
    env = raw.strip()
    if env:
        try:
            n = int(env, 10)
        except ValueError:
            n = None
        if n is None or not 1 <= n <= MAX_THREADS:
            raise ThreadSettingError(
                f"CONVPROP_NUM_THREADS (environment variable): expected an integer from 1 to "
                f"{MAX_THREADS}, got {raw[:40]!r}; unset it to use every core")
        return n
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def num_threads() -> int:
    """How many threads (the caller included) a parallel loop uses."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_threads()
    return _num_threads


def _reset_after_fork() -> None:
    global _pool, _pool_size
    _pool, _pool_size = None, 0


def _mark_worker() -> None:
    _local.worker = True


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size, _fork_hook
    with _lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="convprop",
                                       initializer=_mark_worker)
            _pool_size = workers
            if not _fork_hook and hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_reset_after_fork)
                _fork_hook = True
        return _pool


def parallel_chunks(n: int, fn, *, work: int, min_work: int = MIN_WORK) -> None:
    """Run ``fn(lo, hi)`` over contiguous chunks covering ``range(n)``, one per thread.

    The calling thread runs the last chunk itself and waits for all others; the first
    exception (in chunk order) is re-raised after every chunk has finished. Serial (one call
    ``fn(0, n)``) when ``n < 2``, ``work < min_work``, one thread is configured, or when
    called from inside a pool worker (no nested parallelism, so no deadlock)."""
    t = min(num_threads(), n)
    if t < 2 or work < min_work or getattr(_local, "worker", False):
        fn(0, n)
        return
    bounds = [n * k // t for k in range(t + 1)]
    pool = _get_pool(t - 1)
    futures = [pool.submit(fn, bounds[k], bounds[k + 1]) for k in range(t - 1)]
    errors: list[BaseException] = []
    try:
        fn(bounds[t - 1], bounds[t])
    except BaseException as e:  # noqa: BLE001 - re-raised below, after the workers finish
        own = e
    else:
        own = None
    for f in futures:
        e = f.exception()
        if e is not None:
            errors.append(e)
    if own is not None:
        errors.append(own)
    if errors:
        raise errors[0]
