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
from .conv import Conv2d, ConvTranspose2d
from .dropout import Dropout
from .linear import Linear
from .loss import CrossEntropyLoss, Loss, MSELoss
from .module import Module, Parameter, StateDictError
from .normalization import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from .pooling import AvgPool2d, GlobalAvgPool2d, MaxPool2d
from .reshape import Flatten, Identity

__all__ = [
           "AvgPool2d",
           "BatchNorm1d",
           "BatchNorm2d",
           "Concat",
           "Conv2d",
           "ConvTranspose2d",
           "CrossEntropyLoss",
           "Dropout",
           "Flatten",
           "GlobalAvgPool2d",
           "Identity",
           "LeakyReLU",
           "Linear",
           "LocalResponseNorm",
           "Loss",
           "MSELoss",
           "MaxPool2d",
           "Module",
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
]
