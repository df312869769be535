"""PyTorch parity on randomized shapes: a seeded sweep of valid configurations per op and
number of spatial dimensions.

Each op gets configurations drawn once from a fixed seed (small sizes), compared in float64
with ``torch.nn.functional``: the forward output, max pooling's indices and every gradient,
atol 1e-10. The hand-picked grids in the per-op files cover the named hard cases; this sweep
covers the combinations nobody thought to pick (stride with dilation with groups with odd
sizes ...). The 2-D sweeps draw exactly the configurations they drew before 1-D and 3-D
joined.
"""

import numpy as np
import pytest
from loops import pooled_length

import convprop.functional as F

N_CONFIGS = 25
N_SMALL = 15  # for the ops whose hard cases are fewer (adaptive, unpooling, batch norm)
ATOL = 1e-10
SPREAD = {1: 6, 2: 6, 3: 3}  # how far sizes go past the smallest valid one (3-D: volumes)


def _windows_see_input(size, k, s, p, d, n_out):
    """Every pooling window has at least one tap inside the input (a window that lies wholly
    in the -inf padding has no meaningful maximum; PyTorch's gradient there is arbitrary)."""
    taps = np.arange(n_out)[:, None] * s - p + np.arange(k)[None, :] * d
    return bool(((taps >= 0) & (taps < size)).any(axis=1).all())


def _ints(rng, lo, hi, nd):
    return tuple(int(v) for v in rng.integers(lo, hi, nd))


def _conv_configs(rng, nd):
    out = []
    while len(out) < N_CONFIGS:
        g = int(rng.integers(1, 4))
        k, d, s = _ints(rng, 1, 5, nd), _ints(rng, 1, 3, nd), _ints(rng, 1, 4, nd)
        choice = rng.integers(0, 4)
        if choice == 0:
            s = (1,) * nd  # "same" needs stride 1
            pad, tot = "same", [dd * (kk - 1) for kk, dd in zip(k, d)]
        elif choice == 1:
            pad, tot = "valid", [0] * nd
        else:
            p = _ints(rng, 0, 3, nd)
            pad, tot = p, [2 * v for v in p]
        eff = [dd * (kk - 1) + 1 for kk, dd in zip(k, d)]
        sp = [int(rng.integers(max(1, e - t), max(1, e - t) + SPREAD[nd]))
              for e, t in zip(eff, tot)]
        out.append(dict(n=int(rng.integers(1, 4)), c_in=g * int(rng.integers(1, 3)),
                        c_out=g * int(rng.integers(1, 3)), sp=tuple(sp), kernel=k,
                        bias=bool(rng.integers(0, 2)),
                        kw=dict(stride=s, padding=pad, dilation=d, groups=g)))
    return out


def _conv_t_configs(rng, nd):
    out = []
    while len(out) < N_CONFIGS:
        g = int(rng.integers(1, 4))
        k, d, s = _ints(rng, 1, 5, nd), _ints(rng, 1, 3, nd), _ints(rng, 1, 4, nd)
        p = _ints(rng, 0, 3, nd)
        op = tuple(int(rng.integers(0, max(ss, dd))) for ss, dd in zip(s, d))
        sp = _ints(rng, 1, 6 if nd < 3 else 4, nd)
        o = [(h - 1) * ss - 2 * pp + dd * (kk - 1) + oo + 1
             for h, ss, pp, dd, kk, oo in zip(sp, s, p, d, k, op)]
        if min(o) < 1:
            continue
        out.append(dict(n=int(rng.integers(1, 4)), c_in=g * int(rng.integers(1, 3)),
                        c_out=g * int(rng.integers(1, 3)), sp=sp, kernel=k,
                        bias=bool(rng.integers(0, 2)),
                        kw=dict(stride=s, padding=p, output_padding=op, dilation=d, groups=g)))
    return out


