"""The model zoo written again in PyTorch, from the architecture descriptions (not from
convprop's code), with module names chosen so that ``state_dict`` keys equal convprop's.

This is the one PyTorch reference: ``tests/models/test_zoo_parity.py`` checks it against
``convprop.models`` (forward, every gradient, SGD steps), and the benchmarks and
``benchmarks/train_torch.py`` build their PyTorch models from it (``from twins import
torch_zoo`` with the repository root on ``sys.path``). Feature sizes are computed
by hand (the output-size formula), so a convprop builder that sizes its classifier wrongly
fails the parity test. Imports nothing from convprop (it is an independent reference).
"""

import torch
from torch import nn
from torch.nn import functional as tF


def out_size(n, k, s=1, p=0):
    return (n + 2 * p - k) // s + 1


class Residual(nn.Module):
    """y = body(x) + shortcut(x); children "body" and "shortcut"."""

    def __init__(self, body, shortcut):
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class Concat(nn.Module):
    """Branches "0".."k" on the same input, concatenated along channels."""

    def __init__(self, *branches):
        super().__init__()
        for i, b in enumerate(branches):
            self.add_module(str(i), b)

    def forward(self, x):
        return torch.cat([b(x) for b in self.children()], dim=1)


class PadShortcut(nn.Module):
    """Option A (the usual PyTorch CIFAR ResNet lambda): subsample, zero-pad channels."""

    def __init__(self, out_channels, stride):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x):
        extra = self.out_channels - x.shape[1]
        xs = x[:, :, ::self.stride, ::self.stride]
        return tF.pad(xs, (0, 0, 0, 0, extra // 2, extra - extra // 2))


class GlobalAvgPool(nn.Module):
    def forward(self, x):
        return x.mean(dim=tuple(range(2, x.dim())))


class MaskDropout(nn.Module):
    """Inverted dropout with the keep-mask given from outside (convprop's, from its cache),
    so training-mode parity holds with p > 0. Identity in eval mode or when p == 0."""

    def __init__(self, p):
        super().__init__()
        self.p, self.mask = p, None

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        if self.mask is None:
            raise RuntimeError("MaskDropout: set .mask before a training forward with p > 0")
        return x * self.mask / (1 - self.p)


def lenet5(in_channels=1, num_classes=10, input_size=28):
    s = out_size(out_size(out_size(input_size, 5, 1, 2), 2, 2), 5)
    s = out_size(s, 2, 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * s * s, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes))


class ScaledTanh(nn.Module):
    """LeNet-5's squashing function 1.7159 tanh(2a/3) (LeCun et al. 1998, appendix A)."""

    def forward(self, x):
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class Subsampling(nn.Module):
    """S2/S4: per map, coefficient * (sum of each 2x2 block) + bias (parameters "weight",
    "bias" of shape (C,)); the block sums as a depthwise stride-2 convolution with ones."""

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), 0.25))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        c = x.shape[1]
        s = tF.conv2d(x, torch.ones(c, 1, 2, 2, dtype=x.dtype), stride=2, groups=c)
        return s * self.weight[:, None, None] + self.bias[:, None, None]


def lenet5_c3_table():
    """Table I of the paper as a (6, 16) 0/1 tensor, [i, k] = 1 when C3 map k reads S2 map i:
    maps 0-5 read 3 contiguous S2 maps (cyclically, starting at k), 6-11 4 contiguous ones
    (starting at k - 6), 12-14 {0,1,3,4}, {1,2,4,5}, {0,2,3,5}, and 15 all six."""
    cols = [{(k + d) % 6 for d in range(3)} for k in range(6)]
    cols += [{(k + d) % 6 for d in range(4)} for k in range(6)]
    cols += [{0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5}, set(range(6))]
    return torch.tensor([[float(i in col) for col in cols] for i in range(6)])


class MaskedConv(nn.Module):
    """C3: a 5x5 convolution of ``weight * mask`` (the buffer "mask" (16, 6, 5, 5) from the
    connection table), so autograd masks the weight gradient too."""

    def __init__(self, table, k=5):
        super().__init__()
        cin, cout = table.shape
        mask = table.t()[:, :, None, None].expand(cout, cin, k, k).contiguous()
        self.register_buffer("mask", mask)
        conv = nn.Conv2d(cin, cout, k)
        with torch.no_grad():
            self.weight = nn.Parameter(conv.weight * mask)
        self.bias = nn.Parameter(conv.bias.detach().clone())

    def forward(self, x):
        return tF.conv2d(x, self.weight * self.mask, self.bias)


