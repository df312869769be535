"""Learning-rate schedules over an optimizer, with ``torch.optim.lr_scheduler``'s names and numbers.

Call ``step()`` once per epoch, after that epoch's optimizer steps (``ReduceLROnPlateau`` takes
the monitored metric: ``step(metric)``). Constructing a schedule applies its epoch-0 learning
rate; ``get_last_lr()`` is ``[lr]`` (one parameter group). The chainable schedules update the
current rate recursively, exactly as PyTorch does, so they compose (SequentialLR) and agree
with PyTorch to rounding. ``state_dict()`` is JSON-able; ``load_state_dict()`` also restores the
optimizer's ``lr``, so the order of loading optimizer and schedule does not matter.
"""

from __future__ import annotations

import math
import numbers
from bisect import bisect_right
from collections import Counter

from .optimizers import Optimizer

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "LinearLR", "SequentialLR", "ReduceLROnPlateau", "build_schedule", "SCHEDULES"]


def _int(op, name, v, minimum):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise ValueError(f"{op}: {name} must be an int >= {minimum}, got {v!r}")
    return int(v)


def _real(op, name, v, lo=None, hi=None, lo_open=False, hi_open=False):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or v != v:
        raise TypeError(f"{op}: {name} must be a real number, got {v!r}")
    v = float(v)
    if ((lo is not None and (v < lo or (lo_open and v == lo)))
            or (hi is not None and (v > hi or (hi_open and v == hi)))):
        interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        raise ValueError(f"{op}: {name} must be in {interval}, got {v}")
    return v


def _optimizer(op, optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{op}: optimizer must be a convprop.optim Optimizer, "
                        f"got {type(optimizer).__name__}")
    return optimizer


