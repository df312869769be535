"""Data-parallel training as a :func:`~convprop.train.fit` callback (Horovod's model over MPI).

Every rank holds the whole model and runs ``fit`` with the same data, seed and batch size;
the callback makes the ranks one training run:

- **Sharding.** ``fit`` shuffles with the shared seed, so every rank draws the same global
  batch; rank ``r`` of ``K`` keeps the contiguous slice ``[r n // K, (r + 1) n // K)`` of
  its ``n`` examples. Every example is used once per epoch across the ranks.
- **Gradients.** After the backward, each rank's parameter gradients (of the mean loss over
  its ``n_r`` examples) are packed into one flat buffer (the parameters' dtype), scaled by
  ``n_r / n`` and
  summed by one allreduce: the gradient of the mean loss over the global batch, exactly
  what one process with the whole batch computes (up to summation order), on every rank.
  The optimizer then takes the same step everywhere, so parameters and optimizer state stay
  identical; ``check=True`` verifies it with a SHA-256 of both compared across ranks after
  every epoch. (One buffer and one allreduce per step, after the backward: on the 2-core
  machines of the benchmarks the allreduce is a few percent of a step, too little for
  overlapping it with the backward to pay; see the benchmark's allreduce rows.)
- **A batch smaller than K.** A rank whose slice is empty runs the batch's first example as
  a stand-in with weight 0 (``comm.placeholder`` is True meanwhile), so every rank takes part
  in every collective and the result is unchanged.
- **Metrics.** The epoch's loss and accuracy are summed over the ranks
  (:meth:`on_epoch_logs`), so the history is the global one; the per-step progress bar shows
  the rank's own running values.
- **Batch norm** is per rank (statistics of the rank's slice) unless the model uses
  :class:`~convprop.distributed.SyncBatchNorm`, so a model with per-rank batch norm does
  not compute the one-process gradient. Its running statistics, which each rank would
  otherwise update from its own slice, are averaged over the ranks (weights ``n_r / n``, in
  the gradients' allreduce) at every step: every rank evaluates, checkpoints and decides
  (early stopping, plateau schedules) with the same buffers.
- **Random modules** (dropout, stochastic pooling): rank ``r > 0`` draws from rank 0's
  generator states re-seeded for ``r`` (a SHA-256 of the state and ``r``), so the ranks draw
  independent masks for their slices rather than the same masks; the derivation is
  repeated from rank 0's states after every epoch, so a run resumed from rank 0's
  checkpoint with the same K draws exactly what the uninterrupted run drew. Masks are
  per rank, so such a model does not compute the one-process gradient either.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from ..io.checkpoint import module_generators
from ..train.loop import batch_hits
from ..layers.normalization import _BatchNorm
from ..train.callbacks import Callback
from .comm import Comm, world
from .sync_batchnorm import SyncBatchNorm

__all__ = ["DataParallel", "OutOfSyncError", "state_checksum"]


class OutOfSyncError(RuntimeError):
    """The ranks of a data-parallel run hold different parameters, buffers or optimizer
    state (``DataParallel(check=True)``)."""


def _per_rank_buffers(model) -> list:
    """(module, name) of the buffers a training forward sets from the rank's own slice:
    the running statistics of batch norm that is not synchronized."""
    return [(m, name) for _, m in model.named_modules()
            if isinstance(m, _BatchNorm) and not isinstance(m, SyncBatchNorm)
            and m.track_running_stats for name in ("running_mean", "running_var")]


def _rank_state(state: dict, rank: int) -> dict:
    """A bit generator state for ``rank`` derived from rank 0's ``state``: the same type,
    seeded by a SHA-256 of the state and the rank (an independent stream)."""
    bg = getattr(np.random, state["bit_generator"])
    digest = hashlib.sha256(json.dumps(state, sort_keys=True,
                                       default=lambda a: np.asarray(a).tolist()).encode()).digest()
    seq = np.random.SeedSequence(int.from_bytes(digest, "little"), spawn_key=(rank,))
    return bg(seq).state


def state_checksum(model, optimizer=None) -> str:
    """SHA-256 over the model's state_dict (parameters and buffers) and the optimizer's
    arrays, step counts and hyperparameters (the learning rate), in a fixed order: equal on
    every rank when they are in step. Module generators are left out: they differ by rank
    by design (see :class:`DataParallel`)."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(np.ascontiguousarray(v).tobytes())
    if optimizer is not None:
        st = optimizer.state_dict()
        for k in sorted(st["state"]):
            h.update(k.encode())
            h.update(np.ascontiguousarray(st["state"][k]).tobytes())
        h.update(repr(sorted(st["steps"].items())).encode())
        # the learning rate too: a schedule stepped with a rank's own metric would diverge
        h.update(json.dumps(st["hyperparams"], sort_keys=True, default=repr).encode())
    return h.hexdigest()


