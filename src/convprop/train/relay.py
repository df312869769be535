"""Relay backpropagation: auxiliary heads whose losses reach only a few segments.

Shen, Lin and Huang, "Relay Backpropagation for Effective Learning of Deep Convolutional
Neural Networks", ECCV 2016. The network is split into segments at its max-pooling layers;
auxiliary output modules with their own losses are attached to intermediate segments, and
each loss's gradient is propagated back through a limited number of segments only, so the
lower segments learn from a nearby loss instead of from a signal that has crossed the whole
network (the paper's VGG on Places2: the main loss reaches the upper segments, an auxiliary
loss attached lower down trains the bottom ones). The heads are dropped at evaluation: the
deployed network is ``relay.body``, unchanged in structure and weights.

Conventions (the paper fixes them per network; here they are arguments):

- Segments are numbered 1..S from the input. The body (a ``Sequential``; nested
  ``Sequential``s are read through) is cut *after* each max-pooling layer, so segment k ends
  with the k-th max pool and segment S holds what follows the last one (the classifier).
- The main loss starts at segment S, an auxiliary head at segment k takes segment k's output.
  A loss with ``reach`` r updates segments start, start-1, ..., start-r+1 and stops there
  (``None``: all the way to segment 1). Head parameters always get their own loss.
- ``weight`` scales an auxiliary loss (the paper weighs its auxiliary loss like the main
  one: default 1).
- Gradients are exact: a segment where some losses stop and others go on is back-propagated
  once per group of losses that stop at the same segment (the backward is linear in dy), so
  the segment's parameters get the sum of every loss that reaches it, and no loss leaks
  below its stop. The input gradient is that of the losses reaching segment 1.

With :func:`convprop.train.fit`: pass the wrapper as the model and add
:class:`RelayTargets` to the callbacks (it hands each batch's targets to the heads).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import finite_number, positive_int
from ..layers.container import Sequential
from ..layers.loss import CrossEntropyLoss
from ..layers.module import Module
from ..layers.pooling import MaxPool1d, MaxPool2d, MaxPool3d
from .callbacks import Callback

__all__ = ["RelayCache", "RelayHead", "RelayNet", "RelayTargets", "split_at_max_pool"]

_POOLS = (MaxPool1d, MaxPool2d, MaxPool3d)


def _leaves(m: Module) -> list:
    if isinstance(m, Sequential):
        return [leaf for child in m for leaf in _leaves(child)]
    return [m]


def split_at_max_pool(body: Module, *, op: str = "split_at_max_pool") -> list[list[Module]]:
    """The body's layers (nested Sequentials read through) cut after each max pool: a list of
    segments, each a list of modules; the part after the last pool is the last segment.
    ``op`` names the caller in error messages."""
    if not isinstance(body, Sequential):
        raise TypeError(f"{op}: body must be a Sequential, got {type(body).__name__}")
    segments, cur = [], []
    for m in _leaves(body):
        cur.append(m)
        if isinstance(m, _POOLS):
            segments.append(cur)
            cur = []
    if cur:
        segments.append(cur)
    if not segments:
        raise ValueError(f"{op}: body is empty")
    return segments


class RelayHead(NamedTuple):
    """An auxiliary output: ``module`` on segment ``segment``'s output, its ``loss`` (default
    softmax cross-entropy) scaled by ``weight``, back-propagated through ``reach`` segments
    (None: all below)."""

    segment: int
    module: Module
    reach: int | None = None
    weight: float = 1.0
    loss: object = None


class RelayCache(NamedTuple):
    x_shape: tuple
    dtype: np.dtype
    segments: list          # per segment: the list of its layers' caches
    heads: list             # per head: (head cache, loss cache), or None in evaluation
    aux_losses: tuple       # per head: the loss value (floats), () in evaluation


def _backward_segment(layers, caches, dy, need_dx):
    for i in range(len(layers) - 1, -1, -1):
        dy = layers[i].backward(dy, caches[i], need_dx=need_dx or i > 0)
    return dy


class RelayNet(Module):
    """``body`` with relay heads. ``forward(x, *, training, targets=None) -> (y, cache)``
    gives the body's output; in training the heads run too and their losses (on
    ``targets``, or on those given by :meth:`set_targets`) enter the backward.
    ``backward(dy, cache)`` takes the main loss's gradient, as any model.

    Args:
        body: the network (a Sequential), split at its max pools (:func:`split_at_max_pool`).
        heads: :class:`RelayHead` s (or tuples of their fields).
        main_reach: segments the main loss reaches from the top (None: all)."""

    def __init__(self, body: Sequential, heads=(), *, main_reach: int | None = None):
        super().__init__()
        op = "RelayNet"
        segs = split_at_max_pool(body, op=op)
        S = len(segs)
        self.body = body
        object.__setattr__(self, "_segments", segs)
        self.main_reach = self._reach(op, "main_reach", main_reach, S, S)
        specs = []
        for i, h in enumerate(heads):
            h = RelayHead(*h) if isinstance(h, tuple) and not isinstance(h, RelayHead) else h
            if not isinstance(h, RelayHead):
                raise TypeError(f"{op}: heads[{i}] must be a RelayHead, got "
                                f"{type(h).__name__}")
            seg = h.segment
            if isinstance(seg, bool) or not isinstance(seg, (int, np.integer)) or not (
                    1 <= seg <= S - 1):
                pools = sum(isinstance(s[-1], _POOLS) for s in segs)
                raise ValueError(
                    f"{op}: heads[{i}] is attached to segment {seg!r}, which does not exist: "
                    f"the body has {S} segment(s) (cut after its {pools} max-pooling "
                    f"layer(s)); a head attaches to segments 1..{S - 1}")
            if not isinstance(h.module, Module):
                raise TypeError(f"{op}: heads[{i}].module must be a Module, got "
                                f"{type(h.module).__name__}")
            reach = self._reach(op, f"heads[{i}].reach", h.reach, int(seg), S)
            weight = finite_number(op, f"heads[{i}].weight", h.weight, low=0.0)
            loss = CrossEntropyLoss() if h.loss is None else h.loss
            specs.append(RelayHead(int(seg), h.module, reach, weight, loss))
            setattr(self, f"head{i}", h.module)
        object.__setattr__(self, "heads", tuple(specs))
        object.__setattr__(self, "_targets", None)
        object.__setattr__(self, "last_aux_losses", ())

    @staticmethod
    def _reach(op, name, reach, start, S):
        if reach is None:
            return start
        r = positive_int(op, name, reach)
        if r > start:
            raise ValueError(f"{op}: {name}={r} from segment {start} would reach segment "
                             f"{start - r + 1}, which does not exist (segments are 1..{S})")
        return r

    @property
    def num_segments(self) -> int:
        return len(self._segments)

    def segment(self, k: int) -> list:
        """The layers of segment k (1-based)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not (
                1 <= k <= len(self._segments)):
            raise ValueError(f"RelayNet: segment {k!r} does not exist "
                             f"(1..{len(self._segments)})")
        return list(self._segments[k - 1])

    def set_targets(self, targets) -> None:
        """Targets for the heads' losses in the next training forward (used once)."""
        object.__setattr__(self, "_targets", targets)

    def forward(self, x, *, training: bool = False, targets=None):
        if targets is None:
            targets = self._targets
        object.__setattr__(self, "_targets", None)
        use_heads = training and bool(self.heads)
        if use_heads and targets is None:
            raise ValueError("RelayNet: a training forward needs the targets of the auxiliary "
                             "losses: pass forward(..., targets=y), call set_targets(y), or "
                             "add RelayTargets() to fit's callbacks")
        x_shape, dtype = np.shape(x), np.asarray(x).dtype
        seg_caches, outs = [], []
        for layers in self._segments:
            caches = []
            for m in layers:
                x, c = m.forward(x, training=training)
                caches.append(c)
            seg_caches.append(caches)
            outs.append(x)
        heads, values = None, ()
        if use_heads:
            heads, values = [], []
            for h in self.heads:
                hy, hc = h.module.forward(outs[h.segment - 1], training=True)
                value, lc = h.loss.forward(hy, targets)
                heads.append((hc, lc))
                values.append(float(value))
            values = tuple(values)
        object.__setattr__(self, "last_aux_losses", values)
        return x, RelayCache(x_shape, dtype, seg_caches, heads, values)

    def __call__(self, x, *, training: bool = False, targets=None):
        return self.forward(x, training=training, targets=targets)

    def backward(self, dy, cache, *, need_dx: bool = True):
        if not isinstance(cache, RelayCache):
            raise TypeError(f"RelayNet.backward: cache must be the RelayCache that forward "
                            f"returned, got {type(cache).__name__}")
        S = len(self._segments)
        streams = {S - self.main_reach + 1: dy}      # stop segment -> gradient at this level
        dx = None
        for k in range(S, 0, -1):
            for h, hc in zip(self.heads, cache.heads or ()):
                if h.segment != k:
                    continue
                g = h.loss.backward(1.0, hc[1])
                if h.weight != 1.0:
                    g = g * g.dtype.type(h.weight)
                g = h.module.backward(g, hc[0], need_dx=True)
                stop = k - h.reach + 1
                streams[stop] = g if stop not in streams else streams[stop] + g
            layers, caches = self._segments[k - 1], cache.segments[k - 1]
            below = {}
            for stop, g in streams.items():
                goes_on = stop < k
                want = goes_on or (k == 1 and need_dx)
                r = _backward_segment(layers, caches, g, want)
                if goes_on:
                    below[stop] = r
                elif k == 1 and need_dx:
                    dx = r
            streams = below
        if need_dx and dx is None:
            dx = np.zeros(cache.x_shape, cache.dtype)
        return dx

    def extra_repr(self) -> str:
        hs = ", ".join(f"segment {h.segment} reach {h.reach} weight {h.weight:g}"
                       for h in self.heads)
        return f"segments={self.num_segments}, main_reach={self.main_reach}, heads=[{hs}]"


class RelayTargets(Callback):
    """Hands each training batch's targets to a :class:`RelayNet` before its forward, and
    keeps the mean auxiliary losses of every epoch in ``aux_history`` (one tuple per
    epoch, one value per head)."""

    def __init__(self, model: RelayNet | None = None):
        self.model = model
        self.aux_history: list[tuple] = []
        self._sum, self._n = None, 0

    def _net(self, state) -> RelayNet:
        net = self.model if self.model is not None else state.model
        if not isinstance(net, RelayNet):
            raise TypeError(f"RelayTargets: the model must be a RelayNet, got "
                            f"{type(net).__name__}")
        return net

    def on_batch_begin(self, state, batch):
        self._net(state).set_targets(batch.y)

    def on_batch_end(self, state, batch):
        vals = np.array(self._net(state).last_aux_losses, dtype=float)
        self._sum = vals if self._sum is None else self._sum + vals
        self._n += 1

    def on_epoch_end(self, state, logs):
        if self._n:
            self.aux_history.append(tuple(float(v) for v in self._sum / self._n))
        self._sum, self._n = None, 0
