"""The training loop: mini-batch gradient descent with progress, metrics and callbacks."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .callbacks import Batch
from .evaluate import evaluate
from .history import History
from ..progress import Progress

__all__ = ["fit", "TrainState", "NonFiniteLossError"]

#: The callback hooks fit calls, in the order of a run (see :class:`.callbacks.Callback`).
HOOKS = ("on_train_begin", "on_batch_begin", "on_loss_begin", "on_backward_end",
         "on_batch_end", "on_epoch_logs", "on_epoch_end", "on_train_end")


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; raised before that step's update is applied.

    ``cause`` says what went non-finite first, checked in the order data flows: "inputs"
    (the batch itself: the data, an augmentation or a hook), "parameters" (an earlier update
    made a weight non-finite), "outputs" (finite inputs and weights, but the forward pass
    overflowed), or "loss" (finite outputs; the loss itself, e.g. its targets). The learning
    rate is blamed only for "parameters", and for "outputs" and "loss" when the outputs or
    weights have grown huge (the usual sign of a diverging run); ``detail`` says which
    array."""

    def __init__(self, epoch: int, step: int, value: float, cause: str | None = None,
                 detail: str = "", lr: float | None = None, blame_lr: bool | None = None):
        self.epoch, self.step, self.value = epoch, step, value
        self.cause, self.detail = cause, detail
        if blame_lr is None:
            blame_lr = cause in (None, "parameters")
        where = {None: "", "inputs": "the inputs of this batch went non-finite first",
                 "parameters": "the parameters went non-finite first (in an earlier update)",
                 "outputs": "the model's outputs went non-finite first (inputs and parameters "
                            "are finite)",
                 "loss": "the loss itself went non-finite (inputs, parameters and outputs are "
                         "finite)"}[cause]
        msg = (f"fit: the training loss became {value} at epoch {epoch}, step {step}; training "
               "stopped before applying that update (the last saved checkpoint is intact)")
        if where:
            msg += f". {where[0].upper()}{where[1:]}"
        if detail:
            msg += f": {detail}"
        if blame_lr:
            lr_text = f" ({lr:.3g})" if lr is not None else ""
            msg += f". The learning rate{lr_text} is likely too high; try a lower one."
        elif cause == "inputs":
            msg += ". Check the data (and any augmentation or callback that rewrites batches)."
        else:
            msg += "."
        super().__init__(msg)


def _first_nonfinite(arrays) -> str:
    for name, a in arrays:
        a = np.asarray(a)
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            n = int(np.count_nonzero(~np.isfinite(a)))
            return f"{name} ({n} of {a.size} values NaN or infinite)"
    return ""


def _diagnose(model, optimizer, batch, epoch: int, step: int, value: float):
    """The NonFiniteLossError for this step, saying what went non-finite first."""
    lr = float(getattr(optimizer, "lr", float("nan")))
    bad = _first_nonfinite([("the batch inputs", batch.x)])
    if bad:
        return NonFiniteLossError(epoch, step, value, "inputs", bad, lr, False)
    x = np.asarray(batch.x)
    x_max = float(np.abs(x).max()) if x.size and x.dtype.kind in "fiu" else 0.0
    # inputs this large overflow the forward pass (and the gradients) whatever the step size
    huge_x = x_max > 1e6
    scale = (f"; the inputs are very large (largest |x| {x_max:.3g}): check the data's "
             "scaling" if huge_x else "")
    named = model.named_parameters() if hasattr(model, "named_parameters") else []
    bad = _first_nonfinite((f"parameter {n!r}", p.value) for n, p in named)
    if bad:
        return NonFiniteLossError(epoch, step, value, "parameters", bad + scale, lr, not huge_x)
    out = np.asarray(batch.out)
    big = 0.0
    if hasattr(model, "parameters"):
        big = max((float(np.abs(p.value).max()) for p in model.parameters() if p.value.size),
                  default=0.0)
    finite_out = bool(np.isfinite(out).all())
    out_max = float(np.abs(out).max()) if out.size and finite_out else 0.0
    if not finite_out:
        bad = _first_nonfinite([("the outputs", out)])
        return NonFiniteLossError(epoch, step, value, "outputs", bad + scale, lr,
                                  big > 1e3 and not huge_x)
    # weights or logits this large mean the run diverged: the step size is the usual cause
    diverged = (big > 1e6 or out_max > 1e6) and not huge_x
    return NonFiniteLossError(epoch, step, value, "loss",
                              f"largest |output| {out_max:.3g}, largest |weight| {big:.3g}"
                              + scale, lr, diverged)


def batch_hits(loss, out, labels) -> tuple[int, int]:
    """(right, counted) of a batch's outputs as ``loss`` reads them (:func:`_classify`)
    against ``labels``: one label per example, or a label map per example (dense pixelwise
    networks, :mod:`convprop.models.dense`) whose negative entries are unlabelled positions.
    fit's accuracy, and data-parallel training's over every rank."""
    pred = _classify(loss, out)
    labels = np.asarray(labels)
    if labels.ndim == 1:
        return int(np.count_nonzero(pred == labels)), len(labels)
    keep = labels >= 0
    return int(np.count_nonzero((pred == labels) & keep)), int(np.count_nonzero(keep))


def _classify(loss, out) -> np.ndarray:
    """The classes ``loss`` reads from ``out`` (:meth:`Loss.classify`: the argmax of the
    logits, the argmin of RBF penalties); a duck-typed loss without it: the argmax."""
    classify = getattr(loss, "classify", None)
    return out.argmax(axis=1) if classify is None else classify(out)