def _pool_configs(rng, nd, with_dilation):
    out = []
    while len(out) < N_CONFIGS:
        k, s = _ints(rng, 1, 5, nd), _ints(rng, 1, 4, nd)
        p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
        d = _ints(rng, 1, 3, nd) if with_dilation else (1,) * nd
        ceil = bool(rng.integers(0, 2))
        eff = [dd * (kk - 1) + 1 for kk, dd in zip(k, d)]
        lowest = [max(1, e - 2 * pp) for e, pp in zip(eff, p)]
        if nd == 3 and not with_dilation:
            lowest = [max(lo, kk) for lo, kk in zip(lowest, k)]  # avg_pool3d: input >= kernel
        sp = tuple(int(rng.integers(lo, lo + SPREAD[nd])) for lo in lowest)
        if not rng.integers(0, 4):
            s = None  # PyTorch's default: stride = kernel_size
        ss = k if s is None else s
        outs = [pooled_length(*a, ceil) for a in zip(sp, k, ss, p, d)]
        if min(outs) < 1 or not all(_windows_see_input(*a) for a in zip(sp, k, ss, p, d, outs)):
            continue
        kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil)
        if with_dilation:
            kw["dilation"] = d
        else:
            kw["count_include_pad"] = bool(rng.integers(0, 2))
            if nd == 3 and not rng.integers(0, 3):  # avg_pool1d has no divisor_override
                kw["divisor_override"] = int(rng.integers(1, 6))
        out.append(dict(n=int(rng.integers(1, 3)), c=int(rng.integers(1, 4)), sp=sp, kw=kw))
    return out


def _adaptive_configs(rng, nd):
    out = []
    for _ in range(N_SMALL):
        sp = _ints(rng, 1, 9 if nd < 3 else 6, nd)
        size = _ints(rng, 1, 10 if nd < 3 else 6, nd)
        if nd > 1 and not rng.integers(0, 4):
            size = tuple(None if rng.integers(0, 2) else o for o in size)  # keep that axis
        out.append(dict(n=int(rng.integers(1, 3)), c=int(rng.integers(1, 4)), sp=sp,
                        output_size=size))
    return out


def _unpool_configs(rng, nd):
    out = []
    while len(out) < N_SMALL:
        k, s = _ints(rng, 1, 4, nd), _ints(rng, 1, 4, nd)
        p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
        sp = tuple(int(rng.integers(kk, kk + 5)) for kk in k)  # the pooled input
        pooled = [pooled_length(*a, False) for a in zip(sp, k, s, p, (1,) * nd)]
        default = tuple((o - 1) * ss + kk - 2 * pp for o, ss, kk, pp in zip(pooled, s, k, p))
        # unpool to the pooled input's size: PyTorch allows it within a stride of the default
        if min(pooled) < 1 or not all(dd - ss < h < dd + ss for dd, ss, h in zip(default, s, sp)):
            continue
        out.append(dict(n=int(rng.integers(1, 3)), c=int(rng.integers(1, 4)), sp=sp,
                        kw=dict(kernel_size=k, stride=s, padding=p,
                                output_size=None if default == sp else sp)))
    return out


def _bn_configs(rng, nd):
    out = []
    for _ in range(N_SMALL):
        sp = _ints(rng, 1, 6 if nd == 1 else 4, nd)
        out.append(dict(shape=(int(rng.integers(2, 5)), int(rng.integers(1, 4)), *sp),
                        training=bool(rng.integers(0, 3)), momentum=float(rng.random()),
                        eps=float(10.0 ** rng.integers(-5, -1))))
    return out


def _rng(seed):
    return np.random.default_rng(seed)


# one seed per op (the 2-D sweeps' original ones); each dimension draws its own sequence
DIMS = (1, 2, 3)
CONV = {nd: _conv_configs(_rng(101), nd) for nd in DIMS}
CONV_T = {nd: _conv_t_configs(_rng(202), nd) for nd in DIMS}
MAX_POOL = {nd: _pool_configs(_rng(303), nd, with_dilation=True) for nd in DIMS}
AVG_POOL = {nd: _pool_configs(_rng(404), nd, with_dilation=False) for nd in DIMS}
ADAPTIVE = {nd: _adaptive_configs(_rng(505), nd) for nd in DIMS}
UNPOOL = {nd: _unpool_configs(_rng(606), nd) for nd in DIMS}
BATCH_NORM = {nd: _bn_configs(_rng(707), nd) for nd in (1, 3)}  # 2-D: test_normalization


def _grid(sweep, tag):
    params = [(nd, i) for nd in sweep for i in range(len(sweep[nd]))]
    return pytest.mark.parametrize("nd,i", params, ids=[f"{nd}d-{tag}{i}" for nd, i in params])


def _ops(name, nd):
    return getattr(F, f"{name}{nd}d_forward"), getattr(F, f"{name}{nd}d_backward")


