"""Callbacks: early stopping, keep-best weights, and a checkpoint after every epoch."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Batch", "Callback", "EarlyStopping", "KeepBest", "SaveCheckpoint"]


@dataclass
class Batch:
    """One training step as the per-batch hooks see it. ``x`` is what the model's forward
    gets and ``y`` what the loss gets as targets: a hook may replace either (noise-enhanced
    training replaces ``y`` after the forward). ``labels`` stay the batch's class labels,
    for the accuracy; ``out`` and ``loss`` are filled in as the step runs."""

    x: object
    y: object
    labels: object
    step: int
    out: object = None
    loss: float | None = None


class Callback:
    """Hooks called by :func:`convprop.train.fit` with its :class:`TrainState`.

    Per step, in order: ``on_batch_begin`` (before the forward), ``on_loss_begin`` (after
    the forward, before the loss: ``batch.out`` is set), ``on_backward_end`` (the
    parameter gradients are complete, the optimizer has not stepped: the place to read,
    reduce or clip gradients), ``on_batch_end``. Per epoch: ``on_epoch_logs`` (may rewrite
    the metrics before they are printed and recorded), then ``on_epoch_end``."""

    def on_train_begin(self, state) -> None: ...

    def on_batch_begin(self, state, batch: Batch) -> None: ...

    def on_loss_begin(self, state, batch: Batch) -> None: ...

    def on_backward_end(self, state, batch: Batch) -> None: ...

    def on_batch_end(self, state, batch: Batch) -> None: ...

    def on_epoch_logs(self, state, logs: dict) -> None:
        """The epoch's metrics before they are printed and recorded: a hook may rewrite them
        (data-parallel training replaces the rank's loss and accuracy by the global ones)."""

    def on_epoch_end(self, state, logs: dict) -> None: ...

    def on_train_end(self, state) -> None: ...


class _Monitor(Callback):
    def __init__(self, monitor: str, mode: str, min_delta: float):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{type(self).__name__}: mode must be 'auto', 'min' or 'max', "
                             f"got {mode!r}")
        self.monitor = monitor
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.min_delta = abs(min_delta)
        self.best = -math.inf if self.mode == "max" else math.inf

    def _value(self, logs: dict) -> float:
        if self.monitor not in logs:
            raise KeyError(f"{type(self).__name__}: monitored value {self.monitor!r} is not "
                           f"among the epoch's logs {sorted(logs)} (pass val_data?)")
        return float(logs[self.monitor])

    def _improved(self, v: float) -> bool:
        if self.mode == "max":
            return v > self.best + self.min_delta
        return v < self.best - self.min_delta


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", *, patience: int = 3,
                 min_delta: float = 0.0, mode: str = "auto"):
        super().__init__(monitor, mode, min_delta)
        self.patience = patience
        self.wait = 0
        self.stopped_epoch = None

    def on_epoch_end(self, state, logs):
        v = self._value(logs)
        if self._improved(v):
            self.best, self.wait = v, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            state.stop = True
            self.stopped_epoch = logs["epoch"]


class KeepBest(_Monitor):
    """Remember the weights of the best epoch by ``monitor`` and restore them at the end."""

    def __init__(self, monitor: str = "val_accuracy", *, mode: str = "auto",
                 min_delta: float = 0.0):
        super().__init__(monitor, mode, min_delta)
        self.best_state = None
        self.best_epoch = None

    def on_epoch_end(self, state, logs):
        v = self._value(logs)
        if self._improved(v):
            self.best, self.best_epoch = v, logs["epoch"]
            self.best_state = state.model.state_dict()

    def on_train_end(self, state):
        if self.best_state is not None:
            state.model.load_state_dict(self.best_state)


class SaveCheckpoint(Callback):
    """Write a full, resumable checkpoint (atomically) at the end of every epoch: weights,
    buffers, optimizer, schedule, epoch, every generator and the history. Other callbacks'
    own state (EarlyStopping's patience counter, KeepBest's best weights) is not saved, so a
    resumed run restarts those counters."""

    def __init__(self, path, *, model_config: dict | None = None, extra: dict | None = None):
        self.path = path
        self.model_config = model_config
        self.extra = extra or {}

    def on_epoch_end(self, state, logs):
        from ..io import save_checkpoint
        save_checkpoint(self.path, state.model, optimizer=state.optimizer,
                        schedule=state.schedule, epoch=logs["epoch"], rng=state.rng,
                        model_config=self.model_config,
                        extra={**self.extra, "history": state.history.records})
