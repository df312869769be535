"""Region-of-interest pooling: Fast R-CNN's RoI max pooling and Mask R-CNN's RoI Align.

Both map every box of ``boxes`` (K, 5) = ``(batch_index, x1, y1, x2, y2)``, given in input
coordinates and multiplied by ``spatial_scale``, to a fixed (PH, PW) grid of bins over
image ``batch_index`` of x (N, C, H, W), giving y (K, C, PH, PW). The semantics are
torchvision's (``torchvision.ops.roi_pool`` / ``roi_align``, CPU kernels), geometry included:
box coordinates, bin sizes and sample positions are computed in x's dtype, as its kernels do.

- **RoI max pooling**: the box corners are *rounded* (half away from zero) to integer pixels,
  the box spans ``round(x2*s) - round(x1*s) + 1`` pixels (at least 1), and bin ``i`` of an
  axis covers ``[floor(i*b), ceil((i+1)*b))`` pixels past the box start (``b`` = box
  size / bins, so neighbouring bins may share a row), clipped to the image. A bin left empty
  by the clipping outputs 0. Each bin outputs its maximum and records its position as a flat
  index into the H*W plane (-1 for an empty bin); backward adds dy there, so overlapping bins
  and boxes accumulate. Ties: the first maximum in row-major order. As torchvision, the search
  starts from -FLT_MAX (float32's lowest value) with a strict ``>``, so NaNs and values at or
  below -FLT_MAX are never selected; a non-empty bin with nothing above it outputs -FLT_MAX,
  index -1 (no gradient).
- **RoI Align**: no rounding. The box ``[x1*s - o, x2*s - o]`` (``o`` = 0.5 when
  ``aligned``, the pixel-centre shift of Detectron2; else 0 and the box is at least 1 pixel
  wide) is cut into bins of size box / bins; each bin averages ``g_h x g_w`` bilinear samples
  at the centres of a regular sub-grid (``g`` = ``sampling_ratio``, or ``ceil(box / bins)``
  when ``sampling_ratio <= 0``; a 0-sample bin outputs 0). A sample outside
  ``[-1, H] x [-1, W]`` contributes 0; inside, coordinates below 0 are clamped to 0 and those
  at or past the last row/column interpolate from it alone. Because the bilinear weights of
  a sample factor into a row weight times a column weight (and so does the in-range test),
  each bin is ``y[k, c] = A_k x[b_k, c] B_kᵀ``: A_k (PH, H) the averaged row weights and B_k
  (PW, W) the column ones. The cache keeps A and B, and backward is the exact adjoint,
  ``dx[b_k, c] += A_kᵀ dy[k, c] B_k``.

A box lying wholly outside the feature map (every bin empty) is refused unless
``allow_outside=True`` (then it outputs zeros, as torchvision): it is nearly always a
coordinate bug. Boxes partly outside are normal (proposals near the border) and pooled.

Loop reference (torchvision's loops, one bin / one sample at a time):
:func:`convprop.reference.roi_pool`, :func:`convprop.reference.roi_align` (and
``roi_pool_backward``, ``roi_align_backward``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .._checks import as_float_array, boolean, check_cache, check_dy, check_ndim, pair
from ._engine.layout import axes_order, empty_in_order
from ..limits import check_array

__all__ = ["RoIPoolCache", "RoIAlignCache", "roi_args", "roi_pool_forward",
           "roi_pool_backward", "roi_align_forward", "roi_align_backward"]

_FLT_MAX = float(np.finfo(np.float32).max)


# ----------------------------------------------------------------------------- validation

def roi_args(op: str, output_size, spatial_scale, sampling_ratio=-1, aligned=False) -> tuple:
    """The checked hyperparameters ``(output_size pair, spatial_scale, sampling_ratio,
    aligned)``, shared by the kernels and the modules."""
    out = pair(op, "output_size", output_size)
    if not isinstance(spatial_scale, numbers.Real) or isinstance(spatial_scale, bool):
        raise TypeError(f"{op}: spatial_scale must be a real number, got {spatial_scale!r}")
    if not (math.isfinite(spatial_scale) and spatial_scale > 0):
        raise ValueError(f"{op}: spatial_scale must be a finite number > 0, "
                         f"got {spatial_scale}")
    if not isinstance(sampling_ratio, numbers.Integral) or isinstance(sampling_ratio, bool):
        raise TypeError(f"{op}: sampling_ratio must be an int (<= 0: adaptive), "
                        f"got {sampling_ratio!r}")
    return out, float(spatial_scale), int(sampling_ratio), boolean(op, "aligned", aligned)


def _check_inputs(op: str, x, boxes) -> tuple:
    """x (N, C, H, W) and boxes (K, 5) of x's dtype; returns x, boxes and the batch indices
    (K,) int64."""
    x = as_float_array(op, "x", x)
    check_ndim(op, "x", x, 4, "(N, C, H, W)")
    if min(x.shape[2:]) < 1:
        raise ValueError(f"{op}: x must have a non-empty spatial extent, got shape {x.shape}")
    boxes = as_float_array(op, "boxes", boxes)
    if boxes.dtype != x.dtype:
        raise TypeError(f"{op}: all arrays must share one dtype, got x={x.dtype}, "
                        f"boxes={boxes.dtype}")
    if boxes.ndim != 2 or boxes.shape[1] != 5:
        raise ValueError(f"{op}: boxes must have shape (K, 5) rows (batch_index, x1, y1, x2, "
                         f"y2), got shape {boxes.shape}")
    bad = ~np.isfinite(boxes).all(axis=1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{op}: boxes must be finite, row {k} is {boxes[k].tolist()}")
    b = boxes[:, 0]
    bad = (b != np.floor(b)) | (b < 0) | (b >= x.shape[0])
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{op}: boxes[:, 0] (batch index) must be an integer in "
                         f"[0, {x.shape[0]}) for x of batch {x.shape[0]}, row {k} has {b[k]}")
    for name, lo, hi in (("x1 <= x2", 1, 3), ("y1 <= y2", 2, 4)):
        bad = boxes[:, lo] > boxes[:, hi]
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{op}: boxes must have {name}, row {k} is {boxes[k].tolist()}")
    return x, boxes, b.astype(np.int64)


def _refuse_outside(op: str, boxes, corners, lo: float, hi_x: float, hi_y: float,
                    scale: float, allow_outside) -> None:
    """Unless ``allow_outside``, a box whose every bin would be empty, its ``corners``
    (x1, y1, x2, y2) in feature-map coordinates lying wholly outside ``[lo, hi_x] x
    [lo, hi_y]``, is a ValueError naming its row: such a box is nearly always a coordinate
    bug (image pixels given without ``spatial_scale``, x and y swapped, another image's box),
    and pooling it silently gives zeros."""
    if boolean(op, "allow_outside", allow_outside):
        return
    out = ((corners[:, 2] < lo) | (corners[:, 0] > hi_x) | (corners[:, 3] < lo)
           | (corners[:, 1] > hi_y))
    if out.any():
        k = int(np.flatnonzero(out)[0])
        raise ValueError(
            f"{op}: boxes row {k} {boxes[k].tolist()} lies wholly outside the feature map: "
            f"times spatial_scale={scale:g} it spans x {float(corners[k, 0]):g} to "
            f"{float(corners[k, 2]):g}, y {float(corners[k, 1]):g} to {float(corners[k, 3]):g}"
            f"; the map's x {lo:g} to {hi_x:g}, y {lo:g} to {hi_y:g}; pass allow_outside=True "
            f"to pool it as empty bins (zeros, torchvision's behaviour)")


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """C's ``round``: halves away from zero (NumPy's ``round`` goes to even)."""
    t = np.trunc(v)
    return (t + np.where(np.abs(v - t) >= 0.5, np.sign(v), 0)).astype(np.int64)


# ----------------------------------------------------------------------------- RoI max pooling

@dataclass(frozen=True)
class RoIPoolCache:
    """``argmax`` (K, C, PH, PW) int64: each bin's maximum as a flat index into the H*W plane
    of image ``batch[k]`` (-1: empty bin, no gradient); ``batch`` (K,) the boxes' images;
    x's shape, dtype and memory layout."""

    x_shape: tuple
    dtype: np.dtype
    batch: np.ndarray
    argmax: np.ndarray
    order: tuple


