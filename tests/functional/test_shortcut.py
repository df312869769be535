"""pad_shortcut (ResNet option A): loop reference, gradcheck, adjointness, hostile input,
dtype, errors, PyTorch parity."""

import numpy as np
import pytest
from contract import Kernel, raises
from helpers import hostile

from convprop.functional import pad_shortcut_backward, pad_shortcut_forward
from convprop.reference import pad_shortcut

CASES = [  # N, C, H, W, out_channels, stride
    (2, 3, 5, 4, 8, 2),    # odd padding (5 extra: 2 before, 3 after), odd H
    (2, 4, 6, 6, 8, 2),    # the CIFAR case: channels doubled, spatial halved
    (1, 2, 7, 5, 5, 3),    # stride 3, non-tiling
    (1, 3, 2, 2, 4, 4),    # stride larger than the input: one sample
    (3, 1, 1, 1, 2, 2),    # 1x1 input, channel 1
    (1, 2, 3, 4, 2, 1),    # identity (no padding, stride 1)
]


@pytest.mark.parametrize("n,c,h,w,oc,s", CASES)
def test_forward_matches_loop(rng, n, c, h, w, oc, s):
    kernel = Kernel.of(pad_shortcut_forward, pad_shortcut_backward, out_channels=oc, stride=s)
    kernel.check_forward([rng.standard_normal((n, c, h, w))],
                         lambda x: pad_shortcut(x, oc, s), rtol=0, atol=0)


@pytest.mark.parametrize("n,c,h,w,oc,s", CASES)
def test_backward_gradcheck_and_adjoint(rng, n, c, h, w, oc, s):
    x = rng.standard_normal((n, c, h, w))
    Kernel.of(pad_shortcut_forward, pad_shortcut_backward, out_channels=oc,
              stride=s).check_gradient([x], rng)
    y, cache = pad_shortcut_forward(x, out_channels=oc, stride=s)
    dy = rng.standard_normal(y.shape)
    dx = pad_shortcut_backward(hostile(dy), cache)
    assert abs(np.sum(y * dy) - np.sum(x * dx)) < 1e-12 * max(1.0, np.abs(y * dy).sum())
    skipped = np.ones(x.shape, bool)
    skipped[:, :, ::s, ::s] = False
    assert np.all(dx[skipped] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_no_writes(rng, dtype):
    kernel = Kernel.of(pad_shortcut_forward, pad_shortcut_backward, out_channels=6, stride=2)
    x = rng.standard_normal((2, 3, 5, 5))
    kernel.check_dtypes([x], rng, dtypes=(dtype,), rtol=1e-6, atol=1e-6)
    kernel.check_hostile([x.astype(dtype)], rng)
    xh = hostile(x.astype(dtype))
    y, _ = pad_shortcut_forward(xh, out_channels=6, stride=2)
    assert y.flags.writeable
    y[:] = 1.0  # the output owns its memory
    np.testing.assert_array_equal(xh, x.astype(dtype))


def test_errors(rng):
    x = rng.standard_normal((2, 4, 4, 4))
    with raises("pad_shortcut", r"x must be 4-D.*got shape \(4, 4, 4\)"):
        pad_shortcut_forward(x[0], out_channels=8)
    kernel = Kernel.of(pad_shortcut_forward, pad_shortcut_backward, out_channels=8)
    kernel.check_type_errors([x])
    kernel.check_dy_errors([x])
    with raises("pad_shortcut", "out_channels must be >= the input's 4 channels, got 3"):
        pad_shortcut_forward(x, out_channels=3)
    with raises("pad_shortcut", "stride must be >= 1, got 0"):
        pad_shortcut_forward(x, out_channels=8, stride=0)
    with raises("pad_shortcut", "stride must be an int", TypeError):
        pad_shortcut_forward(x, out_channels=8, stride=1.5)
    y, cache = pad_shortcut_forward(x, out_channels=8)
    with pytest.raises(ValueError, match=r"^pad_shortcut_backward: dy must have shape "
                                         r"\(2, 8, 2, 2\).*got \(2, 4, 2, 2\)"):
        pad_shortcut_backward(np.zeros((2, 4, 2, 2)), cache)
    with raises("pad_shortcut_backward", "dy must be float32 or float64", TypeError):
        pad_shortcut_backward(np.zeros(y.shape, np.int32), cache)


@pytest.mark.parametrize("n,c,h,w,oc,s", CASES)
def test_torch_parity(torch, rng, n, c, h, w, oc, s):
    x = rng.standard_normal((n, c, h, w))
    y, cache = pad_shortcut_forward(x, out_channels=oc, stride=s)
    dy = rng.standard_normal(y.shape)
    xt = torch.from_numpy(x).requires_grad_(True)
    extra = oc - c
    yt = torch.nn.functional.pad(xt[:, :, ::s, ::s], (0, 0, 0, 0, extra // 2, extra - extra // 2))
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(pad_shortcut_backward(dy, cache), xt.grad.numpy(), rtol=0,
                               atol=1e-10)
