"""Loop oracles for the window kernels, one per op, for any number of spatial dimensions.

Written from PyTorch's documented semantics, one output element at a time over
``itertools.product`` of positions, so a 1-D, 2-D and 3-D op share one oracle. Nothing here
imports convprop: these are the independent references the fast kernels are tested against.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def ntuple(v, n: int) -> tuple:
    """An int repeated ``n`` times, or a sequence as a tuple."""
    return (v,) * n if isinstance(v, (int, np.integer)) else tuple(v)


def positions(shape):
    """Every index tuple of ``shape`` in row-major order."""
    return itertools.product(*(range(s) for s in shape))


def conv_pads(padding, kernel, dilation) -> tuple:
    """((before, after), ...) per spatial axis for an int / tuple / "valid" / "same" padding;
    "same" puts the odd extra element after, as PyTorch."""
    nd = len(kernel)
    if padding == "valid":
        return ((0, 0),) * nd
    if padding == "same":
        tot = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in tot)
    return tuple((p, p) for p in ntuple(padding, nd))


def _zero_pad(x, pads, value=0.0):
    return np.pad(np.asarray(x, np.float64), [(0, 0), (0, 0), *pads], constant_values=value)


# ----------------------------------------------------------------------------- convolution

def conv(x, w, b, *, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation, as ``torch.nn.functional.conv{1,2,3}d``:
    ``y[n, o, p] = b[o] + sum_{c, k} w[o, c, k] * x_pad[n, g(o)*C_in/G + c, p*s + k*d]``."""
    nd = x.ndim - 2
    kernel = w.shape[2:]
    s, d = ntuple(stride, nd), ntuple(dilation, nd)
    xp = _zero_pad(x, conv_pads(padding, kernel, d))
    out = [(xp.shape[2 + a] - d[a] * (kernel[a] - 1) - 1) // s[a] + 1 for a in range(nd)]
    n, c_out, cg = x.shape[0], w.shape[0], w.shape[1]
    og = c_out // groups
    y = np.zeros((n, c_out, *out))
    for bi, o in itertools.product(range(n), range(c_out)):
        c0 = (o // og) * cg
        for p in positions(out):
            acc = 0.0 if b is None else float(b[o])
            for ci in range(cg):
                for k in positions(kernel):
                    at = tuple(pa * sa + ka * da for pa, sa, ka, da in zip(p, s, k, d))
                    acc += w[(o, ci, *k)] * xp[(bi, c0 + ci, *at)]
            y[(bi, o, *p)] = acc
    return y


def conv_transpose(x, w, b, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """Transposed convolution, as ``torch.nn.functional.conv_transpose{1,2,3}d``: every input
    element scatters a weighted kernel into an uncropped buffer, which is then cropped by
    ``padding`` (overlaps add)."""
    nd = x.ndim - 2
    kernel = w.shape[2:]
    s, p, op, d = (ntuple(v, nd) for v in (stride, padding, output_padding, dilation))
    out = [(x.shape[2 + a] - 1) * s[a] - 2 * p[a] + d[a] * (kernel[a] - 1) + op[a] + 1
           for a in range(nd)]
    n, c_in, og = x.shape[0], x.shape[1], w.shape[1]
    full = np.zeros((n, og * groups, *(o + 2 * pa + sa + da * ka for o, pa, sa, da, ka
                                       in zip(out, p, s, d, kernel))))
    cg = c_in // groups
    for bi, c in itertools.product(range(n), range(c_in)):
        o0 = (c // cg) * og
        for q in positions(x.shape[2:]):
            for o in range(og):
                for k in positions(kernel):
                    at = tuple(qa * sa + ka * da for qa, sa, ka, da in zip(q, s, k, d))
                    full[(bi, o0 + o, *at)] += x[(bi, c, *q)] * w[(c, o, *k)]
    y = full[(slice(None), slice(None), *(slice(pa, pa + o) for pa, o in zip(p, out)))].copy()
    if b is not None:
        y += np.asarray(b, np.float64).reshape((1, -1) + (1,) * nd)
    return y


def flip(w):
    """``w`` reversed along every spatial axis (2, ...): true convolution's kernel."""
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]


# ----------------------------------------------------------------------------- pooling

def pooled_length(size, k, s, p, d, ceil):
    """PyTorch's pooled output length (floor, or ceil with the last window starting inside
    the input or its left padding)."""
    span = size + 2 * p - d * (k - 1) - 1
    n = (-(-span // s) if ceil else span // s) + 1
    if ceil and (n - 1) * s >= size + p:
        n -= 1
    return n


def _beats(v, best, first: bool) -> bool:
    """PyTorch's rule for a maximum: a larger value, or any NaN (so NaN propagates and the
    last NaN in window order holds the index); on a plain tie the first maximum stays."""
    return first or v > best or math.isnan(v)


def _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode):
    nd = x.ndim - 2
    k = ntuple(kernel_size, nd)
    s = k if stride is None else ntuple(stride, nd)
    p, d = ntuple(padding, nd), ntuple(dilation, nd)
    out = tuple(pooled_length(x.shape[2 + a], k[a], s[a], p[a], d[a], ceil_mode)
                for a in range(nd))
    return k, s, p, d, out


def max_pool(x, *, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Values and flat plane indices (PyTorch's ``return_indices``) of max pooling; on a tie
    the first maximum in row-major window order wins, a NaN beats everything (see _beats)."""
    sp = x.shape[2:]
    k, s, p, d, out = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    y = np.empty(x.shape[:2] + out, x.dtype)
    idx = np.empty(x.shape[:2] + out, np.int64)
    for n, c in positions(x.shape[:2]):
        for o in positions(out):
            best, arg = -math.inf, None
            for kk in positions(k):
                at = tuple(oa * sa - pa + ka * da for oa, sa, pa, ka, da in zip(o, s, p, kk, d))
                if all(0 <= a < m for a, m in zip(at, sp)) and _beats(
                        x[(n, c, *at)], best, arg is None):
                    best, arg = x[(n, c, *at)], int(np.ravel_multi_index(at, sp))
            y[(n, c, *o)], idx[(n, c, *o)] = best, arg
    return y, idx


def scatter_at_indices(dy, idx, x_shape):
    """Max pooling's backward: each dy added at its window's maximum (overlaps add)."""
    dx = np.zeros((*x_shape[:2], math.prod(x_shape[2:])))
    for n, c in positions(x_shape[:2]):
        for g, f in zip(dy[n, c].ravel(), idx[n, c].ravel()):
            dx[n, c, f] += g
    return dx.reshape(x_shape)


def avg_pool(x, *, kernel_size, stride=None, padding=0, ceil_mode=False,
             count_include_pad=True, divisor_override=None):
    """Average pooling with PyTorch's divisor: the window clipped to input + padding
    (count_include_pad) or to the input alone; ``divisor_override`` replaces it."""
    sp = x.shape[2:]
    k, s, p, _, out = _pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode)
    y = np.zeros(x.shape[:2] + out)
    for o in positions(out):
        lo = [oa * sa - pa for oa, sa, pa in zip(o, s, p)]
        hi = [min(la + ka, m + pa) for la, ka, m, pa in zip(lo, k, sp, p)]
        clo = [max(la, 0) for la in lo]
        chi = [min(ha, m) for ha, m in zip(hi, sp)]
        if divisor_override is not None:
            div = divisor_override
        elif count_include_pad:
            div = math.prod(h - la for h, la in zip(hi, lo))
        else:
            div = math.prod(h - la for h, la in zip(chi, clo))
        box = x[(slice(None), slice(None), *(slice(a, b) for a, b in zip(clo, chi)))]
        y[(slice(None), slice(None), *o)] = box.sum(axis=tuple(range(2, x.ndim))) / div
    return y


# ----------------------------------------------------------------------------- adaptive, global

def adaptive_bins(size: int, out: int) -> list:
    """PyTorch's bins: output i pools [floor(i*L/O), ceil((i+1)*L/O))."""
    return [(math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out)]


def _bins(x, output_size):
    nd = x.ndim - 2
    out = tuple(x.shape[2 + a] if v is None else v
                for a, v in enumerate(ntuple(output_size, nd)))
    return out, [adaptive_bins(x.shape[2 + a], out[a]) for a in range(nd)]


def adaptive_avg_pool(x, *, output_size):
    out, bins = _bins(x, output_size)
    y = np.zeros(x.shape[:2] + out)
    for o in positions(out):
        box = x[(slice(None), slice(None), *(slice(*bins[a][oa]) for a, oa in enumerate(o)))]
        y[(slice(None), slice(None), *o)] = box.mean(axis=tuple(range(2, x.ndim)))
    return y


def adaptive_max_pool(x, *, output_size):
    """Values and flat plane indices of each bin's maximum (first maximum, last NaN)."""
    sp = x.shape[2:]
    out, bins = _bins(x, output_size)
    y = np.empty(x.shape[:2] + out, x.dtype)
    idx = np.empty(x.shape[:2] + out, np.int64)
    for n, c in positions(x.shape[:2]):
        for o in positions(out):
            best, arg = -math.inf, None
            for at in itertools.product(*(range(*bins[a][oa]) for a, oa in enumerate(o))):
                if _beats(x[(n, c, *at)], best, arg is None):
                    best, arg = x[(n, c, *at)], int(np.ravel_multi_index(at, sp))
            y[(n, c, *o)], idx[(n, c, *o)] = best, arg
    return y, idx


def global_avg_pool(x):
    n, c = x.shape[:2]
    return np.array([[float(np.sum(x[i, j])) / x[i, j].size for j in range(c)]
                     for i in range(n)])


def global_max_pool(x):
    """Values (N, C) and flat plane indices of the maximum (first maximum, last NaN)."""
    n, c = x.shape[:2]
    y, idx = np.empty((n, c), x.dtype), np.empty((n, c), np.int64)
    for i, j in positions((n, c)):
        plane = x[i, j].ravel()
        arg = 0
        for t in range(1, plane.size):
            if _beats(plane[t], plane[arg], False):
                arg = t
        y[i, j], idx[i, j] = plane[arg], arg
    return y, idx


# ----------------------------------------------------------------------------- unpooling

def unpool_size(in_sp, kernel_size, stride, padding) -> tuple:
    nd = len(in_sp)
    k = ntuple(kernel_size, nd)
    s = k if stride is None else ntuple(stride, nd)
    p = ntuple(padding, nd)
    return tuple((n - 1) * sa - 2 * pa + ka for n, ka, sa, pa in zip(in_sp, k, s, p))


def max_unpool(x, indices, out_sp):
    """y zero but at the flat plane indices; a repeated index keeps the value of its LAST
    writer in flat input order. Returns y and the mask (x's shape) of the writers that won."""
    n, c = x.shape[:2]
    xf = np.asarray(x, np.float64).reshape(n, c, -1)
    idx = np.asarray(indices).reshape(n, c, -1)
    y = np.zeros((n, c, math.prod(out_sp)))
    won = np.zeros(xf.shape, bool)
    for i, j in positions((n, c)):
        last = {}
        for t in range(idx.shape[2]):
            last[int(idx[i, j, t])] = t
        for f, t in last.items():
            y[i, j, f] = xf[i, j, t]
            won[i, j, t] = True
    return y.reshape(n, c, *out_sp), won.reshape(x.shape)


def max_unpool_backward(dy, indices, won):
    """dx[i] = dy at index i's target when i won its target, else 0."""
    n, c = indices.shape[:2]
    dyf = np.asarray(dy, np.float64).reshape(n, c, -1)
    idx, wonf = np.asarray(indices).reshape(n, c, -1), won.reshape(n, c, -1)
    dx = np.zeros(idx.shape)
    for i, j in positions((n, c)):
        for t in range(idx.shape[2]):
            if wonf[i, j, t]:
                dx[i, j, t] = dyf[i, j, idx[i, j, t]]
    return dx.reshape(indices.shape)


def windows(x, k, s):
    """(N, C, *O, prod(K)): every window of the unpadded input in row-major window order."""
    nd = x.ndim - 2
    k = (k,) * nd if isinstance(k, int) else tuple(k)
    s = k if s is None else ((s,) * nd if isinstance(s, int) else tuple(s))
    out = tuple((n - kk) // ss + 1 for n, kk, ss in zip(x.shape[2:], k, s))
    w = np.zeros(x.shape[:2] + out + (int(np.prod(k)),))
    for o in np.ndindex(*out):
        for q, off in enumerate(np.ndindex(*k)):
            idx = tuple(oo * ss + kk for oo, ss, kk in zip(o, s, off))
            w[(slice(None), slice(None), *o, q)] = x[(slice(None), slice(None), *idx)]
    return w
