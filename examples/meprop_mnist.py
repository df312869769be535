"""Reproduce meProp on MNIST (Sun, Ren, Ma, Wang 2017) and its CNN follow-up (Wei et al.
2017), and write the results beside the papers' numbers to examples/meprop_mnist.md.

MLP (the paper's MNIST model, as the reference code lancopku/meProp builds it): 784-500-500-10,
ReLU, softmax cross-entropy, Adam (lr 1e-3), 20 epochs; meProp (top-k = 80 of 500) on the two
hidden layers, the output layer full, as in the reference ``MLPTop``. Paper: 98.20% test
accuracy with full backprop, 98.27% with meProp top-80, backprop time 170 s vs 29 s (5.9x).
Both top-k variants run: per example (the paper's) and unified (the same 80 columns for the
whole mini-batch, the reference code's GPU variant).

CNN (Wei et al.: "only 5% of the gradients are passed back"): conv 5x5 1->20, ReLU, max-pool
2, conv 5x5 20->40, ReLU, max-pool 2, linear 640->100, ReLU, linear 100->10; meProp on the
conv layers over output channels (k = 1 of 20 and 2 of 40: 5%) and on the hidden linear
layer (k = 5 of 100: 5%); the output layer full.

Backward time is the time spent in ``model.backward`` (the loss's own backward and the
optimizer step excluded), summed over the run, every variant in the same process, so the
ratio to full backprop is a same-machine measurement. Test accuracy after the last epoch.

    # the paper's setting (each MLP variant ~20 epochs; hours on a shared 2-core machine)
    python examples/meprop_mnist.py --root ../shared/data/mnist --epochs 20 --cnn-epochs 10
    # the committed, reduced run (see the .md for what was reduced)
    OPENBLAS_NUM_THREADS=1 python examples/meprop_mnist.py --epochs 3 --cnn-epochs 2 \\
        --cnn-train-limit 20000

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from convprop.data import batches, load_dataset
from convprop.layers.activation import ReLU
from convprop.layers.container import Sequential
from convprop.layers.conv import Conv2d
from convprop.layers.linear import Linear
from convprop.layers.loss import CrossEntropyLoss
from convprop.layers.pooling import MaxPool2d
from convprop.layers.reshape import Flatten
from convprop.optim import Adam

PAPER_MLP = {"full": (98.20, 170.0), "meprop": (98.27, 29.0)}  # test %, backprop seconds


def mlp(k, unified, rng):
    kw = dict(meprop_k=k, meprop_unified=unified) if k else {}
    return Sequential(Linear(784, 500, rng=rng, **kw), ReLU(),
                      Linear(500, 500, rng=rng, **kw), ReLU(),
                      Linear(500, 10, rng=rng))


def cnn(frac, unified, rng, granularity="channel"):
    """The CNN; ``frac`` of each hidden layer's units keep their gradient (0: full)."""
    def kw(units, elements=None):
        if not frac:
            return {}
        per = units if granularity == "channel" or elements is None else elements
        d = dict(meprop_k=max(1, round(frac * per)), meprop_unified=unified)
        if elements is not None:
            d["meprop_granularity"] = granularity
        return d
    return Sequential(Conv2d(1, 20, 5, rng=rng, **kw(20, 20 * 24 * 24)), ReLU(), MaxPool2d(2),
                      Conv2d(20, 40, 5, rng=rng, **kw(40, 40 * 8 * 8)), ReLU(), MaxPool2d(2),
                      Flatten(), Linear(640, 100, rng=rng, **kw(100)), ReLU(),
                      Linear(100, 10, rng=rng))


def accuracy(model, x, y, bs=1000) -> float:
    right = sum(int((model.predict(x[s:s + bs]).argmax(axis=1) == y[s:s + bs]).sum())
                for s in range(0, len(x), bs))
    return 100.0 * right / len(x)


