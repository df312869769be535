"""Sections 1 and 3 through the command: hostile images, arrays and checkpoints given to
``convprop predict`` and ``convprop evaluate``. Every case runs the real command in its own
process and must end with exit status 1, exactly one line on stderr naming the file (or the
problem), no traceback, and no NaN printed as a result."""

import gzip
import struct
import zlib

import numpy as np
import pytest
from attack import assert_one_line_error, resign, run_cli, run_many


def _png(width, height, idat=b"", color_type=0):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(
        b"IEND", b"")


def _good_png():
    rows = b"".join(b"\0" + bytes(range(28)) for _ in range(28))
    return _png(28, 28, zlib.compress(rows))


def _npy_with_header(descr, shape, data=b""):
    head = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    head += b" " * (-(len(head) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head + data


def _npy(tmp, name, a):
    p = tmp / name
    with open(p, "wb") as f:
        np.save(f, a, allow_pickle=True)
    return p


# name -> (writer(tmp) -> path, needles); the path itself is always a needle too
def _predict_cases():
    img = np.full((28, 28), 128.0)
    return {
        "png-bomb": (lambda t: _w(t, "bomb.png", _png(20000, 20000)), ["too large"]),
        "png-truncated": (lambda t: _w(t, "cut.png", _good_png()[:60]), ["cannot read"]),
        "png-garbage": (lambda t: _w(t, "junk.png", b"\x89PNG\r\n\x1a\n" + bytes(50)),
                        ["cannot read"]),
        "png-empty": (lambda t: _w(t, "empty.png", b""), ["cannot read"]),
        "eps-refused": (lambda t: _w(t, "evil.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox:"
                                     b" 0 0 28 28\n"), ["cannot read"]),
        "gzip-as-png": (lambda t: _w(t, "z.png", gzip.compress(b"\0" * 1000)), ["cannot read"]),
        "npy-object": (lambda t: _npy(t, "obj.npy", np.array([{"a": 1}] * 784, dtype=object)
                                      .reshape(28, 28)), ["object"]),
        "npy-string": (lambda t: _npy(t, "str.npy", np.full((28, 28), "x")), ["<U1"]),
        "npy-bytes": (lambda t: _npy(t, "bytes.npy", np.full((28, 28), b"x")), ["|S1"]),
        "npy-complex": (lambda t: _npy(t, "cplx.npy", img.astype(complex)), ["complex"]),
        "npy-structured": (lambda t: _npy(t, "rec.npy", np.zeros((28, 28), "i4,f4")),
                           ["expected real numbers"]),
        "npy-datetime": (lambda t: _npy(t, "dt.npy", np.zeros((28, 28), "M8[s]")),
                         ["datetime64"]),
        "npy-huge-shape": (lambda t: _w(t, "huge.npy", _npy_with_header("<f8", (10**12,))),
                           ["has shape (1000000000000,)"]),
        "npy-shape-wraps": (lambda t: _w(t, "wrap.npy", _npy_with_header(
            "<f8", (2**32, 2**32, 784))), ["has shape"]),
        "npy-truncated": (lambda t: _w(t, "short.npy", _npy_with_header(
            "<f8", (28, 28), b"\0" * 100)), ["truncated"]),
        "npy-trailing": (lambda t: _w(t, "long.npy", _npy_with_header(
            "<u1", (28, 28), b"\0" * 800)), ["trailing"]),
        "npy-bad-magic": (lambda t: _w(t, "text.npy", b"hello world, not an array"),
                          ["not a valid .npy"]),
        "npy-huge-header": (lambda t: _w(t, "hdr.npy", b"\x93NUMPY\x02\x00"
                                         + struct.pack("<I", 10**8) + b"{" * 64),
                            ["not a valid .npy"]),
        "npy-nan": (lambda t: _npy(t, "nan.npy", np.where(np.eye(28) > 0, np.nan, img)),
                    ["NaN or infinite"]),
        "npy-inf": (lambda t: _npy(t, "inf.npy", np.where(np.eye(28) > 0, -np.inf, img)),
                    ["NaN or infinite"]),
        "npy-far-above": (lambda t: _npy(t, "big.npy", img * 1e6), ["far outside"]),
        "npy-far-below": (lambda t: _npy(t, "neg.npy", img - 1000), ["far outside"]),
        "npy-float-max": (lambda t: _npy(t, "fmax.npy", np.full((28, 28), 3e38, np.float32)),
                          ["far outside"]),
        "npy-wrong-shape": (lambda t: _npy(t, "rgb.npy", np.zeros((3, 28, 28))),
                            ["has shape (3, 28, 28)"]),
        "npy-0-d": (lambda t: _npy(t, "scalar.npy", np.float64(3)), ["has shape ()"]),
        "npy-directory": (lambda t: _mkdir(t, "dir.npy"), ["is a directory"]),
        "npy-fifo": (lambda t: _fifo(t, "pipe.npy"), ["is a FIFO"]),
        "npy-dev-zero": (lambda t: _link(t, "zero.npy", "/dev/zero"), ["is a device"]),
        "png-fifo": (lambda t: _fifo(t, "pipe.png"), ["is a FIFO"]),
        "missing": (lambda t: t / "nowhere.npy", ["not found"]),
        "newline-in-name": (lambda t: _npy(t, "a\nb.npy", np.zeros((3, 3))), ["a\\nb.npy"]),
    }


def _w(tmp, name, data):
    p = tmp / name
    p.write_bytes(data)
    return p


def _mkdir(tmp, name):
    (tmp / name).mkdir()
    return tmp / name


def _fifo(tmp, name):
    import os
    if not hasattr(os, "mkfifo"):  # not POSIX: a directory stands in (refused the same way)
        return _mkdir(tmp, name)
    os.mkfifo(tmp / name)
    return tmp / name


def _link(tmp, name, target):
    (tmp / name).symlink_to(target)
    return tmp / name


PREDICT = _predict_cases()


@pytest.fixture(scope="module")
def predict_results(trained, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("predict")
    paths = {k: w(tmp) for k, (w, _) in PREDICT.items()}
    results = run_many({k: (["predict", trained, p], None) for k, p in paths.items()})
    return paths, results


try:
    import PIL  # noqa: F401
    HAVE_PIL = True
except ImportError:
    HAVE_PIL = False


@pytest.mark.parametrize("case", list(PREDICT))
def test_predict_refuses_hostile_input(predict_results, case):
    if not HAVE_PIL and not case.startswith(("npy", "missing", "newline")):
        pytest.skip("Pillow is not installed (pip install 'convprop[images]')")
    paths, results = predict_results
    needles = PREDICT[case][1]
    name = str(paths[case]).replace("\n", "\\n")
    assert_one_line_error(results[case], "convprop predict: error:", name, *needles)


@pytest.mark.skipif(not HAVE_PIL, reason="Pillow is not installed")
def test_predict_accepts_the_honest_inputs(trained, tmp_path):
    ok = [_w(tmp_path, "digit.png", _good_png()),
          _npy(tmp_path, "raw.npy", np.full((28, 28), 200, np.uint8)),
          _npy(tmp_path, "edge.npy", np.full((1, 28, 28), -20.0))]  # inside the tolerance
    rc, out, err = run_cli("predict", trained, *ok)
    assert rc == 0, err
    assert len(out.splitlines()) == 3 and "nan" not in out.lower()


# --- checkpoints whose model computes garbage ----------------------------------------------

def _huge_weights(t):
    for k in t:
        if k.endswith("weight"):
            t[k][...] = 3e38  # finite float32, but the outputs overflow to infinity


@pytest.fixture(scope="module")
def garbage_model(trained, tmp_path_factory):
    import shutil
    p = tmp_path_factory.mktemp("garbage") / "ck.safetensors"
    shutil.copy(trained, p)
    return resign(p, edit_tensors=_huge_weights)


def test_evaluate_refuses_non_finite_outputs(garbage_model):
    assert_one_line_error(run_cli("evaluate", garbage_model), "non-finite outputs",
                          str(garbage_model))


def test_predict_refuses_non_finite_outputs(garbage_model, tmp_path):
    x = _npy(tmp_path, "x.npy", np.zeros((28, 28)))
    assert_one_line_error(run_cli("predict", garbage_model, x), "non-finite outputs",
                          str(garbage_model))


def _idx(magic, shape, payload):
    return gzip.compress(magic.to_bytes(4, "big")
                         + b"".join(s.to_bytes(4, "big") for s in shape) + payload)


@pytest.mark.parametrize("dataset, rows, needles", [
    ("fashion-mnist", 28, ["mnist-sample", "fashion-mnist", "classes"]),
    ("mnist", 14, ["mnist-sample", "(1, 28, 28)", "(1, 14, 14)"]),
])
def test_evaluate_refuses_data_that_does_not_match(trained, tmp_path, dataset, rows, needles):
    n = 4
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(
        _idx(0x803, (n, rows, rows), bytes(n * rows * rows)))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(_idx(0x801, (n,), bytes(n)))
    r = run_cli("evaluate", trained, "--dataset", dataset, "--data-dir", tmp_path)
    assert_one_line_error(r, "convprop evaluate: error:", str(trained), *needles)
