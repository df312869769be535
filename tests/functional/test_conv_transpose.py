"""conv_transpose1d / 2d / 3d through the kernel contract (loop oracle, gradient check,
PyTorch parity, hostile inputs, dtypes, errors) and the adjoint identity with convolution."""

import numpy as np
import pytest
from contract import Kernel, arrays, ntuple, on_zeros, raises

import convprop.functional as F
import convprop.functional._engine.correlate as conv_mod
import convprop.functional._engine.slide as slide_mod
from convprop import reference as R

OPS = {1: (F.conv_transpose1d_forward, F.conv_transpose1d_backward),
       2: (F.conv_transpose2d_forward, F.conv_transpose2d_backward),
       3: (F.conv_transpose3d_forward, F.conv_transpose3d_backward)}
CONV = {1: F.conv1d_forward, 2: F.conv2d_forward, 3: F.conv3d_forward}


def case(n, c, sp, c_out, k, s=1, p=0, op=0, d=1, g=1):
    """x (n, c, *sp) and w (c, c_out/g, *k) with conv_transpose{len(sp)}d's arguments."""
    return dict(x=(n, c, *sp), w=(c, c_out // g, *ntuple(k, len(sp))),
                kw=dict(stride=s, padding=p, output_padding=op, dilation=d, groups=g))


CASES = {
    1: {
        "s1_p1": case(2, 3, (5,), 4, 3, p=1),
        "s2_k4_p1": case(2, 3, (4,), 2, 4, s=2, p=1),
        "s2_outpad": case(2, 2, (3,), 3, 3, s=2, p=1, op=1),
        "stride_gt_kernel": case(2, 2, (3,), 2, 2, s=3, op=2),
        "kernel1_stride2": case(1, 2, (3,), 2, 1, s=2, op=1),
        "dilation_outpad": case(2, 2, (4,), 2, 3, op=2, d=3),
        "groups2": case(2, 4, (4,), 6, 3, s=2, p=1, op=1, g=2),
        "depthwise": case(2, 3, (3,), 3, 3, p=1, g=3),
        "batch1_channel1": case(1, 1, (3,), 1, 3, s=2),
        "big_padding": case(1, 2, (5,), 2, 3, p=2),
    },
    2: {
        "s1_p1": case(2, 3, (4, 5), 4, 3, p=1),
        "s2_k4_p1": case(2, 3, (4, 3), 2, 4, s=2, p=1),
        "s2_outpad": case(2, 2, (3, 4), 3, 3, s=2, p=1, op=1),
        "stride_gt_kernel": case(2, 2, (3, 3), 2, 2, s=3, op=2),
        "s2_k5_small_in": case(2, 2, (3, 2), 2, 5, s=2, p=1),
        "kernel1": case(2, 3, (4, 4), 2, 1),
        "kernel1_stride2": case(1, 2, (3, 3), 2, 1, s=2, op=1),
        "dilation_outpad": case(2, 2, (3, 4), 2, 3, op=2, d=3),
        "dilation_outpad_wide": case(2, 2, (4, 8), 3, 2, op=1, d=2),
        "groups2": case(2, 4, (3, 4), 6, 3, s=2, p=1, op=1, g=2),
        "depthwise": case(2, 3, (4, 3), 3, 3, p=1, g=3),
        "batch1_channel1": case(1, 1, (3, 3), 1, 3, s=2),
        "non_square_all": case(2, 2, (3, 4), 3, (3, 2), s=(2, 3), p=(1, 0), op=(1, 2),
                               d=(2, 1)),
        "big_padding": case(1, 2, (5, 5), 2, 3, p=2),
    },
    3: {
        "s1_p1": case(1, 2, (3, 4, 3), 3, 3, p=1),
        "s2_k3_outpad": case(2, 2, (2, 3, 2), 2, 3, s=2, p=1, op=1),
        "stride_gt_kernel": case(1, 2, (2, 2, 3), 2, 2, s=3, op=2),
        "kernel1_stride2": case(1, 2, (2, 3, 2), 2, 1, s=2, op=1),
        "dilation_outpad": case(1, 2, (2, 3, 2), 2, 2, op=1, d=2),
        "groups2": case(1, 4, (2, 3, 2), 4, 2, s=2, p=1, op=1, g=2),
        "batch1_channel1": case(1, 1, (2, 3, 3), 1, 3, s=2),
        "non_cubic_all": case(2, 2, (2, 3, 4), 3, (3, 1, 2), s=(2, 1, 3), p=(1, 0, 0),
                              op=(1, 0, 2), d=(1, 2, 1)),
        "depth1": case(2, 2, (1, 3, 3), 2, (1, 3, 3), s=(1, 2, 2), p=(0, 1, 1), op=(0, 1, 1)),
    },
}
ALL = [(nd, name) for nd in CASES for name in CASES[nd]]
IDS = [f"{nd}d-{name}" for nd, name in ALL]
#: The engine path of the underlying correlations: None = the engine's choice (3-D: depth
#: slides where they apply), "block" = one block, "bands" = one output row per band
PATHS = {1: [None, "bands"], 2: [None, "bands"], 3: [None, "block", "bands"]}
ON_PATHS = [(nd, name, path) for nd, name in ALL for path in PATHS[nd]]
on_paths = pytest.mark.parametrize("nd,name,path", ON_PATHS,
                                   ids=[f"{nd}d-{name}-{path}" for nd, name, path in ON_PATHS])


def _path(monkeypatch, path):
    if path is None:
        return
    monkeypatch.setattr(slide_mod, "SLIDE_MAX_BYTES", -1)
    if path == "bands":
        monkeypatch.setattr(conv_mod, "BAND_ABOVE", 0)
        monkeypatch.setattr(conv_mod, "BAND_BYTES", 1)


def _make(rng, nd, name, dtype=np.float64, bias=True):
    c = CASES[nd][name]
    c_out = c["w"][1] * c["kw"]["groups"]
    x, w, b = arrays(rng, c["x"], c["w"], (c_out,) if bias else None, dtype=dtype)
    return [x, w, b], c["kw"]


def _kernel(nd, kw, **more):
    return Kernel.of(*OPS[nd], names=("x", "w", "b"), **kw, **more)


@on_paths
def test_forward_matches_loop(nd, name, path, rng, monkeypatch):
    inputs, kw = _make(rng, nd, name)
    _path(monkeypatch, path)
    _kernel(nd, kw).check_forward(inputs, lambda x, w, b: R.conv_transpose(x, w, b, **kw))


@on_paths
def test_backward_gradcheck(nd, name, path, rng, monkeypatch):
    inputs, kw = _make(rng, nd, name)
    _path(monkeypatch, path)
    _kernel(nd, kw).check_gradient(inputs, rng)


@pytest.mark.parametrize("nd,name", ALL, ids=IDS)
def test_adjoint_of_conv(nd, name, rng):
    """<conv(u, w), v> == <u, conv_transpose(v, w)> for the same w and geometry."""
    (x, w, _), kw = _make(rng, nd, name)
    conv_kw = {k: kw[k] for k in ("stride", "padding", "dilation", "groups")}
    y, _ = OPS[nd][0](x, w, None, **kw)
    u = rng.standard_normal(y.shape)
    cu, _ = CONV[nd](u, w, None, **conv_kw)
    # the convolution sees output_padding // stride extra elements per axis that the
    # transpose never fills
    lhs = np.sum(cu[(Ellipsis, *(slice(0, s) for s in x.shape[2:]))] * x)
    rhs = np.sum(u * y)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_backward_without_bias(nd, rng):
    (x, w, _), kw = _make(rng, nd, "groups2", bias=False)
    y, cache = OPS[nd][0](x, w, None, **kw)
    assert OPS[nd][1](rng.standard_normal(y.shape), cache)[2] is None
    _kernel(nd, kw).check_gradient([x, w, None], rng)


@on_paths
def test_torch_parity_float64(nd, name, path, rng, torch, monkeypatch):
    inputs, kw = _make(rng, nd, name)
    _path(monkeypatch, path)
    (y,), grads, dy = _kernel(nd, kw).run(inputs, rng=rng)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in inputs)
    ty = getattr(torch.nn.functional, f"conv_transpose{nd}d")(tx, tw, tb, **kw)
    ty.backward(torch.tensor(dy))
    for ours, theirs in zip((y, *grads), (ty.detach(), tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-10)


HOSTILE_CASES = [(1, "groups2"), (2, "s2_k4_p1"), (2, "kernel1"), (2, "groups2"),
                 (3, "non_cubic_all")]


@pytest.mark.parametrize("nd,name", HOSTILE_CASES, ids=[f"{n}d-{c}" for n, c in HOSTILE_CASES])
def test_hostile_inputs_give_same_result_and_stay_untouched(nd, name, rng):
    inputs, kw = _make(rng, nd, name)
    _kernel(nd, kw).check_hostile(inputs, rng, rtol=1e-13, atol=1e-13)  # GEMM rounding


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_dtype_is_kept(nd, dtype, rng):
    inputs, kw = _make(rng, nd, "groups2")
    _kernel(nd, kw).check_dtypes(inputs, rng, dtypes=(dtype,))


def _call(nd, x=None, w=None, b=(2,), **kw):
    """conv_transpose{nd}d_forward on zeros (default x (2, 3, 4, ...), w (3, 2, 3, ...))."""
    x = (2, 3, *(4,) * nd) if x is None else x
    w = (3, 2, *(3,) * nd) if w is None else w
    return on_zeros(OPS[nd][0], [x, w, b], **kw)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_errors(nd):
    op, sp = f"conv_transpose{nd}d", (4,) * nd
    for kw, match in [
        (dict(x=(3, *sp)), f"x must be {nd + 2}-D"),
        (dict(w=(3, 2, *(3,) * (nd - 1))), f"w must be {nd + 2}-D"),
        (dict(x=(2, 4, *sp)), "x has 4 channels but w expects 3"),
        (dict(groups=2, b=(4,)), "groups=2 must divide C_in=3"),
        (dict(b=(3,)), r"b must have shape \(2,\)"),
        (dict(stride=2, output_padding=2), "output_padding must be smaller than stride or "
                                           "dilation"),
        (dict(output_padding=1), "output_padding must be smaller"),
        (dict(x=(2, 3, *(1,) * nd), padding=2), "output size must be positive"),
        (dict(padding=-1), "padding must be >= 0"),
        (dict(stride=0), "stride must be >= 1"),
        (dict(w=(3, 0, *(3,) * nd)), "all sizes must be positive"),
        (dict(mode="true"), r"mode must be one of \['cross-correlation', 'convolution'\]"),
    ]:
        with raises(op, match):
            _call(nd, **kw)
    with raises(op, "padding must be an int or", TypeError):
        _call(nd, padding="same")  # as PyTorch: no "same" for a transposed convolution


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_type_and_backward_errors(nd, rng):
    inputs, kw = _make(rng, nd, "s1_p1")
    _kernel(nd, kw).check_type_errors(inputs)
    _kernel(nd, kw).check_dy_errors(inputs)
