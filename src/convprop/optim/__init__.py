"""Optimizers and learning-rate schedules.

Pure update rules (``sgd_update``, ``adam_update``, ``adamw_update``, ``rmsprop_update``) follow
``torch.optim``'s formulas; the classes (``SGD``, ``Adam``, ``AdamW``, ``RMSprop``) apply them to
``Parameter``s and rebind ``param.value``; the schedules (``StepLR``, ``CosineAnnealingLR``, ...,
``ReduceLROnPlateau``) follow ``torch.optim.lr_scheduler``. ``build_optimizer`` /
``build_schedule`` pick them by name.
"""

from .factories import SCHEDULES, build_optimizer, build_schedule
from .optimizers import OPTIMIZERS, SGD, Adam, AdamW, Optimizer, RMSprop
from .plateau import ReduceLROnPlateau
from .schedules import (CosineAnnealingLR, ExponentialLR, LinearLR, LRScheduler, MultiStepLR,
                        SequentialLR, StepLR)
from .updates import adam_update, adamw_update, rmsprop_update, sgd_update

__all__ = [
    "sgd_update", "adam_update", "adamw_update", "rmsprop_update",
    "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "OPTIMIZERS",
    "LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
    "SequentialLR", "ReduceLROnPlateau",
    "build_optimizer", "build_schedule", "SCHEDULES",
]
