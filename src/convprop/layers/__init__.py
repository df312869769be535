"""Modules: objects that own parameters and delegate to one kernel pair each.

``forward(x, *, training) -> (y, cache)``; ``backward(dy, cache) -> dx`` adds the parameter
gradients into ``Parameter.grad``. Containers (``Sequential``, ``Residual``, ``Concat``) are
modules too; losses take ``forward(pred, target)``. Initializers live in
:mod:`convprop.layers.init`.
"""

from . import init
from ._summary import layer_table, summary
from .activation import LeakyReLU, ReLU, Sigmoid, Tanh
from .container import Concat, Residual, Sequential
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .dropout import Dropout
from .linear import Linear
from .loss import CrossEntropyLoss, Loss, MSELoss
from .module import Module, Parameter, StateDictError
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, LocalResponseNorm
from .pooling import *  # noqa: F401,F403
from .pooling import __all__ as _pooling
from .reshape import Flatten, Identity
from .shortcut import PadShortcut

__all__ = sorted([
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "Concat",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LocalResponseNorm",
    "Loss",
    "MSELoss",
    "Module",
    "PadShortcut",
    "Parameter",
    "ReLU",
    "Residual",
    "Sequential",
    "Sigmoid",
    "StateDictError",
    "Tanh",
    "init",
    "layer_table",
    "summary",
    *_pooling,
])
