"""Factories used by the command line: pick an optimizer or a schedule by name."""

from __future__ import annotations

from .optimizers import OPTIMIZERS, Optimizer
from .plateau import ReduceLROnPlateau
from .schedules import (CosineAnnealingLR, ExponentialLR, LinearLR, MultiStepLR, SequentialLR,
                        StepLR, _int)

__all__ = ["build_optimizer", "build_schedule", "SCHEDULES"]


def build_optimizer(name: str, params, **kw) -> Optimizer:
    """The optimizer called ``name`` (sgd, adam, adamw, rmsprop) over ``params``; ``kw`` are its
    hyperparameters (e.g. ``lr=0.1, momentum=0.9``)."""
    key = name.lower() if isinstance(name, str) else name
    if key not in OPTIMIZERS:
        raise ValueError(f"build_optimizer: unknown optimizer {name!r}, expected one of "
                         f"{sorted(OPTIMIZERS)}")
    try:
        return OPTIMIZERS[key](params, **kw)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            raise TypeError(f"build_optimizer: {OPTIMIZERS[key].__name__} got an unexpected "
                            f"hyperparameter ({e})") from None
        raise


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