def _compare(mine, theirs, names):
    for name, a, b in zip(names, mine, theirs):
        if b is None:
            assert a is None, name
            continue
        b = b.detach().numpy() if hasattr(b, "detach") else b
        if b.dtype.kind in "iu":
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=ATOL, err_msg=name)


def _conv_case(torch, cfg, nd, rng, transposed):
    n, c_in, c_out, g = cfg["n"], cfg["c_in"], cfg["c_out"], cfg["kw"]["groups"]
    x = rng.standard_normal((n, c_in, *cfg["sp"]))
    wshape = (c_in, c_out // g) if transposed else (c_out, c_in // g)
    w = rng.standard_normal(wshape + cfg["kernel"])
    b = rng.standard_normal(c_out) if cfg["bias"] else None
    fwd, bwd = _ops("conv_transpose" if transposed else "conv", nd)
    y, cache = fwd(x, w, b, **cfg["kw"])
    dy = rng.standard_normal(y.shape)
    grads = bwd(dy, cache)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    tfn = getattr(torch.nn.functional, f"conv_transpose{nd}d" if transposed else f"conv{nd}d")
    ty = tfn(tx, tw, tb, **cfg["kw"])
    ty.backward(torch.tensor(dy))
    _compare((y, *grads), (ty, tx.grad, tw.grad, None if tb is None else tb.grad),
             ("y", "dx", "dw", "db"))


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's perf note, not ours
@_grid(CONV, "c")
def test_conv_random_shapes(nd, i, rng, torch):
    _conv_case(torch, CONV[nd][i], nd, rng, transposed=False)


@_grid(CONV_T, "t")
def test_conv_transpose_random_shapes(nd, i, rng, torch):
    _conv_case(torch, CONV_T[nd][i], nd, rng, transposed=True)


def _pool_case(torch, cfg, nd, rng, kind):
    fwd, bwd = _ops(f"{kind}_pool", nd)
    x = rng.standard_normal((cfg["n"], cfg["c"], *cfg["sp"]))
    y, cache = fwd(x, **cfg["kw"])
    dy = rng.standard_normal(y.shape)
    dx = bwd(dy, cache)
    tx = torch.tensor(x, requires_grad=True)
    tfn = getattr(torch.nn.functional, f"{kind}_pool{nd}d")
    if kind == "max":
        ty, ti = tfn(tx, **cfg["kw"], return_indices=True)
        _compare([cache.indices], [ti], ["indices"])
    else:
        ty = tfn(tx, **cfg["kw"])
    ty.backward(torch.tensor(dy))
    _compare((y, dx), (ty, tx.grad), ("y", "dx"))


@_grid(MAX_POOL, "m")
def test_max_pool_random_shapes(nd, i, rng, torch):
    _pool_case(torch, MAX_POOL[nd][i], nd, rng, "max")


@_grid(AVG_POOL, "a")
def test_avg_pool_random_shapes(nd, i, rng, torch):
    _pool_case(torch, AVG_POOL[nd][i], nd, rng, "avg")


@pytest.mark.parametrize("kind", ["avg", "max"])
@_grid(ADAPTIVE, "ad")
def test_adaptive_pool_random_shapes(kind, nd, i, rng, torch):
    cfg = ADAPTIVE[nd][i]
    fwd, bwd = _ops(f"adaptive_{kind}_pool", nd)
    x = rng.standard_normal((cfg["n"], cfg["c"], *cfg["sp"]))
    y, cache = fwd(x, output_size=cfg["output_size"])
    dy = rng.standard_normal(y.shape)
    tx = torch.tensor(x, requires_grad=True)
    tfn = getattr(torch.nn.functional, f"adaptive_{kind}_pool{nd}d")
    size = cfg["output_size"][0] if nd == 1 else cfg["output_size"]
    if kind == "max":
        ty, ti = tfn(tx, size, return_indices=True)
        _compare([cache.indices], [ti], ["indices"])
    else:
        ty = tfn(tx, size)
    ty.backward(torch.tensor(dy))
    _compare((y, bwd(dy, cache)), (ty, tx.grad), ("y", "dx"))


@_grid(UNPOOL, "u")
def test_max_unpool_random_shapes(nd, i, rng, torch):
    """Indices from max pooling, repeats included: PyTorch's serial loop (one thread, as the
    fixture sets) also keeps the last writer; gradients compared where nothing repeats."""
    cfg = UNPOOL[nd][i]
    kw = cfg["kw"]
    pool_kw = {k: kw[k] for k in ("kernel_size", "stride", "padding")}
    _, pc = _ops("max_pool", nd)[0](rng.standard_normal((cfg["n"], cfg["c"], *cfg["sp"])),
                                    **pool_kw)
    fwd, bwd = _ops("max_unpool", nd)
    x = rng.standard_normal(pc.indices.shape)
    y, cache = fwd(x, pc.indices, **kw)
    dy = rng.standard_normal(y.shape)
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn.functional, f"max_unpool{nd}d")(tx, torch.tensor(pc.indices), **kw)
    ty.backward(torch.tensor(dy))
    _compare([y], [ty], ["y"])
    flat = pc.indices.reshape(pc.indices.shape[0] * pc.indices.shape[1], -1)
    if all(len(set(r.tolist())) == r.size for r in flat):
        _compare([bwd(dy, cache)], [tx.grad], ["dx"])


