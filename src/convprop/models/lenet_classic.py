"""LeNet-5 as published (LeCun, Bottou, Bengio, Haffner 1998, "Gradient-based learning applied
to document recognition", Proc. IEEE 86(11), section II.B and appendix A).

    input 1@32x32 -> C1 6@5x5 -> f -> S2 -> f -> C3 16@5x5 (Table I) -> f -> S4 -> f
    -> C5 120@5x5 -> f -> F6 84 -> f -> RBF 10 (fixed +1/-1 7x12 codes)

with ``f(a) = 1.7159 tanh(2a/3)`` after every layer up to F6 (the paper: "units in layers up
to F6 compute a dot product ... passed through a sigmoid squashing function"). The output is
the 10 RBF penalties (smaller is better): the model's ``criterion()`` is
:class:`~convprop.layers.lenet_classic.RBFLoss` (eq. 9), whose ``classify`` is the argmin
(:func:`~convprop.layers.lenet_classic.rbf_predict`), and which ``fit``, ``evaluate``,
``predict`` and ``convprop train --model lenet5_classic`` use (see
:func:`convprop.layers.loss.criterion_for`).
"""

from __future__ import annotations

import numpy as np

from .._checks import positive_int
from ..layers import Conv2d, Flatten, Linear, Sequential
from ..layers.lenet_classic import (EuclideanRBF, MaskedConv2d, RBFLoss, ScaledTanh,
                                    Subsampling2d, digit_codes, rbf_predict)
from ..layers.pad import ConstantPad

__all__ = ["LeNet5Classic", "lenet5_classic", "mnist_to_lenet_input"]

#: The paper's input scaling: background (white, 0) -> -0.1, foreground (black, 255) -> 1.175.
BACKGROUND, FOREGROUND = -0.1, 1.175


