"""The special layers of LeNet-5 as published (LeCun, Bottou, Bengio, Haffner 1998,
"Gradient-based learning applied to document recognition", Proc. IEEE 86(11), section II.B
and appendix A).

- :class:`ScaledTanh`: the squashing function ``f(a) = A tanh(S a)``, A = 1.7159, S = 2/3.
- :class:`Subsampling2d`: S2 / S4, ``y = coef[c] * (sum of the 2x2 block) + bias[c]``.
- :class:`MaskedConv2d`: C3, a convolution whose weight is multiplied by a fixed 0/1
  connection mask (Table I, :data:`LENET5_C3_TABLE`) in forward and backward.
- :class:`EuclideanRBF`: the output layer, ``y_i = sum_j (x_j - w_ij)^2`` with fixed codes.
- :class:`RBFLoss`: the paper's criterion on the RBF outputs (eq. 9, or eq. 8 with ``j=None``),
  and :func:`rbf_predict`, the class of the smallest RBF output.

The kernels of S2/S4 and of the RBF layer are in :mod:`convprop.functional.lenet_classic`
(re-exported here).
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .. import functional as F
from ..functional.lenet_classic import (euclidean_rbf_backward, euclidean_rbf_forward,
                                        subsampling2d_backward, subsampling2d_forward)
from .._checks import positive_int
from ._util import accumulate, check_input, float_dtype
from .loss import Loss
from .module import Module, Parameter

__all__ = [
    "DIGIT_BITMAPS_7X12",
    "LENET5_C3_TABLE",
    "EuclideanRBF",
    "MaskedConv2d",
    "RBFLoss",
    "ScaledTanh",
    "Subsampling2d",
    "digit_codes",
    "rbf_predict",
]

#: Table I of the paper: ``LENET5_C3_TABLE[i, k]`` is True when C3 feature map ``k`` (0..15)
#: takes input from S2 feature map ``i`` (0..5). Maps 0-5 read every contiguous (cyclic) triple
#: of S2 maps, 6-11 every contiguous quadruple, 12-14 the discontinuous quadruples {0,1,3,4},
#: {1,2,4,5}, {0,2,3,5}, and 15 all six: 60 of the 96 pairs, 60 * 25 + 16 = 1,516 parameters.
LENET5_C3_TABLE = np.array([
    # 0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
    [1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1],  # S2 map 0
    [1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1],  # S2 map 1
    [1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1],  # S2 map 2
    [0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1],  # S2 map 3
    [0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1],  # S2 map 4
    [0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1],  # S2 map 5
], dtype=bool)

#: Stylised 7x12 digit bitmaps ('#' = +1, '.' = -1), 7 wide and 12 high, drawn for convprop.
#: The paper's output codes are "a stylized image of the corresponding character class drawn
#: on a 7x12 bitmap" (Fig. 3); its numeric bitmaps were not published in a form we could find,
#: so these are a stand-in drawn in the same spirit (a blank border row top and bottom).
DIGIT_BITMAPS_7X12 = (
    ("0", [".......", "..###..", ".#...#.", "#.....#", "#.....#", "#.....#",
           "#.....#", "#.....#", "#.....#", ".#...#.", "..###..", "......."]),
    ("1", [".......", "...#...", "..##...", ".#.#...", "...#...", "...#...",
           "...#...", "...#...", "...#...", "...#...", ".#####.", "......."]),
    ("2", [".......", ".#####.", "#.....#", "......#", "......#", ".....#.",
           "....#..", "...#...", "..#....", ".#.....", "#######", "......."]),
    ("3", [".......", ".#####.", "#.....#", "......#", "......#", "..####.",
           "......#", "......#", "......#", "#.....#", ".#####.", "......."]),
    ("4", [".......", ".....#.", "....##.", "...#.#.", "..#..#.", ".#...#.",
           "#....#.", "#######", ".....#.", ".....#.", ".....#.", "......."]),
    ("5", [".......", "#######", "#......", "#......", "#......", "######.",
           "......#", "......#", "......#", "#.....#", ".#####.", "......."]),
    ("6", [".......", "..####.", ".#.....", "#......", "#......", "######.",
           "#.....#", "#.....#", "#.....#", "#.....#", ".#####.", "......."]),
    ("7", [".......", "#######", "......#", ".....#.", ".....#.", "....#..",
           "....#..", "...#...", "...#...", "..#....", "..#....", "......."]),
    ("8", [".......", ".#####.", "#.....#", "#.....#", "#.....#", ".#####.",
           "#.....#", "#.....#", "#.....#", "#.....#", ".#####.", "......."]),
    ("9", [".......", ".#####.", "#.....#", "#.....#", "#.....#", "#.....#",
           ".######", "......#", "......#", ".....#.", ".####..", "......."]),
)


def digit_codes(dtype=np.float32) -> np.ndarray:
    """The (10, 84) +1/-1 codes of :data:`DIGIT_BITMAPS_7X12`, rows in digit order, each
    bitmap read row by row (12 rows of 7)."""
    dt = float_dtype("digit_codes", dtype)
    codes = np.array([[1.0 if ch == "#" else -1.0 for row in rows for ch in row]
                      for _, rows in DIGIT_BITMAPS_7X12], dtype=dt)
    return codes


# -- squashing function ---------------------------------------------------------------------

class ScaledTanh(Module):
    """The paper's squashing function ``y = A tanh(S x)`` (appendix A), A = 1.7159, S = 2/3,
    so that f(1) = 1 and f(-1) = -1 and the gain near 0 is about 1.14.
    ``dx = dy * A * S * (1 - tanh(S x)^2)``; the cache holds ``tanh(S x)``."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0):
        super().__init__()
        for name, v in (("amplitude", amplitude), ("slope", slope)):
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or not np.isfinite(v):
                raise TypeError(f"ScaledTanh: {name} must be a finite real number, got {v!r}")
        self.amplitude = float(amplitude)
        self.slope = float(slope)

    def forward(self, x, *, training: bool = False):
        check_input("ScaledTanh", x, ())
        t = np.tanh(x * x.dtype.type(self.slope))
        return t * x.dtype.type(self.amplitude), t

    def backward(self, dy, cache, *, need_dx: bool = True):
        t = cache
        k = t.dtype.type(self.amplitude * self.slope)
        return dy * (k * (1 - t * t))

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.6g}"