def _pool_bin_edges(start: np.ndarray, end: np.ndarray, bins: int, size: int, dt) -> tuple:
    """Bin edges (K, bins) of one axis, clipped to [0, size]: box start + floor(i*b) and
    box start + ceil((i+1)*b), b = box size / bins in dtype ``dt`` (torchvision's)."""
    extent = np.maximum(end - start + 1, 1)
    b = extent.astype(dt) / dt(bins)
    i = np.arange(bins, dtype=dt)
    lo = np.floor(i[None, :] * b[:, None]).astype(np.int64) + start[:, None]
    hi = np.ceil((i[None, :] + dt(1)) * b[:, None]).astype(np.int64) + start[:, None]
    return np.clip(lo, 0, size), np.clip(hi, 0, size)


def _bin_max(x: np.ndarray, batch: np.ndarray, h0, h1, w0, w1) -> tuple:
    """One bin of every box at once: (value (K, C), flat plane index (K, C)) of the first
    maximum in row-major order over rows [h0, h1) and columns [w0, w1) (each (K,)) of image
    ``batch`` of x. As torchvision's search, only values strictly above -FLT_MAX are
    candidates (NaN > t is False); an empty bin gives (0, -1), a non-empty one without a
    candidate (-FLT_MAX, -1)."""
    width = x.shape[3]
    k, c = batch.shape[0], x.shape[1]
    bh = max(int((h1 - h0).max()), 0) if k else 0
    bw = max(int((w1 - w0).max()), 0) if k else 0
    if bh == 0 or bw == 0:
        return np.zeros((k, c), x.dtype), np.full((k, c), -1, np.int64)
    rows = h0[:, None] + np.arange(bh)  # (K, bh), padded past h1 and masked below
    cols = w0[:, None] + np.arange(bw)
    valid = ((rows < h1[:, None])[:, :, None] & (cols < w1[:, None])[:, None, :])
    rows_c, cols_c = np.minimum(rows, x.shape[2] - 1), np.minimum(cols, width - 1)
    # (K, bh, bw, C): the advanced indices around the channel slice come first
    vals = x[batch[:, None, None], :, rows_c[:, :, None], cols_c[:, None, :]]
    vals = vals.reshape(k, bh * bw, c)
    valid = valid.reshape(k, bh * bw, 1)
    cand = np.where(valid & (vals > -_FLT_MAX), vals, -np.inf)
    a = cand.argmax(axis=1)  # (K, C): the first maximum in row-major order
    v = np.take_along_axis(cand, a[:, None, :], axis=1)[:, 0]
    r, q = np.divmod(a, bw)
    idx = (h0[:, None] + r) * width + (w0[:, None] + q)
    empty = ((h1 <= h0) | (w1 <= w0))[:, None]
    none = v == -np.inf
    v = np.where(empty, 0, np.where(none, -_FLT_MAX, v)).astype(x.dtype)
    return v, np.where(empty | none, -1, idx)


