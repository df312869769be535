"""Dense pixelwise forward and backward (Li, Zhao, Wang 2014) against patch-by-patch scanning.

Part 1, speed: a patch classifier (28x28 patch -> conv 5x5 16 -> ReLU -> max pool 2 -> conv
5x5 32 -> ReLU -> max pool 2 -> linear 512 -> 64 -> ReLU -> linear 64 -> 11) run at every
pixel of an S x S image, S = 64, 128, 256: (a) patch by patch, the patches batched 256 at a
time (the usual scanning implementation), (b) :func:`convprop.models.dense.to_dense` in one
pass. Forward: the classifier's output at every pixel. Backward: the gradient of a loss at
every pixel (patch by patch: forward + backward of every patch; dense: one forward and one
backward with the full mask). Patch-by-patch times are measured on ``--probe`` patches and
scaled by S*S / probe (the patches are independent, so the time is linear in their number);
the dense times are measured on the whole image.

Part 2, a pixelwise task trained this way: digit-stroke segmentation built from MNIST. 48x48
images hold two digits at random places; each pixel's label is 0 (background) or 1 + the
digit whose stroke (intensity > 0.5) covers it. A smaller classifier of the same shape (8 and
16 channels, linear 256 -> 32 -> 11) is trained densely with Adam: each step samples
``--pixels`` training pixels per image (half on strokes) by masking the others' labels (a
``fit`` callback), so one dense forward and backward per image trains on all of them. Test:
pixel accuracy on held-out composites (all pixels, and stroke pixels only).

Runs outside the test suite::

    python examples/dense_pixelwise.py --data-dir ../shared/data/mnist --sizes 64 128 256 \\
        --probe 1024 --repeat 3 --train 2000 --epochs 5 --out examples/dense_pixelwise
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from convprop.data import load_dataset
from convprop.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
from convprop.layers.loss import CrossEntropyLoss
from convprop.models.dense import PixelCrossEntropyLoss, image_patches, to_dense
from convprop.optim import Adam
from convprop.train import fit
from convprop.train.callbacks import Callback

P = 28


def classifier(rng, c1=16, c2=32, hidden=64, classes=11):
    return Sequential(Conv2d(1, c1, 5, rng=rng), ReLU(), MaxPool2d(2),
                      Conv2d(c1, c2, 5, rng=rng), ReLU(), MaxPool2d(2), Flatten(),
                      Linear(c2 * 16, hidden, rng=rng), ReLU(), Linear(hidden, classes, rng=rng))


def _best(f, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def speed(sizes, probe, repeat):
    rng = np.random.default_rng(0)
    model = classifier(rng)
    dense = to_dense(model, P)
    ce = CrossEntropyLoss(reduction="sum")
    rows = []
    for S in sizes:
        img = rng.standard_normal((1, 1, S, S)).astype(np.float32)
        labels = rng.integers(0, 11, (1, S, S))
        patches = image_patches(img[:, :, : max(1, probe // S + 1)], P)[:probe]
        plabels = labels.reshape(-1)[:probe]

        def patch_fwd():
            for i in range(0, len(patches), 256):
                model.predict(patches[i:i + 256])

        def patch_bwd():
            for i in range(0, len(patches), 256):
                out, c = model.forward(patches[i:i + 256], training=True)
                _, lc = ce.forward(out, plabels[i:i + 256])
                model.backward(ce.backward(1.0, lc), c, need_dx=False)

        def dense_fwd():
            dense.forward(img)

        def dense_bwd():
            y, c = dense.forward(img, training=True)
            loss = PixelCrossEntropyLoss(reduction="sum")
            _, lc = loss.forward(y, labels)
            dense.backward(loss.backward(1.0, lc), c, need_dx=False)

        scale = S * S / len(patches)
        r = {"size": S, "patch_forward_s": _best(patch_fwd, repeat) * scale,
             "dense_forward_s": _best(dense_fwd, repeat),
             "patch_backward_s": _best(patch_bwd, repeat) * scale,
             "dense_backward_s": _best(dense_bwd, repeat)}
        r["forward_speedup"] = r["patch_forward_s"] / r["dense_forward_s"]
        r["backward_speedup"] = r["patch_backward_s"] / r["dense_backward_s"]
        rows.append(r)
        print(f"{S}x{S}: forward {r['patch_forward_s']:.1f}s vs {r['dense_forward_s']:.2f}s "
              f"({r['forward_speedup']:.0f}x), backward {r['patch_backward_s']:.1f}s vs "
              f"{r['dense_backward_s']:.2f}s ({r['backward_speedup']:.0f}x)", flush=True)
    return rows


def composites(images, labels, n, rng, size=48):
    x = np.zeros((n, 1, size, size), np.float32)
    y = np.zeros((n, size, size), np.int64)
    for k in range(n):
        for _ in range(2):
            j = rng.integers(len(images))
            r, c = rng.integers(0, size - 28 + 1, 2)
            d = images[j, 0].astype(np.float32) / 255.0
            win = (slice(r, r + 28), slice(c, c + 28))
            x[k, 0][win] = np.maximum(x[k, 0][win], d)
            y[k][win][d > 0.5] = 1 + labels[j]
    return x, y


class SamplePixels(Callback):
    """Keep ``n`` labelled pixels per image (half on strokes), mask the rest with -1."""

    def __init__(self, n, seed):
        self.n, self.rng = n, np.random.default_rng(seed)

    def on_batch_begin(self, state, batch):
        y = np.full_like(batch.y, -1)
        for k, lab in enumerate(batch.y):
            flat = lab.reshape(-1)
            for pool, m in ((np.flatnonzero(flat > 0), self.n // 2),
                            (np.flatnonzero(flat == 0), self.n - self.n // 2)):
                pick = self.rng.choice(pool, min(m, len(pool)), replace=False)
                y[k].reshape(-1)[pick] = flat[pick]
        batch.y = y


def segmentation(data_dir, n_train, n_test, epochs, pixels):
    rng = np.random.default_rng(1)
    tr = load_dataset("mnist", "train", root=data_dir)
    te = load_dataset("mnist", "test", root=data_dir)
    xtr, ytr = composites(tr.images, tr.labels, n_train, rng)
    xte, yte = composites(te.images, te.labels, n_test, rng)
    model = classifier(rng, c1=8, c2=16, hidden=32)
    dense = to_dense(model, P)
    t0 = time.perf_counter()
    hist = fit(dense, PixelCrossEntropyLoss(), Adam(dense.parameters(), lr=2e-3), (xtr, ytr),
               epochs=epochs, batch_size=8, rng=np.random.default_rng(2), verbose=0,
               callbacks=[SamplePixels(pixels, 3)])
    train_s = time.perf_counter() - t0
    pred = np.concatenate([dense.predict(xte[i:i + 50]).argmax(1) for i in range(0, n_test, 50)])
    stroke = yte > 0
    res = {"train_images": n_train, "test_images": n_test, "epochs": epochs,
           "pixels_per_image": pixels, "train_seconds": train_s,
           "train_loss": [r["loss"] for r in hist.records],
           "pixel_accuracy": float((pred == yte).mean()),
           "stroke_pixel_accuracy": float((pred[stroke] == yte[stroke]).mean()),
           "background_accuracy": float((pred[~stroke] == 0).mean())}
    print(json.dumps(res), flush=True)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/mnist")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--probe", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--test", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--pixels", type=int, default=64)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--out", default="examples/dense_pixelwise")
    args = ap.parse_args(argv)
    out = Path(args.out)
    rows = [] if args.skip_speed else speed(args.sizes, args.probe, args.repeat)
    seg = segmentation(args.data_dir, args.train, args.test, args.epochs, args.pixels)
    out.with_suffix(".json").write_text(json.dumps({"args": vars(args), "speed": rows,
                                                    "segmentation": seg}, indent=1))
    lines = ["| image | forward: patch by patch | dense | speed-up | backward: patch by patch "
             "| dense | speed-up |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['size']}x{r['size']} | {r['patch_forward_s']:.2f} s | "
                     f"{r['dense_forward_s']:.3f} s | {r['forward_speedup']:.0f}x | "
                     f"{r['patch_backward_s']:.2f} s | {r['dense_backward_s']:.3f} s | "
                     f"{r['backward_speedup']:.0f}x |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
