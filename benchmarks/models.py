"""LeNet-5, ResNet-20 and c3d_mini training steps for both frameworks (shared by timing and
memory).

convprop: ``convprop.models.build(name)`` (default configuration: ResNet-20 with option-A
shortcuts), ``CrossEntropyLoss``, ``convprop.optim.SGD``, with glibc's allocator tuned by
``convprop.malloc.tune_malloc()`` as the ``convprop`` command does (convprop's training
configuration). PyTorch: the same architecture from :mod:`twins.torch_zoo` (the zoo that
``tests/models/test_zoo_parity.py`` verifies against convprop's, default configuration too),
``nn.CrossEntropyLoss``, ``torch.optim.SGD``. Both sides: plain SGD (lr 0.01), float32,
batch 64 (c3d_mini: 32 clips of 16x32x32), random data from a seeded
``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .harness import Unavailable

__all__ = [
    "LR",
    "MALLOC_NOTE",
    "convprop_model",
    "convprop_step",
    "make_data",
    "require_torch",
    "torch_model",
    "torch_step",
]

LR = 0.01
SHAPES = {"lenet5": (1, 28, 28), "resnet20": (3, 32, 32), "c3d_mini": (1, 16, 32, 32)}
CLASSES = {"c3d_mini": 8}
BATCH = {"c3d_mini": 32}
MALLOC_NOTE = "glibc malloc tuned by convprop.malloc.tune_malloc() (as the convprop command)"


def make_data(model: str, batch: int | None = None, seed: int = 0):
    """Inputs (batch, C, *spatial) float32 and integer targets in [0, classes); the batch is
    64, or 32 for the 3-D c3d_mini."""
    rng = np.random.default_rng(seed)
    batch = BATCH.get(model, 64) if batch is None else batch
    x = rng.standard_normal((batch, *SHAPES[model]), dtype=np.float32)
    t = rng.integers(0, CLASSES.get(model, 10), size=batch).astype(np.int64)
    return x, t


# -- convprop ----------------------------------------------------------------------------------
def convprop_model(name: str, seed: int = 0):
    """``convprop.models.build(name)`` in float32, weights from ``default_rng(seed)``."""
    from convprop.models import build
    return build(name, rng=np.random.default_rng(seed), dtype=np.float32)


def convprop_step(name: str, batch: int | None = None,
                  seed: int = 0) -> tuple[Callable[[], object], str, int]:
    """(step, description, parameter count); the step is forward, loss, backward, SGD update,
    zero_grad. Tunes glibc's allocator (once per process) as the ``convprop`` command does."""
    from convprop.layers import CrossEntropyLoss
    from convprop.malloc import tune_malloc
    from convprop.optim import SGD

    tuned = tune_malloc()
    model = convprop_model(name, seed)
    loss_fn = CrossEntropyLoss()
    params = model.parameters()
    opt = SGD(params, lr=LR)
    x, t = make_data(name, batch, seed)
    opt.zero_grad()

    def step():
        y, cache = model.forward(x, training=True)
        loss, lcache = loss_fn.forward(y, t)
        # as in fit (and as torch, whose input does not require grad): no input gradient
        model.backward(loss_fn.backward(1.0, lcache), cache, need_dx=False)
        opt.step()
        opt.zero_grad()
        return loss

    n_params = model.num_parameters()
    how = (f"convprop.models.build({name!r}), convprop.optim.SGD, {n_params} params; "
           + (MALLOC_NOTE if tuned else "malloc NOT tuned (CONVPROP_TUNE_MALLOC=0 or not glibc)"))
    return step, how, n_params


# -- PyTorch -----------------------------------------------------------------------------------
def require_torch():
    """The torch module, or :class:`Unavailable` ("torch not installed")."""
    try:
        import torch
    except ImportError:
        raise Unavailable("torch not installed") from None
    return torch


def torch_model(name: str):
    """(``twins.torch_zoo`` model ``name`` in its default configuration, description)."""
    require_torch()
    from twins.torch_zoo import TORCH_MODELS
    model = TORCH_MODELS[name]()
    n = sum(p.numel() for p in model.parameters())
    return model, f"twins.torch_zoo.{name}(), torch.optim.SGD, {n} params"


def torch_step(name: str, batch: int | None = None, seed: int = 0):
    """(a zero-argument PyTorch training step: zero_grad, forward, loss, backward, SGD;
    description, parameter count)."""
    torch = require_torch()
    torch.manual_seed(seed)
    model, how = torch_model(name)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, t = (torch.from_numpy(a) for a in make_data(name, batch, seed))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), t)
        loss.backward()
        opt.step()
        return loss

    return step, how, sum(p.numel() for p in model.parameters())
