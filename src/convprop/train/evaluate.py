"""Evaluation and inference over a dataset, in batches."""

from __future__ import annotations

import numpy as np

from ..layers.loss import criterion_for, row_softmax
from ..progress import Progress

__all__ = ["evaluate", "predict", "softmax"]


softmax = row_softmax  # row-wise softmax, stable for large logits


def _outputs(model, x, batch_size, progress=None):
    outs = []
    for s in range(0, len(x), batch_size):
        outs.append(model.predict(x[s:s + batch_size]))
        if progress is not None:
            progress.update(len(outs[-1]))
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def predict(model, x: np.ndarray, *, batch_size: int = 500, criterion=None) -> np.ndarray:
    """Class probabilities (N, K), float64, of the model's outputs in evaluation mode, as
    ``criterion.probabilities`` reads them (default :func:`criterion_for(model)
    <convprop.layers.loss.criterion_for>`): the softmax of logits; for RBF penalties
    (LeNet-5 as published) ``softmax(-y)``."""
    criterion = criterion_for(model) if criterion is None else criterion
    return criterion.probabilities(_outputs(model, x, batch_size).astype(np.float64))


def evaluate(model, loss, data, *, batch_size: int = 500, topk=(1, 5), verbose: int = 0,
             file=None) -> dict:
    """Loss, accuracy, top-k accuracies and the confusion matrix on ``data = (x, y)``.
    For dense outputs (N, K, *S) with label maps (N, *S), every labelled position (label >= 0)
    counts as one prediction.

    Returns ``{"loss", "accuracy", "top<k>" for k in topk, "confusion"}``; ``confusion[i, j]``
    counts examples of true class i predicted as j. Classes are ranked by ``loss.scores``
    (:class:`~convprop.layers.loss.Loss`: the logits themselves; minus the penalties for
    LeNet-5's RBF outputs), the first on a tie."""
    x, y = data
    if len(x) != len(y):
        raise ValueError(f"evaluate: x has {len(x)} examples but y has {len(y)}")
    if len(x) == 0:
        raise ValueError("evaluate: data is empty")
    bar = Progress(len(x), "evaluate", verbose=verbose, file=file)
    logits = _outputs(model, x, batch_size, bar)
    bar.close()
    y = np.asarray(y)
    value, _ = loss.forward(logits, y)
    k = logits.shape[1]
    scores = getattr(loss, "scores", None)
    scores = logits if scores is None else np.asarray(scores(logits))
    if scores.ndim > 2:  # dense outputs (N, K, *S): one prediction per labelled position
        scores = np.moveaxis(scores, 1, -1).reshape(-1, k)
        y = y.reshape(-1)
        scores, y = scores[y >= 0], y[y >= 0]  # negative labels: unlabelled positions
    order = np.argsort(-scores, axis=1, kind="stable")
    pred = order[:, 0]
    out = {"loss": float(value), "accuracy": float(np.mean(pred == y))}
    for t in topk:
        if t != 1:
            out[f"top{t}"] = float(np.mean(np.any(order[:, :min(t, k)] == y[:, None], axis=1)))
    out["confusion"] = np.bincount(y.astype(np.int64) * k + pred,
                                   minlength=k * k).reshape(k, k)
    return out
