"""PyTorch parity on randomized shapes: a seeded sweep of valid configurations per op.

Each op gets 25 configurations drawn once from a fixed seed (small sizes), compared in
float64 with ``torch.nn.functional``: the forward output and every gradient, atol 1e-10.
The hand-picked grids in the per-op files cover the named hard cases; this sweep covers the
combinations nobody thought to pick (stride with dilation with groups with odd sizes ...).
"""

import numpy as np
import pytest
from helpers import pooled_length

import convprop.functional as F

N_CONFIGS = 25
ATOL = 1e-10


def _windows_see_input(size, k, s, p, d, n_out):
    """Every pooling window has at least one tap inside the input (a window that lies wholly
    in the -inf padding has no meaningful maximum; PyTorch's gradient there is arbitrary)."""
    taps = np.arange(n_out)[:, None] * s - p + np.arange(k)[None, :] * d
    return bool(((taps >= 0) & (taps < size)).any(axis=1).all())


def _conv2d_configs(rng):
    out = []
    while len(out) < N_CONFIGS:
        g = int(rng.integers(1, 4))
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        choice = rng.integers(0, 4)
        if choice == 0:
            s = (1, 1)  # "same" needs stride 1
            pad, tot = "same", [dd * (kk - 1) for kk, dd in zip(k, d)]
        elif choice == 1:
            pad, tot = "valid", [0, 0]
        else:
            p = tuple(int(v) for v in rng.integers(0, 3, 2))
            pad, tot = p, [2 * v for v in p]
        eff = [dd * (kk - 1) + 1 for kk, dd in zip(k, d)]
        hw = [int(rng.integers(max(1, e - t), max(1, e - t) + 6)) for e, t in zip(eff, tot)]
        out.append(dict(n=int(rng.integers(1, 4)), c_in=g * int(rng.integers(1, 3)),
                        c_out=g * int(rng.integers(1, 3)), hw=tuple(hw), kernel=k,
                        bias=bool(rng.integers(0, 2)),
                        kw=dict(stride=s, padding=pad, dilation=d, groups=g)))
    return out


def _conv_t_configs(rng):
    out = []
    while len(out) < N_CONFIGS:
        g = int(rng.integers(1, 4))
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        p = tuple(int(v) for v in rng.integers(0, 3, 2))
        op = tuple(int(rng.integers(0, max(ss, dd))) for ss, dd in zip(s, d))
        hw = tuple(int(v) for v in rng.integers(1, 6, 2))
        o = [(h - 1) * ss - 2 * pp + dd * (kk - 1) + oo + 1
             for h, ss, pp, dd, kk, oo in zip(hw, s, p, d, k, op)]
        if min(o) < 1:
            continue
        out.append(dict(n=int(rng.integers(1, 4)), c_in=g * int(rng.integers(1, 3)),
                        c_out=g * int(rng.integers(1, 3)), hw=hw, kernel=k,
                        bias=bool(rng.integers(0, 2)),
                        kw=dict(stride=s, padding=p, output_padding=op, dilation=d, groups=g)))
    return out


def _pool_configs(rng, with_dilation):
    out = []
    while len(out) < N_CONFIGS:
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
        d = tuple(int(v) for v in rng.integers(1, 3, 2)) if with_dilation else (1, 1)
        ceil = bool(rng.integers(0, 2))
        eff = [dd * (kk - 1) + 1 for kk, dd in zip(k, d)]
        hw = tuple(int(rng.integers(max(1, e - 2 * pp), max(1, e - 2 * pp) + 6))
                   for e, pp in zip(eff, p))
        if not rng.integers(0, 4):
            s = None  # PyTorch's default: stride = kernel_size
        ss = k if s is None else s
        outs = [pooled_length(*a, ceil) for a in zip(hw, k, ss, p, d)]
        if min(outs) < 1 or not all(_windows_see_input(*a) for a in zip(hw, k, ss, p, d, outs)):
            continue
        kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil)
        if with_dilation:
            kw["dilation"] = d
        else:
            kw["count_include_pad"] = bool(rng.integers(0, 2))
        out.append(dict(n=int(rng.integers(1, 3)), c=int(rng.integers(1, 4)), hw=hw, kw=kw))
    return out


CONV = _conv2d_configs(np.random.default_rng(101))
CONV_T = _conv_t_configs(np.random.default_rng(202))
MAX_POOL = _pool_configs(np.random.default_rng(303), with_dilation=True)
AVG_POOL = _pool_configs(np.random.default_rng(404), with_dilation=False)