@_grid(BATCH_NORM, "bn")
def test_batch_norm_random_shapes(nd, i, rng, torch):
    cfg = BATCH_NORM[nd][i]
    shape, c = cfg["shape"], cfg["shape"][1]
    x = rng.standard_normal(shape) * 2 + 1
    g, b, rm = rng.standard_normal(c), rng.standard_normal(c), rng.standard_normal(c)
    rv = rng.random(c) + 0.5
    kw = dict(momentum=cfg["momentum"], eps=cfg["eps"])
    y, cache = F.batch_norm_forward(x, g, b, rm, rv, training=cfg["training"], **kw)
    dy = rng.standard_normal(shape)
    grads = F.batch_norm_backward(dy, cache)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, g, b))
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tg, tb, training=cfg["training"], **kw)
    ty.backward(torch.tensor(dy))
    _compare((y, *grads, cache.running_mean, cache.running_var),
             (ty, tx.grad, tg.grad, tb.grad, trm.numpy(), trv.numpy()),
             ("y", "dx", "dgamma", "dbeta", "running_mean", "running_var"))


def test_the_sweep_reaches_the_hard_cases():
    """The seeds were not lucky: each sweep really mixes the options it claims to."""
    for nd in DIMS:
        conv, conv_t, one = CONV[nd], CONV_T[nd], (1,) * nd
        pads = [c["kw"]["padding"] for c in conv]
        assert "same" in pads and "valid" in pads and any(isinstance(p, tuple) for p in pads)
        assert any(c["kw"]["padding"] == "same" and any(d * (k - 1) % 2 for k, d in
                   zip(c["kernel"], c["kw"]["dilation"])) for c in conv)  # asymmetric "same"
        assert any(c["kw"]["groups"] > 1 for c in conv)
        assert any(c["kw"]["dilation"] != one for c in conv)
        assert any(c["kw"]["output_padding"] != (0,) * nd for c in conv_t)
        assert any(c["kw"]["groups"] > 1 for c in conv_t)
        for sweep in (MAX_POOL[nd], AVG_POOL[nd]):
            assert {c["kw"]["ceil_mode"] for c in sweep} == {True, False}
            assert any(c["kw"]["padding"] != (0,) * nd for c in sweep)
            assert any(c["kw"]["stride"] is None for c in sweep)
            assert any(c["kw"]["stride"] is not None and any(
                st < k for st, k in zip(c["kw"]["stride"], c["kw"]["kernel_size"]))
                for c in sweep)
        assert any(c["kw"]["dilation"] != one for c in MAX_POOL[nd])
        assert {c["kw"]["count_include_pad"] for c in AVG_POOL[nd]} == {True, False}
        pairs = [(s, o) for c in ADAPTIVE[nd] for s, o in zip(c["sp"], c["output_size"])
                 if o is not None]
        assert any(o > s for s, o in pairs)  # more bins than elements
        assert any(o < s and s % o for s, o in pairs)  # overlapping bins
        assert {c["kw"]["output_size"] is None for c in UNPOOL[nd]} == {True, False}
        assert any(any(st < k for st, k in zip(c["kw"]["stride"], c["kw"]["kernel_size"]))
                   for c in UNPOOL[nd])  # overlapping windows: repeated indices possible
    assert any("divisor_override" in c["kw"] for c in AVG_POOL[3])
    for nd in BATCH_NORM:
        assert {c["training"] for c in BATCH_NORM[nd]} == {True, False}
