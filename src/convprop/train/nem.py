"""Noise-enhanced training (NEM noise on the output targets) as a :func:`fit` callback.

Audhkhasi, Osoba and Kosko, "Noise-enhanced convolutional neural networks", Neural Networks
78 (2016) 15-23. Backpropagation is a generalized EM algorithm; the Noisy-EM theorem says
that noise speeds EM up on average when it makes the current output more probable:
``E[ln p(t + n | a) - ln p(t | a)] >= 0`` for the output activations ``a`` at the current
weights. For the network's output likelihood this gives the two conditions used here:

- softmax output / cross-entropy (multinomial likelihood ``ln p(t|a) = sum_k t_k ln a_k``):
  the **hyperplane** ``n . ln(a) >= 0``, with ``a = softmax(logits)``;
- linear output / squared error (Gaussian likelihood ``ln p(t|a) = -||t - a||^2 / 2 + c``):
  the **hypersphere** ``||t + n - a||^2 <= ||t - a||^2`` (noise inside the ball centred at
  ``a - t`` through the origin: it moves the target towards the output).

Each step (``on_loss_begin``: after the forward, before the loss) draws one noise vector per
example; the examples whose noise satisfies the condition get ``t + n`` as their target, the
others keep ``t`` unchanged: rejected noise never reaches the loss (the method as its
authors' patent application US 2016/0019459 words it: generate the perturbation, determine
whether it satisfies the condition, and inject it if it does).

Choices where the sources available here leave room (the paper's abstract, its NEM theorem
and the patent text; the constants of the paper's experiment were not available), said here
so a reader can change them:

- One draw per example and step; a rejected draw is not redrawn.
- Noise: uniform on the cube ``[-s_t/2, s_t/2]^K`` (the abstract's "uniform-noise
  hypercube"; the "Gaussian ball" ``N(0, s_t^2 I)`` with ``distribution="gaussian"``).
- Annealing: ``s_t = scale / t**decay`` with ``t`` the 1-based epoch (``anneal="epoch"``) or
  optimizer step (``anneal="step"``), so the noise fades as training converges. Defaults
  ``scale=1``, ``decay=1``, per epoch.
- Resuming: the callback's generator and step counter live on the object, not in a
  checkpoint; a run resumed from a checkpoint with a new ``NEMNoise`` draws other noise and,
  with ``anneal="step"``, restarts the schedule at t = 1 (``anneal="epoch"`` reads fit's
  epoch, so its schedule continues).
- Integer class targets become one-hot rows of the output's dtype before the noise is added,
  and the cross-entropy then takes them as class probabilities (PyTorch's rule for float
  targets; the noisy rows are not renormalised, so a row's mass may differ from 1).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import finite_number
from .callbacks import Callback

__all__ = ["NEMDraw", "NEMNoise", "nem_condition"]

_LOSSES = ("cross_entropy", "mse")


def _log_softmax(z: np.ndarray) -> np.ndarray:
    s = z - z.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def nem_condition(noise: np.ndarray, out: np.ndarray, targets: np.ndarray,
                  loss: str = "cross_entropy") -> np.ndarray:
    """Which rows of ``noise`` satisfy the NEM positivity condition (bool (N,)).

    ``"cross_entropy"``: ``sum_k n_k log softmax(out)_k >= 0`` (``out`` are logits);
    ``"mse"``: ``||targets + n - out||^2 <= ||targets - out||^2``, evaluated as
    ``||n||^2 + 2 n . (targets - out) <= 0`` (the same inequality without the cancellation).
    ``noise``, ``out``, ``targets``: (N, K) float arrays."""
    op = "nem_condition"
    if loss not in _LOSSES:
        raise ValueError(f"{op}: loss must be one of {_LOSSES}, got {loss!r}")
    noise, out = np.asarray(noise), np.asarray(out)
    if noise.ndim != 2 or noise.shape != out.shape:
        raise ValueError(f"{op}: noise and out must both be (N, K) of one shape, got "
                         f"{noise.shape} and {out.shape}")
    if loss == "cross_entropy":
        return np.einsum("nk,nk->n", noise, _log_softmax(out)) >= 0
    targets = np.asarray(targets)
    if targets.shape != out.shape:
        raise ValueError(f"{op}: targets must have out's shape {out.shape}, got "
                         f"{targets.shape}")
    return np.einsum("nk,nk->n", noise, noise + 2 * (targets - out)) <= 0


class NEMDraw(NamedTuple):
    """One step's noise: the draw, which rows were accepted, the targets before and the
    targets the loss received (``targets + noise * accepted[:, None]``)."""

    epoch: int
    step: int
    scale: float
    noise: np.ndarray
    accepted: np.ndarray
    targets: np.ndarray
    noisy_targets: np.ndarray


class NEMNoise(Callback):
    """Add NEM noise to the targets of every training step (see the module docstring).

    Args:
        loss: "cross_entropy" (softmax output, hyperplane condition; use with
            ``CrossEntropyLoss``) or "mse" (linear output, hypersphere; use with ``MSELoss``).
        scale: noise size at t = 1 (the cube's width, or the Gaussian's std), >= 0.
        decay: annealing power d in ``scale / t**d`` (0: no annealing).
        distribution: "uniform" (cube) or "gaussian" (ball).
        anneal: "epoch" (t = the epoch number) or "step" (t = the optimizer step, from 1).
        seed: int or numpy Generator; the callback's own generator, so the noise is
            reproducible and leaves fit's shuffling untouched.
        record: keep every step's :class:`NEMDraw` in ``self.draws`` (for inspection).

    Counters ``accepted`` and ``drawn`` (examples) and ``epoch_accept_rate`` (one float per
    epoch) say how often the condition held."""

    def __init__(self, loss: str = "cross_entropy", *, scale: float = 1.0, decay: float = 1.0,
                 distribution: str = "uniform", anneal: str = "epoch", seed=0,
                 record: bool = False):
        op = "NEMNoise"
        if loss not in _LOSSES:
            raise ValueError(f"{op}: loss must be one of {_LOSSES}, got {loss!r}")
        if distribution not in ("uniform", "gaussian"):
            raise ValueError(f"{op}: distribution must be 'uniform' or 'gaussian', got "
                             f"{distribution!r}")
        if anneal not in ("epoch", "step"):
            raise ValueError(f"{op}: anneal must be 'epoch' or 'step', got {anneal!r}")
        self.loss = loss
        self.scale = finite_number(op, "scale", scale, low=0.0)
        self.decay = finite_number(op, "decay", decay, low=0.0)
        self.distribution, self.anneal = distribution, anneal
        if isinstance(seed, np.random.Generator):
            self.rng = seed
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            self.rng = np.random.default_rng(int(seed))
        else:
            raise TypeError(f"{op}: seed must be an int or a numpy.random.Generator, got "
                            f"{type(seed).__name__}")
        self.record = bool(record)
        self.draws: list[NEMDraw] = []
        self.accepted = self.drawn = 0
        self.epoch_accept_rate: list[float] = []
        self._steps = 0
        self._epoch_acc = self._epoch_drawn = 0

    def noise_scale(self, t: int) -> float:
        """``s_t = scale / t**decay`` for the 1-based annealing time t."""
        return self.scale / float(t) ** self.decay

    def _targets(self, y, out: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        N, K = out.shape
        if y.dtype.kind in "iu" and y.shape == (N,):
            if np.any((y < 0) | (y >= K)):
                raise ValueError(f"NEMNoise: class targets must lie in [0, {K})")
            return np.eye(K, dtype=out.dtype)[y]
        if y.dtype.kind == "f" and y.shape == (N, K):
            return y.astype(out.dtype, copy=False)
        raise ValueError(f"NEMNoise: targets must be class indices ({N},) or float rows "
                         f"{(N, K)} matching the output, got {y.dtype} {y.shape}")

    def on_batch_begin(self, state, batch):
        self._steps += 1

    def on_loss_begin(self, state, batch):
        out = np.asarray(batch.out)
        if out.ndim != 2:
            raise ValueError(f"NEMNoise: the model output must be (N, K), got {out.shape}")
        t = self._targets(batch.y, out)
        s = self.noise_scale(state.epoch if self.anneal == "epoch" else self._steps)
        if self.distribution == "uniform":
            noise = self.rng.uniform(-s / 2, s / 2, out.shape)
        else:
            noise = self.rng.standard_normal(out.shape) * s
        noise = noise.astype(out.dtype)
        ok = nem_condition(noise, out, t, self.loss)
        noisy = t + noise * ok[:, None].astype(out.dtype)
        batch.y = noisy
        n_ok = int(ok.sum())
        self.accepted += n_ok
        self.drawn += len(ok)
        self._epoch_acc += n_ok
        self._epoch_drawn += len(ok)
        if self.record:
            self.draws.append(NEMDraw(state.epoch, batch.step, s, noise, ok, t, noisy))

    def on_epoch_end(self, state, logs):
        self.epoch_accept_rate.append(self._epoch_acc / max(self._epoch_drawn, 1))
        self._epoch_acc = self._epoch_drawn = 0
