"""Learning-rate schedules over an optimizer, with ``torch.optim.lr_scheduler``'s names and numbers.

Call ``step()`` once per epoch, after that epoch's optimizer steps (``ReduceLROnPlateau``, in
plateau.py, takes a metric: ``step(metric)``). Constructing a schedule applies its epoch-0 learning
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
           "LinearLR", "SequentialLR"]


def _int(op, name, v, minimum):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise ValueError(f"{op}: {name} must be an int >= {minimum}, got {v!r}")
    return int(v)


def _real(op, name, v, lo=None, hi=None, lo_open=False, hi_open=False):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or v != v:
        raise TypeError(f"{op}: {name} must be a real number, got {v!r}"[:300])
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{op}: {name} must be finite, got {v}")
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
        last_epoch = _int(name, "last_epoch", state["last_epoch"], -1)
        step_count = _int(name, "step_count", state["step_count"], 0)
        base_lr = _real(name, "base_lr", state["base_lr"], 0.0)
        last_lr = _real(name, "last_lr", state["last_lr"], 0.0)
        config = self._check_config(name, **{k: state[k] for k in self._config})
        self.optimizer.lr = last_lr  # the optimizer checks it too; nothing set before this
        self.last_epoch, self._step_count, self.base_lr, self._last_lr = (
            last_epoch, step_count, base_lr, last_lr)
        for k, v in config.items():
            setattr(self, k, v)

    @staticmethod
    def _check_config(op, **config) -> dict:
        """The constructor's checks of the ``_config`` values (used on a loaded state)."""
        return config

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._config)
        return f"{type(self).__name__}({args})"


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs:
    lr_e = base_lr * gamma ** (e // step_size)."""

    _config = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1):
        cfg = self._check_config("StepLR", step_size=step_size, gamma=gamma)
        self.step_size, self.gamma = cfg["step_size"], cfg["gamma"]
        super().__init__(optimizer)

    @staticmethod
    def _check_config(op, *, step_size, gamma):
        return {"step_size": _int(op, "step_size", step_size, 1),
                "gamma": _real(op, "gamma", gamma, 0.0, lo_open=True)}

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
        cfg = self._check_config("MultiStepLR", milestones=milestones, gamma=gamma)
        self.milestones, self.gamma = cfg["milestones"], cfg["gamma"]
        super().__init__(optimizer)

    @staticmethod
    def _check_config(op, *, milestones, gamma):
        try:
            ms = [_int(op, "each milestone", m, 0) for m in milestones]
        except TypeError:
            raise TypeError(f"{op}: milestones must be a list of ints, "
                            f"got {milestones!r}"[:300]) from None
        return {"milestones": sorted(ms), "gamma": _real(op, "gamma", gamma, 0.0, lo_open=True)}

    def _next_lr(self, lr):
        k = Counter(self.milestones)[self.last_epoch]
        return lr * self.gamma ** k if k else lr

    def _closed_form(self):
        return self.base_lr * self.gamma ** bisect_right(self.milestones, self.last_epoch)


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch: lr_e = base_lr * gamma ** e."""

    _config = ("gamma",)

    def __init__(self, optimizer, gamma):
        self.gamma = self._check_config("ExponentialLR", gamma=gamma)["gamma"]
        super().__init__(optimizer)

    @staticmethod
    def _check_config(op, *, gamma):
        return {"gamma": _real(op, "gamma", gamma, 0.0, lo_open=True)}

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
        cfg = self._check_config("CosineAnnealingLR", T_max=T_max, eta_min=eta_min)
        self.T_max, self.eta_min = cfg["T_max"], cfg["eta_min"]
        super().__init__(optimizer)

    @staticmethod
    def _check_config(op, *, T_max, eta_min):
        return {"T_max": _int(op, "T_max", T_max, 1), "eta_min": _real(op, "eta_min", eta_min, 0.0)}

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
        cfg = self._check_config("LinearLR", start_factor=start_factor, end_factor=end_factor,
                                 total_iters=total_iters)
        self.start_factor, self.end_factor = cfg["start_factor"], cfg["end_factor"]
        self.total_iters = cfg["total_iters"]
        super().__init__(optimizer)

    @staticmethod
    def _check_config(op, *, start_factor, end_factor, total_iters):
        return {"start_factor": _real(op, "start_factor", start_factor, 0.0, 1.0, lo_open=True),
                "end_factor": _real(op, "end_factor", end_factor, 0.0, 1.0),
                "total_iters": _int(op, "total_iters", total_iters, 1)}

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
        subs = state.get("schedulers")
        if not isinstance(subs, list) or not isinstance(state.get("milestones"), list):
            raise ValueError(f"{name}: schedulers and milestones must be lists")
        if len(subs) != len(self._schedulers) or list(state["milestones"]) != self.milestones:
            raise ValueError(f"{name}: expected {len(self._schedulers)} schedulers with milestones "
                             f"{self.milestones}, got {len(subs)} with {state['milestones']}")
        last_epoch = _int(name, "last_epoch", state.get("last_epoch"), 0)
        last_lr = _real(name, "last_lr", state.get("last_lr"), 0.0)
        for s, sub in zip(self._schedulers, subs, strict=True):
            s.load_state_dict(sub)
        self.last_epoch, self._last_lr = last_epoch, last_lr
        self.optimizer.lr = self._last_lr
