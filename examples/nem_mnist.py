"""Noise-enhanced CNN training on MNIST subsets (Audhkhasi, Osoba, Kosko 2016, Neural Networks 78).

The paper trains a small CNN on MNIST subsets with and without NEM noise on the output targets
and reports that the noise reduced the average per-iteration training-set cross-entropy by 39%
and the average per-iteration training-set classification error by 47%, the benefit being
largest for small training sets. Here: the same comparison with :class:`convprop.train.nem.
NEMNoise` (hyperplane condition, uniform noise, scale / t**decay annealing per epoch).

Network (small, as the paper's): 28x28 -> conv 3x3, 3 masks -> ReLU -> 2x2 average pooling ->
linear 507 -> 10 (softmax cross-entropy), plain SGD (lr 0.1, batch 50). For each training-set
size and seed the two runs share the initial weights and the shuffling order; after every
epoch ("iteration") the cross-entropy and error are measured on the whole training subset
with the clean targets. The reduction is 1 - mean_noisy / mean_plain of those per-iteration
curves, averaged over seeds.

Runs outside the test suite::

    python examples/nem_mnist.py --data-dir ../shared/data/mnist \\
        --sizes 1000 2000 3000 5000 7000 10000 --seeds 3 --epochs 15 --out examples/nem_mnist
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from convprop.data import load_dataset
from convprop.layers import AvgPool2d, Conv2d, CrossEntropyLoss, Flatten, Linear, ReLU, Sequential
from convprop.optim import SGD
from convprop.train import evaluate, fit
from convprop.train.nem import NEMNoise


def network(seed: int) -> Sequential:
    rng = np.random.default_rng(seed)
    return Sequential(Conv2d(1, 3, 3, rng=rng), ReLU(), AvgPool2d(2), Flatten(),
                      Linear(3 * 13 * 13, 10, rng=rng))


class Curve:
    """Callback: the training-subset cross-entropy and error after every epoch."""

    def __init__(self, data):
        self.data, self.ce, self.err = data, [], []

    def on_train_begin(self, state): ...
    def on_batch_begin(self, state, batch): ...
    def on_loss_begin(self, state, batch): ...
    def on_backward_end(self, state, batch): ...
    def on_batch_end(self, state, batch): ...
    def on_train_end(self, state): ...

    def on_epoch_end(self, state, logs):
        ev = evaluate(state.model, CrossEntropyLoss(), self.data, batch_size=1000)
        self.ce.append(ev["loss"])
        self.err.append(1 - ev["accuracy"])


def run(x, y, *, seed, epochs, nem):
    model = network(seed)
    curve = Curve((x, y))
    cbs = [nem, curve] if nem is not None else [curve]
    fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), (x, y), epochs=epochs,
        batch_size=50, rng=np.random.default_rng(1000 + seed), verbose=0, callbacks=cbs)
    return curve


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/mnist")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 3000, 5000, 7000, 10000])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--decay", type=float, default=1.0)
    ap.add_argument("--anneal", choices=("epoch", "step"), default="step")
    ap.add_argument("--out", default="examples/nem_mnist")
    args = ap.parse_args(argv)
    ds = load_dataset("mnist", "train", root=args.data_dir)
    images = (ds.images.astype(np.float32) / 255.0 - 0.1307) / 0.3081
    rows, t0 = [], time.perf_counter()
    for size in args.sizes:
        for seed in range(args.seeds):
            pick = np.random.default_rng(seed).permutation(len(images))[:size]
            x, y = images[pick], ds.labels[pick]
            plain = run(x, y, seed=seed, epochs=args.epochs, nem=None)
            nem = NEMNoise("cross_entropy", scale=args.scale, decay=args.decay,
                           anneal=args.anneal, seed=seed)
            noisy = run(x, y, seed=seed, epochs=args.epochs, nem=nem)
            r = {"size": size, "seed": seed,
                 "ce_plain": plain.ce, "ce_nem": noisy.ce,
                 "err_plain": plain.err, "err_nem": noisy.err,
                 "accept_rate": float(np.mean(nem.epoch_accept_rate)),
                 "ce_reduction": 1 - np.mean(noisy.ce) / np.mean(plain.ce),
                 "err_reduction": 1 - np.mean(noisy.err) / np.mean(plain.err)}
            rows.append(r)
            print(f"size {size} seed {seed}: CE reduction {r['ce_reduction']:+.3f}, error "
                  f"reduction {r['err_reduction']:+.3f}, accepted {r['accept_rate']:.2f} "
                  f"({time.perf_counter() - t0:.0f}s)", flush=True)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"args": vars(args), "runs": rows},
                                                   indent=1))
    lines = ["| training images | mean per-iteration CE, plain | with NEM | CE reduction | "
             "mean per-iteration error, plain | with NEM | error reduction | accepted |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size in args.sizes:
        rs = [r for r in rows if r["size"] == size]
        m = {k: float(np.mean([np.mean(r[k]) for r in rs])) for k in
             ("ce_plain", "ce_nem", "err_plain", "err_nem", "accept_rate")}
        red = {k: float(np.mean([r[k] for r in rs])) for k in ("ce_reduction", "err_reduction")}
        lines.append(f"| {size} | {m['ce_plain']:.4f} | {m['ce_nem']:.4f} | "
                     f"{100 * red['ce_reduction']:+.1f}% | {m['err_plain']:.4f} | "
                     f"{m['err_nem']:.4f} | {100 * red['err_reduction']:+.1f}% | "
                     f"{m['accept_rate']:.2f} |")
    allce = 100 * np.mean([r["ce_reduction"] for r in rows])
    allerr = 100 * np.mean([r["err_reduction"] for r in rows])
    lines.append(f"| **all** | | | **{allce:+.1f}%** | | | **{allerr:+.1f}%** | |")
    lines.append("| paper | | | 39% | | | 47% | |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
