"""``Linear``: y = x w^T + b."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._checks import boolean, positive_int
from ..functional.meprop import linear_meprop_backward
from ._util import accumulate, check_input, float_dtype
from .init import init_weight_and_bias
from .module import Module, Parameter

__all__ = ["Linear"]


class Linear(Module):
    """Fully connected layer ``y = x @ weight.T + bias``.

    Args: x (N, in_features) -> y (N, out_features); weight (out_features, in_features),
    bias (out_features,). ``init`` is a name from :mod:`convprop.layers.init` or a callable.

    meProp (Sun et al. 2017, :mod:`convprop.functional.meprop`): with ``meprop_k`` set, the
    backward keeps only the ``meprop_k`` largest ``|dy|`` of each example (``meprop_unified``:
    the same columns for the whole batch) for dx and dw; db uses the full dy. None (the
    default) is the ordinary backward.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 init="torch", rng: np.random.Generator | None = None, dtype=np.float32,
                 meprop_k: int | None = None, meprop_unified: bool = False):
        super().__init__()
        self.in_features = positive_int("Linear", "in_features", in_features)
        self.out_features = positive_int("Linear", "out_features", out_features)
        dt = float_dtype("Linear", dtype)
        w, b = init_weight_and_bias("Linear", init, (self.out_features, self.in_features),
                                    self.out_features if bias else None, rng, dt)
        self.weight = Parameter(w)
        self.bias = Parameter(b) if b is not None else None
        if meprop_k is not None:
            meprop_k = positive_int("Linear", "meprop_k", meprop_k)
            if meprop_k > self.out_features:
                raise ValueError(f"Linear: meprop_k must be <= out_features "
                                 f"({self.out_features}), got {meprop_k}")
        self.meprop_k = meprop_k
        self.meprop_unified = boolean("Linear", "meprop_unified", meprop_unified)

    def forward(self, x, *, training: bool = False):
        check_input("Linear", x, (self.weight, self.bias))
        b = self.bias.value if self.bias is not None else None
        return F.linear_forward(x, self.weight.value, b)

    def backward(self, dy, cache, *, need_dx: bool = True):
        if self.meprop_k is None:
            dx, dw, db = F.linear_backward(dy, cache, need_dx=need_dx)
        else:
            dx, dw, db = linear_meprop_backward(dy, cache, k=self.meprop_k,
                                                unified=self.meprop_unified, need_dx=need_dx)
        accumulate(self.weight, dw)
        accumulate(self.bias, db)
        return dx

    def extra_repr(self) -> str:
        s = (f"in_features={self.in_features}, out_features={self.out_features}, "
             f"bias={self.bias is not None}")
        if self.meprop_k is not None:
            s += f", meprop_k={self.meprop_k}"
            if self.meprop_unified:
                s += ", meprop_unified=True"
        return s
