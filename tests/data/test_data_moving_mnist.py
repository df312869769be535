"""Moving-MNIST direction clips: exact digits at the recorded positions, motion in the labelled
direction (found from the pixels alone), no label in any single frame, determinism, errors."""

import numpy as np
import pytest
from helpers import SHARED_DATA, hostile, needs_mnist

from convprop.data import (
    DIRECTIONS,
    MOVING_MNIST_SPLITS,
    load_dataset,
    moving_mnist,
)


@pytest.fixture(scope="module")
def digits():
    """Real MNIST digits: the embedded sample's test split (2,000 images)."""
    return load_dataset("mnist-sample", "test").images


def _paste(digit, top, left, size, wrap):
    """Loop oracle: the digit with its top-left corner at (top, left) in a size x size frame."""
    h, w = digit.shape
    frame = np.zeros((size, size), np.uint8)
    for i in range(h):
        for j in range(w):
            r, c = top + i, left + j
            if wrap:
                frame[r % size, c % size] = digit[i, j]
            elif 0 <= r < size and 0 <= c < size:
                frame[r, c] = digit[i, j]
    return frame


def _direction(d_row, d_col):
    """The class of a displacement: its angle counter-clockwise from east (rows grow down)."""
    angle = np.degrees(np.arctan2(-np.asarray(d_row, float), np.asarray(d_col, float)))
    return np.rint(angle / 45).astype(int) % 8


def _circular_centre(frames):
    """Ink-weighted centre on the torus, per axis, as an angle (np.roll shifts it exactly)."""
    size = frames.shape[-1]
    phase = np.exp(2j * np.pi * np.arange(size) / size)
    w = frames.astype(np.float64)
    return np.stack([np.angle((w.sum(-1) * phase).sum(-1)),
                     np.angle((w.sum(-2) * phase).sum(-1))], axis=-1)


def _plain_centre(frames):
    w = frames.astype(np.float64)
    r = np.arange(frames.shape[-1])
    total = w.sum((-2, -1))
    return np.stack([(w.sum(-1) * r).sum(-1) / total, (w.sum(-2) * r).sum(-1) / total], axis=-1)


@pytest.mark.parametrize("wrap", [True, False])
def test_shape_dtype_and_balanced_labels(digits, wrap):
    clips, labels = moving_mnist(digits, n_clips=40, rng=0, wrap=wrap)
    assert clips.shape == (40, 1, 16, 32, 32) and clips.dtype == np.uint8
    assert labels.shape == (40,) and labels.dtype == np.int64
    assert np.bincount(labels, minlength=8).tolist() == [5] * 8
    clips, labels = moving_mnist(digits[:3, 0], n_clips=5, rng=0, frames=3, size=30, wrap=wrap)
    assert clips.shape == (5, 1, 3, 30, 30) and set(labels.tolist()) <= set(range(8))


def test_same_seed_same_bytes_different_seed_different(digits):
    a, la = moving_mnist(digits, n_clips=64, rng=7)
    b, lb = moving_mnist(hostile(digits), n_clips=64, rng=np.random.default_rng(7))
    assert a.tobytes() == b.tobytes() and la.tobytes() == lb.tobytes()
    c, lc = moving_mnist(digits, n_clips=64, rng=8)
    assert a.tobytes() != c.tobytes() and la.tobytes() != lc.tobytes()


@pytest.mark.parametrize("wrap", [True, False])
def test_every_frame_is_the_source_digit_at_its_position(digits, wrap):
    n, t, size = 48, 16, 32
    clips, labels, info = moving_mnist(digits, n_clips=n, rng=3, wrap=wrap, return_info=True)
    assert info["digit"].dtype == np.int64 and len(set(info["digit"].tolist())) == n
    assert np.all(info["offsets"][:, 0] == 0)
    for i in range(n):
        digit = digits[info["digit"][i], 0]
        for f in range(t):
            top, left = info["start"][i] + info["offsets"][i, f]
            np.testing.assert_array_equal(clips[i, 0, f], _paste(digit, top, left, size, wrap))


