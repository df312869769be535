"""``Linear``: y = x w^T + b."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._checks import positive_int
from ._util import accumulate, check_input, float_dtype
from .init import init_weight_and_bias
from .module import Module, Parameter

__all__ = ["Linear"]


class Linear(Module):
    """Fully connected layer ``y = x @ weight.T + bias``.

    Args: x (N, in_features) -> y (N, out_features); weight (out_features, in_features),
    bias (out_features,). ``init`` is a name from :mod:`convprop.layers.init` or a callable.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 init="torch", rng: np.random.Generator | None = None, dtype=np.float32):
        super().__init__()
        self.in_features = positive_int("Linear", "in_features", in_features)
        self.out_features = positive_int("Linear", "out_features", out_features)
        dt = float_dtype("Linear", dtype)
        w, b = init_weight_and_bias("Linear", init, (self.out_features, self.in_features),
                                    self.out_features if bias else None, rng, dt)
        self.weight = Parameter(w)
        self.bias = Parameter(b) if b is not None else None

    def forward(self, x, *, training: bool = False):
        check_input("Linear", x, (self.weight, self.bias))
        b = self.bias.value if self.bias is not None else None
        return F.linear_forward(x, self.weight.value, b)

    def backward(self, dy, cache, *, need_dx: bool = True):
        dx, dw, db = F.linear_backward(dy, cache, need_dx=need_dx)
        accumulate(self.weight, dw)
        accumulate(self.bias, db)
        return dx

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