class LRScheduler:
    """Base of the chainable schedules: ``_next_lr`` (recursive) and ``_closed_form`` (at
    ``last_epoch`` from ``base_lr``, used when SequentialLR jumps to a milestone)."""

    _config: tuple = ()  # names of the constructor arguments kept in the state dict

    def __init__(self, optimizer):
        self.optimizer = _optimizer(type(self).__name__, optimizer)
        if optimizer.initial_lr is None:
            optimizer.initial_lr = optimizer.lr
        self.base_lr = float(optimizer.initial_lr)
        self.last_epoch = -1
        self._initial_step()

    def _initial_step(self):
        self._step_count = 0
        self._initial = True
        try:
            self.step()
        finally:
            self._initial = False

    def step(self) -> None:
        """Advance one epoch and set the optimizer's learning rate."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch=None):
        if epoch is None:
            self.last_epoch += 1
            lr = self._next_lr(self.optimizer.lr)
        else:
            self.last_epoch = epoch
            lr = self._closed_form()
        self.optimizer.lr = lr
        self._last_lr = self.optimizer.lr

    def _next_lr(self, lr: float) -> float:
        raise NotImplementedError

    def _closed_form(self) -> float:
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        return [self._last_lr]

    def state_dict(self) -> dict:
        sd = {"type": type(self).__name__, "last_epoch": self.last_epoch,
              "step_count": self._step_count, "base_lr": self.base_lr, "last_lr": self._last_lr}
        sd.update({k: getattr(self, k) for k in self._config})
        return sd

    def load_state_dict(self, state: dict) -> None:
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict) or state.get("type") != type(self).__name__:
            got = state.get("type") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{name}: expected the state of a {type(self).__name__}, got {got!r}")
        keys = set(self.state_dict())
        if set(state) != keys:
            raise ValueError(f"{name}: expected keys {sorted(keys)}, got {sorted(state)}")
        self.last_epoch, self._step_count = int(state["last_epoch"]), int(state["step_count"])
        self.base_lr, self._last_lr = float(state["base_lr"]), float(state["last_lr"])
        for k in self._config:
            setattr(self, k, state[k])
        self.optimizer.lr = self._last_lr

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._config)
        return f"{type(self).__name__}({args})"


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs:
    lr_e = base_lr * gamma ** (e // step_size)."""

    _config = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size = _int("StepLR", "step_size", step_size, 1)
        self.gamma = _real("StepLR", "gamma", gamma, 0.0, lo_open=True)
        super().__init__(optimizer)

    def _next_lr(self, lr):
        if self.last_epoch == 0 or self.last_epoch % self.step_size:
            return lr
        return lr * self.gamma

    def _closed_form(self):
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each milestone epoch (a milestone listed k
    times multiplies by gamma ** k): lr_e = base_lr * gamma ** #{milestones <= e}."""

    _config = ("milestones", "gamma")

    def __init__(self, optimizer, milestones, gamma=0.1):
        try:
            ms = [_int("MultiStepLR", "each milestone", m, 0) for m in milestones]
        except TypeError:
            raise TypeError(f"MultiStepLR: milestones must be a list of ints, "
                            f"got {milestones!r}") from None
        self.milestones = sorted(ms)
        self.gamma = _real("MultiStepLR", "gamma", gamma, 0.0, lo_open=True)
        super().__init__(optimizer)

    def _next_lr(self, lr):
        k = Counter(self.milestones)[self.last_epoch]
        return lr * self.gamma ** k if k else lr

    def _closed_form(self):
        return self.base_lr * self.gamma ** bisect_right(self.milestones, self.last_epoch)


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch: lr_e = base_lr * gamma ** e."""

    _config = ("gamma",)

    def __init__(self, optimizer, gamma):
        self.gamma = _real("ExponentialLR", "gamma", gamma, 0.0, lo_open=True)
        super().__init__(optimizer)

    def _next_lr(self, lr):
        return lr if self._initial else lr * self.gamma

    def _closed_form(self):
        return self.base_lr * self.gamma ** self.last_epoch


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from base_lr to ``eta_min`` over ``T_max`` epochs:
    lr_e = eta_min + (base_lr - eta_min) (1 + cos(pi e / T_max)) / 2.

    Computed with PyTorch's recursive form (each rate from the previous one), so it chains with
    other schedules; past T_max the rate rises again (a full cosine period is 2 T_max).
    """

    _config = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max = _int("CosineAnnealingLR", "T_max", T_max, 1)
        self.eta_min = _real("CosineAnnealingLR", "eta_min", eta_min, 0.0)
        super().__init__(optimizer)

    def _next_lr(self, lr):
        e, T, lo = self.last_epoch, self.T_max, self.eta_min
        if self._initial:
            return lr
        if (e - 1 - T) % (2 * T) == 0:
            return lr + (self.base_lr - lo) * (1 - math.cos(math.pi / T)) / 2
        return ((1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
                * (lr - lo) + lo)

    def _closed_form(self):
        return (self.eta_min + (self.base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2)


class LinearLR(LRScheduler):
    """Linear warm-up: scale base_lr by a factor going linearly from ``start_factor`` (epoch 0) to
    ``end_factor`` (epoch ``total_iters`` and after)."""

    _config = ("start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        self.start_factor = _real("LinearLR", "start_factor", start_factor, 0.0, 1.0,
                                  lo_open=True)
        self.end_factor = _real("LinearLR", "end_factor", end_factor, 0.0, 1.0)
        self.total_iters = _int("LinearLR", "total_iters", total_iters, 1)
        super().__init__(optimizer)

    def _next_lr(self, lr):
        e, a, b = self.last_epoch, self.start_factor, self.end_factor
        if e == 0:
            return lr * a
        if self._initial or e > self.total_iters:
            return lr
        return lr * (1.0 + (b - a) / (self.total_iters * a + (e - 1) * (b - a)))

    def _closed_form(self):
        a, b = self.start_factor, self.end_factor
        return self.base_lr * (a + (b - a) * min(self.total_iters, self.last_epoch)
                               / self.total_iters)


class SequentialLR:
    """Run ``schedulers[i]`` from epoch ``milestones[i-1]`` on (e.g. LinearLR warm-up, then
    CosineAnnealingLR). At a milestone the next schedule restarts from its epoch 0."""

    def __init__(self, optimizer, schedulers, milestones):
        op = "SequentialLR"
        self.optimizer = _optimizer(op, optimizer)
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError(f"{op}: expected at least one scheduler, got none")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler):
                raise TypeError(f"{op}: schedulers[{i}] must be a chainable schedule (StepLR, "
                                f"CosineAnnealingLR, ...), got {type(s).__name__}")
            if s.optimizer is not optimizer:
                raise ValueError(f"{op}: schedulers[{i}] ({type(s).__name__}) belongs to another "
                                 f"optimizer")
        milestones = [_int(op, "each milestone", m, 1) for m in milestones]
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"{op}: expected len(milestones) = len(schedulers) - 1 = "
                             f"{len(schedulers) - 1}, got {len(milestones)}")
        if milestones != sorted(milestones):
            raise ValueError(f"{op}: milestones must be increasing, got {milestones}")
        self._schedulers, self.milestones = schedulers, milestones
        self.last_epoch = 0
        # Undo the epoch-0 step every schedule took when built, then redo only the first one's.
        optimizer.lr = optimizer.initial_lr
        for s in schedulers:
            s.last_epoch -= 1
        first = schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()[0]

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self.milestones, self.last_epoch)
        s = self._schedulers[idx]
        if idx > 0 and self.milestones[idx - 1] == self.last_epoch:
            s._update_lr(0)
        else:
            s.step()
        self._last_lr = s.get_last_lr()[0]

    def get_last_lr(self) -> list[float]:
        return [self._last_lr]

    def state_dict(self) -> dict:
        return {"type": "SequentialLR", "last_epoch": self.last_epoch, "last_lr": self._last_lr,
                "milestones": list(self.milestones),
                "schedulers": [s.state_dict() for s in self._schedulers]}

    def load_state_dict(self, state: dict) -> None:
        name = "SequentialLR.load_state_dict"
        if not isinstance(state, dict) or state.get("type") != "SequentialLR":
            raise ValueError(f"{name}: expected the state of a SequentialLR, got "
                             f"{state.get('type') if isinstance(state, dict) else state!r}")
        subs = state["schedulers"]
        if len(subs) != len(self._schedulers) or list(state["milestones"]) != self.milestones:
            raise ValueError(f"{name}: expected {len(self._schedulers)} schedulers with milestones "
                             f"{self.milestones}, got {len(subs)} with {state['milestones']}")
        for s, sub in zip(self._schedulers, subs):
            s.load_state_dict(sub)
        self.last_epoch, self._last_lr = int(state["last_epoch"]), float(state["last_lr"])
        self.optimizer.lr = self._last_lr


