"""Max unpooling in 1, 2 and 3 dimensions through the kernel contract: loop oracle (the last
writer of a repeated index wins and alone gets the gradient), gradient check, hostile inputs
(indices included), dtypes, errors, PyTorch parity where no index repeats."""

import numpy as np
import pytest
from contract import Kernel, raises

import convprop.functional as F
from convprop import reference as R

OPS = {1: (F.max_unpool1d_forward, F.max_unpool1d_backward),
       2: (F.max_unpool2d_forward, F.max_unpool2d_backward),
       3: (F.max_unpool3d_forward, F.max_unpool3d_backward)}
POOL = {1: F.max_pool1d_forward, 2: F.max_pool2d_forward, 3: F.max_pool3d_forward}

# (the pooled input's shape, kernel, stride, padding, output_size for the unpooling)
CASES = [
    ((2, 3, 8), 2, 2, 0, None),                   # tiling: every index once
    ((2, 2, 9), 3, 1, 1, None),                   # overlapping windows: repeated indices
    ((1, 2, 7), 2, 2, 0, (7,)),                   # non-tiling: output_size restores L
    ((2, 2, 6, 8), 2, 2, 0, None),
    ((1, 2, 7, 7), 3, 2, 1, None),                # overlap and padding: repeats
    ((2, 1, 5, 7), (2, 3), 2, 0, (1, 1, 5, 7)),   # output_size as (N, C, H, W)
    ((1, 2, 4, 4, 4), 2, 2, 0, None),
    ((1, 2, 5, 5, 5), 3, 2, 1, None),             # repeats in 3-D
    ((2, 1, 3, 4, 5), (1, 2, 2), (1, 2, 2), 0, (3, 4, 5)),
]
IDS = [f"{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}-out{c[4]}" for c in CASES]


def _make(rng, shape, k, s, p, out, dtype=np.float64):
    """Values and max pooling's indices for them, and the unpooling's arguments."""
    nd = len(shape) - 2
    _, cache = POOL[nd](rng.standard_normal(shape), kernel_size=k, stride=s, padding=p)
    x = rng.standard_normal(cache.indices.shape).astype(dtype)
    kw = dict(kernel_size=k, stride=s, padding=p, output_size=out)
    out_sp = (R.unpool_size(x.shape[2:], k, s, p) if out is None else tuple(out)[-nd:])
    return x, cache.indices, kw, out_sp


def _kernel(nd, kw):
    return Kernel.of(*OPS[nd], **kw)


def _has_repeats(idx):
    n, c = idx.shape[:2]
    flat = idx.reshape(n, c, -1)
    return any(len(set(flat[i, j].tolist())) < flat.shape[2] for i in range(n) for j in range(c))


@pytest.mark.parametrize("shape,k,s,p,out", CASES, ids=IDS)
def test_forward_and_backward_match_loop(shape, k, s, p, out, rng):
    x, idx, kw, out_sp = _make(rng, shape, k, s, p, out)
    ry, won = R.max_unpool(x, idx, out_sp)
    _kernel(len(shape) - 2, kw).check_forward([x, idx], lambda x, i: ry, rtol=0, atol=0)
    y, cache = OPS[len(shape) - 2][0](x, idx, **kw)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(OPS[len(shape) - 2][1](dy, cache),
                                  R.max_unpool_backward(dy, idx, won))


def test_the_grid_has_repeated_indices(rng):
    repeats = [_has_repeats(_make(rng, *c)[1]) for c in CASES]
    assert any(repeats) and not all(repeats)


@pytest.mark.parametrize("shape,k,s,p,out", CASES, ids=IDS)
def test_gradcheck(shape, k, s, p, out, rng):
    x, idx, kw, _ = _make(rng, shape, k, s, p, out)
    _kernel(len(shape) - 2, kw).check_gradient([x, idx], rng)


