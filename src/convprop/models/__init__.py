"""The model zoo: ``build(name, **config)`` and the list of names in ``MODELS``."""

from __future__ import annotations

import inspect
import json
import math

import numpy as np

from .alexnet import alexnet_cifar
from .c3d import c3d_mini
from .cnn1d import cnn1d
from .dense import DenseNet, PixelCrossEntropyLoss, image_patches, patch_pads, to_dense
from .googlenet import googlenet_mini, inception
from .imported import IMPORTED, onnx_network
from .lenet import lenet5
from .lenet_classic import LeNet5Classic, lenet5_classic, mnist_to_lenet_input
from ..layers import PadShortcut  # its home is convprop.layers; kept importable from here
from .resnet import basic_block, resnet20
from .vgg import vgg_cifar

MODELS = {"lenet5": lenet5, "lenet5_classic": lenet5_classic, "alexnet_cifar": alexnet_cifar,
          "vgg_cifar": vgg_cifar, "resnet20": resnet20, "googlenet_mini": googlenet_mini,
          "c3d_mini": c3d_mini, "cnn1d": cnn1d}



def _builders() -> dict:
    """Every name ``build`` accepts: the zoo (read at call time, so an entry added to
    ``MODELS`` later, e.g. by a test, is buildable) and the imported-network builders."""
    return {**MODELS, **IMPORTED}


#: How many spatial axes each zoo model's input has: (N, C, L), (N, C, H, W), (N, C, D, H, W).
SPATIAL_DIMS = {name: 2 for name in MODELS} | {"c3d_mini": 3, "cnn1d": 1}

# lenet5_classic (LeNet-5 as published) outputs RBF penalties, not logits: its criterion()
# (RBFLoss, argmin) is what fit, evaluate, predict and the recipe use for it
# (convprop.layers.loss.criterion_for), and its input_normalization() the paper's scaling.
__all__ = ["MODELS", "SPATIAL_DIMS", "build", "check_config", "LeNet5Classic", "lenet5_classic",
           "mnist_to_lenet_input", "c3d_mini", "cnn1d", "lenet5", "alexnet_cifar",
           "vgg_cifar", "resnet20",
           "googlenet_mini", "inception", "basic_block", "PadShortcut",
           "DenseNet", "PixelCrossEntropyLoss", "image_patches", "patch_pads", "to_dense",
           "IMPORTED", "onnx_network"]


def build(name: str, *, rng: np.random.Generator | None = None, dtype=np.float32, **config):
    """Build the model ``name`` with keyword ``config`` (e.g. ``in_channels``,
    ``num_classes``, ``input_size``), weights initialised from ``rng``.

    The returned module carries ``.config = {"name": name, **config}`` in its JSON form
    (tuples as lists), which a checkpoint stores so that ``build(**config)`` rebuilds the same
    architecture. ``rng`` and ``dtype`` are not part of it: they choose the weights and their
    precision, not the architecture."""
    if not isinstance(name, str) or name not in _builders():
        raise ValueError(f"models.build: unknown model {name!r}, expected one of "
                         f"{sorted(MODELS)} (or 'onnx' with path=)")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"models.build: rng must be a numpy.random.Generator, got "
                        f"{type(rng).__name__}")
    saved = check_config(_jsonable({"name": name, **config}), op="models.build")
    from ..functional._engine.threads import num_threads
    num_threads()  # a bad CONVPROP_NUM_THREADS is reported as that, not as a model error
    if name in IMPORTED:  # the file records its own config (its path and digest)
        return IMPORTED[name](rng=rng, dtype=dtype, **config)
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


def _walk_numbers(op: str, key: str, v, depth: int = 0) -> None:
    """Every number inside ``v`` (nested lists) is finite; only JSON types appear."""
    if depth > 8:
        raise ValueError(f"{op}: {key} is nested too deeply")
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return
    if isinstance(v, (int, np.integer)):
        return
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v):
            raise ValueError(f"{op}: {key} must be finite, got {v}")
        return
    if isinstance(v, (list, tuple)):
        for i, e in enumerate(v):
            _walk_numbers(op, f"{key}[{i}]", e, depth + 1)
        return
    raise TypeError(f"{op}: {key} must be a number, string, bool or list of them, got "
                    f"{type(v).__name__}")


def _size(op: str, key: str, v, nd: int | None) -> None:
    ok = (type(v) is int or isinstance(v, np.integer)) and not isinstance(v, bool)
    if ok or isinstance(v, (list, tuple)) and len(v) <= 8 and all(
            isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in v):
        return  # the ranges and the length are the builder's to check (its own messages)
    raise TypeError(f"{op}: {key} must be an int or a list of {nd or 'spatial'} ints, got "
                    f"{v!r}"[:300])


def check_config(config, *, op: str = "models.check_config") -> dict:
    """Validate a model config ``{"name", **kwargs}`` without building anything: the name is
    a zoo model, every key is an argument of its builder (``rng`` and ``dtype`` are not part
    of a config), ``in_channels`` and ``num_classes`` are ints >= 1, ``input_size`` an int or
    a list of one int per spatial axis (its range is the builder's check), every other value
    JSON-like with finite numbers. The checks :func:`build` runs first, and the ones a
    checkpoint's stored config goes through before it is used. Returns ``config``; raises
    ValueError / TypeError naming the key."""
    if not isinstance(config, dict):
        raise TypeError(f"{op}: config must be a dict, got {type(config).__name__}")
    name = config.get("name")
    builders = _builders()
    if not isinstance(name, str) or name not in builders:
        raise ValueError(f"{op}: unknown model {str(name)[:100]!r}, expected one of "
                         f"{sorted(MODELS)} (or 'onnx' with path=)")
    params = inspect.signature(builders[name]).parameters
    allowed = sorted(k for k, p in params.items()
                     if p.kind == p.KEYWORD_ONLY and k not in ("rng", "dtype"))
    for key, v in config.items():
        if key == "name":
            continue
        if key not in allowed:
            raise TypeError(f"{op}: {name} got an unexpected keyword argument "
                            f"{str(key)[:100]!r} (its arguments: {allowed})")
        if key in ("in_channels", "num_classes"):
            if type(v) is not int and not isinstance(v, np.integer) or isinstance(v, bool):
                raise TypeError(f"{op}: {key} must be an int, got {v!r}"[:300])
            if v < 1:
                raise ValueError(f"{op}: {key} must be >= 1, got {v}")
        elif key == "input_size":
            _size(op, key, v, SPATIAL_DIMS.get(name))
        else:
            _walk_numbers(op, key, v)
    return config