def roi_pool_forward(x, boxes, *, output_size, spatial_scale=1.0, allow_outside=False):
    """RoI max pooling (Fast R-CNN; ``torchvision.ops.roi_pool``): y[k, c, i, j] = max of
    x[b_k, c] over bin (i, j) of box k, its corners rounded to pixels.

    Args:
        x: (N, C, H, W) float32 or float64.
        boxes: (K, 5) rows ``(batch_index, x1, y1, x2, y2)`` of x's dtype, in input
            coordinates (scaled by ``spatial_scale``); x1 <= x2, y1 <= y2, finite; a box
            may lie partly outside the image (its outside bins are empty).
        output_size: int or (PH, PW).
        spatial_scale: > 0, e.g. 1/16 for a stride-16 feature map.
        allow_outside: a box wholly outside the image (its rounded pixel span missing
            [0, W-1] x [0, H-1]) is an error unless True; then its bins are empty (0, no
            gradient), as torchvision.

    Returns:
        y (K, C, PH, PW) in x's dtype (an empty bin is 0) and a :class:`RoIPoolCache` whose
        ``argmax`` holds each bin's flat H*W index (-1 for an empty bin). On a tie the first
        maximum in row-major order gets the gradient. See the module docstring for the bin
        rule and torchvision's -FLT_MAX start value.
    """
    op = "roi_pool"
    (ph, pw), scale, _, _ = roi_args(op, output_size, spatial_scale)
    x, boxes, batch = _check_inputs(op, x, boxes)
    check_array(op, "the output", (boxes.shape[0], x.shape[1], ph, pw), x.dtype,
                because=f"output_size={(ph, pw)} for {boxes.shape[0]} boxes")
    dt = x.dtype.type
    n, c, h, w = x.shape
    corners = _round_half_away(boxes[:, 1:] * dt(scale))  # (x1, y1, x2, y2) in pixels
    _refuse_outside(op, boxes, corners, 0, w - 1, h - 1, scale, allow_outside)
    hs, he = _pool_bin_edges(corners[:, 1], corners[:, 3], ph, h, dt)
    ws, we = _pool_bin_edges(corners[:, 0], corners[:, 2], pw, w, dt)
    k = boxes.shape[0]
    y = np.empty((k, c, ph, pw), dtype=x.dtype)
    argmax = np.empty((k, c, ph, pw), dtype=np.int64)
    for i in range(ph):  # one bin of every box at a time
        for j in range(pw):
            y[:, :, i, j], argmax[:, :, i, j] = _bin_max(x, batch, hs[:, i], he[:, i],
                                                         ws[:, j], we[:, j])
    return y, RoIPoolCache(tuple(x.shape), x.dtype, batch, argmax, axes_order(x))


