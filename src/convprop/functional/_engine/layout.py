"""The memory-layout policy: shapes are (N, C, *spatial), memory is batch-innermost.

The rule, written down once: every array a kernel hands over has the shape (N, C, *S) that
PyTorch users expect, but its *memory* may be laid out in another order. A convolution
returns its GEMM output (C_out, *S, N) as an (N, C_out, *S) view without a transposing copy
("batch innermost"), because the next window op then copies runs of ``W*N`` contiguous
elements instead of rows of ``W`` (LeNet-5's second layer: im2col 0.68 -> 0.10 ms, col2im
1.55 -> 0.34 ms). Every other kernel allocates its outputs and its input gradients *in its
input's layout* (:func:`empty_in_order`), so elementwise work between neighbouring arrays
never strides across the batch (ResNet-20: ReLU backward 21 -> 7 ms per step once layouts
stopped mixing).

Helpers: :func:`axes_order` reads a layout, :func:`empty_in_order` allocates in one,
:func:`is_batch_inner` / :func:`to_batch_inner` test and convert, and
:func:`from_gemm` / :func:`channels_major` turn the engine's (G, C/G, prod(S)*N) matrices into
shapes and back, for free on batch-innermost memory.
"""

from __future__ import annotations

import math

import numpy as np

from .workspace import workspace

__all__ = ["axes_order", "empty_in_order", "is_batch_inner", "to_batch_inner",
           "batch_inner_axes", "from_gemm", "channels_major"]


def axes_order(a: np.ndarray) -> tuple:
    """``a``'s axes from outermost to innermost in memory (C order: 0, 1, ..., ndim-1)."""
    st = a.strides
    return tuple(sorted(range(a.ndim), key=lambda i: -abs(st[i])))  # stable, as C order


def empty_in_order(shape, dtype, order) -> np.ndarray:
    """An uninitialised array of ``shape`` whose memory lays its axes out in ``order``
    (outermost first)."""
    if tuple(order) == tuple(range(len(shape))):
        return np.empty(shape, dtype=dtype)
    buf = np.empty([shape[a] for a in order], dtype=dtype)
    inverse = [0] * len(order)
    for k, a in enumerate(order):
        inverse[a] = k
    return buf.transpose(inverse)


def batch_inner_axes(ndim: int) -> tuple:
    """The transpose (C, *S, N) of an (N, C, *S) array of ``ndim`` axes."""
    return (*range(1, ndim), 0)


def is_batch_inner(x: np.ndarray) -> bool:
    """Whether (N, C, *S) ``x`` is a view of whole, C-ordered (C, *S, N) memory."""
    return x.transpose(batch_inner_axes(x.ndim)).flags.c_contiguous


def to_batch_inner(x: np.ndarray, slot: str | None = None) -> np.ndarray:
    """``x`` (N, C, *S) as a view of (C, *S, N) memory: itself when it is one already
    (conv outputs), else a transposed copy, made in the reused workspace ``slot`` when
    given (for a temporary that nothing returned keeps)."""
    if is_batch_inner(x):
        return x
    t = batch_inner_axes(x.ndim)
    shape = tuple(x.shape[a] for a in t)
    buf = np.empty(shape, x.dtype) if slot is None else workspace(slot, shape, x.dtype)
    np.copyto(buf, x.transpose(t))
    return buf.transpose(x.ndim - 1, *range(x.ndim - 1))


def channels_major(a: np.ndarray, groups: int) -> np.ndarray:
    """(N, C, *S) -> (G, C/G, prod(S)*N), the column order of im2col; free when ``a`` is a
    view of (C, *S, N) memory."""
    n, c = a.shape[:2]
    return a.transpose(batch_inner_axes(a.ndim)).reshape(
        groups, c // groups, math.prod(a.shape[2:]) * n)


def from_gemm(y2: np.ndarray, n: int, spatial: tuple) -> np.ndarray:
    """(G, C/G, prod(S)*N) GEMM output -> (N, C, *S) view of its (C, *S, N) memory."""
    nd = len(spatial)
    return y2.reshape(-1, *spatial, n).transpose(nd + 1, *range(nd + 1))
