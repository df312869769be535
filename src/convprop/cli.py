"""The ``convprop`` command: ``train`` (the main job), ``evaluate`` and ``predict``; further
subcommands are the modules of :mod:`convprop.commands`."""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

__all__ = ["main"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("none", "step", "multistep", "exponential", "cosine", "warmup_cosine", "plateau")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line (plus the usage argparse always prints)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive(kind):
    def parse(s):
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {s!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {s}")
        return v
    return parse


def _parser() -> argparse.ArgumentParser:
    from .commands import discover
    from .data import DATASETS  # every data set convprop.data can load, no copy of the list
    from .models import MODELS
    from .train.recipe import DEFAULTS

    datasets = list(DATASETS)

    p = _Parser(prog="convprop", description="Train, evaluate and use CNNs whose forward and "
                "backward passes are written out in NumPy.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    t = sub.add_parser("train", help="train a model (default: lenet5 on the embedded MNIST "
                       "sample)", description="Train a model and write a checkpoint, its "
                       "history (JSON, CSV), test metrics and a plot of the curves.")
    t.add_argument("--model", default="lenet5", choices=sorted(MODELS))
    t.add_argument("--dataset", default="mnist-sample", choices=datasets)
    t.add_argument("--data-dir", help="directory holding the dataset's original files "
                   "(e.g. ../shared/data/mnist)")
    t.add_argument("--download", action="store_true",
                   help="download the dataset into the cache if it is missing")
    t.add_argument("--epochs", type=_positive(int), default=DEFAULTS["epochs"])
    t.add_argument("--batch-size", type=_positive(int), default=DEFAULTS["batch_size"])
    t.add_argument("--lr", type=_positive(float), default=DEFAULTS["lr"])
    t.add_argument("--optimizer", default=DEFAULTS["optimizer"], choices=OPTIMIZERS)
    t.add_argument("--momentum", type=float, default=0.9, help="for sgd and rmsprop")
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--schedule", default=DEFAULTS["schedule"], choices=SCHEDULES)
    t.add_argument("--augment", action="store_true",
                   help="random crops (and flips for colour images)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", help="output directory (default runs/MODEL-DATASET)")
    t.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue a run from its checkpoint (up to --epochs in total)")
    t.add_argument("--limit", type=_positive(int), metavar="N",
                   help="use only the first N images of each split (quick checks)")
    t.add_argument("--quiet", action="store_true", help="no progress output")

    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset's test split",
                       description="Loss, accuracy, top-5 and the confusion matrix of a "
                       "checkpoint on a dataset split.")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", choices=datasets,
                   help="default: the dataset the checkpoint was trained on")
    e.add_argument("--data-dir")
    e.add_argument("--split", default="test", choices=("train", "test"))
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")

    r = sub.add_parser("predict", help="classify images with a checkpoint",
                       description="Print the predicted class and its probability for each "
                       "image (PNG/JPEG need Pillow; .npy arrays hold raw 0..255 pixels).")
    r.add_argument("checkpoint")
    r.add_argument("images", nargs="+")
    r.add_argument("--invert", action="store_true",
                   help="invert pixel values (dark digits on light paper -> MNIST's convention)")
    r.add_argument("--top", type=_positive(int), default=1, help="show the top K classes")
    for mod in discover().values():  # the subcommands of convprop.commands, one module each
        mod.add_parser(sub)
    return p


def _load_model(path):
    from . import models
    from .io import load_checkpoint

    ckpt = load_checkpoint(path)
    cfg = ckpt.model_config
    if not cfg or "name" not in cfg:
        raise ValueError(f"{path}: the checkpoint does not record which model it holds")
    model = models.build(**cfg)
    ckpt.restore(model)
    pre = ckpt.extra.get("preprocess")
    if pre is None:
        raise ValueError(f"{path}: the checkpoint does not record its preprocessing")
    return ckpt, model, pre


def _cmd_train(a) -> int:
    from .train.recipe import TrainConfig, run

    cfg = TrainConfig(model=a.model, dataset=a.dataset, data_dir=a.data_dir,
                      download=a.download, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                      optimizer=a.optimizer, momentum=a.momentum, weight_decay=a.weight_decay,
                      schedule=a.schedule, augment=a.augment, seed=a.seed,
                      out=a.out or os.path.join("runs", f"{a.model}-{a.dataset}"),
                      resume=a.resume, verbose=0 if a.quiet else 1, limit=a.limit)
    result = run(cfg)
    print(f"test accuracy: {result['metrics']['accuracy']:.4f}")
    return 0


def _cmd_evaluate(a) -> int:
    from .data import load_dataset
    from .layers import CrossEntropyLoss
    from .train import evaluate
    from .train.recipe import prepare_images

    ckpt, model, pre = _load_model(a.checkpoint)
    name = a.dataset or ckpt.extra.get("dataset") or "mnist-sample"
    data = load_dataset(name, a.split, root=a.data_dir)
    x = prepare_images(data.images, pre["mean"], pre["std"])
    m = evaluate(model, CrossEntropyLoss(), (x, data.labels), verbose=1)
    if a.json:
        print(json.dumps({**m, "confusion": m["confusion"].tolist()}))
        return 0
    print(f"{name} {a.split}: {len(x)} images, loss {m['loss']:.4f}, accuracy "
          f"{m['accuracy']:.4f}, top-5 {m.get('top5', float('nan')):.4f}")
    print("confusion matrix (rows: true class, columns: predicted):")
    print(m["confusion"])
    return 0


def _read_image(path, channels, shape, invert):
    """One example as float64 (channels, *shape): a .npy array of raw 0..255 values (the
    channel axis may be left out when there is one), or a PNG/JPEG for 2-D models."""
    want = (channels, *shape)
    if path.endswith(".npy"):
        a = np.load(path, allow_pickle=False).astype(np.float64)
        if a.ndim == len(shape) and channels == 1:
            a = a[None]
        if a.ndim == len(want) + 1 and a.shape[0] == 1:
            a = a[0]
    else:
        if len(shape) != 2:
            raise ValueError(f"predict: {path}: this model takes {len(shape)}-D examples of "
                             f"shape {want}; pass them as .npy arrays")
        try:
            from PIL import Image
        except ImportError:
            raise ValueError("reading PNG/JPEG needs Pillow: pip install 'convprop[images]' "
                             "(or pass .npy arrays)") from None
        img = Image.open(path).convert("L" if channels == 1 else "RGB")
        if img.size != (shape[1], shape[0]):
            img = img.resize((shape[1], shape[0]), Image.BILINEAR)
        a = np.asarray(img, dtype=np.float64)
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    if a.shape != want:
        alt = f" or {tuple(shape)}" if channels == 1 else ""
        raise ValueError(f"predict: {path} has shape {a.shape}, expected {want}{alt}")
    return 255.0 - a if invert else a


def _cmd_predict(a) -> int:
    from .train import predict

    ckpt, model, pre = _load_model(a.checkpoint)
    classes = ckpt.extra.get("classes") or [str(i) for i in range(10)]
    # checkpoints before 1-D/3-D data recorded only a square image's side
    shape = tuple(pre.get("shape") or (pre["size"], pre["size"]))
    imgs = np.stack([_read_image(p, pre["channels"], shape, a.invert) for p in a.images])
    bshape = (1, -1) + (1,) * len(shape)
    mean = np.asarray(pre["mean"]).reshape(bshape) * 255.0
    std = np.asarray(pre["std"]).reshape(bshape) * 255.0
    x = ((imgs - mean) / std).astype(np.float32)
    probs = predict(model, x)
    for path, p in zip(a.images, probs):
        top = np.argsort(-p, kind="stable")[:a.top]
        print(f"{path}: " + ", ".join(f"{classes[k]} ({p[k]:.4f})" for k in top))
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from .commands import discover
    from .io import CheckpointError
    from .malloc import tune_malloc
    from .train import NonFiniteLossError

    # The command owns its process, so it may retune glibc's allocator (library calls never
    # do): freed activation memory is then reused across steps instead of refaulted.
    tune_malloc()
    try:
        builtin = {"train": _cmd_train, "evaluate": _cmd_evaluate, "predict": _cmd_predict}
        if args.command in builtin:
            return builtin[args.command](args)
        return discover()[args.command].run(args)
    except (OSError, ValueError, TypeError, KeyError, CheckpointError,
            NonFiniteLossError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"convprop {args.command}: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"convprop {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
