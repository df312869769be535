"""Modules: objects that own parameters and delegate to one kernel pair each.

``forward(x, *, training) -> (y, cache)``; ``backward(dy, cache) -> dx`` adds the parameter
gradients into ``Parameter.grad``. Containers (``Sequential``, ``Residual``, ``Concat``) are
modules too; losses take ``forward(pred, target)``. Initializers live in
:mod:`convprop.layers.init`.
"""

from . import init
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
from ._summary import layer_table, summary

__all__ = ["Module", "Parameter", "StateDictError", "init", "Linear", "Conv2d",
           "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "ReLU", "LeakyReLU",
           "Sigmoid", "Tanh", "Flatten", "Identity", "Dropout", "BatchNorm1d", "BatchNorm2d",
           "LocalResponseNorm", "Sequential", "Residual", "Concat", "Loss", "CrossEntropyLoss",
           "MSELoss", "summary", "layer_table"]
