"""3-D correlation as 2-D columns that slide along depth: the engine's path for 3-D layers.

im2col of a 3x3x3 convolution copies the input 27 times. Along depth, however, the window of
output slice o is the input slices o .. o+KD-1 (stride 1, dilation 1), so building the 2-D
columns of every input depth slice once, as *planes* ``P[i]`` (C*KH*KW, Ho*Wo*N) stacked
depth-outermost in one buffer, makes the columns of output slice o the contiguous block
``P[o : o+KD]`` for free: one GEMM per output slice on 9x the input instead of 27x, and the
same for the weight gradient. The input gradient mirrors it: with dy stacked depth-outermost
and zero-padded by KD-1 slices, ``dP[i] = W_rev @ dy_pad[i : i+KD]`` is again one GEMM per
input slice, scattered back by the 2-D col2im. Same sums as the block path, in another order.
"""

from __future__ import annotations

import math

import numpy as np

from .threads import parallel_chunks
from .windows import col2im, identity_window, im2col
from .workspace import WORKSPACE_BYTES, workspace

__all__ = ["SLIDE_MAX_BYTES", "slides", "slide_planes", "slide_forward", "slide_weight_grad",
           "slide_input_grad"]

#: The planes are cached for the weight gradient; a layer whose planes would exceed this
#: many bytes takes the general (banded) path instead.
SLIDE_MAX_BYTES = 256 << 20
#: Column elements above which the planes (and the input gradient's scatter) are split over
#: threads by depth slice, as im2col splits channels (its own threshold, 4M, is per slice).
MIN_SLICE_WORK = 1 << 21


def slides(geo, itemsize: int) -> bool:
    """Whether ``geo`` (a ConvGeometry) takes the sliding path: 3-D, one group, stride and
    dilation 1 along depth, planes within :data:`SLIDE_MAX_BYTES`."""
    if len(geo.kernel) != 3 or geo.groups != 1 or geo.stride[0] != 1 or geo.dilation[0] != 1:
        return False
    n, c, d = geo.x_shape[:3]
    rows = d + geo.kernel[0] + geo.padding[0]
    return rows * c * geo.kernel[1] * geo.kernel[2] * math.prod(geo.out[1:]) * n * itemsize \
        <= SLIDE_MAX_BYTES


def _depth_pads(geo) -> tuple[int, int]:
    """Zero slices before and after the input along depth, as the output needs them."""
    d, kd, top, do = geo.x_shape[2], geo.kernel[0], geo.padding[0], geo.out[0]
    return top, max(0, do - 1 + kd - d - top)


def _plane_args(geo) -> tuple:
    return (geo.kernel[1:], geo.stride[1:], geo.padding[1:], geo.dilation[1:], geo.out[1:])