def test_repeated_index_last_writer_wins_and_alone_gets_the_gradient():
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    idx = np.array([[[1, 1, 3, 1]]])
    y, cache = F.max_unpool1d_forward(x, idx, kernel_size=2, stride=1)
    np.testing.assert_array_equal(y, [[[0.0, 4.0, 0.0, 3.0, 0.0]]])
    dx = F.max_unpool1d_backward(np.array([[[10.0, 20.0, 30.0, 40.0, 50.0]]]), cache)
    np.testing.assert_array_equal(dx, [[[0.0, 0.0, 40.0, 20.0]]])


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_unpool_of_pool_puts_each_maximum_back(nd, rng):
    x = np.abs(rng.standard_normal((2, 3, *(4, 6, 4)[:nd]))) + 0.1  # > the zeros put back
    y, cache = POOL[nd](x, kernel_size=2)
    u, _ = OPS[nd][0](y, cache.indices, kernel_size=2)
    kept = u != 0
    np.testing.assert_array_equal(u[kept], x[kept])
    assert kept.sum() == y.size
    np.testing.assert_array_equal(POOL[nd](u, kernel_size=2)[0], y)  # the maxima survive


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_hostile_inputs(nd, dtype, rng):
    shape, k, s, p, out = [c for c in CASES if len(c[0]) == nd + 2][1]
    x, idx, kw, _ = _make(rng, shape, k, s, p, out)
    kernel = _kernel(nd, kw)
    kernel.check_dtypes([x, idx], rng, dtypes=(dtype,), rtol=1e-6, atol=1e-6)
    kernel.check_hostile([x.astype(dtype), idx], rng)


@pytest.mark.parametrize("itype", [np.int32, np.uint8, np.int64])
def test_any_integer_indices(itype, rng):
    x, idx, kw, _ = _make(rng, *CASES[4])
    want = F.max_unpool2d_forward(x, idx, **kw)[0]
    np.testing.assert_array_equal(F.max_unpool2d_forward(x, idx.astype(itype), **kw)[0], want)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_errors(nd):
    op = f"max_unpool{nd}d"
    fwd = OPS[nd][0]
    sp = (3,) * nd
    x, idx = np.zeros((1, 2, *sp)), np.zeros((1, 2, *sp), np.int64)
    for exc, match, args, kw in [
        (ValueError, f"x must be {nd + 2}-D", (np.zeros((2, *sp)), idx), {}),
        (TypeError, "indices must be an integer numpy.ndarray", (x, x), {}),
        (TypeError, "indices must be an integer numpy.ndarray", (x, idx.tolist()), {}),
        (ValueError, "indices must have shape", (x, idx[:, :1]), {}),
        (ValueError, r"indices must lie in \[0, ", (x, idx - 1), {}),
        (ValueError, r"indices must lie in \[0, ", (x, idx + 6 ** nd), {}),
        (ValueError, "output_size .* is invalid", (x, idx), dict(output_size=(2,) * nd)),
        (ValueError, f"output_size must have {nd} or {nd + 2} entries", (x, idx),
         dict(output_size=(6,) * (nd + 1))),
        (TypeError, "output_size must be a tuple of ints", (x, idx), dict(output_size=6)),
        (ValueError, "padding must be at most half", (x, idx), dict(padding=2)),
        (ValueError, "output size must be positive", (x[..., :1], idx[..., :1]),
         dict(padding=1)),
    ]:
        with raises(op, match, exc):
            fwd(*args, **{"kernel_size": 2, **kw})
    Kernel.of(*OPS[nd], kernel_size=2).check_type_errors([x, idx])
    Kernel.of(*OPS[nd], kernel_size=2).check_dy_errors([x, idx])


@pytest.mark.parametrize("shape,k,s,p,out", [c for c in CASES], ids=IDS)
def test_torch_parity_without_repeats(shape, k, s, p, out, rng, torch):
    """PyTorch agrees on the forward always, and on the gradient where no index repeats
    (its backward gives every repeat the gradient; ours only the winner)."""
    nd = len(shape) - 2
    x, idx, kw, _ = _make(rng, shape, k, s, p, out)
    (y,), (dx,), dy = _kernel(nd, kw).run([x, idx], rng=rng)
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn.functional, f"max_unpool{nd}d")(tx, torch.tensor(idx), k, s, p,
                                                          output_size=out)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-12)
    if not _has_repeats(idx):
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=0, atol=1e-12)
