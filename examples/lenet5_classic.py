"""Reproduce LeNet-5 as published (LeCun et al. 1998) on the full MNIST and record its test
error beside the paper's 0.95% (no distortions) in examples/lenet5_classic.md.

The model is :func:`convprop.models.lenet_classic.lenet5_classic`: trainable subsampling, the
C3 connection table, 1.7159 tanh(2a/3), Euclidean RBF outputs over fixed +1/-1 7x12 codes,
trained with the paper's criterion (eq. 9, :class:`RBFLoss`) and classified by the argmin.
Inputs: the 28x28 digits centred in 32x32, scaled to [-0.1, 1.175] (the paper's section III.C
and appendix A). What differs from the paper: the paper trains with a stochastic diagonal
Levenberg-Marquardt method, one example at a time, 20 passes with a stepped global rate; here
Adam on mini-batches with a step decay of its rate, for as many epochs as fit in the time
budget, the rate halved each time another seventh of the budget has passed (epoch times
on a shared machine vary too much to plan the schedule from one timed epoch).

    python examples/lenet5_classic.py --root ../shared/data/mnist --budget 480

Not part of the test suite: it takes minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from convprop.data import batches, load_dataset
from convprop.layers.lenet_classic import RBFLoss, rbf_predict
from convprop.models.lenet_classic import lenet5_classic, mnist_to_lenet_input
from convprop.optim import Adam

#: Thread settings recorded in the report when set (one thread each ran steadier on a shared
#: 2-core machine than the default pools, whose spinning threads stall when a core is taken).
THREAD_VARS = ("CONVPROP_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
PAPER_TEST_ERROR = 0.95  # percent, LeNet-5 without distortions (section III.C.2)


def test_error(model, x, y, batch_size=1000) -> float:
    wrong = 0
    for s in range(0, len(x), batch_size):
        wrong += int(np.count_nonzero(rbf_predict(model.predict(x[s:s + batch_size]))
                                      != y[s:s + batch_size]))
    return 100.0 * wrong / len(x)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default="../shared/data/mnist")
    p.add_argument("--budget", type=float, default=480.0, help="training seconds (about)")
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--j", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-limit", type=int, default=None, help="first N training images")
    p.add_argument("--out", default=str(Path(__file__).with_suffix(".md")))
    a = p.parse_args(argv)

    train = load_dataset("mnist", "train", root=a.root)
    test = load_dataset("mnist", "test", root=a.root)
    xtr, ytr = mnist_to_lenet_input(train.images), train.labels
    if a.train_limit:
        xtr, ytr = xtr[:a.train_limit], ytr[:a.train_limit]
    xte, yte = mnist_to_lenet_input(test.images), test.labels
    rng = np.random.default_rng(a.seed)
    model = lenet5_classic(rng=rng)
    loss_fn = RBFLoss(j=a.j)
    opt = Adam(model, lr=a.lr)
    print(model)
    print(f"{model.num_parameters()} parameter entries, "
          f"{model.num_parameters() - int((model[4].mask == 0).sum())} trainable "
          f"(the C3 mask's zeros excluded); train {xtr.shape}, test {xte.shape}")

    rows, epoch_times, start = [], [], time.perf_counter()
    for epoch in range(1, a.max_epochs + 1):
        t0 = time.perf_counter()
        total, n = 0.0, 0
        for xb, yb in batches(xtr, ytr, a.batch_size, shuffle=True, rng=rng):
            y, cache = model.forward(xb, training=True)
            loss, lc = loss_fn.forward(y, yb)
            model.backward(loss_fn.backward(1.0, lc), cache, need_dx=False)
            opt.step()
            opt.zero_grad()
            total += float(loss) * len(yb)
            n += len(yb)
        dt = time.perf_counter() - t0
        epoch_times.append(dt)
        err = test_error(model, xte, yte)
        rows.append((epoch, total / n, err, opt.lr, dt))
        print(f"epoch {epoch}: loss {total / n:.4f}  test error {err:.2f}%  lr {opt.lr:g}  "
              f"{dt:.1f}s", flush=True)
        # The schedule follows the clock, not the epoch count: epoch times on a shared machine
        # varied from 6 s to 70 s, so a plan made from one timed epoch either overran the
        # budget or ended with the rate still high. The rate is halved each time another
        # seventh of the budget has passed (the paper's global rate also falls in steps,
        # 5e-4 .. 1e-5 over 20 passes), and no epoch starts that would end past the budget.
        now = time.perf_counter()
        elapsed, last = now - start, now - t0
        opt.lr = a.lr * 0.5 ** min(6, int(7 * elapsed / a.budget))
        if elapsed + last > a.budget:
            break
    train_err = test_error(model, xtr, ytr)
    write_report(a, rows, train_err, epoch_times, model)


def write_report(a, rows, train_err, epoch_times, model):
    final = rows[-1]
    best = min(rows, key=lambda r: r[2])
    lines = [
        "# LeNet-5 as published, on the full MNIST",
        "",
        "LeCun, Bottou, Bengio, Haffner (1998), *Gradient-based learning applied to document "
        "recognition*, Proc. IEEE 86(11): 2278-2324, section II.B and appendix A. "
        "Produced by `" + "".join(f"{k}={os.environ[k]} " for k in THREAD_VARS
                                   if k in os.environ)
        + "python examples/lenet5_classic.py "
        f"--budget {a.budget:g} --max-epochs {a.max_epochs} --batch-size {a.batch_size} "
        f"--lr {a.lr:g} --j {a.j:g} --seed {a.seed}` (the model: "
        "`convprop.models.lenet_classic.lenet5_classic`).",
        "",
        "| | this run | paper |",
        "| --- | --- | --- |",
        f"| test error (MNIST test set, 10,000) | **{final[2]:.2f}%** after the last epoch "
        f"(lowest seen: {best[2]:.2f}% after epoch {best[0]}) | 0.95% |",
        f"| training error (60,000) | {train_err:.2f}% | 0.35% (after 19 passes) |",
        f"| passes over the training set | {final[0]} (as many as fit in {a.budget:g} s) "
        "| 20 |",
        f"| time per epoch (training only) | median {np.median(epoch_times):.1f} s, range "
        f"{min(epoch_times):.1f}-{max(epoch_times):.1f} s (NumPy, {platform.machine()}, "
        f"{os.cpu_count()} CPUs shared with other jobs) | - |",
        f"| optimizer | Adam, lr {a.lr:g} halved each time another seventh of the "
        f"{a.budget:g} s budget had passed (at epoch ends), mini-batches of "
        f"{a.batch_size} | stochastic diagonal Levenberg-Marquardt, one example at a time, "
        "global rate 5e-4 to 1e-5 in steps |",
        f"| criterion | eq. 9 with j = {a.j:g} | eq. 9 (j not stated) |",
        "| output codes | stylised 7x12 +1/-1 digit bitmaps drawn for convprop | the paper's "
        "7x12 bitmaps (Fig. 3) |",
        "| distortions | none | none (0.8% with distortions) |",
        "",
        "Per epoch:",
        "",
        "| epoch | mean training loss | test error | learning rate | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {e} | {loss:.4f} | {err:.2f}% | {lr:g} | {dt:.1f} |"
              for e, loss, err, lr, dt in rows]
    lines += [
        "",
        "Same as the paper: 32x32 input (the 28x28 digit centred with a 2-pixel border), pixels "
        "scaled to [-0.1, 1.175]; C1 6@5x5; S2 and S4 as trainable subsampling (sum of each "
        "2x2 block times a coefficient plus a bias, per map); C3 16@5x5 with Table I's "
        "connections (60 of 96 map pairs, masked convolution); C5 120@5x5; F6 84; "
        "1.7159 tanh(2a/3) after every layer up to F6; 10 Euclidean RBF outputs; initial "
        "weights uniform in +-2.4/F_i; classification by the smallest RBF output. "
        f"{model.num_parameters() - int((model[4].mask == 0).sum()):,} trainable parameters "
        "(the paper: 60,000).",
        "",
        "Different: the optimizer and its schedule, mini-batches, the number of passes (set by "
        "a time budget), the output bitmaps (a stand-in), and the unstated constant j.",
        "",
    ]
    Path(a.out).write_text("\n".join(lines))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