def roi_pool_backward(dy, cache: RoIPoolCache):
    """Gradient of :func:`roi_pool_forward`: dy (K, C, PH, PW) -> dx (N, C, H, W), each dy
    added at its bin's recorded arg-max (overlapping bins and boxes add; empty bins give
    nothing)."""
    cache = check_cache("roi_pool_backward", cache, RoIPoolCache)
    dy = check_dy("roi_pool_backward", dy, cache.argmax.shape, cache.dtype)
    n, c, h, w = cache.x_shape
    plane = cache.batch[:, None] * c + np.arange(c)[None, :]  # (K, C): the (n, c) plane
    live = cache.argmax >= 0
    flat = (plane[:, :, None, None] * (h * w) + cache.argmax)[live]
    acc = np.bincount(flat, weights=dy[live].astype(np.float64), minlength=n * c * h * w)
    dx = empty_in_order(cache.x_shape, cache.dtype, cache.order)
    dx[...] = acc.reshape(cache.x_shape)
    return dx


# ----------------------------------------------------------------------------- RoI Align

@dataclass(frozen=True)
class RoIAlignCache:
    """The per-box interpolation matrices, ``y[k, c] = row_weights[k] @ x[batch[k], c] @
    col_weights[k].T``: ``row_weights`` (K, PH, H) and ``col_weights`` (K, PW, W), each row
    the bin's bilinear weights averaged over its samples; ``grid`` (K, 2) the samples per bin
    (g_h, g_w); ``batch`` (K,); x's shape, dtype and memory layout."""

    x_shape: tuple
    dtype: np.dtype
    batch: np.ndarray
    row_weights: np.ndarray
    col_weights: np.ndarray
    grid: np.ndarray
    order: tuple


