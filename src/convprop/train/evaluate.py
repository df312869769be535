"""Evaluation and inference over a dataset, in batches."""

from __future__ import annotations

import numpy as np

from ..progress import Progress

__all__ = ["evaluate", "predict", "softmax"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _outputs(model, x, batch_size, progress=None):
    outs = []
    for s in range(0, len(x), batch_size):
        outs.append(model.predict(x[s:s + batch_size]))
        if progress is not None:
            progress.update(len(outs[-1]))
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def predict(model, x: np.ndarray, *, batch_size: int = 500) -> np.ndarray:
    """Class probabilities (N, K): the softmax of the model's outputs in evaluation mode."""
    return softmax(_outputs(model, x, batch_size).astype(np.float64))


def evaluate(model, loss, data, *, batch_size: int = 500, topk=(1, 5), verbose: int = 0,
             file=None) -> dict:
    """Loss, accuracy, top-k accuracies and the confusion matrix on ``data = (x, y)``.

    Returns ``{"loss", "accuracy", "top<k>" for k in topk, "confusion"}``; ``confusion[i, j]``
    counts examples of true class i predicted as j."""
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
    order = np.argsort(-logits, axis=1, kind="stable")
    pred = order[:, 0]
    out = {"loss": float(value), "accuracy": float(np.mean(pred == y))}
    for t in topk:
        if t != 1:
            out[f"top{t}"] = float(np.mean(np.any(order[:, :min(t, k)] == y[:, None], axis=1)))
    out["confusion"] = np.bincount(y.astype(np.int64) * k + pred,
                                   minlength=k * k).reshape(k, k)
    return out