# -- S2 / S4: trainable subsampling -----------------------------------------------------------

class Subsampling2d(Module):
    """LeNet-5's S2 / S4 layer: per map, the sum of each non-overlapping 2x2 block times a
    trainable coefficient plus a trainable bias (2 parameters per map; the squashing function
    is a separate :class:`ScaledTanh`). x (N, channels, H, W) -> y (N, channels, H//2, W//2).

    Initial values: coefficient and bias uniform in +-2.4 / F with F = 4, the fan-in (the
    paper's rule, appendix A), drawn from ``rng``; coefficient 0.25, bias 0 when ``rng`` is
    None (2x2 average pooling)."""

    def __init__(self, channels: int, *, rng: np.random.Generator | None = None,
                 dtype=np.float32):
        super().__init__()
        self.channels = positive_int("Subsampling2d", "channels", channels)
        dt = float_dtype("Subsampling2d", dtype)
        if rng is None:
            coef, bias = np.full(channels, 0.25), np.zeros(channels)
        else:
            if not isinstance(rng, np.random.Generator):
                raise TypeError(f"Subsampling2d: rng must be a numpy.random.Generator, got "
                                f"{type(rng).__name__}")
            coef = rng.uniform(-0.6, 0.6, channels)
            bias = rng.uniform(-0.6, 0.6, channels)
        self.weight = Parameter(coef.astype(dt))
        self.bias = Parameter(bias.astype(dt))

    def forward(self, x, *, training: bool = False):
        check_input("Subsampling2d", x, (self.weight, self.bias))
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"Subsampling2d: expected x of shape (N, {self.channels}, H, W), "
                             f"got x.shape={x.shape}")
        return subsampling2d_forward(x, self.weight.value, self.bias.value)

    def backward(self, dy, cache, *, need_dx: bool = True):
        dx, dcoef, dbias = subsampling2d_backward(dy, cache)
        accumulate(self.weight, dcoef)
        accumulate(self.bias, dbias)
        return dx

    def extra_repr(self) -> str:
        return f"{self.channels}"


# -- C3: convolution with a fixed connection table ------------------------------------------

