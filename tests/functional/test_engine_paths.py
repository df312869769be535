"""The engine's execution paths compute the same correlation: one block, bands of output
rows, and (3-D) 2-D columns sliding along depth. Each case runs on every path it can take,
forced through the engine's bounds, and must agree with the one-block result in float64."""

import numpy as np
import pytest

import convprop.functional._engine.correlate as corr
import convprop.functional._engine.slide as slide
from convprop.functional import (conv3d_backward, conv3d_forward, conv_transpose3d_backward,
                                 conv_transpose3d_forward)

# (x shape, C_out, kernel, stride, padding, dilation, groups, slides by default)
CASES = [
    ((2, 3, 5, 6, 7), 4, 3, 1, 1, 1, 1, True),
    ((1, 2, 4, 5, 5), 3, (2, 3, 1), (1, 2, 1), (0, 1, 0), (1, 1, 2), 1, True),
    ((2, 2, 3, 4, 4), 2, (3, 1, 1), 1, (2, 0, 0), 1, 1, True),      # padding beyond the kernel
    ((2, 3, 4, 5, 6), 2, (2, 3, 3), 1, "same", (1, 2, 1), 1, True),  # even depth kernel
    ((2, 2, 4, 4, 4), 2, 1, 1, 0, 1, 1, True),                       # 1x1x1
    ((2, 4, 6, 5, 5), 4, 3, (2, 1, 1), 1, 1, 1, False),              # depth stride: general
    ((2, 4, 6, 5, 5), 4, 3, 1, 1, (2, 1, 1), 1, False),              # depth dilation
    ((2, 4, 5, 5, 5), 6, 3, 1, 1, 1, 2, False),                      # groups
]


def _run(x, w, b, kw, dy):
    y, cache = conv3d_forward(x, w, b, **kw)
    return (y, *conv3d_backward(dy, cache)), cache.work


def _force(monkeypatch, path):
    if path != "slide":
        monkeypatch.setattr(slide, "SLIDE_MAX_BYTES", -1)
    if path == "bands":
        monkeypatch.setattr(corr, "BAND_ABOVE", 0)
        monkeypatch.setattr(corr, "BAND_BYTES", 1)  # one output depth slice per band


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("path", ["slide", "block", "bands"])
def test_conv3d_paths_agree(rng, monkeypatch, case, path):
    shape, co, k, s, p, d, g, slides_by_default = case
    kernel = (k,) * 3 if isinstance(k, int) else k
    x = rng.standard_normal(shape)
    w = rng.standard_normal((co, shape[1] // g, *kernel))
    b = rng.standard_normal(co)
    kw = dict(stride=s, padding=p, dilation=d, groups=g)
    y, _ = conv3d_forward(x, w, b, **kw)
    dy = rng.standard_normal(y.shape)
    monkeypatch.setattr(slide, "SLIDE_MAX_BYTES", -1)
    reference, work = _run(x, w, b, kw, dy)
    assert not work.sliding and not work.bands
    monkeypatch.undo()
    _, work = _run(x, w, b, kw, dy)
    assert work.sliding == slides_by_default
    _force(monkeypatch, path)
    got, work = _run(x, w, b, kw, dy)
    assert work.sliding == (path == "slide" and slides_by_default)
    assert bool(work.bands) == (path == "bands" and y.shape[2] > 1)
    for a, r in zip(got, reference):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("path", ["slide", "block", "bands"])
def test_conv_transpose3d_paths_agree(rng, monkeypatch, path):
    x = rng.standard_normal((2, 4, 3, 4, 4))
    w = rng.standard_normal((4, 3, 3, 2, 3))
    kw = dict(stride=(1, 2, 1), padding=(1, 0, 1), output_padding=(0, 1, 0))
    y, cache = conv_transpose3d_forward(x, w, None, **kw)
    dy = rng.standard_normal(y.shape)
    reference = (y, *conv_transpose3d_backward(dy, cache)[:2])
    _force(monkeypatch, path)
    y2, cache = conv_transpose3d_forward(x, w, None, **kw)
    got = (y2, *conv_transpose3d_backward(dy, cache)[:2])
    for a, r in zip(got, reference):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)


def test_float32_planes_keep_the_dtype(rng):
    x = rng.standard_normal((2, 2, 4, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3, 3)).astype(np.float32)
    y, cache = conv3d_forward(x, w, None, padding=1)
    assert cache.work.sliding and cache.work.cols.dtype == np.float32
    dx, dw, _ = conv3d_backward(np.ones_like(y), cache)
    assert y.dtype == dx.dtype == dw.dtype == np.float32


def test_sliding_split_over_threads_is_bit_identical(rng, monkeypatch):
    """The planes and the input gradient's scatter split over threads by depth slice."""
    from convprop.functional._engine import threads
    x = rng.standard_normal((3, 4, 6, 5, 7)).astype(np.float32)
    w = rng.standard_normal((5, 4, 3, 3, 3)).astype(np.float32)

    def run():
        y, cache = conv3d_forward(x, w, None, padding=1)
        assert cache.work.sliding
        dy = np.linspace(-1, 1, y.size, dtype=np.float32).reshape(y.shape)
        return (y, *conv3d_backward(dy, cache)[:2])

    monkeypatch.setattr(threads, "_num_threads", 1)
    serial = [np.array(a) for a in run()]
    monkeypatch.setattr(threads, "_num_threads", 2)
    monkeypatch.setattr(slide, "MIN_SLICE_WORK", 0)
    calls = []
    real = slide.parallel_chunks
    monkeypatch.setattr(slide, "parallel_chunks",
                        lambda n, f, *, work, min_work: calls.append(n) or real(n, f, work=work,
                                                                                min_work=0))
    threaded = run()
    assert calls and max(calls) >= 2
    for a, b in zip(serial, threaded):
        assert a.tobytes() == np.ascontiguousarray(b).tobytes()
