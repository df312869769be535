import numpy as np
import pytest

from convprop.layers import Conv2d


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning")
@pytest.mark.parametrize("padding, kernel, dilation", [("same", 3, 1), ("same", 4, 1),
                                                       ("same", (2, 5), 2), ("valid", 3, 1)])
def test_string_padding_matches_torch(torch, rng, padding, kernel, dilation):
    m = Conv2d(3, 4, kernel, padding=padding, dilation=dilation, rng=rng, dtype=np.float64)
    t = torch.nn.Conv2d(3, 4, kernel, padding=padding, dilation=dilation).double()
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(m.weight.value))
        t.bias.copy_(torch.from_numpy(m.bias.value))
    x = rng.standard_normal((2, 3, 9, 8))
    y, cache = m.forward(x, training=True)
    xt = torch.from_numpy(x).requires_grad_()
    yt = t(xt)
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-10)
    dy = rng.standard_normal(y.shape)
    dx = m.backward(dy, cache)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(m.weight.grad, t.weight.grad.numpy(), atol=1e-10)
    if padding == "same":
        assert y.shape[2:] == x.shape[2:]
    assert f"padding='{padding}'" in repr(m)


def test_string_padding_errors():
    with pytest.raises(ValueError, match="Conv2d: padding='same' needs stride 1"):
        Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="Conv2d: padding must be an int, a pair, 'valid' or"):
        Conv2d(1, 1, 3, padding="full")
