"""Binarized networks on MNIST (BNN, Courbariaux, Hubara et al. 2016; XNOR-Net / BWN,
Rastegari et al. 2016): accuracy against the same network in float, and the memory of a
bit-packed export of the weights. Results go to examples/bnn_mnist.md by hand.

MLP (BNN, section 2 and their MNIST experiment, reduced): input 784 real pixels, then
``BinaryLinear -> BatchNorm1d -> Sign`` for each hidden layer, ``BinaryLinear ->
BatchNorm1d`` at the output (weights and hidden activations +-1, the first layer's input
real, as in BNN); the float network is the same with ``Linear`` and ``ReLU``. The paper's
MNIST MLP has 3 hidden layers of 4096 units, square hinge loss, dropout-free BN, Adam with a
decaying rate, 1000 epochs (0.96% test error, Theano); ours has ``--hidden`` units (default
2 x 512), softmax cross-entropy, Adam with an exponential decay, and few epochs.

LeNet (binary weights): LeNet-5's shape (conv 5x5 1->6 pad 2, max-pool 2, conv 5x5 6->16,
max-pool 2, fc 400->120->84->10, ReLU, BatchNorm after each conv/fc), in float, as a
BinaryConnect network (``weight_scale="none"``), as a Binary-Weight-Network
(``weight_scale="mean"``: alpha = mean |W| per filter) and as an XNOR-Network (also a
``Sign`` on the input of every layer but the first).

Latent weights are clipped to [-1, 1] after every step by the ``ClipLatentWeights``
callback of ``fit``. The export is :func:`convprop.layers.binary.pack_binary_weights`
(np.packbits of the signs, float32 alphas); its size is compared with the float32 weights of
the same layers.

    # full MLP setting of the paper (3 x 4096, hours here):
    python examples/bnn_mnist.py --hidden 4096 4096 4096 --epochs 100 --lenet-epochs 20
    # the committed, reduced run:
    OPENBLAS_NUM_THREADS=1 python examples/bnn_mnist.py --epochs 10 --lenet-epochs 3

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

from convprop.data import load_dataset
from convprop.layers.activation import ReLU
from convprop.layers.binary import (BinaryConv2d, BinaryLinear, ClipLatentWeights, Sign,
                                    pack_binary_weights)
from convprop.layers.container import Sequential
from convprop.layers.conv import Conv2d
from convprop.layers.linear import Linear
from convprop.layers.loss import CrossEntropyLoss
from convprop.layers.normalization import BatchNorm1d, BatchNorm2d
from convprop.layers.pooling import MaxPool2d
from convprop.layers.reshape import Flatten
from convprop.optim import Adam
from convprop.optim.schedules import ExponentialLR
from convprop.train import fit


def mlp(hidden, binary, rng):
    layers, d = [Flatten()], 784
    for h in hidden:
        lin = BinaryLinear(d, h, rng=rng) if binary else Linear(d, h, rng=rng)
        layers += [lin, BatchNorm1d(h), Sign() if binary else ReLU()]
        d = h
    layers += [BinaryLinear(d, 10, rng=rng) if binary else Linear(d, 10, rng=rng),
               BatchNorm1d(10)]
    return Sequential(*layers)


def lenet(kind, rng):
    """kind: float, binaryconnect, bwn (alpha), xnor (alpha + binary inputs)."""
    scale = "mean" if kind in ("bwn", "xnor") else "none"

    def conv(ci, co, k, **kw):
        if kind == "float":
            return Conv2d(ci, co, k, rng=rng, **kw)
        return BinaryConv2d(ci, co, k, weight_scale=scale, rng=rng, **kw)

    def fc(i, o):
        return Linear(i, o, rng=rng) if kind == "float" else BinaryLinear(
            i, o, weight_scale=scale, rng=rng)

    def act():
        return Sign() if kind == "xnor" else ReLU()
    # XNOR: the Sign sits right before each binary layer but the first (after pooling)
    return Sequential(conv(1, 6, 5, padding=2), BatchNorm2d(6), act(), MaxPool2d(2),
                      conv(6, 16, 5), BatchNorm2d(16), act(), MaxPool2d(2), Flatten(),
                      fc(400, 120), BatchNorm1d(120), act(), fc(120, 84), BatchNorm1d(84),
                      act(), fc(84, 10))


def accuracy(model, x, y, bs=1000) -> float:
    right = sum(int((model.predict(x[s:s + bs]).argmax(axis=1) == y[s:s + bs]).sum())
                for s in range(0, len(x), bs))
    return 100.0 * right / len(x)


def weight_bytes(model) -> tuple[int, int, int]:
    """(float32 bytes of the conv/linear weights, bytes of the packed export of the binary
    ones (0 for a float network), float32 bytes of every other parameter and buffer)."""
    packed = pack_binary_weights(model)
    bits = sum(v.nbytes for k, v in packed.items() if not k.endswith(".shape"))
    wbytes = sum(m.weight.value.size * 4 for m in model.modules()
                 if isinstance(m, (Linear, Conv2d)))
    total = sum(np.asarray(v).size * 4 for v in model.state_dict().values())
    return wbytes, bits, total - wbytes


def run(name, model, data, epochs, lr, lr_end, seed, binary):
    (xtr, ytr), (xte, yte) = data
    opt = Adam(model, lr=lr)
    sched = ExponentialLR(opt, (lr_end / lr) ** (1 / max(1, epochs - 1)))
    t0 = time.perf_counter()
    fit(model, CrossEntropyLoss(), opt, (xtr, ytr), epochs=epochs, batch_size=100,
        schedule=sched, rng=np.random.default_rng(seed),
        callbacks=[ClipLatentWeights()] if binary else [], verbose=0)
    acc = accuracy(model, xte, yte)
    latent = max((np.abs(m.weight.value).max() for m in model.modules()
                  if isinstance(m, (BinaryLinear, BinaryConv2d))), default=float("nan"))
    print(f"{name}: test error {100 - acc:.2f}% ({time.perf_counter() - t0:.0f} s, "
          f"max |latent w| {latent:.3f})", flush=True)
    return 100 - acc


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default="../shared/data/mnist")
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lenet-epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--lr-end", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-limit", type=int, default=None, help="first N training images")
    p.add_argument("--skip-mlp", action="store_true")
    p.add_argument("--skip-lenet", action="store_true")
    a = p.parse_args(argv)
    tr, te = (load_dataset("mnist", s, root=a.root) for s in ("train", "test"))
    n = a.train_limit or len(tr.labels)
    data = ((tr.images[:n].astype(np.float32) / 255, tr.labels[:n]),
            (te.images.astype(np.float32) / 255, te.labels))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', '-')}")
    print("command: python examples/bnn_mnist.py "
          + " ".join(sys.argv[1:] if argv is None else argv))
    rows = []
    if not a.skip_mlp:
        for binary in (False, True):
            m = mlp(a.hidden, binary, np.random.default_rng(a.seed))
            name = f"MLP {'-'.join(map(str, a.hidden))} {'BNN' if binary else 'float'}"
            err = run(name, m, data, a.epochs, a.lr, a.lr_end, a.seed, binary)
            rows.append((name, a.epochs, err, *weight_bytes(m)))
    if not a.skip_lenet:
        for kind in ("float", "binaryconnect", "bwn", "xnor"):
            m = lenet(kind, np.random.default_rng(a.seed))
            name = f"LeNet {kind}"
            err = run(name, m, data, a.lenet_epochs, a.lr, a.lr_end, a.seed, kind != "float")
            rows.append((name, a.lenet_epochs, err, *weight_bytes(m)))
    print("\n| network | epochs | test error (%) | conv/linear weights as float32 (KiB) | "
          "bit-packed export (KiB) | biases, BN as float32 (KiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, ep, err, binw, bits, rest in rows:
        packed = f"{bits / 1024:.1f} ({binw / max(bits, 1):.1f}x smaller)" if bits else "-"
        print(f"| {name} | {ep} | {err:.2f} | {binw / 1024:.1f} | {packed} | "
              f"{rest / 1024:.1f} |")


if __name__ == "__main__":
    main()
