"""Elementwise activation modules: ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``, and
:func:`relu_rule`, which sets the backward rule of every ``ReLU`` of a model for a while."""

from __future__ import annotations

from contextlib import contextmanager

from .. import functional as F
from .._checks import finite_number
from ..functional.activation import RELU_RULES, relu_rule_arg
from .module import Module

__all__ = ["LeakyReLU", "ReLU", "RELU_RULES", "Sigmoid", "Tanh", "relu_rule"]


class ReLU(Module):
    """y = max(x, 0); the gradient at x = 0 is 0 (as in PyTorch).

    ``rule`` chooses the backward (:data:`~convprop.functional.activation.RELU_RULES`):
    "gradient" (default, the derivative ``[x > 0] dy``), "deconvnet" (``[dy > 0] dy``, Zeiler
    and Fergus 2014) or "guided" (``[x > 0] [dy > 0] dy``, Springenberg et al. 2014). Only
    "gradient" trains; the others are for visualisation. The attribute may be reassigned, or
    set for a whole model at once with :func:`relu_rule`."""

    def __init__(self, rule: str = "gradient"):
        super().__init__()
        self.rule = relu_rule_arg("ReLU", rule)

    def forward(self, x, *, training: bool = False):
        return F.relu_forward(x)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.relu_backward(dy, cache, rule=self.rule)

    def extra_repr(self) -> str:
        return "" if self.rule == "gradient" else f"rule={self.rule!r}"


@contextmanager
def relu_rule(model: Module, rule: str):
    """Within the ``with`` block every :class:`ReLU` of ``model`` (``model`` itself included)
    back-propagates by ``rule`` ("gradient", "deconvnet" or "guided"); each one's own rule
    is restored on leaving, also after an exception. Other activations keep their
    derivative (as in Captum, whose rules hook ``torch.nn.ReLU`` modules only).

    >>> with relu_rule(model, "guided"):
    ...     dx = model.backward(dy, cache)"""
    rule = relu_rule_arg("relu_rule", rule)
    if not isinstance(model, Module):
        raise TypeError(f"relu_rule: model must be a Module, got {type(model).__name__}")
    relus = [m for m in model.modules() if isinstance(m, ReLU)]
    saved = [m.rule for m in relus]
    try:
        for m in relus:
            m.rule = rule
        yield model
    finally:
        for m, r in zip(relus, saved):
            m.rule = r


class LeakyReLU(Module):
    """y = x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = finite_number("LeakyReLU", "negative_slope", negative_slope)

    def forward(self, x, *, training: bool = False):
        return F.leaky_relu_forward(x, negative_slope=self.negative_slope)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.leaky_relu_backward(dy, cache)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x))."""

    def forward(self, x, *, training: bool = False):
        return F.sigmoid_forward(x)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.sigmoid_backward(dy, cache)


class Tanh(Module):
    """y = tanh(x)."""

    def forward(self, x, *, training: bool = False):
        return F.tanh_forward(x)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.tanh_backward(dy, cache)