def test_offsets_follow_speed_and_label(digits):
    clips, labels, info = moving_mnist(digits, n_clips=200, rng=4, speed=(0.5, 1.5),
                                       return_info=True)
    assert np.all((info["speed"] >= 0.5) & (info["speed"] <= 1.5))
    angle = labels * np.pi / 4
    unit = np.stack([-np.sin(angle), np.cos(angle)], axis=1)
    exact = np.arange(16)[None, :, None] * info["speed"][:, None, None] * unit[:, None, :]
    assert np.abs(info["offsets"] - exact).max() <= 0.5
    assert np.all(_direction(*info["offsets"][:, -1].T) == labels)


def test_motion_on_the_torus_is_in_the_labelled_direction(digits):
    # From the pixels alone: each frame is the previous one rolled by a short step, and the
    # steps' sum (found by the ink's circular centre) points in the labelled direction.
    clips, labels = moving_mnist(digits, n_clips=96, rng=5)
    size = clips.shape[-1]
    centre = _circular_centre(clips[:, 0])  # (N, T, 2)
    step = np.angle(np.exp(1j * np.diff(centre, axis=1))) * size / (2 * np.pi)
    assert np.abs(step - np.rint(step)).max() < 1e-6  # integer shifts: a rigid roll
    step = np.rint(step).astype(int)
    for i in range(len(clips)):
        for f in range(1, clips.shape[2]):
            np.testing.assert_array_equal(
                clips[i, 0, f], np.roll(clips[i, 0, f - 1], tuple(step[i, f - 1]), axis=(0, 1)))
    travel = step.sum(axis=1)
    assert np.hypot(*travel.T).min() >= 14  # 15 steps of at least 1 pixel, rounded
    assert np.all(_direction(*travel.T) == labels)


def test_motion_on_the_bounded_frame_is_in_the_labelled_direction(digits):
    clips, labels, info = moving_mnist(digits, n_clips=96, rng=6, wrap=False, return_info=True)
    travel = _plain_centre(clips[:, 0, -1]) - _plain_centre(clips[:, 0, 0])
    assert np.all(_direction(*travel.T) == labels)
    # the digit's centre stays inside the frame at every step
    centre = info["start"][:, None, :] + info["offsets"] + 13.5
    assert centre.min() >= 0 and centre.max() <= 31


def _nearest_mean_accuracy(train, train_labels, test, test_labels):
    a = train.reshape(len(train), -1).astype(np.float64)
    b = test.reshape(len(test), -1).astype(np.float64)
    means = np.stack([a[train_labels == k].mean(axis=0) for k in range(8)])
    score = b @ means.T - 0.5 * (means ** 2).sum(axis=1)
    return float(np.mean(score.argmax(axis=1) == test_labels))


def test_no_single_frame_reveals_the_direction(digits):
    # A nearest-class-mean classifier on one frame: at chance (1/8) on the torus, while on the
    # bounded frame, where a digit moving east must start in the west, frame 0 gives the label
    # away more than three times as often; so this check does see a leak where there is one.
    train_digits = load_dataset("mnist-sample", "train").images
    acc = {}
    for wrap in (True, False):
        a, la = moving_mnist(train_digits, n_clips=4000, rng=1, wrap=wrap)
        b, lb = moving_mnist(digits, n_clips=2000, rng=2, wrap=wrap)
        acc[wrap] = [_nearest_mean_accuracy(a[:, 0, f], la, b[:, 0, f], lb) for f in (0, 8, 15)]
    assert max(acc[True]) < 0.16, acc  # chance 0.125; 2,000 test clips: sd 0.007
    assert acc[False][0] > 0.35, acc


