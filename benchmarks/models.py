"""LeNet-5 and ResNet-20 training steps for both frameworks (shared by timing and memory).

convprop: ``convprop.models.build(name)`` when the model zoo has it; LeNet-5 falls back to an
equivalent ``convprop.layers.Sequential``; ResNet-20 has no fallback (it is skipped with a
note). PyTorch: the equivalent ``nn.Sequential`` / a CIFAR ResNet-20 written here whose
shortcut type (A: strided identity + zero channels, B: 1x1 conv + BN) is chosen to match
convprop's parameter count. Both sides: softmax cross-entropy, plain SGD (lr 0.01), float32,
batch 64, random data from a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from .harness import Unavailable

__all__ = [
    "LR",
    "convprop_model",
    "convprop_step",
    "make_data",
    "torch_model",
    "torch_resnet20",
    "torch_step",
]

LR = 0.01
SHAPES = {"lenet5": (1, 28, 28), "resnet20": (3, 32, 32)}


def make_data(model: str, batch: int = 64, seed: int = 0):
    """Inputs (batch, C, H, W) float32 and integer targets in [0, 10)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *SHAPES[model]), dtype=np.float32)
    t = rng.integers(0, 10, size=batch).astype(np.int64)
    return x, t


# -- convprop ----------------------------------------------------------------------------------
def _call(fn, *args, rng=None, **kw):
    """Call a constructor, passing ``rng`` only where its signature takes one."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    if rng is not None and "rng" in params:
        kw["rng"] = rng
    return fn(*args, **kw)


def _lenet5_sequential(rng):
    try:
        from convprop.layers import (Conv2d, Flatten, Linear, MaxPool2d, ReLU,  # noqa: I001
                                     Sequential)
    except ImportError as e:
        raise Unavailable(f"convprop.layers incomplete ({e})") from None
    mods = [_call(Conv2d, 1, 6, 5, padding=2, rng=rng), ReLU(), MaxPool2d(2),
            _call(Conv2d, 6, 16, 5, rng=rng), ReLU(), MaxPool2d(2), Flatten(),
            _call(Linear, 400, 120, rng=rng), ReLU(), _call(Linear, 120, 84, rng=rng), ReLU(),
            _call(Linear, 84, 10, rng=rng)]
    return Sequential(*mods)


def convprop_model(name: str, seed: int = 0):
    """(model, how it was built) for ``name`` in {'lenet5', 'resnet20'}, float32."""
    rng = np.random.default_rng(seed)
    build = None
    try:
        from convprop.models import build  # type: ignore[attr-defined]
    except ImportError:
        pass
    if build is not None:
        try:
            model = _call(build, name, rng=rng)
            how = f"convprop.models.build({name!r})"
        except (KeyError, ValueError, NotImplementedError) as e:
            model, how = None, f"zoo has no {name!r} ({e})"
    else:
        model, how = None, "convprop.models.build not available"
    if model is None:
        if name != "lenet5":
            raise Unavailable(how)
        model, how = _lenet5_sequential(rng), "convprop.layers.Sequential (zoo fallback)"
    if hasattr(model, "astype"):
        model.astype(np.float32)
    return model, how


class _PlainSGD:
    """``p.value = p.value - lr * p.grad``; used only while convprop.optim.SGD is missing."""

    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    def step(self):
        for p in self.params:
            p.value = p.value - self.lr * p.grad

    def zero_grad(self):
        for p in self.params:
            p.zero_grad()


def _loss_backward(loss_fn, cache, dtype):
    """``backward(dy, cache)`` with dy = 1, or ``backward(cache)`` if that is the signature."""
    try:
        n = sum(1 for p in inspect.signature(loss_fn.backward).parameters.values()
                if p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    except (TypeError, ValueError):
        n = 2
    return loss_fn.backward(cache) if n == 1 else loss_fn.backward(np.ones((), dtype), cache)


def convprop_step(name: str, batch: int = 64,
                  seed: int = 0) -> tuple[Callable[[], object], str, int]:
    """(step, description, parameter count); the step is forward, loss, backward, SGD update,
    zero_grad."""
    model, how = convprop_model(name, seed)
    try:
        from convprop.layers import CrossEntropyLoss
    except ImportError:
        raise Unavailable("convprop.layers.CrossEntropyLoss not available") from None
    loss_fn = CrossEntropyLoss()
    params = model.parameters()
    try:
        from convprop.optim import SGD  # type: ignore[attr-defined]
        opt, how_opt = SGD(params, lr=LR), "convprop.optim.SGD"
    except ImportError:
        opt, how_opt = _PlainSGD(params, LR), "plain SGD loop (convprop.optim.SGD missing)"
    x, t = make_data(name, batch, seed)
    opt.zero_grad()

    def step():
        y, cache = model.forward(x, training=True)
        loss, lcache = loss_fn.forward(y, t)
        model.backward(_loss_backward(loss_fn, lcache, y.dtype), cache)
        opt.step()
        opt.zero_grad()
        return loss

    n_params = sum(int(p.value.size) for p in params)
    return step, f"{how}, {how_opt}, {n_params} params", n_params


# -- PyTorch -----------------------------------------------------------------------------------
def _torch_lenet5(nn):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def torch_resnet20(shortcut: str = "A"):
    """CIFAR ResNet-20 (He et al. 2016): 3x3 stem 16, 3 stages x 3 basic blocks (16/32/64),
    global average pool, linear 10. ``shortcut`` 'A' = strided identity padded with zero
    channels (no parameters), 'B' = 1x1 strided conv + BN where the shape changes."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
            self.pad = 0
            self.proj = None
            if stride != 1 or cin != cout:
                if shortcut == "B":
                    self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                              nn.BatchNorm2d(cout))
                else:
                    self.pad, self.stride = cout - cin, stride

        def forward(self, x):
            if self.proj is not None:
                s = self.proj(x)
            elif self.pad:
                s = x[:, :, ::self.stride, ::self.stride]
                s = torch.nn.functional.pad(s, (0, 0, 0, 0, self.pad // 2,
                                                self.pad - self.pad // 2))
            else:
                s = x
            return torch.relu(self.body(x) + s)

    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(Block(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def torch_model(name: str, convprop_params: int | None = None):
    """(model, description); for ResNet-20 the shortcut matching ``convprop_params``."""
    import torch  # noqa: F401  (ImportError is the caller's 'torch not installed')
    from torch import nn
    if name == "lenet5":
        return _torch_lenet5(nn), "nn.Sequential LeNet-5"
    counts = {s: sum(p.numel() for p in torch_resnet20(s).parameters()) for s in "AB"}
    pick = "A"
    for s, c in counts.items():
        if c == convprop_params:
            pick = s
    how = f"ResNet-20 shortcut {pick}, {counts[pick]} params"
    if convprop_params is not None and counts[pick] != convprop_params:
        how += f" (convprop has {convprop_params}: no exact match)"
    return torch_resnet20(pick), how


def torch_step(name: str, batch: int = 64, seed: int = 0, convprop_params: int | None = None):
    """A zero-argument PyTorch training step (zero_grad, forward, loss, backward, SGD)."""
    import torch
    torch.manual_seed(seed)
    model, how = torch_model(name, convprop_params)
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

    return step, how
