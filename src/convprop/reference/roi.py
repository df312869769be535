"""RoI max pooling and RoI Align, written from torchvision's CPU kernels one bin (one sample)
at a time. A box row is (batch index, x1, y1, x2, y2) in input coordinates.

RoI pool::   corners round(box * scale) (C's round), an extent of +1 pixel, the box cut into
             PH x PW bins with edges floor(ph * h / PH) and ceil((ph+1) * h / PH), clipped
             to the map; y = the bin's maximum (strict '>' from -FLT_MAX, so a NaN is never
             picked), 0 with index -1 for an empty bin. Backward: dy to the argmax.
RoI Align::  y = the mean of G_h x G_w bilinear samples at the sub-bin centres
             (G = sampling_ratio, or ceil(bin size) when <= 0); ``aligned`` shifts the box
             by -1/2 pixel, otherwise the box is at least 1 x 1.
The geometry is computed in x's dtype, as torchvision's ``T``, so a float32 input gets
float32 bin edges; RoI Align's sums are float64.
"""

from __future__ import annotations

import math

import numpy as np

from ._grid import ntuple, positions

__all__ = ["bilinear_weights", "roi_align", "roi_align_backward", "roi_pool",
           "roi_pool_backward"]

_FLT_MAX = float(np.finfo(np.float32).max)


def _round(v):
    """C's round: halves away from zero."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def roi_pool(x, boxes, output_size, spatial_scale=1.0):
    """(y (K, C, PH, PW) in x's dtype, argmax: flat plane index of each bin's max, or -1)."""
    T = x.dtype.type
    ph_n, pw_n = ntuple(output_size, 2)
    _, c, h, w = x.shape
    k = boxes.shape[0]
    y = np.zeros((k, c, ph_n, pw_n), x.dtype)
    arg = np.full((k, c, ph_n, pw_n), -1, np.int64)
    for r in range(k):
        b = int(boxes[r, 0])
        x1, y1, x2, y2 = (_round(float(boxes[r, i] * T(spatial_scale))) for i in range(1, 5))
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        bh, bw = T(rh) / T(ph_n), T(rw) / T(pw_n)     # bin size, in x's dtype
        for ph, pw in positions((ph_n, pw_n)):
            hs = min(max(int(math.floor(T(ph) * bh)) + y1, 0), h)
            he = min(max(int(math.ceil(T(ph + 1) * bh)) + y1, 0), h)
            ws = min(max(int(math.floor(T(pw) * bw)) + x1, 0), w)
            we = min(max(int(math.ceil(T(pw + 1) * bw)) + x1, 0), w)
            empty = he <= hs or we <= ws
            for ch in range(c):
                best, idx = (0.0 if empty else -_FLT_MAX), -1
                for i, j in positions((he - hs, we - ws)):
                    if x[b, ch, hs + i, ws + j] > best:
                        best, idx = x[b, ch, hs + i, ws + j], (hs + i) * w + ws + j
                y[r, ch, ph, pw], arg[r, ch, ph, pw] = best, idx
    return y, arg


def roi_pool_backward(dy, boxes, argmax, x_shape):
    """dx: each dy added at its bin's argmax in its box's image (overlaps add)."""
    dx = np.zeros(x_shape)
    for r, ch, i, j in positions(argmax.shape):
        a = argmax[r, ch, i, j]
        if a >= 0:
            dx[int(boxes[r, 0]), ch, a // x_shape[3], a % x_shape[3]] += dy[r, ch, i, j]
    return dx


def bilinear_weights(h, w, y, x):
    """torchvision's bilinear_interpolate as [(row, col, weight)] on an (h, w) plane: nothing
    outside [-1, h] x [-1, w], coordinates clamped to the border inside."""
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return []
    y, x = max(y, 0.0), max(x, 0.0)
    yl, xl = int(y), int(x)
    if yl >= h - 1:
        yh = yl = h - 1
        y = float(yl)
    else:
        yh = yl + 1
    if xl >= w - 1:
        xh = xl = w - 1
        x = float(xl)
    else:
        xh = xl + 1
    ly, lx = y - yl, x - xl
    hy, hx = 1.0 - ly, 1.0 - lx
    return [(yl, xl, hy * hx), (yl, xh, hy * lx), (yh, xl, ly * hx), (yh, xh, ly * lx)]


def _align_samples(x_shape, boxes, output_size, spatial_scale, sampling_ratio, aligned, T):
    """(r, ph, pw, [(row, col, weight / count)] of every sample of bin (ph, pw))."""
    ph_n, pw_n = ntuple(output_size, 2)
    h, w = x_shape[2:]
    off = T(0.5) if aligned else T(0.0)
    for r in range(boxes.shape[0]):
        sx, sy, ex, ey = (boxes[r, i] * T(spatial_scale) - off for i in range(1, 5))
        rw, rh = ex - sx, ey - sy
        if not aligned:
            rw, rh = max(rw, T(1)), max(rh, T(1))
        bh, bw = rh / T(ph_n), rw / T(pw_n)
        gh = sampling_ratio if sampling_ratio > 0 else int(math.ceil(rh / T(ph_n)))
        gw = sampling_ratio if sampling_ratio > 0 else int(math.ceil(rw / T(pw_n)))
        count = max(gh * gw, 1)
        for ph, pw in positions((ph_n, pw_n)):
            taps = []
            for iy, ix in positions((gh, gw)):
                yy = sy + T(ph) * bh + T(iy + 0.5) * bh / T(gh)
                xx = sx + T(pw) * bw + T(ix + 0.5) * bw / T(gw)
                taps.append(bilinear_weights(h, w, float(yy), float(xx)))
            yield r, ph, pw, taps, count


def roi_align(x, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """y (K, C, PH, PW) in x's dtype: each bin the mean of its bilinear samples."""
    y = np.zeros((boxes.shape[0], x.shape[1], *ntuple(output_size, 2)), x.dtype)
    for r, ph, pw, taps, count in _align_samples(x.shape, boxes, output_size, spatial_scale,
                                                 sampling_ratio, aligned, x.dtype.type):
        plane = x[int(boxes[r, 0])].astype(np.float64)
        for ch in range(x.shape[1]):
            acc = 0.0
            for tap in taps:
                acc += sum(wt * plane[ch, i, j] for i, j, wt in tap)
            y[r, ch, ph, pw] = acc / count
    return y


def roi_align_backward(dy, x, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1,
                       aligned=False):
    """dx: each dy / count sent back along every sample's bilinear weights (overlaps add)."""
    dx = np.zeros(x.shape)
    for r, ph, pw, taps, count in _align_samples(x.shape, boxes, output_size, spatial_scale,
                                                 sampling_ratio, aligned, x.dtype.type):
        b = int(boxes[r, 0])
        for ch in range(x.shape[1]):
            for tap in taps:
                for i, j, wt in tap:
                    dx[b, ch, i, j] += wt * dy[r, ch, ph, pw] / count
    return dx
