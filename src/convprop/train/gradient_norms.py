"""``GradientNorms``: the gradient norm of every layer over training, recorded by ``fit``.

Vanishing and exploding gradients at a glance (the per-layer view of Glorot and Bengio 2010):
after every backward pass (``on_backward_end``: the gradients are complete, the optimizer has
not stepped), the L2 norm of each layer's parameter gradient is taken; at the end of each
epoch their summary goes into that epoch's history record, so the history
(and every checkpoint written by :class:`~convprop.train.SaveCheckpoint`, which saves the
history) carries them (the epoch's mean and maximum per layer), and ``convprop show
gradients CHECKPOINT`` plots them.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import positive_int
from .callbacks import Callback

__all__ = ["GradientNorms", "gradient_norm_series", "layer_gradient_norms"]

MEAN, MAX = "grad_norm/", "grad_norm_max/"   # the history columns, + layer name


def _layers(model) -> list:
    """(dotted name, [its own parameters]) for every module that owns parameters."""
    out = []
    for name, m in model.named_modules():
        own = [p for p in m._parameters.values() if p is not None]
        if own:
            out.append((name or type(m).__name__, own))
    return out


def layer_gradient_norms(model) -> dict:
    """{layer name: sqrt(sum of its parameters' squared gradient entries)} right now,
    accumulated in float64 (a float32 sum of many squares loses digits)."""
    def sq(g):
        g = np.asarray(g, np.float64).ravel()
        return float(np.dot(g, g))
    return {name: math.sqrt(sum(sq(p.grad) for p in ps)) for name, ps in _layers(model)}


class GradientNorms(Callback):
    """Record each layer's gradient norm every ``every`` steps.

    At each epoch's end the epoch's history record gets two flat columns per layer (the
    history schema of checkpoints holds numbers only, and the CSV stays a table):
    ``"grad_norm/<layer>"``, the mean of the sampled norms, and ``"grad_norm_max/<layer>"``,
    their maximum; None when every sample was non-finite (an overflowed gradient; JSON has
    no NaN). ``self.records`` keeps every sample of the run in memory: (epoch position =
    epoch - 1 + step / steps in the epoch, {layer: norm}). Put this callback before
    ``SaveCheckpoint`` in ``fit(callbacks=...)`` so the epoch's checkpoint includes it.
    """

    def __init__(self, every: int = 1):
        self.every = positive_int("GradientNorms", "every", every)
        self.records: list = []        # (epoch position, {layer: norm}) of the whole run
        self._epoch: list = []         # (step, {layer: norm}) of the current epoch
        self._last = 0                 # the epoch's last step so far

    def on_train_begin(self, state) -> None:
        self._epoch, self._last = [], 0

    def on_backward_end(self, state, batch) -> None:
        self._last = batch.step
        if (batch.step - 1) % self.every == 0:
            self._epoch.append((batch.step, layer_gradient_norms(state.model)))

    def on_epoch_end(self, state, logs) -> None:
        if not self._epoch:
            return
        steps = max(self._last, 1)
        self.records += [(logs["epoch"] - 1 + s / steps, v) for s, v in self._epoch]
        cols = {}
        for name in self._epoch[0][1]:
            vals = [v[name] for _, v in self._epoch if math.isfinite(v[name])]
            cols[f"{MEAN}{name}"] = float(np.mean(vals)) if vals else None
            cols[f"{MAX}{name}"] = float(np.max(vals)) if vals else None
        logs.update(cols)
        if state.history.records and state.history.records[-1].get("epoch") == logs["epoch"]:
            state.history.records[-1].update(cols)   # fit appended the logs before the hooks
        self._epoch = []


def gradient_norm_series(history) -> tuple:
    """(epochs, {layer: mean norms}, {layer: max norms}), float64 arrays with NaN where an
    epoch has no value, from a :class:`~convprop.train.History`, its ``records`` list, or a
    checkpoint's ``extra["history"]``. Raises ValueError when no epoch recorded gradient
    norms."""
    records = [r for r in (getattr(history, "records", history) or [])
               if isinstance(r, dict) and any(str(k).startswith(MEAN) for k in r)]
    if not records:
        raise ValueError("gradient_norm_series: the history has no gradient norms; record "
                         "them with fit(callbacks=[GradientNorms()]) (convprop train "
                         "--record-gradients)")
    names = []
    for r in records:
        names += [k[len(MEAN):] for k in r if str(k).startswith(MEAN)
                  and k[len(MEAN):] not in names]

    def column(prefix, name):
        return np.array([np.nan if r.get(prefix + name) is None else float(r[prefix + name])
                         for r in records])

    epochs = np.array([float(r.get("epoch", i + 1)) for i, r in enumerate(records)])
    return (epochs, {n: column(MEAN, n) for n in names}, {n: column(MAX, n) for n in names})