class DataParallel(Callback):
    """Make ``fit`` on every rank of ``comm`` (default: :func:`~convprop.distributed.world`)
    one data-parallel run. Pass it in ``fit(..., callbacks=[DataParallel()])`` on every rank,
    with the same data, seed and arguments (``verbose=0`` on ranks other than 0).

    ``check``: after every epoch compare a checksum of the parameters, buffers and optimizer
    state (hyperparameters included) across ranks and raise :class:`OutOfSyncError` naming
    the ranks that differ from rank 0.
    """

    def __init__(self, comm: Comm | None = None, *, check: bool = False):
        self.comm = world() if comm is None else comm
        if not isinstance(self.comm, Comm):
            raise TypeError(f"DataParallel: comm must be a convprop.distributed.Comm, got "
                            f"{type(self.comm).__name__}")
        self.check = bool(check)
        self._flat = None
        self._buffers = []

    # -- the run ------------------------------------------------------------------------
    def on_train_begin(self, state):
        """Start every rank from rank 0's parameters and buffers (and check the optimizer
        state agrees), so a difference in initialisation cannot silently persist."""
        comm = self.comm
        for p in state.model.parameters():
            p.value = comm.bcast_(np.array(p.value, order="C"))
        buffers = {name: comm.bcast_(np.array(b, order="C"))
                   for name, b in state.model.named_buffers()
                   if isinstance(b, np.ndarray) and b.dtype.kind in "fiub" and b.size}
        if buffers:
            state.model.load_state_dict(buffers, strict=False)
        self._train_sums = np.zeros(4)  # loss * examples, examples, right, labels counted
        self._buffers = _per_rank_buffers(state.model)
        self._split_generators(state.model)
        self._compare(state, "at the start of training")

    def _split_generators(self, model) -> None:
        """Give rank r > 0 an independent stream derived from rank 0's generator states."""
        gens = module_generators(model)
        if not gens:
            return
        states = self.comm.allgather({k: g.bit_generator.state for k, g in gens.items()})[0]
        if self.comm.rank:
            for k, g in gens.items():
                g.bit_generator.state = _rank_state(states[k], self.comm.rank)

    def on_batch_begin(self, state, batch):
        comm = self.comm
        n = len(batch.x)
        lo, hi = comm.rank * n // comm.size, (comm.rank + 1) * n // comm.size
        self._n, self._n_local = n, hi - lo
        comm.placeholder = hi == lo
        if comm.placeholder:  # a stand-in example with weight 0
            lo, hi = 0, 1
        batch.x, batch.y, batch.labels = batch.x[lo:hi], batch.y[lo:hi], batch.labels[lo:hi]

    def on_backward_end(self, state, batch):
        self.average_gradients(state.model.parameters(), self._n_local, self._n,
                               buffers=self._buffers)

    def average_gradients(self, params, n_local: int, n: int, *, buffers=()) -> None:
        """Replace every parameter's gradient (of the mean loss over this rank's ``n_local``
        examples) by the gradient of the mean loss over the global batch of ``n``: scale by
        ``n_local / n`` and sum over the ranks, with one allreduce of one flat buffer in the
        parameters' dtype (float32 training sends 4 bytes per parameter). ``buffers``,
        (module, name) pairs, are averaged in the same buffer with the same weights."""
        arrays = [p.grad for p in params] + [getattr(m, name) for m, name in buffers]
        size = sum(a.size for a in arrays)
        dtype = np.result_type(*(a.dtype for a in arrays)) if arrays else np.float64
        if self._flat is None or self._flat.size != size or self._flat.dtype != dtype:
            self._flat = np.empty(size, dtype)
        flat, at = self._flat, 0
        for a in arrays:
            flat[at:at + a.size] = np.ravel(a)
            at += a.size
        flat *= dtype.type(n_local / n)
        self.comm.allreduce_(flat)
        at = 0
        for p in params:
            k = p.value.size
            np.copyto(p.grad, flat[at:at + k].reshape(p.value.shape), casting="same_kind")
            at += k
        for m, name in buffers:
            old = getattr(m, name)
            m.set_buffer(name, flat[at:at + old.size].reshape(old.shape).astype(old.dtype))
            at += old.size

    def on_batch_end(self, state, batch):
        if self._n_local:  # fit's own count (its loss reads the outputs as classes)
            correct, counted = batch_hits(state.loss, batch.out, batch.labels)
            self._train_sums += (batch.loss * self._n_local, self._n_local, correct, counted)
        self.comm.placeholder = False

    def on_epoch_logs(self, state, logs):
        """Replace the rank's epoch loss and accuracy by the global ones (every rank)."""
        sums = self.comm.allreduce_(self._train_sums.copy())
        self._train_sums[:] = 0
        if sums[1]:
            logs["loss"], logs["accuracy"] = sums[0] / sums[1], sums[2] / max(sums[3], 1)
            if logs.get("time"):
                logs["examples_per_sec"] = sums[1] / logs["time"]

    def on_epoch_end(self, state, logs):
        self._split_generators(state.model)  # from rank 0's states, as a resumed run does
        if self.check:
            self._compare(state, f"after epoch {logs['epoch']}")

    def _compare(self, state, when: str):
        sums = self.comm.allgather(state_checksum(state.model, state.optimizer))
        bad = [r for r, s in enumerate(sums) if s != sums[0]]
        if bad:
            raise OutOfSyncError(f"DataParallel: the parameters or optimizer state of rank(s) "
                               f"{bad} differ from rank 0's {when}; the ranks are not running "
                               f"the same training (same data, seed and arguments?)")