def _compare(torch, mine, theirs, names):
    for name, a, b in zip(names, mine, theirs):
        if b is None:
            assert a is None, name
            continue
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=0, atol=ATOL, err_msg=name)


def _conv_case(torch, cfg, rng, transposed):
    n, c_in, c_out, g = cfg["n"], cfg["c_in"], cfg["c_out"], cfg["kw"]["groups"]
    x = rng.standard_normal((n, c_in, *cfg["hw"]))
    wshape = (c_in, c_out // g) if transposed else (c_out, c_in // g)
    w = rng.standard_normal(wshape + cfg["kernel"])
    b = rng.standard_normal(c_out) if cfg["bias"] else None
    fwd, bwd = ((F.conv_transpose2d_forward, F.conv_transpose2d_backward) if transposed
                else (F.conv2d_forward, F.conv2d_backward))
    y, cache = fwd(x, w, b, **cfg["kw"])
    dy = rng.standard_normal(y.shape)
    grads = bwd(dy, cache)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    tfn = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d
    ty = tfn(tx, tw, tb, **cfg["kw"])
    ty.backward(torch.tensor(dy))
    _compare(torch, (y, *grads), (ty, tx.grad, tw.grad, None if tb is None else tb.grad),
             ("y", "dx", "dw", "db"))


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's perf note, not ours
@pytest.mark.parametrize("cfg", CONV, ids=[f"c{i}" for i in range(len(CONV))])
def test_conv2d_random_shapes(cfg, rng, torch):
    _conv_case(torch, cfg, rng, transposed=False)


@pytest.mark.parametrize("cfg", CONV_T, ids=[f"t{i}" for i in range(len(CONV_T))])
def test_conv_transpose2d_random_shapes(cfg, rng, torch):
    _conv_case(torch, cfg, rng, transposed=True)


def _pool_case(torch, cfg, rng, fwd, bwd, tfn):
    x = rng.standard_normal((cfg["n"], cfg["c"], *cfg["hw"]))
    y, cache = fwd(x, **cfg["kw"])
    dy = rng.standard_normal(y.shape)
    dx = bwd(dy, cache)
    tx = torch.tensor(x, requires_grad=True)
    ty = tfn(tx, **cfg["kw"])
    ty.backward(torch.tensor(dy))
    _compare(torch, (y, dx), (ty, tx.grad), ("y", "dx"))


@pytest.mark.parametrize("cfg", MAX_POOL, ids=[f"m{i}" for i in range(len(MAX_POOL))])
def test_max_pool2d_random_shapes(cfg, rng, torch):
    _pool_case(torch, cfg, rng, F.max_pool2d_forward, F.max_pool2d_backward,
               torch.nn.functional.max_pool2d)


@pytest.mark.parametrize("cfg", AVG_POOL, ids=[f"a{i}" for i in range(len(AVG_POOL))])
def test_avg_pool2d_random_shapes(cfg, rng, torch):
    _pool_case(torch, cfg, rng, F.avg_pool2d_forward, F.avg_pool2d_backward,
               torch.nn.functional.avg_pool2d)


def test_the_sweep_reaches_the_hard_cases():
    """The seeds were not lucky: each sweep really mixes the options it claims to."""
    pads = [c["kw"]["padding"] for c in CONV]
    assert "same" in pads and "valid" in pads and any(isinstance(p, tuple) for p in pads)
    assert any(c["kw"]["padding"] == "same" and any(d * (k - 1) % 2 for k, d in
               zip(c["kernel"], c["kw"]["dilation"])) for c in CONV)  # asymmetric "same"
    assert any(c["kw"]["groups"] > 1 for c in CONV) and any(c["kw"]["dilation"] != (1, 1)
                                                             for c in CONV)
    assert any(c["kw"]["output_padding"] != (0, 0) for c in CONV_T)
    assert any(c["kw"]["groups"] > 1 for c in CONV_T)
    for sweep in (MAX_POOL, AVG_POOL):
        assert {c["kw"]["ceil_mode"] for c in sweep} == {True, False}
        assert any(c["kw"]["padding"] != (0, 0) for c in sweep)
        assert any(c["kw"]["stride"] is None for c in sweep)
        assert any(c["kw"]["stride"] is not None and any(
            st < k for st, k in zip(c["kw"]["stride"], c["kw"]["kernel_size"])) for c in sweep)
    assert any(c["kw"]["dilation"] != (1, 1) for c in MAX_POOL)
    assert {c["kw"]["count_include_pad"] for c in AVG_POOL} == {True, False}