class LeNet5Classic(Sequential):
    """The ``Sequential`` of :func:`lenet5_classic`. It checks its input shape up front (a
    wrong size would otherwise fail deep inside C5) and tells its users how to read and train
    it: :meth:`criterion` (eq. 9's :class:`~convprop.layers.lenet_classic.RBFLoss`, whose
    ``classify`` is the argmin of the penalties) and :meth:`input_normalization` (the paper's
    input scaling as a per-channel mean and std), which ``convprop train`` uses in place of
    the data's statistics."""

    def forward(self, x, *, training: bool = False):
        cin, size = self.in_channels, self.input_size
        if getattr(x, "ndim", None) != 4 or x.shape[1:] != (cin, size, size):
            hint = (" (or build with input_size=28, which pads to 32x32 with the background "
                    "value)" if size == 32 else "")
            raise ValueError(f"lenet5_classic: expected input of shape (N, {cin}, {size}, "
                             f"{size}): in_channels={cin}, input_size={size}{hint}, got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        return super().forward(x, training=training)

    def classify(self, x) -> np.ndarray:
        """Predicted classes (N,): the RBF unit with the smallest penalty."""
        return rbf_predict(self.predict(x))

    def criterion(self) -> RBFLoss:
        """The paper's training criterion, eq. 9 with j = 1 (the paper leaves j's value
        unstated); its ``classify`` is the argmin and its ``probabilities`` ``softmax(-y)``."""
        return RBFLoss(j=1.0)

    def input_normalization(self) -> tuple[list, list]:
        """``(mean, std)`` per channel, on the [0, 1] pixel scale, that map pixel value 0
        (MNIST's background) to -0.1 and 255 (ink) to 1.175, the paper's scaling (section
        II.B): ``(p/255 - mean) / std`` with ``std = 1/1.275``, ``mean = 0.1 * std``. With it
        the pad value of an ``input_size`` < 32 model is the background."""
        std = 1.0 / (FOREGROUND - BACKGROUND)
        mean = -BACKGROUND * std
        return [mean] * self.in_channels, [std] * self.in_channels


def _lecun_uniform(module, rng: np.random.Generator) -> None:
    """Appendix A: weights (and biases) uniform in +-2.4 / F_i, F_i the unit's fan-in."""
    w = module.weight.value
    fan_in = int(np.prod(w.shape[1:]))
    bound = 2.4 / fan_in
    module.weight.value = rng.uniform(-bound, bound, w.shape).astype(w.dtype)
    module.bias.value = rng.uniform(-bound, bound, module.bias.value.shape).astype(w.dtype)


def lenet5_classic(*, in_channels: int = 1, num_classes: int = 10, input_size: int = 32,
                   c5_channels: int = 120, f6_features: int = 84, codes=None,
                   rng: np.random.Generator | None = None, dtype=np.float32) -> LeNet5Classic:
    """LeNet-5 with the paper's trainable subsampling, C3 connection table, scaled tanh and
    Euclidean RBF output. x (N, in_channels, input_size, input_size) -> RBF penalties
    (N, num_classes), smaller is better.

    Args:
        in_channels: input maps (1 for MNIST).
        num_classes: output units; 10 with the default codes.
        input_size: 32, the paper's input (C5's 5x5 window then covers all of S4). A smaller
            size (28 for MNIST's digits, as ``convprop train`` passes) puts a
            :class:`~convprop.layers.ConstantPad` first that centres the image in 32x32 with
            the paper's background value -0.1, as the paper centres the 28x28 field in its
            32x32 input; that value is the background only for inputs scaled the paper's way
            (:meth:`LeNet5Classic.input_normalization`, which ``convprop train`` applies).
            The first layer is then index 1 (state_dict keys shift by one).
        c5_channels, f6_features: 120 and 84 in the paper; smaller values give a tiny model for
            tests (``f6_features`` other than 84 needs ``codes``).
        codes: (num_classes, f6_features) fixed RBF codes; default the (10, 84) +1/-1 7x12
            digit bitmaps of :func:`~convprop.layers.lenet_classic.digit_codes` (a stand-in
            drawn for convprop; the paper's own bitmaps were not available).
        rng: draws every initial weight, uniform in +-2.4/F_i (F_i the fan-in, appendix A).
    """
    op = "lenet5_classic"
    in_channels = positive_int(op, "in_channels", in_channels)
    num_classes = positive_int(op, "num_classes", num_classes)
    c5_channels = positive_int(op, "c5_channels", c5_channels)
    f6_features = positive_int(op, "f6_features", f6_features)
    if type(input_size) is not int or not 5 <= input_size <= 32:
        raise ValueError(f"{op}: input_size must be an int in [5, 32] (32: the paper's input, "
                         f"C5 then sees S4's whole 5x5 maps; smaller sizes are padded to 32 "
                         f"with the background value), got {input_size!r}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"{op}: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    rng = np.random.default_rng() if rng is None else rng
    if codes is None:
        if (num_classes, f6_features) != (10, 84):
            raise ValueError(f"{op}: the default codes are the 10 digit bitmaps of 7x12 = 84; "
                             f"pass codes of shape ({num_classes}, {f6_features}) for "
                             f"num_classes={num_classes}, f6_features={f6_features}")
        codes = digit_codes(dtype)
    codes = np.asarray(codes)
    if codes.shape != (num_classes, f6_features):
        raise ValueError(f"{op}: codes must have shape (num_classes, f6_features) = "
                         f"{(num_classes, f6_features)}, got {codes.shape}")
    kw = {"rng": rng, "dtype": dtype}
    c1 = Conv2d(in_channels, 6, 5, **kw)
    c5 = Conv2d(16, c5_channels, 5, **kw)
    f6 = Linear(c5_channels, f6_features, **kw)
    for m in (c1, c5, f6):
        _lecun_uniform(m, rng)
    pad = []
    if input_size < 32:
        before = (32 - input_size) // 2
        after = 32 - input_size - before
        pad = [ConstantPad((before, before), (after, after), value=BACKGROUND)]
    model = LeNet5Classic(
        *pad,
        c1, ScaledTanh(),                                   # C1: 6@28x28
        Subsampling2d(6, **kw), ScaledTanh(),               # S2: 6@14x14
        MaskedConv2d(6, 16, 5, **kw), ScaledTanh(),         # C3: 16@10x10, Table I
        Subsampling2d(16, **kw), ScaledTanh(),              # S4: 16@5x5
        c5, ScaledTanh(), Flatten(),                        # C5: 120@1x1
        f6, ScaledTanh(),                                   # F6: 84
        EuclideanRBF(codes, dtype=dtype))                   # output: 10 RBF penalties
    model.in_channels, model.input_size = in_channels, input_size
    return model


def mnist_to_lenet_input(images: np.ndarray, dtype=np.float32) -> np.ndarray:
    """uint8 MNIST images (N, 1, 28, 28) -> the paper's input (N, 1, 32, 32): a 2-pixel
    background border (the paper centres the 28x28 field in a 32x32 one) and the linear map
    0 -> -0.1 (background), 255 -> 1.175 (foreground)."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[2:] != (28, 28):
        raise ValueError(f"mnist_to_lenet_input: expected uint8 images (N, C, 28, 28), got "
                         f"shape {images.shape}, dtype {images.dtype}")
    x = images.astype(dtype) * dtype(FOREGROUND - BACKGROUND) / dtype(255) + dtype(BACKGROUND)
    return np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=dtype(BACKGROUND))
