"""The ``convprop`` command: ``train`` (the main job), ``evaluate`` and ``predict``; further
subcommands are the modules of :mod:`convprop.commands`."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

# predict's readers (io/examples.py); convprop.cli._read_image(path, channels, shape,
# invert) and RANGE_TOLERANCE stay importable from here for the other commands
from .io.examples import _PICTURE_FORMATS, RANGE_TOLERANCE  # noqa: F401
from .io.examples import read_example as _read_image

__all__ = ["main"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("none", "step", "multistep", "exponential", "cosine", "warmup_cosine", "plateau")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line (plus the usage argparse always prints)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(kind, low=None, strict=True, high=None):
    """An argparse type: a finite ``kind`` (int or float) above ``low`` (or at least it when
    not ``strict``) and at most ``high``."""
    def parse(s):
        try:
            v = kind(s)
        except (ValueError, OverflowError):
            what = "an int" if kind is int else f"a {kind.__name__}"
            raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}") from None
        if kind is float and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {s}")
        if low is not None and (v <= low if strict else v < low):
            msg = "must be positive" if low == 0 and strict else f"must be >= {low}"
            raise argparse.ArgumentTypeError(f"{msg}, got {s}")
        if high is not None and v > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {s}")
        return v
    return parse


def _positive(kind):
    return _number(kind, 0)


class _GivenStore(argparse._StoreAction):
    """``store`` that also records which flags the user gave (``namespace._given``), so
    ``train --resume`` can tell an explicit flag from a default."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        given = set(getattr(namespace, "_given", ()))
        namespace._given = given | {self.dest}


class _GivenStoreTrue(argparse._StoreTrueAction):
    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        namespace._given = set(getattr(namespace, "_given", ())) | {self.dest}


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
                       "history (JSON, CSV), test metrics and a plot of the curves. With "
                       "--resume the run continues from its checkpoint: --epochs, --out, "
                       "--data-dir, --download and --quiet apply; every other setting comes "
                       "from the checkpoint and giving it with another value is an error.")
    t.register("action", "store", _GivenStore)
    t.register("action", "store_true", _GivenStoreTrue)
    t.register("action", None, _GivenStore)
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
    t.add_argument("--momentum", type=_number(float, 0, strict=False), default=0.9,
                   help="for sgd and rmsprop")
    t.add_argument("--weight-decay", type=_number(float, 0, strict=False), default=0.0)
    t.add_argument("--schedule", default=DEFAULTS["schedule"], choices=SCHEDULES)
    t.add_argument("--augment", action="store_true",
                   help="random crops (and flips for colour images)")
    t.add_argument("--seed", type=_number(int, 0, strict=False, high=2**63 - 1), default=0)
    t.add_argument("--out", help="output directory (default runs/MODEL-DATASET, or the "
                   "checkpoint's directory with --resume)")
    t.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue a run from its checkpoint (up to --epochs in total; the "
                   "saved target when --epochs is not given)")
    t.add_argument("--limit", type=_positive(int), metavar="N",
                   help="use only the first N images of each split (quick checks)")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.add_argument("--init", metavar="FILE",
                   help="start from FILE: a network in ONNX (model.onnx: the file is the "
                   "architecture, --model is not used) or a PyTorch state_dict for --model "
                   "(.safetensors, or .pt/.pth read with torch.load(weights_only=True))")
    t.add_argument("--record-gradients", action="store_true",
                   help="record every layer's gradient norm each step (history columns "
                   "grad_norm/<layer>; picture: convprop show gradients)")
    t.add_argument("--sync-bn", action="store_true",
                   help="under mpiexec: batch norm with the statistics of the whole batch "
                   "over every process (convprop.distributed.SyncBatchNorm)")
    t.add_argument("--check-sync", action="store_true",
                   help="under mpiexec: compare a checksum of the parameters and optimizer "
                   "state across processes after every epoch")

    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset's test split",
                       description="Loss, accuracy, top-5 and the confusion matrix of a "
                       "checkpoint on a dataset split, with the model's criterion (cross-"
                       "entropy; eq. 9 and the smallest penalty for lenet5_classic).")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", choices=datasets,
                   help="default: the dataset the checkpoint was trained on")
    e.add_argument("--data-dir")
    e.add_argument("--split", default="test", choices=("train", "test"))
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")

    r = sub.add_parser("predict", help="classify images with a checkpoint",
                       description="Print the predicted class and its probability for each "
                       "image, as the model's criterion reads its outputs (the softmax of "
                       "logits; for lenet5_classic's RBF penalties y, softmax(-y)) "
                       "(PNG/JPEG need Pillow; .npy arrays hold raw 0..255 pixels). "
                       "Values must be finite and within 0..255 give or take 10% of the "
                       "range (-25.5..280.5); anything else is refused, naming the file.")
    r.add_argument("checkpoint")
    r.add_argument("images", nargs="+")
    r.add_argument("--invert", action="store_true",
                   help="invert pixel values (dark digits on light paper -> MNIST's convention)")
    r.add_argument("--top", type=_positive(int), default=1, help="show the top K classes")
    for mod in discover().values():  # the subcommands of convprop.commands, one module each
        mod.add_parser(sub)
    return p