def slide_planes(x: np.ndarray, geo) -> np.ndarray:
    """The planes ``P`` (D_padded, C*KH*KW, Ho*Wo*N): the 2-D columns of each depth slice of
    x (N, C, D, H, W), zero slices for the depth padding."""
    n, c, d = x.shape[:3]
    before, after = _depth_pads(geo)
    k, s, p, r, out = _plane_args(geo)
    planes = np.empty((before + d + after, c * math.prod(k), math.prod(out) * n), x.dtype)
    planes[:before] = 0
    planes[before + d:] = 0
    one = identity_window(x.shape[3:], k, s, p, out)

    def build(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            cols = im2col(x[:, :, i], k, s, p, r, out, out=None if one else planes[before + i])
            if one:
                planes[before + i] = cols

    # each slice's copy is below im2col's own threading threshold: split the slices instead
    parallel_chunks(d, build, work=planes.size, min_work=MIN_SLICE_WORK)
    return planes


def _w_depth_major(w: np.ndarray) -> np.ndarray:
    """(C_out, C, KD, KH, KW) -> (C_out, KD*C*KH*KW), rows in the planes' block order."""
    return np.ascontiguousarray(w.transpose(0, 2, 1, 3, 4)).reshape(w.shape[0], -1)


def slide_forward(planes: np.ndarray, w: np.ndarray, geo) -> np.ndarray:
    """``y`` as (1, C_out, Do*Ho*Wo*N): ``y[:, o] = W' @ P[o : o+KD]`` per output slice."""
    kd, do = geo.kernel[0], geo.out[0]
    m = planes.shape[2]
    w2 = _w_depth_major(w)
    y = np.empty((w.shape[0], do, m), dtype=planes.dtype)
    for o in range(do):
        np.matmul(w2, planes[o:o + kd].reshape(-1, m), out=y[:, o])
    return y.reshape(1, w.shape[0], do * m)


def slide_weight_grad(dy2: np.ndarray, planes: np.ndarray, w_shape) -> np.ndarray:
    """dw (C_out, C, KD, KH, KW) = sum over o of dy[:, o] @ P[o : o+KD].T (computed as
    P-block @ dy.T, the faster GEMM orientation, as in the block path)."""
    c_out, c, kd = w_shape[:3]
    m = planes.shape[2]
    do = dy2.shape[2] // m
    dy3 = dy2.reshape(c_out, do, m)
    k = planes.shape[1] * kd
    dwt = np.zeros((k, c_out), dtype=planes.dtype)
    part = np.empty_like(dwt)
    for o in range(do):
        dwt += np.matmul(planes[o:o + kd].reshape(k, m), dy3[:, o].T, out=part)
    return dwt.T.reshape(c_out, kd, c, *w_shape[3:]).transpose(0, 2, 1, 3, 4).copy()


def slide_input_grad(dy2: np.ndarray, w: np.ndarray, geo) -> np.ndarray:
    """dx (N, C, D, H, W), a view of (C, D, H, W, N) memory, from dy (1, C_out, Do*M):
    ``dP[i] = sum_kd W_kd.T @ dy[i - kd]`` as one GEMM per input slice on the zero-padded,
    depth-outermost dy, then the 2-D col2im of each slice."""
    n, c, d, h, wd = geo.x_shape
    c_out, kd, do = w.shape[0], geo.kernel[0], geo.out[0]
    m = dy2.shape[2] // do
    before, _ = _depth_pads(geo)
    dyp = np.zeros((do + 2 * (kd - 1), c_out, m), dtype=dy2.dtype)
    dyp[kd - 1:kd - 1 + do] = dy2.reshape(c_out, do, m).transpose(1, 0, 2)
    # block j of the columns pairs with kernel slice KD-1-j: W_rev = [W_{KD-1}.T ... W_0.T]
    wt = w.transpose(2, 1, 3, 4, 0)[::-1]                    # (KD rev, C, KH, KW, C_out)
    w_rev = np.ascontiguousarray(wt.transpose(1, 2, 3, 0, 4)).reshape(-1, kd * c_out)
    k, s, p, r, out = _plane_args(geo)
    dx = np.zeros((c, d, h, wd, n), dtype=dy2.dtype).transpose(4, 0, 1, 2, 3)
    # the KD-slice windows of dy, one per input slice j (read-only, overlapping views)
    st = dyp.strides
    windows = np.lib.stride_tricks.as_strided(
        dyp, (dyp.shape[0] - kd + 1, kd * c_out, m), (st[0], st[1], st[2]), writeable=False)
    rows = w_rev.shape[0]
    per = max(1, WORKSPACE_BYTES // (rows * m * dy2.itemsize))  # slices per block of dP
    for i0 in range(0, d, per):
        i1 = min(d, i0 + per)
        dcols = workspace("dcols", (i1 - i0, rows, m), dy2.dtype)
        np.matmul(w_rev, windows[before + i0:before + i1], out=dcols)

        def scatter(lo: int, hi: int) -> None:
            for i in range(lo, hi):  # each slice scatters into its own dx slice
                col2im(dcols[i], (n, c, h, wd), k, s, p, r, out, add_to=dx[:, :, i0 + i])

        parallel_chunks(i1 - i0, scatter, work=dcols.size, min_work=MIN_SLICE_WORK)
    return dx