def train(model, data, epochs, batch_size, seed):
    (xtr, ytr), (xte, yte) = data
    rng = np.random.default_rng(seed)
    loss_fn, opt = CrossEntropyLoss(), Adam(model, lr=1e-3)
    t_bwd = t_all = 0.0
    for _ in range(epochs):
        for xb, yb in batches(xtr, ytr, batch_size, shuffle=True, rng=rng):
            t0 = time.perf_counter()
            out, cache = model.forward(xb, training=True)
            _, lc = loss_fn.forward(out, yb)
            dout = loss_fn.backward(1.0, lc)
            model.zero_grad()
            t1 = time.perf_counter()
            model.backward(dout, cache, need_dx=False)
            t2 = time.perf_counter()
            opt.step()
            t_bwd += t2 - t1
            t_all += time.perf_counter() - t0
    return accuracy(model, xte, yte), t_bwd, t_all


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default="../shared/data/mnist")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--k", type=int, default=80)
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--cnn-epochs", type=int, default=10)
    p.add_argument("--cnn-train-limit", type=int, default=None)
    p.add_argument("--cnn-frac", type=float, default=0.05)
    p.add_argument("--cnn-layers", choices=("all", "conv", "linear"), default="all",
                   help="which hidden layers of the CNN use meProp (an ablation)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-mlp", action="store_true")
    p.add_argument("--skip-cnn", action="store_true")
    p.add_argument("--out", default=None, help="also write the tables to this file")
    a = p.parse_args(argv)

    train_set = load_dataset("mnist", "train", root=a.root)
    test_set = load_dataset("mnist", "test", root=a.root)
    xtr = train_set.images.astype(np.float32) / 255.0
    xte = test_set.images.astype(np.float32) / 255.0
    ytr, yte = train_set.labels, test_set.labels
    lines = [f"machine: {platform.machine()}, {os.cpu_count()} cores, threads: "
             + ", ".join(f"{v}={os.environ.get(v, '-')}" for v in
                         ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")),
             "command: python examples/meprop_mnist.py "
             + " ".join(sys.argv[1:] if argv is None else argv)]

    if not a.skip_mlp:
        n = a.train_limit or len(xtr)
        data = ((xtr[:n].reshape(n, -1), ytr[:n]), (xte.reshape(len(xte), -1), yte))
        rows = []
        for name, k, uni in (("full backprop", None, False), (f"meProp top-{a.k}", a.k, False),
                             (f"meProp top-{a.k}, unified", a.k, True)):
            acc, tb, ta = train(mlp(k, uni, np.random.default_rng(a.seed)), data, a.epochs,
                                a.batch_size, a.seed)
            rows.append((name, acc, tb, ta))
            print(f"MLP {name}: test {acc:.2f}%, backward {tb:.1f} s, step total {ta:.1f} s",
                  flush=True)
        base = rows[0][2]
        lines += ["", f"## MLP 784-500-500-10, Adam, batch {a.batch_size}, {a.epochs} epochs "
                  f"on {n} training images", "",
                  "| variant | test accuracy (%) | backward time (s) | backward speed-up | "
                  "paper: test (%) | paper: backprop time (s) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for i, (name, acc, tb, _) in enumerate(rows):
            paper = PAPER_MLP["full" if i == 0 else "meprop"]
            ptime = f"{paper[1]:.0f}" + ("" if i == 0 else " (5.9x)")
            pacc = f"{paper[0]:.2f}" if i < 2 else "-"
            lines.append(f"| {name} | {acc:.2f} | {tb:.1f} | {base / tb:.2f}x | {pacc} | "
                         f"{ptime if i < 2 else '-'} |")

    if not a.skip_cnn:
        n = a.cnn_train_limit or len(xtr)
        data = ((xtr[:n], ytr[:n]), (xte, yte))
        rows = []
        for name, frac, uni, gran in (
                ("full backprop", 0.0, False, "channel"),
                (f"meProp {a.cnn_frac:.0%} (channels)", a.cnn_frac, False, "channel"),
                (f"meProp {a.cnn_frac:.0%} (channels), unified", a.cnn_frac, True, "channel"),
                (f"meProp {a.cnn_frac:.0%} (elements)", a.cnn_frac, False, "element")):
            model = cnn(frac, uni, np.random.default_rng(a.seed), gran)
            full_type = {"conv": Linear, "linear": Conv2d}.get(a.cnn_layers)
            for layer in model.modules():
                if full_type is not None and isinstance(layer, full_type):
                    layer.meprop_k = None      # this kind of layer keeps its full backward
            acc, tb, ta = train(model, data, a.cnn_epochs, a.batch_size, a.seed)
            rows.append((name, acc, tb, ta))
            print(f"CNN {name}: test {acc:.2f}%, backward {tb:.1f} s", flush=True)
        base = rows[0][2]
        lines += ["", f"## CNN (conv 20, conv 40, fc 100), Adam, batch {a.batch_size}, "
                  f"{a.cnn_epochs} epochs on {n} training images, meProp on "
                  f"{a.cnn_layers} hidden layers", "",
                  "| variant | test accuracy (%) | backward time (s) | backward speed-up |",
                  "| --- | ---: | ---: | ---: |"]
        lines += [f"| {name} | {acc:.2f} | {tb:.1f} | {base / tb:.2f}x |"
                  for name, acc, tb, _ in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
