"""Train a zoo model with PyTorch under the settings of ``convprop train``, for comparison.

``python -m benchmarks.train_torch --model lenet5 --dataset mnist --data-dir
../shared/data/mnist --epochs 10 --batch-size 64 --lr 1e-3 --optimizer adam --schedule cosine
--seed 0 [--threads N] [--json PATH]`` takes the flags of ``convprop train`` and does what it
does (``convprop.train.recipe.run``), with PyTorch doing the arithmetic:

- data: ``convprop.data.load_dataset`` (``--limit``: the first N images of each split),
  standardised per channel with the mean/std of the training images (``convprop.data.normalize``);
- model: ``twins.torch_zoo`` (verified against ``convprop.models`` by
  ``tests/models/test_zoo_parity.py``), sized from the data, with ``nn.Dropout`` in place of
  the zoo's mask-injected dropout. ``--init convprop`` (default) copies the initial weights of
  ``convprop.models.build(model, rng=default_rng(seed))``, exactly what ``convprop train``
  starts from, and then shuffles with that same generator, so both see the same batches in
  the same order (dropout masks differ). ``--init torch`` keeps PyTorch's default
  initialisation (``torch.manual_seed(seed)``) and shuffles with a fresh ``default_rng(seed)``;
- optimizer and schedule: ``torch.optim`` / ``torch.optim.lr_scheduler`` with the
  hyperparameters ``convprop.optim.build_optimizer`` / ``build_schedule`` get (schedules step
  once per epoch; "cosine" is ``CosineAnnealingLR(T_max=epochs)``, "none" a constant lr);
- ``--augment``: ``convprop.data.random_crop`` (and flips for colour images) from the same
  generator, as ``convprop train --augment``.

After every epoch it evaluates the test split, prints one line (loss, train accuracy, test
loss and accuracy, lr, epoch wall time) and, at the end, a summary line; ``--json`` writes the
per-epoch records with the keys of convprop's ``history.json``. Torch uses as many threads as
NumPy's BLAS (``--threads`` sets both). glibc's allocator keeps its defaults here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

__all__ = ["build_model", "build_optimizer", "build_schedule", "load_data", "main", "train"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("none", "step", "multistep", "exponential", "cosine", "warmup_cosine", "plateau")


def _parser() -> argparse.ArgumentParser:
    from convprop.models import MODELS  # the names of twins.torch_zoo.TORCH_MODELS
    from convprop.train.recipe import DEFAULTS
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_torch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="lenet5", choices=sorted(MODELS))
    from convprop.data import DATASETS
    p.add_argument("--dataset", default="mnist-sample", choices=DATASETS)
    p.add_argument("--data-dir", help="directory holding the dataset's original files")
    p.add_argument("--download", action="store_true", help="download a missing dataset")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--optimizer", default=DEFAULTS["optimizer"], choices=OPTIMIZERS)
    p.add_argument("--momentum", type=float, default=0.9, help="for sgd and rmsprop")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", default=DEFAULTS["schedule"], choices=SCHEDULES)
    p.add_argument("--augment", action="store_true", help="random crops (and flips for colour)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, metavar="N", help="first N images of each split")
    p.add_argument("--init", default="convprop", choices=("convprop", "torch"),
                   help="initial weights: convprop's for this seed (default) or PyTorch's")
    p.add_argument("--threads", type=int, default=None,
                   help="torch and NumPy BLAS threads (default: NumPy's, usually all CPUs)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the per-epoch records here")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return p


def load_data(dataset: str, data_dir=None, *, download=False, limit=None):
    """(x_train, y_train, x_test, y_test, mean, std, classes) as ``convprop train`` prepares
    them: float32 (N, C, *spatial) standardised with the training images' per-channel
    statistics."""
    from convprop.data import channel_stats, load_dataset, normalize
    train = load_dataset(dataset, "train", root=data_dir, download=download)
    test = load_dataset(dataset, "test", root=data_dir, download=download)
    if limit is not None:
        train, test = (replace(d, images=d.images[:limit], labels=d.labels[:limit])
                       for d in (train, test))
    mean, std = channel_stats(train.images)
    return (normalize(train.images, mean, std), train.labels.astype(np.int64),
            normalize(test.images, mean, std), test.labels.astype(np.int64), mean, std,
            list(train.classes))


def build_model(name: str, model_args: dict, *, init: str, rng: np.random.Generator):
    """The torch_zoo model with real ``nn.Dropout``; with ``init="convprop"`` its weights are
    convprop's initial weights drawn from ``rng`` (as ``convprop train`` draws them)."""
    import torch
    from torch import nn

    from twins.torch_zoo import TORCH_MODELS, MaskDropout
    model = TORCH_MODELS[name](**model_args)
    _swap_dropout(model, MaskDropout, nn.Dropout)
    if init == "convprop":
        from convprop.models import build
        state = build(name, rng=rng, dtype=np.float32, **model_args).state_dict()
        model.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32))
                               for k, v in state.items()}, strict=True)
    return model


