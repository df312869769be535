"""Modules: objects that own parameters and delegate to one kernel pair each.

``forward(x, *, training) -> (y, cache)``; ``backward(dy, cache, *, need_dx=True) -> dx`` adds
the parameter gradients into ``Parameter.grad`` (``need_dx=False``: the caller discards dx, a
module may skip it). Containers (``Sequential``, ``Residual``, ``Concat``) are modules too;
losses take ``forward(pred, target)`` and ``backward(dy, cache)``. Initializers live in
:mod:`convprop.layers.init`.
"""

from . import init
from ._summary import layer_table, summary
from .activation import LeakyReLU, ReLU, Sigmoid, Tanh, relu_rule
from .container import Concat, Residual, Sequential
from .binary import (BinaryConv2d, BinaryLinear, ClipLatentWeights, Sign, clip_latent_weights,
                     pack_binary_weights)
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .dropout import Dropout
from .lenet_classic import EuclideanRBF, MaskedConv2d, RBFLoss, ScaledTanh, Subsampling2d
from .linear import Linear
from .loss import CrossEntropyLoss, Loss, MSELoss, criterion_for
from .module import Module, Parameter, StateDictError
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, LocalResponseNorm
from .pooling import (LPPool1d, LPPool2d, LPPool3d, SumPool1d, SumPool2d, SumPool3d,
                      AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d,
                      AdaptiveMaxPool2d, AdaptiveMaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d,
                      GlobalAvgPool1d, GlobalAvgPool2d, GlobalAvgPool3d, GlobalMaxPool1d,
                      GlobalMaxPool2d, GlobalMaxPool3d, MaxPool1d, MaxPool2d, MaxPool3d,
                      MaxUnpool1d, MaxUnpool2d, MaxUnpool3d)
from .research_pooling import (GatedPool1d, GatedPool2d, GatedPool3d, MixedMaxAvgPool1d,
                               MixedMaxAvgPool2d, MixedMaxAvgPool3d, MixedPool1d, MixedPool2d,
                               MixedPool3d, StochasticPool1d, StochasticPool2d,
                               StochasticPool3d)
from .reshape import Flatten, Identity
from .roi import RoIAlign, RoIPool
from .shortcut import PadShortcut
from .transform_pooling import AlphaPool2d, DFTPool2d, WaveletPool2d

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "AlphaPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "BinaryConv2d",
    "BinaryLinear",
    "ClipLatentWeights",
    "Concat",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "CrossEntropyLoss",
    "DFTPool2d",
    "Dropout",
    "EuclideanRBF",
    "Flatten",
    "GatedPool1d",
    "GatedPool2d",
    "GatedPool3d",
    "GlobalAvgPool1d",
    "GlobalAvgPool2d",
    "GlobalAvgPool3d",
    "GlobalMaxPool1d",
    "GlobalMaxPool2d",
    "GlobalMaxPool3d",
    "Identity",
    "LPPool1d",
    "LPPool2d",
    "LPPool3d",
    "LeakyReLU",
    "Linear",
    "LocalResponseNorm",
    "Loss",
    "MSELoss",
    "MaskedConv2d",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "MaxUnpool1d",
    "MaxUnpool2d",
    "MaxUnpool3d",
    "MixedMaxAvgPool1d",
    "MixedMaxAvgPool2d",
    "MixedMaxAvgPool3d",
    "MixedPool1d",
    "MixedPool2d",
    "MixedPool3d",
    "Module",
    "PadShortcut",
    "Parameter",
    "RBFLoss",
    "ReLU",
    "Residual",
    "RoIAlign",
    "RoIPool",
    "ScaledTanh",
    "Sequential",
    "Sigmoid",
    "Sign",
    "StateDictError",
    "StochasticPool1d",
    "StochasticPool2d",
    "StochasticPool3d",
    "Subsampling2d",
    "SumPool1d",
    "SumPool2d",
    "SumPool3d",
    "Tanh",
    "WaveletPool2d",
    "clip_latent_weights",
    "criterion_for",
    "init",
    "layer_table",
    "pack_binary_weights",
    "relu_rule",
    "summary",
]
