"""Loss modules: ``CrossEntropyLoss`` and ``MSELoss``.

``forward(pred, target) -> (loss, cache)``; ``backward(dy, cache) -> dpred`` like every module,
where ``dy`` is the upstream gradient of the loss: ``loss_fn.backward(1.0, cache)`` when the loss
is the objective.

A loss also says how the model outputs it trains are read as classes (the one place fit's
accuracy, :func:`convprop.train.evaluate` and :func:`convprop.train.predict` ask):
``scores(out)`` (larger is better; the outputs themselves by default), ``classify(out)`` (the
argmax of the scores) and ``probabilities(out)`` (the softmax of the scores). A loss whose
outputs are penalties (LeNet-5's RBF units, :class:`~convprop.layers.lenet_classic.RBFLoss`)
overrides ``scores``. :func:`criterion_for` gives a model's training criterion: the model's own
``criterion()`` when it has one, else :class:`CrossEntropyLoss`.
"""

from __future__ import annotations

from .. import functional as F
from .module import Module

import numpy as np

__all__ = ["CrossEntropyLoss", "Loss", "MSELoss", "criterion_for", "row_softmax"]


def row_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K), stable for large logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def criterion_for(model) -> "Loss":
    """The loss that trains ``model`` and reads its outputs as classes: ``model.criterion()``
    when the model defines it (e.g. LeNet-5 as published: its RBF penalties and eq. 9's
    criterion), else :class:`CrossEntropyLoss` (outputs are class logits)."""
    make = getattr(model, "criterion", None)
    if make is None:
        return CrossEntropyLoss()
    loss = make()
    if not isinstance(loss, Loss):
        raise TypeError(f"criterion_for: {type(model).__name__}.criterion() must return a "
                        f"Loss, got {type(loss).__name__}")
    return loss


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

    def scores(self, out):
        """Class scores (N, K), larger is better, of model outputs ``out`` (N, K) this loss
        trains: ``out`` itself (logits); losses on penalties override it."""
        return out

    def classify(self, out):
        """Predicted classes (N,): the argmax of :meth:`scores` (the first on a tie)."""
        return np.asarray(self.scores(out)).argmax(axis=1)

    def probabilities(self, out):
        """Class probabilities (N, K): the softmax of :meth:`scores`, in ``out``'s dtype."""
        return row_softmax(np.asarray(self.scores(out)))

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