class ReduceLROnPlateau:
    """Multiply the learning rate by ``factor`` (not below ``min_lr``) once the metric has not
    improved for more than ``patience`` epochs; then wait ``cooldown`` epochs.

    Improvement in mode "min" with threshold_mode "rel" means metric < best * (1 - threshold)
    ("abs": metric < best - threshold; mode "max" mirrors). A reduction smaller than ``eps`` is
    skipped.
    """

    _config = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr",
               "eps")

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
        op = "ReduceLROnPlateau"
        self.optimizer = _optimizer(op, optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"{op}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{op}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = _real(op, "factor", factor, 0.0, 1.0, hi_open=True)
        self.patience = _int(op, "patience", patience, 0)
        self.threshold = _real(op, "threshold", threshold, 0.0)
        self.cooldown = _int(op, "cooldown", cooldown, 0)
        self.min_lr = _real(op, "min_lr", min_lr, 0.0)
        self.eps = _real(op, "eps", eps, 0.0)
        self.last_epoch = 0
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self._last_lr = optimizer.lr

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
        for k in self._config:
            setattr(self, k, state[k])
        self.last_epoch = int(state["last_epoch"])
        worst = math.inf if self.mode == "min" else -math.inf
        self.best = worst if state["best"] is None else float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self._last_lr = float(state["last_lr"])
        self.optimizer.lr = self._last_lr


SCHEDULES = ("none", "step", "multistep", "exponential", "cosine", "warmup_cosine", "plateau")


def build_schedule(name: str, optimizer, epochs: int, **kw):
    """The schedule called ``name`` for a run of ``epochs`` epochs, or None for "none".

    Defaults: step: step_size=max(1, epochs // 3), gamma=0.1; multistep: milestones at 1/2 and
    3/4 of the run, gamma=0.1; exponential: gamma=0.95; cosine: T_max=epochs, eta_min=0;
    warmup_cosine: LinearLR from start_factor=0.1 over warmup_epochs=max(1, epochs // 10), then
    cosine to eta_min=0 over the remaining epochs; plateau: ReduceLROnPlateau's own defaults.
    """
    op = "build_schedule"
    if name not in SCHEDULES:
        raise ValueError(f"{op}: unknown schedule {name!r}, expected one of {list(SCHEDULES)}")
    epochs = _int(op, "epochs", epochs, 1)
    allowed = {"none": (), "step": ("step_size", "gamma"), "multistep": ("milestones", "gamma"),
               "exponential": ("gamma",), "cosine": ("eta_min",),
               "warmup_cosine": ("warmup_epochs", "start_factor", "eta_min"),
               "plateau": ReduceLROnPlateau._config}[name]
    extra = sorted(set(kw) - set(allowed))
    if extra:
        raise TypeError(f"{op}: schedule {name!r} takes options {list(allowed)}, got {extra}")
    if name == "none":
        return None
    if name == "step":
        return StepLR(optimizer, kw.get("step_size", max(1, epochs // 3)), kw.get("gamma", 0.1))
    if name == "multistep":
        default = sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)})
        return MultiStepLR(optimizer, kw.get("milestones", default), kw.get("gamma", 0.1))
    if name == "exponential":
        return ExponentialLR(optimizer, kw.get("gamma", 0.95))
    if name == "cosine":
        return CosineAnnealingLR(optimizer, epochs, kw.get("eta_min", 0.0))
    if name == "plateau":
        return ReduceLROnPlateau(optimizer, **kw)
    warm = _int(op, "warmup_epochs", kw.get("warmup_epochs", max(1, epochs // 10)), 1)
    if warm >= epochs:
        raise ValueError(f"{op}: warmup_epochs must be < epochs ({epochs}), got {warm}")
    warmup = LinearLR(optimizer, kw.get("start_factor", 0.1), 1.0, warm)
    cosine = CosineAnnealingLR(optimizer, epochs - warm, kw.get("eta_min", 0.0))
    return SequentialLR(optimizer, [warmup, cosine], [warm])
