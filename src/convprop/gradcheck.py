"""Numerical gradient checking for kernels and whole modules.

The analytic backward pass is compared with a central-difference vector-Jacobian product
of ``L = sum(dy * f(inputs))`` for a *random* upstream gradient ``dy`` (an all-ones ``dy``
hides bugs that only permute or mis-scale gradients), in float64, by the norm-wise
relative error ``||g_analytic - g_numeric|| / max(||g_analytic|| + ||g_numeric||, tiny)``.
A tensor whose absolute difference norm is at most ``atol`` counts as exact (error 0), so a
gradient that is zero in theory does not fail on rounding noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

__all__ = ["GradcheckReport", "GradcheckError", "numerical_vjp", "check_kernel",
           "check_module"]


class GradcheckError(AssertionError):
    """Raised by :meth:`GradcheckReport.raise_if_failed`."""


@dataclass
class GradcheckReport:
    """Per-tensor relative errors and where the worst disagreement is."""

    errors: dict = field(default_factory=dict)          # name -> norm-wise relative error
    worst_index: dict = field(default_factory=dict)     # name -> index of max abs difference
    tol: float = 1e-6
    values: dict = field(default_factory=dict)          # name -> (analytic, numeric) there

    @staticmethod
    def _key(err: float) -> float:
        return np.inf if np.isnan(err) else err  # a NaN error is the worst possible

    @property
    def worst(self) -> str | None:
        return max(self.errors, key=lambda n: self._key(self.errors[n])) if self.errors else None

    @property
    def max_error(self) -> float:
        return self.errors[self.worst] if self.errors else 0.0

    @property
    def passed(self) -> bool:
        return all(self._key(e) <= self.tol for e in self.errors.values())

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        status = "passed" if self.passed else "FAILED"
        lines = [f"gradcheck {status}: max relative error {self.max_error:.3e} "
                 f"(tolerance {self.tol:.1e})"]
        for name, err in self.errors.items():
            mark = "  <- worst" if name == self.worst and not self.passed else ""
            at = ""
            if name in self.values:
                a, n = self.values[name]
                at = f" (analytic {a:.6g}, numeric {n:.6g})"
            lines.append(f"  {name}: {err:.3e} at index {self.worst_index[name]}{at}{mark}")
        return "\n".join(lines)

    def raise_if_failed(self) -> "GradcheckReport":
        if not self.passed:
            raise GradcheckError(str(self))
        return self


def _rel_error(a: np.ndarray, n: np.ndarray, atol: float) -> float:
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(n))):
        return float("inf")  # NaN/inf would otherwise compare as "not above tolerance"
    num = np.linalg.norm((a - n).ravel())
    if num <= atol:
        # both (nearly) zero: e.g. a bias feeding batch norm has a true gradient of 0, which
        # comes out as ~1e-14 analytically and exactly 0 numerically (relative error 1.0)
        return 0.0
    den = max(np.linalg.norm(a.ravel()) + np.linalg.norm(n.ravel()), 1e-300)
    return float(num / den) if num > 0 else 0.0


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False  # a backward that writes into dy raises instead of skewing the check
    return a


def numerical_vjp(f: Callable[[], np.ndarray], x: np.ndarray, dy: np.ndarray,
                  eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of ``sum(dy * f())`` with respect to ``x``.

    ``x`` is perturbed in place, one element at a time, and restored exactly."""
    if not (x.flags.c_contiguous and x.flags.writeable):
        raise ValueError("numerical_vjp: x must be C-contiguous and writeable so it can be "
                         f"perturbed in place (got contiguous={x.flags.c_contiguous}, "
                         f"writeable={x.flags.writeable})")
    g = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)  # a view, since x is C-contiguous
    gf = g.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        fp = np.sum(dy * f())
        flat[k] = old - eps
        fm = np.sum(dy * f())
        flat[k] = old
        gf[k] = (fp - fm) / (2 * eps)
    return g


def _report(pairs, tol, atol) -> GradcheckReport:
    rep = GradcheckReport(tol=tol)
    for name, a, n in pairs:
        a = np.asarray(a, dtype=np.float64)
        if a.shape != n.shape:
            raise ValueError(f"gradcheck: analytic gradient of {name} has shape {a.shape}, "
                             f"expected {n.shape}")
        rep.errors[name] = _rel_error(a, n, atol)
        diff = np.abs(a - n)
        if diff.size:
            k = np.unravel_index(np.argmax(diff), diff.shape)  # argmax picks a NaN first
            rep.worst_index[name] = tuple(int(i) for i in k)
            rep.values[name] = (float(a[k]), float(n[k]))
        else:
            rep.worst_index[name] = ()
    return rep


def check_kernel(forward: Callable, backward: Callable, inputs: Sequence[np.ndarray], *,
                 names: Sequence[str] | None = None, rng: np.random.Generator | None = None,
                 eps: float = 1e-6, tol: float = 1e-6, atol: float = 1e-9) -> GradcheckReport:
    """Check a kernel pair: ``forward(*inputs) -> (y, cache)``, ``backward(dy, cache)`` returns
    the gradients of ``inputs`` in order (a single array for one input; ``None`` entries are
    skipped; extra trailing gradients are ignored, missing ones are an error). Inputs are cast
    to float64 copies; non-differentiable arguments belong in a closure. ``dy`` is passed
    read-only. Forward must be deterministic (seed any Generator inside the closure)."""
    rng = np.random.default_rng(0) if rng is None else rng
    xs = [np.array(x, dtype=np.float64, copy=True) for x in inputs]
    names = list(names) if names is not None else [f"input{i}" for i in range(len(xs))]
    y, cache = forward(*xs)
    dy = _readonly(rng.standard_normal(np.shape(y)))
    grads = backward(dy, cache)
    grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
    if len(grads) < len(xs):
        raise ValueError(f"gradcheck: backward returned {len(grads)} gradient(s) for "
                         f"{len(xs)} input(s) {names}; return None for a skipped input")
    pairs = []
    for i, (x, g) in enumerate(zip(xs, grads)):
        if g is None:
            continue
        n = numerical_vjp(lambda: forward(*xs)[0], x, dy, eps)
        pairs.append((names[i], g, n))
    return _report(pairs, tol, atol)


def check_module(module, x: np.ndarray, *, training: bool = True,
                 rng: np.random.Generator | None = None, eps: float = 1e-6,
                 tol: float = 1e-6, atol: float = 1e-9) -> GradcheckReport:
    """Check a whole module: the gradient of its input and of every parameter.

    The module is cast to float64 in place. Every evaluation reloads one snapshot of the
    state (so running statistics do not drift between evaluations); a parameter is perturbed
    in that snapshot. Stochastic layers must be deterministic across calls (dropout with
    p=0, or evaluation mode). Parameter ``.grad`` is zero after the check."""
    rng = np.random.default_rng(0) if rng is None else rng
    module.astype(np.float64)
    state = module.state_dict()  # copies, contiguous
    x = np.array(x, dtype=np.float64, copy=True)

    def run():
        module.load_state_dict(state)
        return module.forward(x, training=training)[0]

    module.load_state_dict(state)
    y, cache = module.forward(x, training=training)
    dy = _readonly(rng.standard_normal(np.shape(y)))
    module.zero_grad()
    dx = module.backward(dy, cache)
    pairs = [("input", dx, numerical_vjp(run, x, dy, eps))]
    for name, p in list(module.named_parameters()):
        pairs.append((name, p.grad.copy(), numerical_vjp(run, state[name], dy, eps)))
    module.load_state_dict(state)
    module.zero_grad()
    return _report(pairs, tol, atol)