def _align_axis_weights(start, extent, bins: int, grid: int, size: int, dt) -> np.ndarray:
    """(bins, size) averaged bilinear weights along one axis for one box: sample ``s`` of
    bin ``i`` sits at ``start + i*b + (s + 1/2) * b / grid`` (b = extent / bins, in dtype
    ``dt`` and in torchvision's order of operations); out of [-1, size] it weighs 0, below 0
    it is clamped to 0, at or past ``size - 1`` it takes the last pixel alone."""
    m = np.zeros((bins, size), dtype=dt)
    if grid == 0:
        return m  # no samples: the bin outputs 0
    b = extent / dt(bins)
    i = np.arange(bins, dtype=dt)[:, None]
    s = np.arange(grid, dtype=dt)[None, :] + dt(0.5)
    pos = start + i * b + s * b / dt(grid)  # (bins, grid)
    inside = (pos >= -1) & (pos <= size)
    pos = np.where(pos <= 0, dt(0), pos)
    low = pos.astype(np.int64)  # truncation of a non-negative value: floor
    last = low >= size - 1
    low = np.where(last, size - 1, low)
    high = np.where(last, size - 1, low + 1)
    frac = np.where(last, dt(0), pos - low.astype(dt))
    wl, wh = (dt(1) - frac) * inside, frac * inside
    rows = np.broadcast_to(np.arange(bins)[:, None], pos.shape)
    np.add.at(m, (rows, low), wl.astype(dt))
    np.add.at(m, (rows, high), wh.astype(dt))
    return m / dt(grid)


def _align_grids(extent: np.ndarray, bins: int, sampling_ratio: int, dt) -> np.ndarray:
    if sampling_ratio > 0:
        return np.full(extent.shape, sampling_ratio, dtype=np.int64)
    return np.ceil(extent / dt(bins)).astype(np.int64)