def _load_model(path):
    """``(checkpoint, model, preprocess)`` from a checkpoint written by ``convprop train``:
    its metadata validated (:func:`convprop.io.load_checkpoint`), the model rebuilt from its
    config and restored. Errors are ValueErrors naming the path."""
    from . import models
    from .io import load_checkpoint

    ckpt = load_checkpoint(path)
    cfg = ckpt.model_config
    if not cfg or "name" not in cfg:
        raise ValueError(f"{path}: the checkpoint does not record which model it holds")
    pre = ckpt.extra.get("preprocess")
    if pre is None:
        raise ValueError(f"{path}: the checkpoint does not record its preprocessing")
    try:
        model = models.build(**cfg)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: cannot rebuild the model it records: {e}") from None
    ckpt.restore(model)
    return ckpt, model, pre


def _cmd_train(a) -> int:
    from .train.recipe import TrainConfig, run

    if a.init and a.init.endswith(".onnx") and "model" in getattr(a, "_given", ()):
        raise ValueError(f"--model {a.model}: with --init {a.init} the network is the ONNX "
                         "file's; drop --model")

    name = "onnx" if a.init and a.init.endswith(".onnx") else a.model
    out = a.out or (os.path.dirname(os.path.abspath(a.resume)) if a.resume
                    else os.path.join("runs", f"{name}-{a.dataset}"))
    cfg = TrainConfig(model=a.model, dataset=a.dataset, data_dir=a.data_dir,
                      download=a.download, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                      optimizer=a.optimizer, momentum=a.momentum, weight_decay=a.weight_decay,
                      schedule=a.schedule, augment=a.augment, seed=a.seed, out=out,
                      resume=a.resume, verbose=0 if a.quiet else 1, limit=a.limit,
                      init=a.init, record_gradients=a.record_gradients, sync_bn=a.sync_bn,
                      check_sync=a.check_sync)
    given = set(getattr(a, "_given", ())) | ({"verbose"} if a.quiet else set())
    result = run(cfg, given=given)
    if result["paths"]:  # rank 0 of a data-parallel run, or the only process
        print(f"test accuracy: {result['metrics']['accuracy']:.4f}")
    return 0


class _FiniteOutputs:
    """A model whose ``predict`` refuses non-finite outputs (evaluate and predict must not
    score or print garbage)."""

    def __init__(self, model, path, command):
        self.model, self.path, self.command = model, path, command

    def predict(self, x):
        y = self.model.predict(x)
        if not np.isfinite(y).all():
            n = int((~np.isfinite(y)).reshape(len(y), -1).any(axis=1).sum())
            raise ValueError(f"{self.command}: the model in {self.path} produced non-finite "
                             f"outputs (NaN or infinity) for {n} examples; its results would "
                             "be meaningless")
        return y


