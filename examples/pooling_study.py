"""The same small CNN on Fashion-MNIST with each pooling of the literature (issue 8's study).

Network: 32x32 input (Fashion-MNIST padded by 2) -> conv 3x3 16 -> ReLU -> POOL 2x2 ->
conv 3x3 32 -> ReLU -> POOL 2x2 -> linear 2048 -> 10, Adam (lr 1e-3, batch 64), the pooling
swapped: max, average, Lp (p = 2), Yu's mixed (per layer), Lee's mixed max-average (per
channel) and gated, alpha-integration, stochastic, wavelet (Haar, Daubechies-2). Alpha pooling
needs strictly positive input, so its ReLU is followed by +1e-3 (a ``Shift`` module here); every
other network is identical. Each pooling runs with several seeds; the script writes a Markdown
table (test accuracy mean and spread, seconds per epoch) and a PNG of the learned alpha and
mixing weights per layer.

Runs outside the test suite::

    python examples/pooling_study.py --data-dir ../shared/data/fashion-mnist \\
        --train 20000 --epochs 2 --seeds 3 --out examples/pooling_study
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from convprop.data import load_dataset, normalize
from convprop.layers import (AlphaPool2d, AvgPool2d, Conv2d, CrossEntropyLoss, Flatten,
                             GatedPool2d, Linear, LPPool2d, MaxPool2d, MixedMaxAvgPool2d,
                             MixedPool2d, Module, ReLU, Sequential, StochasticPool2d,
                             WaveletPool2d)
from convprop.optim import Adam
from convprop.train import evaluate, fit


class Shift(Module):
    """y = x + c: keeps alpha pooling's input strictly positive after a ReLU."""

    def __init__(self, c: float):
        super().__init__()
        self.c = float(c)

    def forward(self, x, *, training: bool = False):
        return x + x.dtype.type(self.c), None

    def backward(self, dy, cache, *, need_dx: bool = True):
        return dy


def poolings(rng):
    """name -> a factory of (pooling module for `channels`, whether it needs positive input)."""
    return {
        "max": lambda c: MaxPool2d(2),
        "average": lambda c: AvgPool2d(2),
        "Lp (p=2)": lambda c: LPPool2d(2, 2),
        "mixed (Yu, per layer)": lambda c: MixedPool2d(2, rng=rng, channels=c),
        "mixed max-avg (Lee, per channel)": lambda c: MixedMaxAvgPool2d(2, per_channel=True,
                                                                        channels=c),
        "gated (Lee)": lambda c: GatedPool2d(2),
        "alpha": lambda c: AlphaPool2d(2),
        "stochastic": lambda c: StochasticPool2d(2, rng=rng),
        "wavelet Haar": lambda c: WaveletPool2d("haar"),
        "wavelet db2": lambda c: WaveletPool2d("db2"),
    }


def network(name: str, rng) -> Sequential:
    pool = poolings(rng)[name]
    act = (lambda: Sequential(ReLU(), Shift(1e-3))) if name == "alpha" else ReLU
    return Sequential(Conv2d(1, 16, 3, padding=1, rng=rng), act(), pool(16),
                      Conv2d(16, 32, 3, padding=1, rng=rng), act(), pool(32),
                      Flatten(), Linear(32 * 8 * 8, 10, rng=rng))


