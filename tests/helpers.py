"""Test helpers that import nothing from convprop."""

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(os.environ.get(
    "CONVPROP_SHARED_DATA",
    Path(__file__).resolve().parents[2] / "shared" / "data"))

needs_mnist = pytest.mark.skipif(
    not (SHARED_DATA / "mnist" / "train-images-idx3-ubyte.gz").exists(),
    reason=f"the full MNIST copy is not at {SHARED_DATA / 'mnist'} (../shared/data beside the "
           "checkout, or set CONVPROP_SHARED_DATA)")


def readonly(x: np.ndarray) -> np.ndarray:
    """A read-only copy: a kernel that writes into its input raises."""
    y = np.array(x, copy=True)
    y.flags.writeable = False
    return y


def noncontiguous(x: np.ndarray) -> np.ndarray:
    """A non-contiguous (strided) view with the same values as ``x``."""
    big = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
    big[..., ::2] = x
    v = big[..., ::2]
    assert not v.flags.c_contiguous or x.shape[-1] <= 1
    return v


def hostile(x: np.ndarray) -> np.ndarray:
    """Read-only *and* non-contiguous."""
    v = noncontiguous(x)
    v.flags.writeable = False
    return v


def rel_error(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)
    return float(np.linalg.norm(a - b) / den)



def run_cli(capsys, *argv):
    """``convprop`` run in-process: ``(exit status, stdout, stderr)``; arguments may be paths.
    argparse's exits (``--help``, usage errors) count as a status, not an exception. (convprop
    is imported when called, so importing this module still imports nothing of it.)"""
    from convprop.cli import main
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err
