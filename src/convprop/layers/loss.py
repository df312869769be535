"""Loss modules: ``CrossEntropyLoss`` and ``MSELoss``.

``forward(pred, target) -> (loss, cache)``; ``backward(dy, cache) -> dpred`` like every module,
where ``dy`` is the upstream gradient of the loss: ``loss_fn.backward(1.0, cache)`` when the loss
is the objective.
"""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["CrossEntropyLoss", "Loss", "MSELoss"]


class Loss(Module):
    """Base of the losses: a module whose forward takes a prediction and a target."""

    _reductions: tuple = ()

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in self._reductions:
            raise ValueError(f"{type(self).__name__}: reduction must be one of "
                             f"{list(self._reductions)}, got {reduction!r}")
        self.reduction = reduction

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def forward(self, pred, target):
        raise NotImplementedError

    def backward(self, dy, cache, *, need_dx: bool = True):
        """dpred = dy * d(loss)/d(pred), shaped like ``pred``. ``need_dx`` is accepted, as by
        every module, and ignored: dpred is the one thing a loss's backward computes."""
        raise NotImplementedError

    def predict(self, x):
        raise TypeError(f"{type(self).__name__}: a loss has no predict(); "
                        "call forward(pred, target)")

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy from logits (N, K) and integer class targets (N,), as
    ``torch.nn.CrossEntropyLoss``: ``loss_n = logsumexp(z_n) - z_n[t_n]``, then mean, sum or
    none (N,). Float targets (N, K) are class probabilities (PyTorch's rule):
    ``loss_n = -sum_k t_nk log softmax(z_n)_k``."""

    _reductions = ("mean", "sum", "none")

    def forward(self, pred, target):
        return F.softmax_cross_entropy_forward(pred, target, reduction=self.reduction)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.softmax_cross_entropy_backward(dy, cache)


class MSELoss(Loss):
    """Squared error ``(pred - target)^2`` reduced by mean (as ``torch.nn.MSELoss``), sum,
    half_sum (``0.5 * sum``, the textbook objective) or none (elementwise)."""

    _reductions = ("mean", "sum", "half_sum", "none")

    def forward(self, pred, target):
        return F.mse_forward(pred, target, reduction=self.reduction)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return F.mse_backward(dy, cache)