def _swap_dropout(module, old, new) -> None:
    for key, child in module.named_children():
        if isinstance(child, old):
            setattr(module, key, new(child.p))
        else:
            _swap_dropout(child, old, new)


def build_optimizer(name: str, params, *, lr, momentum, weight_decay):
    """``torch.optim`` with the hyperparameters ``convprop train`` passes its optimizer."""
    import torch
    kw = {"lr": lr, "weight_decay": weight_decay}
    if name in ("sgd", "rmsprop"):
        kw["momentum"] = momentum
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "rmsprop": torch.optim.RMSprop}[name]
    return cls(params, **kw)


def build_schedule(name: str, opt, epochs: int):
    """The epoch-level schedule with ``convprop.optim.build_schedule``'s defaults, or None."""
    from torch.optim import lr_scheduler as S
    if name == "none":
        return None
    if name == "step":
        return S.StepLR(opt, max(1, epochs // 3), 0.1)
    if name == "multistep":
        return S.MultiStepLR(opt, sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)}), 0.1)
    if name == "exponential":
        return S.ExponentialLR(opt, 0.95)
    if name == "cosine":
        return S.CosineAnnealingLR(opt, epochs, 0.0)
    if name == "plateau":
        return S.ReduceLROnPlateau(opt)
    warm = max(1, epochs // 10)
    if warm >= epochs:
        raise ValueError(f"warmup_cosine: warmup_epochs must be < epochs ({epochs}), got {warm}")
    return S.SequentialLR(opt, [S.LinearLR(opt, 0.1, 1.0, warm),
                                S.CosineAnnealingLR(opt, epochs - warm, 0.0)], [warm])


def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) in evaluation mode."""
    import torch
    model.eval()
    total, correct = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(x), batch_size):
            out = model(torch.from_numpy(x[s:s + batch_size]))
            yb = torch.from_numpy(y[s:s + batch_size])
            total += float(torch.nn.functional.cross_entropy(out, yb, reduction="sum"))
            correct += int((out.argmax(1) == yb).sum())
    return total / len(x), correct / len(x)


def _augmenter(channels: int):
    from convprop.data import random_crop, random_horizontal_flip

    def augment(xb, rng):
        xb = random_crop(xb, xb.shape[-1], 4 if channels == 3 else 2, rng)
        return random_horizontal_flip(xb, rng) if channels == 3 else xb
    return augment


def train(args, *, file=sys.stdout) -> dict:
    """Run the configured training; return ``{"config", "environment", "epochs", "test"}``."""
    import torch
    from torch.nn import functional as tF

    from .harness import blas_threads, set_blas_threads
    if args.threads:
        set_blas_threads(args.threads)
    threads = args.threads or blas_threads()
    torch.set_num_threads(threads)
    t_start = time.perf_counter()
    x_tr, y_tr, x_te, y_te, mean, std, classes = load_data(
        args.dataset, args.data_dir, download=args.download, limit=args.limit)
    from convprop.train.recipe import input_size_of
    channels, size = x_tr.shape[1], input_size_of(x_tr.shape[2:])
    model_args = {"in_channels": channels, "num_classes": len(classes), "input_size": size}
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)  # convprop train: init, then shuffles/augmentation
    model = build_model(args.model, model_args, init=args.init, rng=rng)
    opt = build_optimizer(args.optimizer, model.parameters(), lr=args.lr,
                          momentum=args.momentum, weight_decay=args.weight_decay)
    schedule = build_schedule(args.schedule, opt, args.epochs)
    augment = _augmenter(channels) if args.augment and x_tr.ndim == 4 else None  # 2-D only
    n_params = sum(p.numel() for p in model.parameters())
    say = (lambda s: None) if args.quiet else (lambda s: print(s, file=file, flush=True))
    say(f"torch {torch.__version__}, {threads} threads: {args.model} ({n_params:,} parameters, "
        f"{args.init} init) on {args.dataset}: {len(x_tr)} training, {len(x_te)} test images; "
        f"{args.optimizer} lr {args.lr}, schedule {args.schedule}, {args.epochs} epochs of "
        f"batch {args.batch_size}, seed {args.seed}")
    records = []
    for epoch in range(1, args.epochs + 1):
        lr = float(opt.param_groups[0]["lr"])
        model.train()
        t0 = time.perf_counter()
        total, correct = 0.0, 0
        order = rng.permutation(len(x_tr))
        for s in range(0, len(x_tr), args.batch_size):
            idx = order[s:s + args.batch_size]
            xb = x_tr[idx]
            if augment is not None:
                xb = augment(xb, rng)
            xb, yb = torch.from_numpy(np.ascontiguousarray(xb)), torch.from_numpy(y_tr[idx])
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = tF.cross_entropy(out, yb)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"train_torch: the training loss became {value} at "
                                         f"epoch {epoch}, step {s // args.batch_size + 1}")
            loss.backward()
            opt.step()
            total += value * len(idx)
            correct += int((out.argmax(1) == yb).sum())
        elapsed = time.perf_counter() - t0
        val_loss, val_acc = evaluate(model, x_te, y_te, max(args.batch_size, 500))
        rec = {"epoch": epoch, "loss": total / len(x_tr), "accuracy": correct / len(x_tr),
               "val_loss": val_loss, "val_accuracy": val_acc, "lr": lr, "time": elapsed,
               "examples_per_sec": len(x_tr) / elapsed,
               "eval_time": time.perf_counter() - t0 - elapsed}
        records.append(rec)
        if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
            schedule.step(val_loss)
        elif schedule is not None:
            schedule.step()
        say(f"epoch {epoch}/{args.epochs} - loss {rec['loss']:.4f} - acc {rec['accuracy']:.4f}"
            f" - val_loss {val_loss:.4f} - val_acc {val_acc:.4f} - lr {lr:.3g} - "
            f"{elapsed:.1f}s ({rec['examples_per_sec']:.0f} ex/s)")
    wall = time.perf_counter() - t_start
    last = records[-1] if records else {"val_loss": float("nan"), "val_accuracy": float("nan")}
    train_s = sum(r["time"] for r in records)
    print(f"torch {args.model} on {args.dataset}: test accuracy {last['val_accuracy']:.4f}, "
          f"loss {last['val_loss']:.4f} after {len(records)} epochs; training "
          f"{train_s:.1f}s, total {wall:.1f}s", file=file, flush=True)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    return {"framework": "torch", "config": config,
            "environment": {"torch": torch.__version__, "numpy": np.__version__,
                            "threads": threads, "cpu_count": os.cpu_count(),
                            "parameters": n_params, "preprocess": {"mean": mean, "std": std}},
            "epochs": records,
            "test": {"accuracy": last["val_accuracy"], "loss": last["val_loss"]},
            "training_time_s": train_s, "wall_time_s": wall}


def main(argv=None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    for flag in ("epochs", "batch_size", "limit", "threads"):
        v = getattr(args, flag)
        if v is not None and v < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1, got {v}")
    if args.lr <= 0:
        p.error(f"--lr must be positive, got {args.lr}")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("train_torch: PyTorch is not installed (pip install torch)", file=sys.stderr)
        return 3
    try:
        result = train(args)
    except (OSError, ValueError, FloatingPointError) as e:
        print(f"train_torch: error: {e}", file=sys.stderr)
        return 1
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
