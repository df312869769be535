"""The kernel contract, checked the same way for every kernel pair (in the spirit of Chainer's
``FunctionTestCase``).

A :class:`Kernel` binds a pair ``forward(*inputs) -> (y, cache)`` /
``backward(dy, cache) -> grads`` with its hyperparameters, and checks the five clauses every
kernel in ``convprop.functional`` promises:

1. :meth:`Kernel.check_forward`: y (and any extra outputs, e.g. max pooling's indices)
   equals an independent loop oracle written in the test.
2. :meth:`Kernel.check_gradient`: backward equals a float64 central-difference
   vector-Jacobian product with a *random* upstream gradient (``convprop.gradcheck``).
3. :meth:`Kernel.check_hostile`: read-only, non-contiguous and read-only non-contiguous
   inputs (and dy) give the same results as fresh C-ordered ones, and stay untouched.
4. :meth:`Kernel.check_dtypes`: float32 and float64 inputs give outputs and gradients of
   that dtype, the float32 ones close to float64's.
5. :func:`raises` / :meth:`Kernel.raises` for an op's own checks, and the checks every
   kernel shares: :meth:`Kernel.check_type_errors` (inputs that are not float arrays of one
   dtype) and :meth:`Kernel.check_dy_errors` (a dy of the wrong shape or dtype). Errors are
   ``ValueError`` / ``TypeError`` whose message starts with the op name.

Nothing here imports convprop except the gradient checker, which is itself tested on
planted bugs (tests/test_gradcheck.py); the kernels come in as callables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pytest
from helpers import hostile, noncontiguous, readonly

from convprop.gradcheck import check_kernel

__all__ = ["Kernel", "arrays", "on_zeros", "raises", "ntuple", "HOSTILE"]

#: The input variants of clause 3, by name: each must give the plain run's results.
HOSTILE = {"readonly": readonly, "noncontiguous": noncontiguous, "hostile": hostile}


def ntuple(v, n: int) -> tuple:
    """An int repeated ``n`` times, or a sequence as a tuple (the tests' ``_pair``)."""
    return (v,) * n if isinstance(v, (int, np.integer)) else tuple(v)


def arrays(rng: np.random.Generator, *shapes, dtype=np.float64) -> list:
    """Standard-normal arrays of the given shapes in ``dtype`` (None for a None shape)."""
    return [None if s is None else rng.standard_normal(s).astype(dtype) for s in shapes]


def on_zeros(forward: Callable, args: Sequence, **kw):
    """``forward(*args, **kw)`` with every shape tuple in ``args`` replaced by float64 zeros
    of that shape; other arguments (arrays, None) are passed as they are. For the error
    tests of an op's own checks, where only shapes matter."""
    return forward(*(np.zeros(a) if isinstance(a, tuple) else a for a in args), **kw)


def raises(op: str, match: str = "", exc: type = ValueError):
    """``pytest.raises(exc)`` for a message that starts with ``"<op>: "`` and continues with
    text the regex ``match`` matches."""
    return pytest.raises(exc, match=rf"^{re.escape(op)}: {match}")


def _as_tuple(out) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _copy(a):
    return a.copy() if isinstance(a, np.ndarray) else a


def _vary(a, make):
    return make(a) if isinstance(a, np.ndarray) and a.ndim else a


def _is_float(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


@dataclass(frozen=True)
class Kernel:
    """A kernel pair under test with its hyperparameters bound.

    ``forward(*inputs) -> (y, cache)``; ``backward(dy, cache)`` returns the gradients of the
    first ``len(names)`` inputs (one array or a tuple; None for a None input or a skipped
    gradient). Inputs after those are not differentiable (indices, running statistics).
    ``extras(cache)`` returns further outputs compared like y (max pooling's indices, batch
    norm's running statistics). ``op`` is the name error messages start with.
    """

    op: str
    forward: Callable
    backward: Callable
    names: tuple = ("x",)
    extras: Callable | None = None

    @classmethod
    def of(cls, forward: Callable, backward: Callable, *, names=("x",), extras=None, **kw):
        """The pair ``forward(*inputs, **kw)`` / ``backward``, ``op`` taken from the forward's
        name (``conv1d_forward`` -> ``conv1d``)."""
        op = forward.__name__.removesuffix("_forward")
        return cls(op, lambda *a: forward(*a, **kw), backward, tuple(names), extras)

    # ------------------------------------------------------------------ running

    def run(self, inputs: Sequence, dy=None, rng: np.random.Generator | None = None):
        """``(outputs, grads, dy)``: outputs is ``(y, *extras)``; dy is drawn from ``rng``
        in y's dtype when not given."""
        y, cache = self.forward(*inputs)
        extras = _as_tuple(self.extras(cache)) if self.extras else ()
        if dy is None:
            dy = rng.standard_normal(np.shape(y)).astype(y.dtype)
        grads = _as_tuple(self.backward(dy, cache))
        return (y, *extras), grads[:len(self.names)], dy

    # ------------------------------------------------------------------ the clauses

    def check_forward(self, inputs: Sequence, oracle: Callable, *, rtol=1e-12, atol=1e-12):
        """1. ``oracle(*inputs)`` (y, or a tuple ``(y, *extras)``) equals the forward."""
        y, cache = self.forward(*inputs)
        got = (y, *(_as_tuple(self.extras(cache)) if self.extras else ()))
        want = _as_tuple(oracle(*inputs))
        assert len(want) == len(got), f"{self.op}: oracle gives {len(want)} outputs"
        for i, (a, e) in enumerate(zip(got, want)):
            assert np.shape(a) == np.shape(e), (
                f"{self.op} output {i}: shape {np.shape(a)}, the oracle's {np.shape(e)}")
            if _is_float(a):
                np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"output {i}")
            else:
                np.testing.assert_array_equal(a, e, err_msg=f"output {i}")
        return got

    def check_gradient(self, inputs: Sequence, rng: np.random.Generator, **tol):
        """2. The backward equals the float64 numerical VJP for a random dy, for every
        non-None differentiable input (``tol``: check_kernel's eps / tol / atol)."""
        k = len(self.names)
        diff, rest = list(inputs[:k]), list(inputs[k:])
        live = [i for i, a in enumerate(diff) if a is not None]

        def forward(*xs):
            full = list(diff)
            for i, x in zip(live, xs):
                full[i] = x
            return self.forward(*full, *rest)

        def backward(dy, cache):
            grads = _as_tuple(self.backward(dy, cache))
            return tuple(grads[i] for i in live)

        report = check_kernel(forward, backward, [diff[i] for i in live],
                              names=[self.names[i] for i in live], rng=rng, **tol)
        assert report.passed, f"{self.op}: {report}"
        return report

    def check_hostile(self, inputs: Sequence, rng: np.random.Generator, *, rtol=0.0,
                      atol=0.0, variants: Sequence[str] = tuple(HOSTILE)):
        """3. Every input array and dy passed read-only, non-contiguous and both (``variants``)
        gives the plain run's outputs and gradients (exactly unless a tolerance is given),
        and no argument is written."""
        plain = [_copy(a) for a in inputs]
        outs, grads, dy = self.run(plain, rng=rng)
        want = (*outs, *grads)
        for name in variants:
            make = HOSTILE[name]
            args = [_vary(a, make) for a in inputs]
            hdy = _vary(dy, make)
            o2, g2, _ = self.run(args, dy=hdy)
            for i, (a, e) in enumerate(zip((*o2, *g2), want)):
                if e is None:
                    assert a is None, f"{self.op} ({name}): result {i} should be None"
                    continue
                np.testing.assert_allclose(a, e, rtol=rtol, atol=atol,
                                           err_msg=f"{self.op} ({name}): result {i}")
            for h, orig in zip((*args, hdy), (*inputs, dy)):
                if isinstance(orig, np.ndarray):
                    np.testing.assert_array_equal(h, orig, err_msg=f"{self.op} wrote an input")

    def check_dtypes(self, inputs: Sequence, rng: np.random.Generator, *, rtol=1e-4,
                     atol=1e-4, dtypes=(np.float32, np.float64)):
        """4. Float inputs cast to each dtype give outputs and gradients of that dtype (float
        extras too); each run agrees with the float64 one within the tolerance."""
        ref, dy64 = None, None
        for dt in sorted(dtypes, key=lambda t: -np.dtype(t).itemsize):  # float64 first
            cast = [a.astype(dt) if _is_float(a) else _copy(a) for a in inputs]
            outs, grads, dy = self.run(cast, dy=None if dy64 is None else dy64.astype(dt),
                                       rng=rng)
            dy64 = dy if dy64 is None else dy64
            got = [a for a in (*outs, *grads) if a is not None]
            for a in got:
                if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                    assert a.dtype == dt, f"{self.op}: a {np.dtype(dt).name} run gave {a.dtype}"
            if ref is None:
                ref = got
                continue
            for i, (a, e) in enumerate(zip(got, ref)):
                np.testing.assert_allclose(a, e, rtol=rtol, atol=atol,
                                           err_msg=f"{self.op} {np.dtype(dt).name}: result {i}")

    def raises(self, match: str = "", exc: type = ValueError):
        """5. :func:`raises` for this op's forward."""
        return raises(self.op, match, exc)

    def check_type_errors(self, inputs: Sequence):
        """5. Each differentiable float input passed as a list, as integers, or (beside other
        float arrays) in the other float dtype raises a TypeError naming the op and the
        argument."""
        floats = sum(_is_float(a) for a in inputs)
        for i, name in enumerate(self.names):
            a = inputs[i]
            if not _is_float(a):
                continue
            other = np.float32 if a.dtype == np.float64 else np.float64
            cases = [(a.tolist(), f"{name} must be a numpy.ndarray"),
                     (a.astype(np.int64), f"{name} must be float32 or float64")]
            if floats > 1:
                cases.append((a.astype(other), "all arrays must share one dtype"))
            for bad, match in cases:
                with raises(self.op, match, TypeError):
                    self.forward(*inputs[:i], bad, *inputs[i + 1:])

    def check_dy_errors(self, inputs: Sequence):
        """5. The backward names itself and rejects a dy of the wrong shape (ValueError) or of
        another dtype than the forward's (TypeError)."""
        y, cache = self.forward(*inputs)
        op, shape = f"{self.op}_backward", np.shape(y)
        bad = np.zeros(shape[:-1] + (shape[-1] + 1,) if shape else (2,), y.dtype)
        with raises(op, f"dy must have shape {re.escape(str(shape))}"):
            self.backward(bad, cache)
        other = np.float32 if y.dtype == np.float64 else np.float64
        with raises(op, "dy must have the forward dtype", TypeError):
            self.backward(np.zeros(np.shape(y), other), cache)