@pytest.mark.parametrize("kw, exc, pat", [
    ({"digits": np.zeros((3, 28, 28), np.float32)}, TypeError, r"digits must be a uint8"),
    ({"digits": np.zeros((3, 2, 28, 28), np.uint8)}, ValueError, r"digits must be \(N, 1, h, w\)"),
    ({"digits": np.zeros((0, 28, 28), np.uint8)}, ValueError, r"digits must be .* N, h, w >= 1"),
    ({"digits": np.zeros((3, 28, 28), np.uint8), "size": 27}, ValueError,
     r"digits of 28x28 do not fit in a 27x27 frame"),
    ({"n_clips": 0}, ValueError, r"n_clips must be >= 1, got 0"),
    ({"n_clips": 2.5}, TypeError, r"n_clips must be an int"),
    ({"frames": 1}, ValueError, r"frames must be >= 2"),
    ({"rng": None}, TypeError, r"rng must be a numpy.random.Generator or an int seed"),
    ({"rng": -1}, TypeError, r"rng must be a numpy.random.Generator or an int seed"),
    ({"speed": 0.0}, ValueError, r"speed must satisfy 0 < low <= high < size / 2 - 1 = 15\.0"),
    ({"speed": (2.0, 1.0)}, ValueError, r"speed must satisfy"),
    ({"speed": 15.0}, ValueError, r"speed must satisfy"),
    ({"speed": (1, 2, 3)}, TypeError, r"speed must be a number or a \(low, high\) pair"),
    ({"speed": "fast"}, TypeError, r"speed must be a real number"),
    ({"wrap": 1}, TypeError, r"wrap must be a bool"),
    ({"wrap": False, "speed": 2.5}, ValueError,
     r"with wrap=False a digit moving up to 2\.5 pixels per frame travels 38 pixels over 16 "
     r"frames, but its centre has only 30 pixels of room"),
])
def test_bad_arguments(kw, exc, pat):
    args = {"digits": np.zeros((3, 1, 28, 28), np.uint8), "n_clips": 4, "rng": 0, **kw}
    with pytest.raises(exc, match=r"^moving_mnist: " + pat):
        moving_mnist(args.pop("digits"), **args)


# --- the registered data set ----------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "test"])
def test_registered_splits(split):
    ds = load_dataset("moving-mnist", split)
    n = MOVING_MNIST_SPLITS[split]["n_clips"]
    assert ds.name == "moving-mnist" and ds.split == split and ds.classes == DIRECTIONS
    assert ds.images.shape == (n, 1, 16, 32, 32) and ds.labels.shape == (n,)
    source = load_dataset("mnist-sample", split).images  # clips of this split's digits
    clips, labels = moving_mnist(source, **MOVING_MNIST_SPLITS[split])
    assert np.array_equal(ds.images, clips) and np.array_equal(ds.labels, labels)


def test_split_seeds_differ():
    assert MOVING_MNIST_SPLITS["train"]["rng"] != MOVING_MNIST_SPLITS["test"]["rng"]
    assert 4000 <= MOVING_MNIST_SPLITS["train"]["n_clips"] <= 8000
    assert 1000 <= MOVING_MNIST_SPLITS["test"]["n_clips"] <= 2000


def test_registered_from_idx_files(tmp_path, idx_writer):
    # root= reads the digits from MNIST files (here 7 synthetic images: drawn with replacement)
    x, _ = idx_writer.write(tmp_path, "test", n=7)
    ds = load_dataset("moving-mnist", "test", root=tmp_path)
    clips, labels = moving_mnist(x, **MOVING_MNIST_SPLITS["test"])
    np.testing.assert_array_equal(ds.images, clips)
    np.testing.assert_array_equal(ds.labels, labels)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte.gz not found"):
        load_dataset("moving-mnist", "test", root=tmp_path / "empty")


@needs_mnist
def test_registered_from_full_mnist():
    full = load_dataset("mnist", "test", root=SHARED_DATA / "mnist")
    ds = load_dataset("moving-mnist", "test", root=SHARED_DATA / "mnist")
    clips, _ = moving_mnist(full.images, **MOVING_MNIST_SPLITS["test"])
    np.testing.assert_array_equal(ds.images, clips)
    assert not np.array_equal(ds.images, load_dataset("moving-mnist", "test").images)