#: the digits as +1/-1 7x12 bitmaps, the stand-in for the paper's Fig. 3 codes that convprop
#: draws (the paper's own were not published as numbers); '#' = +1, rows of 7 separated by
#: '|'; the 12th row, blank in every digit, follows the last '|'
DIGITS_7X12 = [
    ".......|..###..|.#...#.|#.....#|#.....#|#.....#|#.....#|#.....#|#.....#|.#...#.|..###..|",
    ".......|...#...|..##...|.#.#...|...#...|...#...|...#...|...#...|...#...|...#...|.#####.|",
    ".......|.#####.|#.....#|......#|......#|.....#.|....#..|...#...|..#....|.#.....|#######|",
    ".......|.#####.|#.....#|......#|......#|..####.|......#|......#|......#|#.....#|.#####.|",
    ".......|.....#.|....##.|...#.#.|..#..#.|.#...#.|#....#.|#######|.....#.|.....#.|.....#.|",
    ".......|#######|#......|#......|#......|######.|......#|......#|......#|#.....#|.#####.|",
    ".......|..####.|.#.....|#......|#......|######.|#.....#|#.....#|#.....#|#.....#|.#####.|",
    ".......|#######|......#|.....#.|.....#.|....#..|....#..|...#...|...#...|..#....|..#....|",
    ".......|.#####.|#.....#|#.....#|#.....#|.#####.|#.....#|#.....#|#.....#|#.....#|.#####.|",
    ".......|.#####.|#.....#|#.....#|#.....#|#.....#|.######|......#|......#|.....#.|.####..|",
]


class EuclideanRBF(nn.Module):
    """Output units y_i = sum_j (x_j - codes_ij)^2 over the fixed buffer "codes" (K, D)."""

    def __init__(self, codes):
        super().__init__()
        self.register_buffer("codes", codes)

    def forward(self, x):
        d = x[:, None, :] - self.codes[None]
        return (d * d).sum(-1)


def lenet5_classic(in_channels=1, num_classes=10, input_size=32):
    """LeNet-5 as published: [pad to 32x32 with -0.1 when input_size < 32], C1 6@5x5, S2, C3
    (Table I), S4, C5 120@5x5, F6 84, each followed by 1.7159 tanh(2a/3), RBF outputs."""
    pad = []
    if input_size < 32:
        b = (32 - input_size) // 2
        a = 32 - input_size - b
        pad = [nn.ConstantPad2d((b, a, b, a), -0.1)]
    codes = torch.tensor([[1.0 if ch == "#" else -1.0 for ch in (d + ".......").replace("|", "")]
                          for d in DIGITS_7X12])[:num_classes]
    if codes.shape != (num_classes, 84):
        raise ValueError("lenet5_classic twin: the default codes cover 10 classes")
    return nn.Sequential(
        *pad, nn.Conv2d(in_channels, 6, 5), ScaledTanh(), Subsampling(6), ScaledTanh(),
        MaskedConv(lenet5_c3_table()), ScaledTanh(), Subsampling(16), ScaledTanh(),
        nn.Conv2d(16, 120, 5), ScaledTanh(), nn.Flatten(), nn.Linear(120, 84), ScaledTanh(),
        EuclideanRBF(codes))


