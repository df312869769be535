"""Threaded im2col / col2im / pooling equal the serial (one-thread) result bit for bit."""

import threading

import numpy as np
import pytest

import convprop.functional as F
from convprop.functional._engine import threads as _threads
from convprop.functional._engine.windows import out_size

from helpers import hostile


def _serial_and_threaded(monkeypatch, fn):
    """``fn()`` run with one thread, then with two threads and no work threshold."""
    monkeypatch.setattr(_threads, "_num_threads", 1)
    serial = fn()
    monkeypatch.setattr(_threads, "_num_threads", 2)
    monkeypatch.setattr(_threads, "MIN_WORK", 0)
    calls = []
    monkeypatch.setattr("convprop.functional._engine.windows._IM2COL_MIN_WORK", 0)
    real = _threads.parallel_chunks

    def spy(n, f, *, work, min_work=0):
        calls.append(n)
        return real(n, f, work=work, min_work=0)

    monkeypatch.setattr(_threads, "parallel_chunks", spy)
    return serial, fn, calls


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b) and a.tobytes() == np.ascontiguousarray(b).tobytes()


CONV_CASES = [  # (N, C, *S), kernel, stride, padding, dilation
    ((4, 5, 9, 11), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((3, 3, 10, 7), (5, 3), (2, 1), (2, 0), (1, 2)),
    ((2, 7, 8, 8), (2, 2), (3, 3), (0, 0), (1, 1)),
    ((5, 3, 12, 12), (3, 3), (1, 1), (0, 0), (1, 1)),
    ((4, 5, 19), (3,), (2,), (1,), (2,)),
    ((3, 4, 5, 6, 7), (3, 2, 3), (1, 2, 1), (1, 0, 1), (1, 1, 2)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, k, s, p, d", CONV_CASES)
def test_im2col_col2im_threaded_bit_identical(monkeypatch, rng, dtype, shape, k, s, p, d):
    import convprop.functional._engine.windows as win
    x = rng.standard_normal(shape).astype(dtype)
    out = tuple(out_size("t", *a) for a in zip(shape[2:], k, s, p, d))
    cols_in = rng.standard_normal((shape[1] * np.prod(k), shape[0] * np.prod(out))).astype(dtype)

    def run():
        c = win.im2col(hostile(x), k, s, p, d, out)
        dx = win.col2im(hostile(cols_in), shape, k, s, p, d, out)
        return np.array(c), np.array(dx)

    serial, run_again, _ = _serial_and_threaded(monkeypatch, run)
    monkeypatch.setattr(win, "parallel_chunks", _threads.parallel_chunks)
    threaded = run_again()
    for a, b in zip(serial, threaded):
        _same(a, b)


POOL_CASES = [  # (N, C, *S), kernel, stride, padding, ceil_mode
    ((3, 5, 9, 9), 3, 2, 1, False),
    ((1, 5, 8, 7), 2, 2, 0, False),
    ((5, 3, 11, 10), 3, 1, 1, True),
    ((2, 3, 9, 9), (3, 2), (2, 3), (1, 1), True),
    ((4, 1, 6, 6), 1, 2, 0, False),
    ((3, 4, 17), 3, 2, 1, True),
    ((1, 5, 12), 2, 2, 0, False),
    ((3, 2, 5, 6, 7), 3, 2, 1, True),
    ((1, 4, 4, 6, 4), 2, 2, 0, False),
    ((2, 3, 5, 4, 6), (3, 1, 2), (1, 2, 2), (1, 0, 1), False),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, k, s, p, ceil", POOL_CASES)
def test_pooling_threaded_bit_identical(monkeypatch, rng, dtype, shape, k, s, p, ceil):
    import convprop.functional.pooling as pooling
    nd = len(shape) - 2
    max_fwd, max_bwd = getattr(F, f"max_pool{nd}d_forward"), getattr(F, f"max_pool{nd}d_backward")
    avg_fwd, avg_bwd = getattr(F, f"avg_pool{nd}d_forward"), getattr(F, f"avg_pool{nd}d_backward")
    # integer-valued input makes ties (first-maximum rule) common
    x = rng.integers(-3, 4, size=shape).astype(dtype)

    def run():
        ym, cm = max_fwd(hostile(x), kernel_size=k, stride=s, padding=p, ceil_mode=ceil)
        dy = np.linspace(-1, 1, ym.size, dtype=dtype).reshape(ym.shape)
        dxm = max_bwd(hostile(dy), cm)
        ya, ca = avg_fwd(hostile(x), kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
                         count_include_pad=False)
        dxa = avg_bwd(hostile(dy), ca)
        return ym, cm.argmax, dxm, ya, dxa

    serial, run_again, calls = _serial_and_threaded(monkeypatch, run)
    monkeypatch.setattr(pooling, "parallel_chunks", _threads.parallel_chunks)
    threaded = run_again()
    assert calls and max(calls) >= 2  # it really was split
    for a, b in zip(serial, threaded):
        _same(a, b)


def test_chunks_cover_range_once_on_several_threads(monkeypatch):
    monkeypatch.setattr(_threads, "_num_threads", 3)
    seen, names, lock = [], set(), threading.Lock()

    def fn(lo, hi):
        with lock:
            seen.extend(range(lo, hi))
            names.add(threading.current_thread().name)

    _threads.parallel_chunks(10, fn, work=1, min_work=0)
    assert sorted(seen) == list(range(10))
    assert "MainThread" in names and len(names) >= 2  # the caller runs one chunk itself
    seen.clear()
    _threads.parallel_chunks(10, fn, work=5, min_work=6)  # below the threshold: one call
    assert seen == list(range(10))


@pytest.mark.parametrize("failing_chunk", [0, 1])
def test_worker_exception_propagates(monkeypatch, failing_chunk):
    monkeypatch.setattr(_threads, "_num_threads", 2)
    done = []

    def fn(lo, hi):
        if lo == failing_chunk * 4:
            raise RuntimeError(f"boom in chunk {lo}")
        done.append((lo, hi))

    with pytest.raises(RuntimeError, match=f"boom in chunk {failing_chunk * 4}"):
        _threads.parallel_chunks(8, fn, work=100, min_work=0)
    assert done == [(4 - failing_chunk * 4, 8 - failing_chunk * 4)]  # the other chunk finished


def test_env_override_and_bad_value(monkeypatch):
    monkeypatch.setenv("CONVPROP_NUM_THREADS", "1")
    assert _threads._default_threads() == 1
    monkeypatch.setenv("CONVPROP_NUM_THREADS", "zero")
    with pytest.raises(ValueError, match="CONVPROP_NUM_THREADS"):
        _threads._default_threads()
    monkeypatch.delenv("CONVPROP_NUM_THREADS")
    assert _threads._default_threads() >= 1
