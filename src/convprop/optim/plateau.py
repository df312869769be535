"""``ReduceLROnPlateau``: cut the learning rate when a monitored metric stops improving.

Unlike the chainable schedules it is driven by a metric (``step(metric)`` once per epoch), so it
cannot be part of a SequentialLR. Numbers and semantics follow ``torch.optim.lr_scheduler``.
"""

from __future__ import annotations

import math

from .schedules import _int, _optimizer, _real

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau:
    """Multiply the learning rate by ``factor`` (not below ``min_lr``) once the metric has not
    improved for more than ``patience`` epochs; then wait ``cooldown`` epochs.

    Improvement in mode "min" with threshold_mode "rel" means metric < best * (1 - threshold)
    ("abs": metric < best - threshold; mode "max" mirrors). A reduction smaller than ``eps`` is
    skipped.
    """

    needs_metric = True  # fit calls step(metric) instead of step()

    _config = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr",
               "eps")

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
        op = "ReduceLROnPlateau"
        self.optimizer = _optimizer(op, optimizer)
        cfg = self._check_config(op, mode=mode, factor=factor, patience=patience,
                                 threshold=threshold, threshold_mode=threshold_mode,
                                 cooldown=cooldown, min_lr=min_lr, eps=eps)
        for k, v in cfg.items():
            setattr(self, k, v)
        self.last_epoch = 0
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self._last_lr = optimizer.lr

    @staticmethod
    def _check_config(op, *, mode, factor, patience, threshold, threshold_mode, cooldown,
                      min_lr, eps) -> dict:
        """Every option finite and in its domain (factor in [0, 1), the rest >= 0)."""
        if mode not in ("min", "max"):
            raise ValueError(f"{op}: mode must be 'min' or 'max', got {mode!r}"[:300])
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{op}: threshold_mode must be 'rel' or 'abs', got "
                             f"{threshold_mode!r}"[:300])
        return {"mode": mode, "threshold_mode": threshold_mode,
                "factor": _real(op, "factor", factor, 0.0, 1.0, hi_open=True),
                "patience": _int(op, "patience", patience, 0),
                "threshold": _real(op, "threshold", threshold, 0.0),
                "cooldown": _int(op, "cooldown", cooldown, 0),
                "min_lr": _real(op, "min_lr", min_lr, 0.0), "eps": _real(op, "eps", eps, 0.0)}

    def _is_better(self, a: float) -> bool:
        t, best = self.threshold, self.best
        if self.mode == "min":
            return a < (best * (1.0 - t) if self.threshold_mode == "rel" else best - t)
        return a > (best * (1.0 + t) if self.threshold_mode == "rel" else best + t)

    def step(self, metric) -> None:
        """Record this epoch's ``metric`` (e.g. validation loss) and reduce the rate if stuck."""
        try:
            current = float(metric)
        except (TypeError, ValueError):
            raise TypeError(f"ReduceLROnPlateau.step: metric must be a number, "
                            f"got {metric!r}") from None
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = self.optimizer.lr

    def get_last_lr(self) -> list[float]:
        return [self._last_lr]

    def state_dict(self) -> dict:
        """JSON-able; the initial best (±inf) is stored as None."""
        sd = {k: getattr(self, k) for k in self._config}
        sd.update(type="ReduceLROnPlateau", last_epoch=self.last_epoch,
                  best=None if math.isinf(self.best) else self.best,
                  num_bad_epochs=self.num_bad_epochs, cooldown_counter=self.cooldown_counter,
                  last_lr=self._last_lr)
        return sd

    def load_state_dict(self, state: dict) -> None:
        name = "ReduceLROnPlateau.load_state_dict"
        if not isinstance(state, dict) or state.get("type") != "ReduceLROnPlateau":
            raise ValueError(f"{name}: expected the state of a ReduceLROnPlateau, got "
                             f"{state.get('type') if isinstance(state, dict) else state!r}")
        keys = set(self.state_dict())
        if set(state) != keys:
            raise ValueError(f"{name}: expected keys {sorted(keys)}, got {sorted(state)}")
        cfg = self._check_config(name, **{k: state[k] for k in self._config})
        last_epoch = _int(name, "last_epoch", state["last_epoch"], 0)
        best = None if state["best"] is None else _real(name, "best", state["best"])
        bad = _int(name, "num_bad_epochs", state["num_bad_epochs"], 0)
        cooldown = _int(name, "cooldown_counter", state["cooldown_counter"], 0)
        last_lr = _real(name, "last_lr", state["last_lr"], 0.0)
        self.optimizer.lr = last_lr  # checked by the optimizer; nothing is set before this
        for k, v in cfg.items():
            setattr(self, k, v)
        self.last_epoch = last_epoch
        worst = math.inf if self.mode == "min" else -math.inf
        self.best = worst if best is None else best
        self.num_bad_epochs, self.cooldown_counter, self._last_lr = bad, cooldown, last_lr