def roi_align_forward(x, boxes, *, output_size, spatial_scale=1.0, sampling_ratio=-1,
                      aligned=False, allow_outside=False):
    """RoI Align (Mask R-CNN; ``torchvision.ops.roi_align``): y[k, c, i, j] = the mean of
    x[b_k, c] bilinearly sampled at the g_h x g_w sub-grid centres of bin (i, j) of box k,
    no rounding anywhere.

    Args:
        x: (N, C, H, W) float32 or float64.
        boxes: (K, 5) rows ``(batch_index, x1, y1, x2, y2)`` of x's dtype, in input
            coordinates (scaled by ``spatial_scale``); x1 <= x2, y1 <= y2, finite.
        output_size: int or (PH, PW).
        spatial_scale: > 0.
        sampling_ratio: samples per bin along each axis; <= 0 for ceil(box / bins), adaptive
            per box (torchvision's default -1).
        aligned: shift the box by -0.5 pixel so that pixel centres sit at integer + 0.5
            (Detectron2's correction; then a zero-size box is allowed and outputs 0).
        allow_outside: a box wholly outside the sampled region (its scaled, shifted corners
            missing [-1, W] x [-1, H], where every sample contributes 0) is an error unless
            True; then it outputs zeros, as torchvision.

    Returns:
        y (K, C, PH, PW) in x's dtype and a :class:`RoIAlignCache` holding each box's row and
        column interpolation matrices (the module docstring gives the sampling and clamping
        rules).
    """
    op = "roi_align"
    (ph, pw), scale, ratio, aligned = roi_args(op, output_size, spatial_scale, sampling_ratio,
                                              aligned)
    x, boxes, batch = _check_inputs(op, x, boxes)
    check_array(op, "the output", (boxes.shape[0], x.shape[1], ph, pw), x.dtype,
                because=f"output_size={(ph, pw)} for {boxes.shape[0]} boxes")
    dt = x.dtype.type
    n, c, h, w = x.shape
    k = boxes.shape[0]
    corners = boxes[:, 1:] * dt(scale) - dt(0.5 if aligned else 0.0)  # (x1, y1, x2, y2)
    if not aligned:  # the sampled box is at least 1 pixel wide and high
        reach = np.maximum(corners[:, 2:], corners[:, :2] + dt(1))
        _refuse_outside(op, boxes, np.concatenate([corners[:, :2], reach], axis=1), -1, w, h,
                        scale, allow_outside)
    else:
        _refuse_outside(op, boxes, corners, -1, w, h, scale, allow_outside)
    ext_w, ext_h = corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1]
    if not aligned:  # torchvision forces a malformed box to 1x1
        ext_w, ext_h = np.maximum(ext_w, dt(1)), np.maximum(ext_h, dt(1))
    if ratio <= 0 and k:  # adaptive: ceil(box / bins) samples per bin, from the box's size
        reach = float(max(ext_h.max() / ph, ext_w.max() / pw))
        samples = max(ph, pw) * (math.ceil(reach) if math.isfinite(reach) else 2**63)
        check_array(op, "the sample positions of one box (and their 8 temporaries)",
                    (samples, 8), x.dtype,
                    because=f"sampling_ratio={sampling_ratio} (adaptive) with a box of "
                            f"{reach * max(ph, pw):g} pixels at spatial_scale={scale:g}")
    grid = np.stack([_align_grids(ext_h, ph, ratio, dt), _align_grids(ext_w, pw, ratio, dt)],
                    axis=1)
    rw = np.empty((k, ph, h), dtype=x.dtype)
    cw = np.empty((k, pw, w), dtype=x.dtype)
    for r in range(k):
        rw[r] = _align_axis_weights(corners[r, 1], ext_h[r], ph, grid[r, 0], h, dt)
        cw[r] = _align_axis_weights(corners[r, 0], ext_w[r], pw, grid[r, 1], w, dt)
    y = np.empty((k, c, ph, pw), dtype=x.dtype)
    for img, rois in _boxes_by_image(batch):
        # (R, PH, H) . (C, H, W) -> (R, C, PH, W), then . (R, PW, W)ᵀ -> (R, C, PH, PW)
        t = np.einsum("rph,chw->rcpw", rw[rois], x[img], optimize=True)
        y[rois] = t @ cw[rois].transpose(0, 2, 1)[:, None]
    return y, RoIAlignCache(tuple(x.shape), x.dtype, batch, rw, cw, grid, axes_order(x))


def _boxes_by_image(batch: np.ndarray):
    """(image, indices of its boxes) for every image that has boxes."""
    for img in np.unique(batch):
        yield int(img), np.flatnonzero(batch == img)


def roi_align_backward(dy, cache: RoIAlignCache):
    """Gradient of :func:`roi_align_forward`, its exact adjoint: dy (K, C, PH, PW) -> dx
    (N, C, H, W) = sum over boxes k of ``row_weights[k]ᵀ dy[k] col_weights[k]`` into image
    ``batch[k]``."""
    cache = check_cache("roi_align_backward", cache, RoIAlignCache)
    k, ph, _ = cache.row_weights.shape
    pw = cache.col_weights.shape[1]
    n, c, h, w = cache.x_shape
    dy = check_dy("roi_align_backward", dy, (k, c, ph, pw), cache.dtype)
    dx = empty_in_order(cache.x_shape, cache.dtype, cache.order)
    dx[...] = 0
    for img, rois in _boxes_by_image(cache.batch):
        t = dy[rois] @ cache.col_weights[rois][:, None]  # (R, C, PH, W)
        dx[img] = np.einsum("rph,rcpw->chw", cache.row_weights[rois], t, optimize=True)
    return dx
