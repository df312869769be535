"""``Dropout``: the module owns its random generator."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the
    rest by 1/(1-p); identity in evaluation.

    The generator lives in the attribute ``rng`` (a ``numpy.random.Generator``; None makes a
    fresh unseeded one), so a training loop can checkpoint and restore its state.
    """

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None):
        super().__init__()
        p = F.dropout_p("Dropout", p)  # the kernel's own check
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"Dropout: rng must be a numpy.random.Generator or None, "
                            f"got {type(rng).__name__}")
        self.p = float(p)
        self.rng = np.random.default_rng() if rng is None else rng

    def forward(self, x, *, training: bool = False):
        return F.dropout_forward(x, p=self.p, training=training, rng=self.rng)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.dropout_backward(dy, cache)

    def extra_repr(self) -> str:
        return f"p={self.p}"