def learned(model) -> dict:
    """The learned pooling parameters: alpha, Lee's a = sigmoid(logit), mean |gate weight|."""
    out = {}
    for i, m in enumerate(m for m in model.modules() if type(m).__name__ in
                          ("AlphaPool2d", "MixedMaxAvgPool2d", "GatedPool2d")):
        key = f"{type(m).__name__} {i + 1}"
        if hasattr(m, "alpha"):
            out[key] = m.alpha.value.tolist()
        elif hasattr(m, "logit"):
            out[key] = (1 / (1 + np.exp(-m.logit.value))).tolist()
        else:
            out[key] = [float(np.abs(m.weight.value).mean())]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="../shared/data/fashion-mnist")
    ap.add_argument("--train", type=int, default=20000, help="training images used")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", action="append", default=[], help="poolings to run (repeatable)")
    ap.add_argument("--out", default="examples/pooling_study")
    ap.add_argument("--replot", action="store_true", help="redraw the PNG from OUT.json")
    args = ap.parse_args(argv)
    if args.replot:
        out = Path(args.out)
        _report(json.loads(out.with_suffix(".json").read_text()), out)
        return 0
    train = load_dataset("fashion-mnist", "train", root=args.data_dir)
    test = load_dataset("fashion-mnist", "test", root=args.data_dir)
    pad = ((0, 0), (0, 0), (2, 2), (2, 2))
    x_tr = normalize(np.pad(train.images[:args.train], pad), [0.2860], [0.3530])
    x_te = normalize(np.pad(test.images, pad), [0.2860], [0.3530])
    y_tr, y_te = train.labels[:args.train], test.labels
    names = args.only or list(poolings(None))
    results = {}
    for name in names:
        runs = []
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            model = network(name, rng)
            loss = CrossEntropyLoss()
            t0 = time.perf_counter()
            fit(model, loss, Adam(model.parameters(), lr=1e-3), (x_tr, y_tr), epochs=args.epochs,
                batch_size=64, rng=rng, verbose=0)
            per_epoch = (time.perf_counter() - t0) / args.epochs
            acc = evaluate(model, loss, (x_te, y_te))["accuracy"]
            runs.append({"seed": seed, "accuracy": acc, "epoch_s": per_epoch,
                         "learned": learned(model)})
            print(f"{name:34s} seed {seed}: test {acc:.4f}, {per_epoch:.1f} s/epoch", flush=True)
        results[name] = runs
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"args": vars(args), "results": results},
                                                   indent=1))
    _report({"args": vars(args), "results": results}, out)
    return 0


CLAIMS = """\
What the papers report (as their abstracts and introductions state it; their datasets, not
this one: none of them used Fashion-MNIST):
Yu et al. 2014: mixed pooling beats max and average pooling on CIFAR-10/100 and SVHN (a
regulariser: its gain grows with training length). Lee et al. 2016: mixed max-average and gated
pooling beat max pooling on CIFAR-10/100 and SVHN. Eom and Choi 2018: alpha-integration beats
max and average pooling, with learned alpha moving towards max-like values. Zeiler and Fergus
2013: stochastic pooling beats max pooling on MNIST, CIFAR-10/100 and SVHN with long training
(hundreds of epochs). Williams and Li 2018: wavelet pooling is competitive with max pooling on
MNIST, CIFAR-10 and SVHN and better than it on some.
"""


def _report(data: dict, out: Path) -> None:
    """The Markdown table (with the papers' claims beside it) and the PNG, from a run's data."""
    args, results = data["args"], data["results"]
    lines = [f"# Pooling study: Fashion-MNIST, {args['train']} training images, "
             f"{args['epochs']} epochs, {args['seeds']} seeds", "",
             "`python examples/pooling_study.py --train {0} --epochs {1} --seeds {2}` (2-core "
             "CPU; s/epoch: training time per epoch, median over the seeds).".format(
                 args["train"], args["epochs"], args["seeds"]), "",
             "| pooling | test accuracy, mean | spread (min-max) | s/epoch |",
             "|---|---:|---:|---:|"]
    for name, runs in results.items():
        accs = [r["accuracy"] for r in runs]
        lines.append(f"| {name} | {statistics.mean(accs):.4f} | {min(accs):.4f}-{max(accs):.4f}"
                     f" | {statistics.median(r['epoch_s'] for r in runs):.1f} |")
    lines += ["", CLAIMS]
    out.with_suffix(".md").write_text("\n".join(lines))
    _plot(results, out.with_suffix(".png"))
    print("\n".join(lines))


def _plot(results: dict, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = [(name, key, vals) for name, runs in results.items() for r in runs
            for key, vals in r["learned"].items()]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(9, 4.8))
    labels = sorted({f"{n}: {k}" for n, k, _ in rows})
    for i, label in enumerate(labels):
        vals = [v for n, k, vs in rows if f"{n}: {k}" == label for v in vs]
        ax.scatter([i] * len(vals), vals, s=12)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("learned value")
    ax.axhline(-1, color="0.8", lw=0.8, zorder=0)  # alpha = -1: the arithmetic mean
    ax.set_title("Learned pooling parameters per layer, every seed\n(alpha: -1 = average, "
                 "1 = geometric mean; Lee's a: 1 = max, 0 = average; gated: mean |w|)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    raise SystemExit(main())
