"""Moving-MNIST direction clips: a real digit translates across a frame; the label is its direction.

A 3-D task that needs time: the answer (one of 8 directions) is the displacement between frames,
and no single frame says anything about it. That holds exactly, not just roughly, because the
frame is a torus (``wrap=True``, the default): the start is uniform over every position of the
frame and the displacement at frame ``t`` is an integer, so every frame, taken alone, is a
uniformly shifted digit whatever the direction. On a bounded frame (``wrap=False``) a digit that
must stay in view while it moves east has to start in the west, and frame 0 then tells part of
the answer: a nearest-class-mean classifier on frame 0 alone is right 47% of the time there, and
12% (chance: 1/8) on the torus (``test_no_single_frame_reveals_the_direction``). The price of
the torus is that a digit near an edge shows its ink split across the opposite edges.

Geometry. The digit (28x28, unscaled and unfiltered: its pixels are the source pixels) has its
top-left corner at integer ``start + offsets[t]`` where ``offsets[t] = rint(t * speed * u)``
and ``u = (-sin a, cos a)`` in (row, column) for the angle ``a = 45 deg * label`` measured
counter-clockwise from east (rows grow downwards, so north is up). With ``wrap=True`` the frame
is rolled like ``np.roll`` (what leaves the right edge enters at the left); with ``wrap=False``
pixels outside the frame are dropped and the start is drawn uniformly among the positions that
keep the digit's centre inside the frame at every step.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._checks import boolean, positive_int, real_number
from ._validate import gray_images

__all__ = ["DIRECTIONS", "MOVING_MNIST_SPLITS", "moving_mnist"]

#: Class names: label ``k`` moves at ``45 * k`` degrees counter-clockwise from east.
DIRECTIONS = ("E", "NE", "N", "NW", "W", "SW", "S", "SE")

#: The registered ``load_dataset("moving-mnist", split)``: clip count and fixed seed per split
#: (train clips from the train digits, test clips from the test digits; distinct seeds).
MOVING_MNIST_SPLITS = {"train": {"n_clips": 4000, "rng": 9_0001},
                       "test": {"n_clips": 1000, "rng": 9_0002}}

_OP = "moving_mnist"


def moving_mnist(digits: np.ndarray, *, n_clips: int, rng, frames: int = 16, size: int = 32,
                 speed=(1.0, 2.0), wrap: bool = True, return_info: bool = False):
    """Clips of one real digit moving in a straight line; label = direction (8 classes).

    Draws, in this order and all from ``rng``: the labels (a permutation of ``arange(n) % 8``,
    so the classes are balanced), the digit of each clip (without replacement while there are
    enough digits), its speed (uniform in ``speed``, pixels per frame), its start. The same seed
    therefore gives the same bytes; see the module docstring for the geometry.

    Args:
        digits: source images, (M, 1, h, w) or (M, h, w) uint8 (e.g. MNIST, 0 = background),
            with h, w <= ``size``.
        n_clips: number of clips N >= 1.
        rng: a ``numpy.random.Generator`` or an int seed.
        frames: clip length T >= 2. size: the frame is ``size`` x ``size`` pixels.
        speed: pixels per frame, a number or a ``(low, high)`` range with ``0 < low <= high <
            size / 2 - 1``, so that one step (at most ``high + 1`` pixels after rounding) is
            shorter than half the torus and its direction is unambiguous.
        wrap: move on a torus (default; no single frame carries the label) or on a bounded
            frame that drops what leaves it (the digit's centre stays in view).
        return_info: also return how each clip was made.
    Returns:
        ``(clips, labels)``: clips (N, 1, T, size, size) uint8, labels (N,) int64 in 0..7 (names
        in :data:`DIRECTIONS`). With ``return_info``, a third item: a dict of ``digit`` (N,)
        int64 indices into ``digits``, ``speed`` (N,) float64, ``start`` (N, 2) int64 (row,
        column) of the digit's top-left corner in frame 0, and ``offsets`` (N, T, 2) int64, its
        displacement at each frame (``offsets[:, 0] == 0``).
    """
    src = gray_images(_OP, "digits", digits)
    n = positive_int(_OP, "n_clips", n_clips)
    t = positive_int(_OP, "frames", frames, minimum=2)
    s = positive_int(_OP, "size", size)
    lo_speed, hi_speed = _speed_range(speed, s)
    wrap = boolean(_OP, "wrap", wrap)
    return_info = boolean(_OP, "return_info", return_info)
    m, h, w = src.shape
    if h > s or w > s:
        raise ValueError(f"{_OP}: digits of {h}x{w} do not fit in a {s}x{s} frame "
                         f"(digits.shape={digits.shape}, size={s})")
    if not wrap:
        _check_bounded_travel((h, w), s, t, hi_speed)
    gen = _generator(rng)

    labels = gen.permutation(np.arange(n, dtype=np.int64) % len(DIRECTIONS))
    index = gen.choice(m, size=n, replace=n > m).astype(np.int64)
    speeds = gen.uniform(lo_speed, hi_speed, size=n)
    angle = labels * (np.pi / 4)
    unit = np.stack([-np.sin(angle), np.cos(angle)], axis=1)  # (row, col): north is up
    steps = np.arange(t, dtype=np.float64)
    offsets = np.rint(steps[None, :, None] * speeds[:, None, None] * unit[:, None, :])
    offsets = offsets.astype(np.int64)
    if wrap:
        start = gen.integers(0, s, size=(n, 2))
    else:
        lo_pos, hi_pos = _centre_bounds((h, w), s)
        start = gen.integers(lo_pos - offsets.min(axis=1), hi_pos - offsets.max(axis=1) + 1)

    clips = _render(src[index], start[:, None, :] + offsets, s, wrap)
    if not return_info:
        return clips, labels
    return clips, labels, {"digit": index, "speed": speeds, "start": start, "offsets": offsets}


def _generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise TypeError(f"{_OP}: rng must be a numpy.random.Generator or an int seed >= 0, "
                    f"got {rng!r}")


def _speed_range(speed, size: int) -> tuple[float, float]:
    pair = speed if isinstance(speed, (tuple, list)) else (speed, speed)
    if len(pair) != 2:
        raise TypeError(f"{_OP}: speed must be a number or a (low, high) pair, got {speed!r}")
    lo, hi = (real_number(_OP, "speed", v) for v in pair)
    if not (0 < lo <= hi < size / 2 - 1):
        raise ValueError(f"{_OP}: speed must satisfy 0 < low <= high < size / 2 - 1 = "
                         f"{size / 2 - 1} pixels per frame, got {speed!r}")
    return lo, hi


def _centre_bounds(digit_shape, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The (row, col) top-left corners p that keep the digit's centre p + (d - 1) / 2 inside
    the frame: ``lo <= p <= hi``."""
    half = np.array([(d - 1) / 2 for d in digit_shape])
    return np.ceil(-half).astype(np.int64), np.floor(size - 1 - half).astype(np.int64)


def _check_bounded_travel(digit_shape, size: int, frames: int, hi_speed: float) -> None:
    # the longest path along one axis (E, W, N or S at the top speed) must fit between the bounds
    travel = int(np.rint((frames - 1) * hi_speed))
    lo, hi = _centre_bounds(digit_shape, size)
    room = int((hi - lo).min())
    if travel > room:
        raise ValueError(f"{_OP}: with wrap=False a digit moving up to {hi_speed} pixels per "
                         f"frame travels {travel} pixels over {frames} frames, but its centre "
                         f"has only {room} pixels of room in a {size}x{size} frame; lower the "
                         "speed or the number of frames, or use wrap=True")


def _render(digits: np.ndarray, position: np.ndarray, size: int, wrap: bool) -> np.ndarray:
    """Frame ``t`` of clip ``i``: ``digits[i]`` with its top-left corner at ``position[i, t]``.

    Both modes are one gather on a torus of side ``period``: the digit sits at the corner of a
    zero canvas, and output pixel (y, x) reads canvas[(y - row) % period, (x - col) % period].
    With ``wrap`` the period is the frame; without, a period of ``size + digit`` makes every
    pixel the digit does not cover read a zero (positions lie in ``(-digit, size)``).
    """
    n, h, w = digits.shape
    period = size if wrap else size + max(h, w)
    canvas = np.zeros((n, period, period), np.uint8)
    canvas[:, :h, :w] = digits
    axis = np.arange(size)
    rows = (axis[None, None, :] - position[:, :, 0, None]) % period  # (N, T, size)
    cols = (axis[None, None, :] - position[:, :, 1, None]) % period
    clips = np.empty((n, 1, position.shape[1], size, size), np.uint8)
    which = np.arange(n)[:, None, None]
    for f in range(position.shape[1]):
        clips[:, 0, f] = canvas[which, rows[:, f, :, None], cols[:, f, None, :]]
    return clips