def alexnet_cifar(in_channels=3, num_classes=10, input_size=32, width=32, dropout=0.5):
    w = width
    s = out_size(input_size, 5, 2, 2)
    s = out_size(s, 3, 2, 1)
    s = out_size(s, 3, 2, 1)
    s = out_size(s, 3, 2, 1)

    def lrn():
        return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)

    return nn.Sequential(
        nn.Conv2d(in_channels, w, 5, stride=2, padding=2), nn.ReLU(), lrn(),
        nn.MaxPool2d(3, 2, 1),
        nn.Conv2d(w, 3 * w, 5, padding=2, groups=2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2, 1),
        nn.Conv2d(3 * w, 6 * w, 3, padding=1), nn.ReLU(),
        nn.Conv2d(6 * w, 4 * w, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(4 * w, 4 * w, 3, padding=1, groups=2), nn.ReLU(),
        nn.MaxPool2d(3, 2, 1), nn.Flatten(),
        MaskDropout(dropout), nn.Linear(4 * w * s * s, 8 * w), nn.ReLU(),
        MaskDropout(dropout), nn.Linear(8 * w, 8 * w), nn.ReLU(), nn.Linear(8 * w, num_classes))


def vgg_cifar(in_channels=3, num_classes=10, input_size=32,
              stages=((32, 32), (64, 64), (128, 128)), hidden=256, dropout=0.3):
    layers, c, s = [], in_channels, input_size
    for stage in stages:
        for width in stage:
            layers += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU()]
            c = width
        layers.append(nn.MaxPool2d(2))
        s = out_size(s, 2, 2)
    return nn.Sequential(*layers, nn.Flatten(), MaskDropout(dropout),
                         nn.Linear(c * s * s, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def _basic_block(cin, cout, stride, shortcut):
    body = nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
    if stride == 1 and cin == cout:
        sc = nn.Identity()
    elif shortcut == "A":
        sc = PadShortcut(cout, stride)
    else:
        sc = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    return nn.Sequential(Residual(body, sc), nn.ReLU())


def resnet20(in_channels=3, num_classes=10, input_size=32, blocks_per_stage=3,
             widths=(16, 32, 64), shortcut="A"):
    layers = [nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
              nn.BatchNorm2d(widths[0]), nn.ReLU()]
    c = widths[0]
    for i, wd in enumerate(widths):
        for b in range(blocks_per_stage):
            layers.append(_basic_block(c, wd, 2 if (i > 0 and b == 0) else 1, shortcut))
            c = wd
    return nn.Sequential(*layers, GlobalAvgPool(), nn.Linear(c, num_classes))


def _cbr(cin, cout, k):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


def inception(cin, c1, c3r, c3, c5r, c5, pool_proj):
    return Concat(_cbr(cin, c1, 1),
                  nn.Sequential(_cbr(cin, c3r, 1), _cbr(c3r, c3, 3)),
                  nn.Sequential(_cbr(cin, c5r, 1), _cbr(c5r, c5, 5)),
                  nn.Sequential(nn.MaxPool2d(3, 1, 1), _cbr(cin, pool_proj, 1)))


def googlenet_mini(in_channels=3, num_classes=10, input_size=32):
    return nn.Sequential(
        _cbr(in_channels, 32, 3),
        inception(32, 16, 16, 24, 4, 8, 8), inception(56, 24, 24, 32, 8, 16, 16),
        nn.MaxPool2d(3, 2, 1),
        inception(88, 32, 24, 48, 8, 16, 16), inception(112, 40, 32, 56, 8, 16, 16),
        GlobalAvgPool(), nn.Linear(128, num_classes))


def c3d_mini(in_channels=1, num_classes=8, input_size=(16, 32, 32), widths=(8, 16, 32)):
    layers, c = [], in_channels
    for i, wd in enumerate(widths):
        layers += [nn.Conv3d(c, wd, 3, padding=1, bias=False), nn.BatchNorm3d(wd), nn.ReLU(),
                   nn.MaxPool3d((1, 2, 2) if i == 0 else 2)]
        c = wd
    return nn.Sequential(*layers, GlobalAvgPool(), nn.Linear(c, num_classes))


def cnn1d(in_channels=1, num_classes=10, input_size=784, widths=(16, 32, 64), kernel_size=5,
          pools=(4, 4, 2)):
    layers, c, n = [], in_channels, input_size
    for wd, p in zip(widths, pools):
        layers += [nn.Conv1d(c, wd, kernel_size, padding="same", bias=False),
                   nn.BatchNorm1d(wd), nn.ReLU(), nn.MaxPool1d(p)]
        c, n = wd, n // p
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * n, num_classes))


TORCH_MODELS = {"lenet5": lenet5, "lenet5_classic": lenet5_classic,
                "alexnet_cifar": alexnet_cifar, "vgg_cifar": vgg_cifar, "resnet20": resnet20,
                "googlenet_mini": googlenet_mini, "c3d_mini": c3d_mini, "cnn1d": cnn1d}