def _cmd_evaluate(a) -> int:
    from .data import load_dataset
    from .layers.loss import criterion_for
    from .train import evaluate
    from .train.recipe import _check_same_data, prepare_images

    ckpt, model, pre = _load_model(a.checkpoint)
    name = a.dataset or ckpt.extra.get("dataset") or "mnist-sample"
    data = load_dataset(name, a.split, root=a.data_dir)
    _check_same_data(a.checkpoint, ckpt, data, "evaluate")
    x = prepare_images(data.images, pre["mean"], pre["std"])
    m = evaluate(_FiniteOutputs(model, a.checkpoint, "evaluate"), criterion_for(model),
                 (x, data.labels), verbose=1)
    if not math.isfinite(m["loss"]):
        raise ValueError(f"evaluate: the loss of {a.checkpoint} on {name} is {m['loss']}")
    if a.json:
        print(json.dumps({**m, "confusion": m["confusion"].tolist()}))
        return 0
    print(f"{name} {a.split}: {len(x)} images, loss {m['loss']:.4f}, accuracy "
          f"{m['accuracy']:.4f}, top-5 {m.get('top5', float('nan')):.4f}")
    print("confusion matrix (rows: true class, columns: predicted):")
    print(m["confusion"])
    return 0


def _cmd_predict(a) -> int:
    from .layers.loss import criterion_for
    from .train import predict

    ckpt, model, pre = _load_model(a.checkpoint)
    classes = ckpt.extra.get("classes")
    # checkpoints before 1-D/3-D data recorded only a square image's side
    shape = tuple(pre.get("shape") or (pre["size"], pre["size"]))
    imgs = np.stack([_read_image(p, pre["channels"], shape, a.invert) for p in a.images])
    bshape = (1, -1) + (1,) * len(shape)
    mean = np.asarray(pre["mean"]).reshape(bshape) * 255.0
    std = np.asarray(pre["std"]).reshape(bshape) * 255.0
    x = ((imgs - mean) / std).astype(np.float32)
    # the model's criterion reads its outputs: softmax of logits, softmax(-y) of RBF penalties
    probs = predict(_FiniteOutputs(model, a.checkpoint, "predict"), x,
                    criterion=criterion_for(model))
    if not np.isfinite(probs).all():
        raise ValueError(f"predict: the model in {a.checkpoint} gave non-finite probabilities")
    if classes is None or len(classes) != probs.shape[1]:  # unnamed: the class indices
        classes = [str(i) for i in range(probs.shape[1])]
    for path, p in zip(a.images, probs):
        top = np.argsort(-p, kind="stable")[:a.top]
        print(f"{path}: " + ", ".join(f"{classes[k]} ({p[k]:.4f})" for k in top))
    return 0


def _one_line(msg) -> str:
    return str(msg).replace("\r", "\\r").replace("\n", "\\n")


def _fail(command: str, msg: str) -> int:
    """Report a failed command in one line. In a data-parallel job the other processes would
    wait for this one forever: name the rank and abort the whole job."""
    from .distributed.comm import active
    comm = active()
    if comm is not None and comm.size > 1:
        comm.abort(f"convprop {command}: rank {comm.rank} of {comm.size}: error: {msg}")
    print(f"convprop {command}: error: {msg}", file=sys.stderr)
    return 1


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from .commands import discover
    from .distributed.data_parallel import OutOfSyncError
    from .io import CheckpointError
    from .malloc import tune_malloc
    from .train import NonFiniteLossError

    # The command owns its process, so it may retune glibc's allocator (library calls never
    # do): freed activation memory is then reused across steps instead of refaulted.
    tune_malloc()
    try:
        from .functional._engine.threads import num_threads
        from .io.safetensors import max_bytes_default
        from .limits import max_array_bytes
        # a bad environment variable is reported as that, not inside a model's error
        num_threads(), max_bytes_default(), max_array_bytes()
        builtin = {"train": _cmd_train, "evaluate": _cmd_evaluate, "predict": _cmd_predict}
        if args.command in builtin:
            return builtin[args.command](args)
        return discover()[args.command].run(args)
    except (OSError, ValueError, TypeError, KeyError, CheckpointError, ArithmeticError,
            NonFiniteLossError, OutOfSyncError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        return _fail(args.command, _one_line(msg))
    except ImportError as e:  # an optional dependency the command needs (the hint says which)
        return _fail(args.command, _one_line(e))
    except MemoryError:
        print(f"convprop {args.command}: error: out of memory", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"convprop {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
