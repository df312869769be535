"""The model zoo: ``build(name, **config)`` and the list of names in ``MODELS``."""

from __future__ import annotations

import numpy as np

from .alexnet import alexnet_cifar
from .googlenet import googlenet_mini, inception
from .lenet import lenet5
from .resnet import PadShortcut, basic_block, resnet20
from .vgg import vgg_cifar

MODELS = {"lenet5": lenet5, "alexnet_cifar": alexnet_cifar, "vgg_cifar": vgg_cifar,
          "resnet20": resnet20, "googlenet_mini": googlenet_mini}

__all__ = ["MODELS", "build", "lenet5", "alexnet_cifar", "vgg_cifar", "resnet20",
           "googlenet_mini", "inception", "basic_block", "PadShortcut"]


def build(name: str, *, rng: np.random.Generator | None = None, dtype=np.float32, **config):
    """Build the model ``name`` with keyword ``config`` (e.g. ``in_channels``,
    ``num_classes``, ``input_size``), weights initialised from ``rng``.

    The returned module carries ``.config = {"name": name, **config}`` (JSON-able), which a
    checkpoint stores so that ``build(**config)`` rebuilds the same architecture."""
    if name not in MODELS:
        raise ValueError(f"models.build: unknown model {name!r}, expected one of "
                         f"{sorted(MODELS)}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"models.build: rng must be a numpy.random.Generator, got "
                        f"{type(rng).__name__}")
    try:
        model = MODELS[name](rng=rng, dtype=dtype, **config)
    except TypeError as e:
        raise TypeError(f"models.build: {name}: {e}") from None
    model.config = {"name": name, **config}
    return model
