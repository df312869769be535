"""Optimizers and learning-rate schedules.

Pure update rules (``sgd_update``, ``adam_update``, ``adamw_update``, ``rmsprop_update``) follow
``torch.optim``'s formulas; the classes (``SGD``, ``Adam``, ``AdamW``, ``RMSprop``) apply them to
``Parameter``s and rebind ``param.value``; the schedules (``StepLR``, ``CosineAnnealingLR``, ...)
follow ``torch.optim.lr_scheduler``. ``build_optimizer`` / ``build_schedule`` pick them by name.
"""

from .optimizers import *  # noqa: F401,F403
from .optimizers import __all__ as _opt_all
from .schedules import *  # noqa: F401,F403
from .schedules import __all__ as _sched_all
from .updates import *  # noqa: F401,F403
from .updates import __all__ as _upd_all

__all__ = [*_upd_all, *_opt_all, *_sched_all]