@dataclass
class TrainState:
    """What callbacks see: the live objects, the history so far, and a stop flag."""

    model: object
    optimizer: object
    schedule: object
    rng: np.random.Generator
    history: History
    epoch: int = 0
    stop: bool = False
    loss: object = None  # the loss fit trains with (it reads the outputs as classes)


def _check_data(name, data):
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"fit: {name} must be a pair (x, y) of arrays, got {type(data).__name__}")
    x, y = data
    if len(x) != len(y):
        raise ValueError(f"fit: {name} has {len(x)} inputs but {len(y)} targets")
    if len(x) == 0:
        raise ValueError(f"fit: {name} is empty")


def fit(model, loss, optimizer, train_data, *, epochs: int, batch_size: int, val_data=None,
        schedule=None, rng: np.random.Generator, callbacks=(), verbose: int = 1,
        augment=None, initial_epoch: int = 0, history: History | None = None,
        file=None) -> History:
    """Train ``model`` for epochs ``initial_epoch+1 .. epochs`` and return the History.

    Each epoch shuffles ``train_data = (x, y)`` with ``rng``, and for each batch runs
    forward, loss, backward (parameter gradients accumulate from zero) and
    ``optimizer.step()`` (the accuracy counts ``loss.classify(out)``, the argmax for
    logits); ``augment(xb, rng)``, if given, transforms each batch. After the
    epoch it evaluates ``val_data``, steps ``schedule`` (ReduceLROnPlateau with the
    validation loss, or the training loss without validation data), records the epoch and
    runs the callbacks. All randomness comes from ``rng`` (and generators the modules own),
    so the same seed gives bit-identical results, and resuming from a checkpoint taken at an
    epoch boundary continues exactly as an uninterrupted run would.

    ``fit`` changes no process-wide setting. Training in a process that has called
    :func:`convprop.malloc.tune_malloc` once (the ``convprop`` command does) is faster with
    glibc, which otherwise hands the large activation arrays back to the OS after every step.
    """
    from ..data import batches

    _check_data("train_data", train_data)
    if val_data is not None:
        _check_data("val_data", val_data)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"fit: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if batch_size < 1 or epochs < 0:
        raise ValueError(f"fit: need batch_size >= 1 and epochs >= 0, got {batch_size}, {epochs}")
    x, y = train_data
    history = History() if history is None else history
    state = TrainState(model, optimizer, schedule, rng, history, epoch=initial_epoch, loss=loss)
    # each hook a callback defines (a Callback subclass has them all; a duck-typed object
    # may define only the ones it uses)
    hooks = {name: [getattr(cb, name) for cb in callbacks if hasattr(cb, name)]
             for name in HOOKS}
    for hook in hooks["on_train_begin"]:
        hook(state)
    for epoch in range(initial_epoch + 1, epochs + 1):
        state.epoch = epoch
        lr = float(optimizer.lr)
        bar = Progress(len(x), f"epoch {epoch}/{epochs}", verbose=verbose, file=file)
        t0 = time.perf_counter()
        total_loss, correct, seen, labelled = 0.0, 0, 0, 0
        for step, (xb, yb) in enumerate(batches(x, y, batch_size, shuffle=True, rng=rng), 1):
            if augment is not None:
                xb = augment(xb, rng)
            batch = Batch(xb, yb, yb, step)
            for hook in hooks["on_batch_begin"]:
                hook(state, batch)
            out, cache = model.forward(batch.x, training=True)
            batch.out = out
            for hook in hooks["on_loss_begin"]:
                hook(state, batch)
            value, loss_cache = loss.forward(out, batch.y)
            value = batch.loss = float(value)
            if not np.isfinite(value):
                bar.close()
                raise _diagnose(model, optimizer, batch, epoch, step, value)
            optimizer.zero_grad()
            # the input gradient is discarded, so the first layer may skip computing it
            model.backward(loss.backward(1.0, loss_cache), cache, need_dx=False)
            for hook in hooks["on_backward_end"]:
                hook(state, batch)
            optimizer.step()
            for hook in hooks["on_batch_end"]:
                hook(state, batch)
            n = len(batch.labels)
            total_loss += value * n
            hits, counted = batch_hits(loss, out, batch.labels)
            correct += hits
            labelled += counted
            seen += n
            bar.update(n, loss=total_loss / seen, acc=correct / max(labelled, 1))
        elapsed = time.perf_counter() - t0
        bar.close()
        logs = {"epoch": epoch, "loss": total_loss / seen,
                "accuracy": correct / labelled if labelled else 0.0}
        if val_data is not None:
            ev = evaluate(model, loss, val_data, batch_size=max(batch_size, 500))
            logs["val_loss"], logs["val_accuracy"] = ev["loss"], ev["accuracy"]
        logs.update(lr=lr, time=elapsed, examples_per_sec=seen / elapsed)
        # before the schedule reads them: e.g. data-parallel training's metrics over every
        # rank, so a plateau schedule steps alike on every rank
        for hook in hooks["on_epoch_logs"]:
            hook(state, logs)
        if schedule is not None:
            if getattr(schedule, "needs_metric", False):
                schedule.step(logs.get("val_loss", logs["loss"]))
            else:
                schedule.step()
        history.append(logs)
        val = (f" - val_loss {logs['val_loss']:.4f} - val_acc {logs['val_accuracy']:.4f}"
               if val_data is not None else "")
        bar.log(f"epoch {epoch}/{epochs} - loss {logs['loss']:.4f} - acc {logs['accuracy']:.4f}"
                f"{val} - lr {lr:.3g} - {elapsed:.1f}s ({logs['examples_per_sec']:.0f} ex/s)")
        for hook in hooks["on_epoch_end"]:
            hook(state, logs)
        if state.stop:
            break
    for hook in hooks["on_train_end"]:
        hook(state)
    return history
