"""``Conv2d`` and ``ConvTranspose2d``: modules over the convolution kernels."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._checks import pair, positive_int
from ._util import accumulate, check_input, float_dtype
from .init import init_weight_and_bias
from .module import Module, Parameter

__all__ = ["Conv2d", "ConvTranspose2d"]


def _channels(op: str, in_channels, out_channels, groups) -> tuple[int, int, int]:
    cin = positive_int(op, "in_channels", in_channels)
    cout = positive_int(op, "out_channels", out_channels)
    g = positive_int(op, "groups", groups)
    if cin % g or cout % g:
        raise ValueError(f"{op}: in_channels and out_channels must be divisible by groups, "
                         f"got in_channels={cin}, out_channels={cout}, groups={g}")
    return cin, cout, g


class _ConvBase(Module):
    _op = ""

    def _hyper(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding!r}"
        if getattr(self, "output_padding", (0, 0)) != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s

    def extra_repr(self) -> str:
        return self._hyper()

    def backward(self, dy, cache, *, need_dx: bool = True):
        dx, dw, db = self._backward_kernel(dy, cache, need_dx=need_dx)
        accumulate(self.weight, dw)
        accumulate(self.bias, db)
        return dx


class Conv2d(_ConvBase):
    """2-D convolution (cross-correlation) ``y = x ⋆ w + b``, as ``torch.nn.Conv2d``.

    Args: x (N, in_channels, H, W) -> y (N, out_channels, Ho, Wo); weight
    (out_channels, in_channels/groups, KH, KW), bias (out_channels,). Zero padding: an int,
    a pair, or "valid" / "same" (stride 1; the odd extra pixel goes bottom/right, as PyTorch).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, *, init="torch",
                 rng: np.random.Generator | None = None, dtype=np.float32):
        super().__init__()
        op = "Conv2d"
        self.in_channels, self.out_channels, self.groups = _channels(
            op, in_channels, out_channels, groups)
        self.kernel_size = pair(op, "kernel_size", kernel_size)
        self.stride = pair(op, "stride", stride)
        self.dilation = pair(op, "dilation", dilation)
        if padding in ("valid", "same"):
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(f"{op}: padding='same' needs stride 1, got stride={self.stride}")
            self.padding = padding
        elif isinstance(padding, str):
            raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', "
                             f"got {padding!r}")
        else:
            self.padding = pair(op, "padding", padding, minimum=0)
        dt = float_dtype(op, dtype)
        w_shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        w, b = init_weight_and_bias(op, init, w_shape, self.out_channels if bias else None,
                                    rng, dt)
        self.weight = Parameter(w)
        self.bias = Parameter(b) if b is not None else None

    def forward(self, x, *, training: bool = False):
        check_input("Conv2d", x, (self.weight, self.bias))
        b = self.bias.value if self.bias is not None else None
        return F.conv2d_forward(x, self.weight.value, b, stride=self.stride,
                                padding=self.padding, dilation=self.dilation,
                                groups=self.groups)

    def _backward_kernel(self, dy, cache, need_dx):
        return F.conv2d_backward(dy, cache, need_dx=need_dx)


class ConvTranspose2d(_ConvBase):
    """Transposed 2-D convolution (the input gradient of ``Conv2d``), as
    ``torch.nn.ConvTranspose2d``.

    Args: x (N, in_channels, H, W) -> y (N, out_channels, Ho, Wo) with
    ``Ho = (H-1)*stride - 2*padding + dilation*(KH-1) + output_padding + 1``; weight
    (in_channels, out_channels/groups, KH, KW), bias (out_channels,).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1, *,
                 init="torch", rng: np.random.Generator | None = None, dtype=np.float32):
        super().__init__()
        op = "ConvTranspose2d"
        self.in_channels, self.out_channels, self.groups = _channels(
            op, in_channels, out_channels, groups)
        self.kernel_size = pair(op, "kernel_size", kernel_size)
        self.stride = pair(op, "stride", stride)
        self.padding = pair(op, "padding", padding, minimum=0)
        self.output_padding = pair(op, "output_padding", output_padding, minimum=0)
        self.dilation = pair(op, "dilation", dilation)
        for a in range(2):
            if self.output_padding[a] >= max(self.stride[a], self.dilation[a]):
                raise ValueError(f"{op}: output_padding must be smaller than stride or "
                                 f"dilation, got output_padding={self.output_padding}, "
                                 f"stride={self.stride}, dilation={self.dilation}")
        dt = float_dtype(op, dtype)
        w_shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        w, b = init_weight_and_bias(op, init, w_shape, self.out_channels if bias else None,
                                    rng, dt)
        self.weight = Parameter(w)
        self.bias = Parameter(b) if b is not None else None

    def forward(self, x, *, training: bool = False):
        check_input("ConvTranspose2d", x, (self.weight, self.bias))
        b = self.bias.value if self.bias is not None else None
        return F.conv_transpose2d_forward(x, self.weight.value, b, stride=self.stride,
                                          padding=self.padding,
                                          output_padding=self.output_padding,
                                          dilation=self.dilation, groups=self.groups)

    def _backward_kernel(self, dy, cache, need_dx):
        # dx and dw share one im2col of dy here, so skipping dx would save nothing
        return F.conv_transpose2d_backward(dy, cache)
