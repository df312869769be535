"""The model zoo: ``build(name, **config)`` and the list of names in ``MODELS``."""

from __future__ import annotations

import json

import numpy as np

from .alexnet import alexnet_cifar
from .c3d import c3d_mini
from .cnn1d import cnn1d
from .googlenet import googlenet_mini, inception
from .lenet import lenet5
from .lenet_classic import LeNet5Classic, lenet5_classic, mnist_to_lenet_input
from ..layers import PadShortcut  # its home is convprop.layers; kept importable from here
from .resnet import basic_block, resnet20
from .vgg import vgg_cifar

MODELS = {"lenet5": lenet5, "alexnet_cifar": alexnet_cifar, "vgg_cifar": vgg_cifar,
          "resnet20": resnet20, "googlenet_mini": googlenet_mini, "c3d_mini": c3d_mini,
          "cnn1d": cnn1d}

#: How many spatial axes each zoo model's input has: (N, C, L), (N, C, H, W), (N, C, D, H, W).
SPATIAL_DIMS = {name: 2 for name in MODELS} | {"c3d_mini": 3, "cnn1d": 1}

# lenet5_classic (LeNet-5 as published) is importable but not in MODELS: its RBF outputs are
# penalties (argmin) trained with RBFLoss, which `build`'s users (fit's accuracy, the
# command, the zoo tests) do not assume yet.
__all__ = ["MODELS", "SPATIAL_DIMS", "build", "LeNet5Classic", "lenet5_classic",
           "mnist_to_lenet_input", "c3d_mini", "cnn1d", "lenet5", "alexnet_cifar",
           "vgg_cifar", "resnet20",
           "googlenet_mini", "inception", "basic_block", "PadShortcut"]


def build(name: str, *, rng: np.random.Generator | None = None, dtype=np.float32, **config):
    """Build the model ``name`` with keyword ``config`` (e.g. ``in_channels``,
    ``num_classes``, ``input_size``), weights initialised from ``rng``.

    The returned module carries ``.config = {"name": name, **config}`` in its JSON form
    (tuples as lists), which a checkpoint stores so that ``build(**config)`` rebuilds the same
    architecture. ``rng`` and ``dtype`` are not part of it: they choose the weights and their
    precision, not the architecture."""
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"models.build: unknown model {name!r}, expected one of "
                         f"{sorted(MODELS)}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"models.build: rng must be a numpy.random.Generator, got "
                        f"{type(rng).__name__}")
    saved = _jsonable({"name": name, **config})
    try:
        model = MODELS[name](rng=rng, dtype=dtype, **config)
    except TypeError as e:  # e.g. an unknown keyword: say which model was being built
        msg = str(e) if str(e).startswith(name) else f"{name}: {e}"
        raise TypeError(f"models.build: {msg}") from None
    model.config = saved
    return model


def _jsonable(config: dict) -> dict:
    """The config as a JSON round trip gives it back (tuples become lists, NumPy scalars
    Python numbers), so a model built from a checkpoint's config carries an equal one."""
    def plain(v):
        if isinstance(v, np.generic):
            return v.item()
        raise TypeError(f"{type(v).__name__} {v!r}")
    try:
        return json.loads(json.dumps(config, default=plain))
    except (TypeError, ValueError) as e:
        raise TypeError(f"models.build: config must be JSON-serialisable (ints, floats, "
                        f"strings, lists), got {e}") from None
