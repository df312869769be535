"""Relay backpropagation on Fashion-MNIST (Shen, Lin, Huang 2016, ECCV) against plain BP.

The paper trains deep plain (VGG-like, non-residual) networks on Places2 and ImageNet and
reports lower error with relay backpropagation than with ordinary backpropagation. Here: a
plain network of 3 stages of ``--convs-per-stage`` 3x3 convolutions (3: 10 layers, 6: 19;
8, 16, 32 channels, ReLU, He initialisation, no batch norm), each stage closed by a 2x2
max pool, then a linear classifier; so 4 segments (cut after each max pool). Relay: an
auxiliary head (flatten -> linear 784 -> 64 -> ReLU -> linear 10, its own softmax
cross-entropy, weight 1) on segment 2's output reaching segments 2 and 1; the main loss
reaches segments 4, 3 and 2 (it stops before segment 1), so the two losses overlap on one
segment, as in the paper's figure. The head is dropped for testing: the evaluated network is
the same body in both arms. Same initial body weights and batch order per seed; Adam
(lr 1e-3, batch 64).

Runs outside the test suite::

    python examples/relay_fashion.py --data-dir ../shared/data/fashion-mnist \\
        --train 60000 --epochs 10 --seeds 3 --convs-per-stage 6 --out examples/relay_fashion
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from convprop.data import load_dataset
from convprop.layers import Conv2d, CrossEntropyLoss, Flatten, Linear, MaxPool2d, ReLU, Sequential
from convprop.optim import Adam
from convprop.train import evaluate, fit
from convprop.train.relay import RelayHead, RelayNet, RelayTargets


def body(seed: int, convs: int = 3) -> Sequential:
    rng = np.random.default_rng(seed)
    layers, c = [], 1
    for width in (8, 16, 32):
        for _ in range(convs):
            layers += [Conv2d(c, width, 3, padding=1, init="he_normal", rng=rng), ReLU()]
            c = width
        layers.append(MaxPool2d(2))
    return Sequential(*layers, Flatten(), Linear(32 * 3 * 3, 10, rng=rng))


def head(seed: int) -> Sequential:
    rng = np.random.default_rng(10_000 + seed)
    return Sequential(Flatten(), Linear(16 * 7 * 7, 64, rng=rng), ReLU(), Linear(64, 10, rng=rng))


def run(train, test, *, seed, epochs, relay, convs):
    net = body(seed, convs)
    model, cbs = net, []
    if relay:
        model = RelayNet(net, [RelayHead(2, head(seed), reach=2)], main_reach=3)
        cbs = [RelayTargets()]
    t0 = time.perf_counter()
    hist = fit(model, CrossEntropyLoss(), Adam(model.parameters(), lr=1e-3), train,
               epochs=epochs, batch_size=64, rng=np.random.default_rng(100 + seed), verbose=0,
               callbacks=cbs)
    ev = evaluate(net, CrossEntropyLoss(), test, batch_size=1000)   # heads dropped
    return {"test_accuracy": ev["accuracy"], "test_loss": ev["loss"],
            "train_loss": [r["loss"] for r in hist.records],
            "aux_loss": [a[0] for a in cbs[0].aux_history] if relay else [],
            "seconds": time.perf_counter() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/fashion-mnist")
    ap.add_argument("--train", type=int, default=60000)
    ap.add_argument("--test", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--convs-per-stage", type=int, default=3,
                    help="3x3 convolutions per stage (3: 10 layers, 6: 19 layers)")
    ap.add_argument("--out", default="examples/relay_fashion")
    args = ap.parse_args(argv)

    def load(split, n):
        ds = load_dataset("fashion-mnist", split, root=args.data_dir)
        pick = np.random.default_rng(7).permutation(len(ds.labels))[:n]
        x = (ds.images[pick].astype(np.float32) / 255.0 - 0.286) / 0.353
        return x, ds.labels[pick]

    train, test = load("train", args.train), load("test", args.test)
    rows = []
    for seed in range(args.seeds):
        for relay in (False, True):
            r = run(train, test, seed=seed, epochs=args.epochs, relay=relay,
                    convs=args.convs_per_stage)
            r.update(seed=seed, relay=relay)
            rows.append(r)
            print(f"seed {seed} {'relay' if relay else 'plain'}: test accuracy "
                  f"{r['test_accuracy']:.4f} ({r['seconds']:.0f}s)", flush=True)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"args": vars(args), "runs": rows},
                                                   indent=1))
    lines = ["| seed | plain BP: test accuracy | relay BP: test accuracy | difference |",
             "|---:|---:|---:|---:|"]
    diffs = []
    for seed in range(args.seeds):
        p, r = (next(x["test_accuracy"] for x in rows if x["seed"] == seed
                     and x["relay"] == rl) for rl in (False, True))
        diffs.append(r - p)
        lines.append(f"| {seed} | {p:.4f} | {r:.4f} | {100 * (r - p):+.2f} pt |")
    mp = np.mean([x["test_accuracy"] for x in rows if not x["relay"]])
    mr = np.mean([x["test_accuracy"] for x in rows if x["relay"]])
    lines.append(f"| mean | {mp:.4f} | {mr:.4f} | {100 * np.mean(diffs):+.2f} pt |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