class MaskedConv2d(Module):
    """A 2-D convolution (cross-correlation, stride 1, no padding) whose input-output map
    pairs are restricted by a fixed connection table: ``y = x ⋆ (w * M) + b`` with
    ``M[k, i, :, :] = connections[i, k]``.

    ``connections`` is a boolean (in_channels, out_channels) array laid out as the paper's
    Table I (rows: input maps, columns: output maps); :data:`LENET5_C3_TABLE` is C3's. The mask
    is applied in forward (the effective weight is ``w * M``) and in backward (``dw`` is
    multiplied by ``M``), and the disconnected weights start at zero, so they stay exactly zero
    under any optimizer whose step is zero for a zero gradient and a zero weight (SGD with
    momentum and weight decay, Adam). Initial weights: uniform in +-2.4 / F with F the fan-in
    of each output map (25 times its number of input maps), the paper's rule; the bias too.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 connections=None, *, rng: np.random.Generator | None = None,
                 dtype=np.float32):
        super().__init__()
        op = "MaskedConv2d"
        self.in_channels = positive_int(op, "in_channels", in_channels)
        self.out_channels = positive_int(op, "out_channels", out_channels)
        self.kernel_size = (positive_int(op, "kernel_size", kernel_size),) * 2
        dt = float_dtype(op, dtype)
        if connections is None:
            if (in_channels, out_channels) != LENET5_C3_TABLE.shape:
                raise ValueError(f"{op}: connections is required unless (in_channels, "
                                 f"out_channels) == {LENET5_C3_TABLE.shape} (C3's Table I), "
                                 f"got ({in_channels}, {out_channels})")
            connections = LENET5_C3_TABLE
        table = np.asarray(connections)
        if table.shape != (in_channels, out_channels):
            raise ValueError(f"{op}: connections must have shape (in_channels, out_channels) "
                             f"= {(in_channels, out_channels)}, got {table.shape}")
        if table.dtype != bool:
            if not np.all((table == 0) | (table == 1)):
                raise ValueError(f"{op}: connections must be boolean or 0/1, got values "
                                 f"{np.unique(table)}")
            table = table.astype(bool)
        if not table.any(axis=0).all():
            raise ValueError(f"{op}: every output map needs at least one input map; output "
                             f"maps {np.flatnonzero(~table.any(axis=0)).tolist()} have none")
        self.connections = table.copy()
        kh, kw = self.kernel_size
        mask = np.broadcast_to(table.T[:, :, None, None], (out_channels, in_channels, kh, kw))
        self.register_buffer("mask", mask.astype(dt))
        fan_in = table.sum(axis=0) * kh * kw  # (out_channels,)
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"{op}: rng must be a numpy.random.Generator, got "
                            f"{type(rng).__name__}")
        rng = np.random.default_rng() if rng is None else rng
        bound = 2.4 / fan_in
        w = rng.uniform(-1, 1, (out_channels, in_channels, kh, kw)) * bound[:, None, None, None]
        b = rng.uniform(-1, 1, out_channels) * bound
        self.weight = Parameter((w * self.mask).astype(dt))
        self.bias = Parameter(b.astype(dt))

    def forward(self, x, *, training: bool = False):
        check_input("MaskedConv2d", x, (self.weight, self.bias))
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"MaskedConv2d: expected x of shape (N, {self.in_channels}, H, W),"
                             f" got x.shape={x.shape}")
        return F.conv2d_forward(x, self.weight.value * self.mask, self.bias.value)

    def backward(self, dy, cache, *, need_dx: bool = True):
        dx, dw, db = F.conv2d_backward(dy, cache)
        accumulate(self.weight, dw * self.mask)
        accumulate(self.bias, db)
        return dx

    def num_connections(self) -> int:
        """Trainable parameters the table allows: connected weights plus biases."""
        return int(self.mask.sum()) + self.out_channels

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"connections={int(self.connections.sum())}/{self.connections.size}")


# -- output layer: Euclidean RBF units ---------------------------------------------------------

class EuclideanRBF(Module):
    """LeNet-5's output layer: one Euclidean RBF unit per class, ``y_i = sum_j (x_j - w_ij)^2``
    (eq. 7), the squared distance of the F6 state to the class's code. x (N, D) -> y (N, K).

    ``codes`` (K, D) are fixed (a buffer, not a Parameter: the paper keeps them fixed, "at
    least initially"). LeNet-5 uses the +1/-1 7x12 bitmaps of :func:`digit_codes`, a stand-in
    drawn for convprop, since the paper's own bitmaps (its Fig. 3) were not available as
    numbers."""

    def __init__(self, codes, *, dtype=np.float32):
        super().__init__()
        dt = float_dtype("EuclideanRBF", dtype)
        codes = np.asarray(codes)
        if codes.ndim != 2 or 0 in codes.shape:
            raise ValueError(f"EuclideanRBF: codes must be a non-empty 2-D array (num_classes, "
                             f"in_features), got shape {codes.shape}")
        if not np.all(np.isfinite(codes)):
            raise ValueError("EuclideanRBF: codes must be finite")
        self.num_classes, self.in_features = codes.shape
        self.register_buffer("codes", codes.astype(dt))

    def forward(self, x, *, training: bool = False):
        check_input("EuclideanRBF", x, ())
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"EuclideanRBF: expected x of shape (N, {self.in_features}), "
                             f"got x.shape={x.shape}")
        if x.dtype != self.codes.dtype:
            raise TypeError(f"EuclideanRBF: x has dtype {x.dtype} but the codes are "
                            f"{self.codes.dtype}; cast x or call .astype({x.dtype})")
        return euclidean_rbf_forward(x, self.codes)

    def backward(self, dy, cache, *, need_dx: bool = True):
        return euclidean_rbf_backward(dy, cache)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}"


def rbf_predict(y: np.ndarray) -> np.ndarray:
    """The predicted class of RBF outputs (N, K): the unit with the smallest penalty,
    ``argmin_i y_i`` (the first on a tie)."""
    y = np.asarray(y)
    if y.ndim != 2:
        raise ValueError(f"rbf_predict: expected RBF outputs of shape (N, K), got {y.shape}")
    return y.argmin(axis=1)


class RBFLossCache(NamedTuple):
    grad: np.ndarray  # d(loss)/d(pred), before the upstream factor


class RBFLoss(Loss):
    """The paper's criterion on RBF outputs y (N, K) (smaller = better match) and integer
    targets t (N,), averaged over the batch (``reduction="mean"``) or summed.

    With a number ``j`` (default 1.0) it is eq. 9, the "MAP-like" criterion:
    ``E = y_t + log(exp(-j) + sum_i exp(-y_i))``, which pulls the correct unit's penalty down
    and pushes the incorrect ones up while they are below about ``j``; the paper leaves j's
    value unstated ("a positive constant"). With ``j=None`` it is eq. 8, ``E = y_t`` (the MSE of
    F6 to the correct code), which can collapse only when the codes are trainable.
    The gradient: ``dE/dy_i = [i == t] - exp(-y_i) / (exp(-j) + sum_k exp(-y_k))``, computed
    with a log-sum-exp."""

    _reductions = ("mean", "sum")

    def __init__(self, j: float | None = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        if j is not None and (not isinstance(j, numbers.Real) or isinstance(j, bool)
                              or not np.isfinite(j) or j <= 0):
            raise ValueError(f"RBFLoss: j must be a positive finite number or None (eq. 8), "
                             f"got {j!r}")
        self.j = None if j is None else float(j)

    def forward(self, pred, target):
        pred = np.asarray(pred)
        if pred.ndim != 2 or pred.dtype.kind != "f":
            raise ValueError(f"RBFLoss: pred must be float RBF outputs of shape (N, K), got "
                             f"shape {pred.shape}, dtype {pred.dtype}")
        target = np.asarray(target)
        n, k = pred.shape
        if target.shape != (n,) or target.dtype.kind not in "iu":
            raise ValueError(f"RBFLoss: target must be integer class indices of shape ({n},), "
                             f"got shape {target.shape}, dtype {target.dtype}")
        if n and (target.min() < 0 or target.max() >= k):
            raise ValueError(f"RBFLoss: target values must be in [0, {k}), got "
                             f"[{target.min()}, {target.max()}]")
        rows = np.arange(n)
        per = pred[rows, target].astype(np.float64)
        grad = np.zeros(pred.shape, dtype=np.float64)
        grad[rows, target] = 1.0
        if self.j is not None:
            z = np.concatenate([np.full((n, 1), -self.j), -pred.astype(np.float64)], axis=1)
            m = z.max(axis=1, keepdims=True)
            e = np.exp(z - m)
            tot = e.sum(axis=1, keepdims=True)
            per = per + (m[:, 0] + np.log(tot[:, 0]))
            grad -= e[:, 1:] / tot
        scale = 1.0 / n if (self.reduction == "mean" and n) else 1.0
        loss = per.sum() * scale
        return pred.dtype.type(loss), RBFLossCache((grad * scale).astype(pred.dtype))

    def backward(self, dy, cache, *, need_dx: bool = True):
        return cache.grad * cache.grad.dtype.type(dy)

    def scores(self, out):
        """Class scores of RBF penalties: ``-y`` (the smallest penalty scores highest), so
        the predicted class is :func:`rbf_predict`'s argmin and top-k ranks by penalty."""
        return -np.asarray(out)

    def probabilities(self, out):
        """``softmax(-y)``: eq. 9's posterior ``exp(-y_i) / (exp(-j) + sum_k exp(-y_k))``
        with the "rubbish class" term ``exp(-j)`` left out, i.e. the class probabilities
        given that the input is one of the K classes (rows sum to 1). The paper's own
        posterior is not used for display: the penalties are squared distances over 84
        units, rarely below j, so with the rubbish term even a confidently recognised digit
        would get a small probability."""
        return super().probabilities(out)

    def extra_repr(self) -> str:
        return f"j={self.j}, reduction={self.reduction!r}"
