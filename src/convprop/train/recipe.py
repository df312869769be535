"""The main job as a function: data, model, optimizer, schedule, fit, test, and the outputs.

``convprop train`` is a thin wrapper over :func:`run`. The output directory receives
``checkpoint.safetensors`` (resumable, written after every epoch), ``history.json``,
``history.csv``, ``metrics.json`` (test loss, accuracy, top-5, confusion matrix) and, when
matplotlib is installed, ``curves.png``.

The model chooses two things itself when it defines them: its training criterion
(``criterion()``, see :func:`convprop.layers.loss.criterion_for`; cross-entropy otherwise),
which also reads its outputs as classes, and a fixed input scaling
(``input_normalization() -> (mean, std)`` on the [0, 1] pixel scale) used in place of the
training data's per-channel statistics and recorded in the checkpoint like them.
``lenet5_classic`` defines both (eq. 9's RBF criterion, the paper's [-0.1, 1.175] scaling).
"""

from __future__ import annotations

import json
import os
import sys
import time
import math
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from ..io import atomic_write
from .callbacks import Callback
from .history import History

__all__ = ["TrainConfig", "run", "input_size_of", "prepare_images", "DEFAULTS",
           "FROM_CHECKPOINT", "APPLY_ON_RESUME"]

# Defaults for the main job; anything given explicitly overrides them.
# 8 epochs of Adam at 2e-3 with cosine decay: 98.2-98.7% on the embedded test split over
# seeds 0-3, about 12 s on 2 cores (the main job must reach 97% within 60 s).
DEFAULTS = {"optimizer": "adam", "lr": 2e-3, "schedule": "cosine", "batch_size": 64,
            "epochs": 8}


@dataclass
class TrainConfig:
    model: str = "lenet5"
    dataset: str = "mnist-sample"
    data_dir: str | None = None
    download: bool = False
    epochs: int = DEFAULTS["epochs"]
    batch_size: int = DEFAULTS["batch_size"]
    lr: float = DEFAULTS["lr"]
    optimizer: str = DEFAULTS["optimizer"]
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = DEFAULTS["schedule"]
    augment: bool = False
    seed: int = 0
    out: str = "runs/lenet5-mnist-sample"
    resume: str | None = None
    verbose: int = 1
    limit: int | None = None
    model_args: dict = field(default_factory=dict)
    init: str | None = None
    record_gradients: bool = False
    sync_bn: bool = False
    check_sync: bool = False


#: Settings a resumed run takes from its checkpoint: they are fixed for the whole run, so
#: giving one with --resume is refused unless it equals the saved value.
FROM_CHECKPOINT = {"model": "the model", "dataset": "the data set",
                   "batch_size": "the batch size", "lr": "the learning rate",
                   "optimizer": "the optimizer", "momentum": "the momentum",
                   "weight_decay": "the weight decay", "schedule": "the schedule",
                   "augment": "the augmentation", "seed": "the random seed (the generators' "
                   "states are in the checkpoint)", "limit": "the subset of the data",
                   "model_args": "the model's arguments",
                   "init": "the initial network (its weights are in the checkpoint now)"}
#: Settings that apply to a resumed run: the epoch target (recorded in the history as
#: "epochs_target"), where outputs go, where the data lives, progress output.
APPLY_ON_RESUME = ("epochs", "out", "data_dir", "download", "verbose", "resume",
                   "record_gradients", "sync_bn", "check_sync")


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _check_saved_config(path, saved) -> dict:
    """The ``train_config`` a checkpoint carries, validated as untrusted data."""
    from ..data import DATASETS
    from ..models import MODELS
    from ..optim import OPTIMIZERS, SCHEDULES
    if not isinstance(saved, dict) or not saved:
        raise ValueError(f"--resume: {path} was not written by `convprop train`")
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(saved) - names)
    if unknown:
        raise ValueError(f"--resume: {path} has unknown train_config entries {unknown[:5]}")

    def pos_int(v):
        return type(v) is int and v >= 1

    def num(lo, strict=False):
        return lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)
                          and math.isfinite(v) and (v > lo if strict else v >= lo))
    rules = {"model": (lambda v: v in MODELS or v == "onnx",
                       f"one of {sorted(MODELS)} or 'onnx'"),
             "dataset": (lambda v: v in DATASETS, f"one of {list(DATASETS)}"),
             "data_dir": (lambda v: v is None or isinstance(v, str), "a path or null"),
             "download": (lambda v: isinstance(v, bool), "a bool"),
             "epochs": (pos_int, "an int >= 1"), "batch_size": (pos_int, "an int >= 1"),
             "lr": (num(0, True), "a finite number > 0"),
             "optimizer": (lambda v: v in OPTIMIZERS, f"one of {sorted(OPTIMIZERS)}"),
             "momentum": (num(0), "a finite number >= 0"),
             "weight_decay": (num(0), "a finite number >= 0"),
             "schedule": (lambda v: v in SCHEDULES, f"one of {list(SCHEDULES)}"),
             "augment": (lambda v: isinstance(v, bool), "a bool"),
             "seed": (lambda v: type(v) is int and 0 <= v < 2**128, "an int >= 0"),
             "out": (lambda v: isinstance(v, str), "a path"),
             "resume": (lambda v: v is None or isinstance(v, str), "a path or null"),
             "verbose": (lambda v: type(v) is int, "an int"),
             "limit": (lambda v: v is None or pos_int(v), "an int >= 1 or null"),
             "model_args": (lambda v: isinstance(v, dict), "an object"),
             "init": (lambda v: v is None or isinstance(v, str), "a path or null"),
             "record_gradients": (lambda v: isinstance(v, bool), "a bool"),
             "sync_bn": (lambda v: isinstance(v, bool), "a bool"),
             "check_sync": (lambda v: isinstance(v, bool), "a bool")}
    for k, v in saved.items():
        ok, what = rules[k]
        try:
            good = ok(v)
        except TypeError:  # e.g. an unhashable value tested against a dict of names
            good = False
        if not good:
            raise ValueError(f"--resume: {path} has a malformed train_config: {k} must be "
                             f"{what}, got {v!r}"[:400])
    return saved


def _resumed_config(cfg: TrainConfig, ckpt, given) -> tuple[TrainConfig, dict]:
    """The configuration of a resumed run: the checkpoint's, with the settings of
    APPLY_ON_RESUME taken from ``cfg`` where given; a setting of FROM_CHECKPOINT given with
    another value than the saved one is refused, naming the flag."""
    saved = _check_saved_config(cfg.resume, ckpt.extra.get("train_config"))
    defaults = TrainConfig()
    if given is None:  # a library call: what differs from the defaults counts as given
        given = {f.name for f in fields(TrainConfig)
                 if getattr(cfg, f.name) != getattr(defaults, f.name)}
    full = {**asdict(defaults), **saved}
    clash = [f"{_flag(k)} {getattr(cfg, k)!r} (the checkpoint's {FROM_CHECKPOINT[k]}: "
             f"{full[k]!r})" for k in FROM_CHECKPOINT if k in given and getattr(cfg, k) != full[k]]
    if clash:
        raise ValueError(f"--resume: {'; '.join(clash)}: these settings come from the "
                         "checkpoint and cannot change mid-run; drop them, or start a new run "
                         "without --resume")
    over = {k: getattr(cfg, k) for k in APPLY_ON_RESUME if k in given or k == "resume"}
    if "epochs" in over and over["epochs"] < ckpt.epoch:
        raise ValueError(f"--epochs {over['epochs']}: the checkpoint {cfg.resume} has already "
                         f"trained {ckpt.epoch} epochs; give --epochs {ckpt.epoch} or more")
    for k in ("out", "verbose"):
        over.setdefault(k, getattr(cfg, k))
    return TrainConfig(**{**full, **over}), full


def input_size_of(spatial) -> int | tuple:
    """The zoo's ``input_size`` for examples of spatial shape ``spatial``: an int when every
    size is equal (the 2-D zoo's square images, a 1-D length), else the tuple (a 16x32x32
    clip)."""
    return spatial[0] if len(set(spatial)) == 1 else tuple(spatial)


def prepare_images(images: np.ndarray, mean, std) -> np.ndarray:
    """uint8 (N, C, *spatial) pixels -> float32, standardised per channel with ``mean``/``std``
    given on the [0, 1] scale."""
    from ..data import normalize
    return normalize(images, mean, std)


#: The optimizers ``--momentum`` applies to (given with another one it is refused).
_MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop")


def _optimizer_kwargs(cfg: TrainConfig) -> dict:
    kw = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if cfg.optimizer in _MOMENTUM_OPTIMIZERS:
        kw["momentum"] = cfg.momentum
    return kw


def _augmenter(channels: int):
    from ..data import random_crop, random_horizontal_flip

    def augment(xb, rng):
        xb = random_crop(xb, xb.shape[-1], 4 if channels == 3 else 2, rng)
        return random_horizontal_flip(xb, rng) if channels == 3 else xb
    return augment


def run(cfg: TrainConfig, *, file=None, given=None) -> dict:
    """Train as configured; return the test metrics and the paths written.

    With ``cfg.resume`` the run continues from that checkpoint: the settings in
    :data:`FROM_CHECKPOINT` come from it (one given with another value is a ValueError naming
    its flag), those in :data:`APPLY_ON_RESUME` apply. ``given`` names the settings the user
    gave explicitly (the command passes its flags); None counts those that differ from
    TrainConfig's defaults. A changed epoch target is recorded in every later history
    record as ``epochs_target``.

    Started by an MPI launcher on K > 1 processes (``mpiexec -n K convprop train``), the run
    is data-parallel (:class:`convprop.distributed.DataParallel`): every rank trains on its
    share of each batch, and only rank 0 prints and writes the outputs."""
    from .. import models
    from ..data import channel_stats, load_dataset
    from ..io import load_checkpoint
    from ..layers.loss import criterion_for
    from ..optim import build_optimizer, build_schedule
    from ..plot import have_matplotlib, plot_history
    from .callbacks import SaveCheckpoint
    from .evaluate import evaluate
    from .loop import fit

    from ..distributed import DataParallel, SyncBatchNorm, world
    from .gradient_norms import GradientNorms

    comm = world()
    lead = comm.rank == 0  # only rank 0 prints and writes
    gave_momentum = ("momentum" in given if given is not None
                     else cfg.momentum != TrainConfig.momentum)
    file = sys.stderr if file is None else file
    say = ((lambda s: print(s, file=file, flush=True)) if cfg.verbose and lead
           else (lambda s: None))
    ckpt = load_checkpoint(cfg.resume) if cfg.resume else None
    horizon = cfg.epochs  # the epoch count the learning-rate schedule is laid out over
    target_changed = False
    if ckpt is not None:
        # a resumed run continues the saved configuration; the schedule keeps the horizon
        # its saved state was laid out over
        cfg, saved = _resumed_config(cfg, ckpt, given)
        horizon = int(ckpt.extra.get("schedule_epochs", saved["epochs"]))
        target_changed = cfg.epochs != saved["epochs"]
        if cfg.epochs != horizon and saved["schedule"] != "none":
            say(f"note: --epochs {cfg.epochs} differs from the {horizon} epochs the "
                f"{saved['schedule']} schedule was laid out over; it continues from its saved "
                "state on that horizon")
    if gave_momentum and cfg.optimizer not in _MOMENTUM_OPTIMIZERS:
        raise ValueError(f"--momentum {cfg.momentum}: the {cfg.optimizer} optimizer has no "
                         f"momentum setting (it applies to {' and '.join(_MOMENTUM_OPTIMIZERS)})"
                         "; drop it")
    if cfg.init and cfg.init.endswith(".onnx") and ckpt is None:
        # the file is the architecture: the run trains (and its checkpoint records) it
        cfg = replace(cfg, model="onnx", model_args={**cfg.model_args,
                                                     "path": os.path.abspath(cfg.init)})
    t_start = time.perf_counter()
    train = load_dataset(cfg.dataset, "train", root=cfg.data_dir, download=cfg.download)
    test = load_dataset(cfg.dataset, "test", root=cfg.data_dir, download=cfg.download)
    if cfg.limit is not None:  # quick runs: the first `limit` images of each split
        train, test = (replace(d, images=d.images[:cfg.limit], labels=d.labels[:cfg.limit])
                       for d in (train, test))
    channels, spatial = train.images.shape[1], train.images.shape[2:]
    want = models.SPATIAL_DIMS.get(cfg.model)
    if want is not None and want != len(spatial):
        fits = sorted(n for n, d in models.SPATIAL_DIMS.items() if d == len(spatial))
        raise ValueError(f"model {cfg.model} takes inputs with {want} spatial axes, but "
                         f"{cfg.dataset} holds {len(spatial)}-D examples of shape "
                         f"{tuple(train.images.shape[1:])}; models for it: {', '.join(fits)}")
    size = input_size_of(spatial)
    if cfg.augment and len(spatial) != 2:
        say(f"note: --augment (random crop and flip) is for 2-D images; the {len(spatial)}-D "
            f"{cfg.dataset} data is used as it is")

    rng = np.random.default_rng(cfg.seed)
    model_args = {"in_channels": channels, "num_classes": len(train.classes),
                  "input_size": size, **cfg.model_args}
    model = models.build(cfg.model, rng=rng, **model_args)
    if getattr(model, "softmax_removed", None):
        say(f"note: {cfg.init} ends in a Softmax ({model.softmax_removed!r}); training its "
            "input, the logits (cross-entropy applies its own softmax)")
    loss = criterion_for(model)  # CrossEntropyLoss unless the model says otherwise
    # a model with a fixed input scaling (LeNet-5 as published) gives it as mean/std, so the
    # checkpoint's preprocess record (and evaluate/predict/explain) apply it too
    fixed = getattr(model, "input_normalization", None)
    mean, std = fixed() if fixed is not None else channel_stats(train.images)
    x_train, x_test = (prepare_images(d.images, mean, std) for d in (train, test))
    say(f"data: {cfg.dataset}: {len(x_train)} training and {len(x_test)} test examples of "
        f"{'x'.join(map(str, train.images.shape[1:]))}, {len(train.classes)} classes"
        + (" (the model's own input scaling)" if fixed is not None else ""))
    if cfg.model == "onnx":  # pin the file's digest: a resumed run must find the same bytes
        cfg = replace(cfg, model_args={**cfg.model_args, "sha256": model.config["sha256"]})
    elif cfg.init and ckpt is None:  # a PyTorch state_dict for this zoo model
        from ..interop import init_model
        model = init_model(cfg.init, model)
        say(f"initial weights: {cfg.init}")
    if cfg.sync_bn:  # same parameters and buffers: checkpoints load either way
        model = SyncBatchNorm.convert(model, comm)
    optimizer = build_optimizer(cfg.optimizer, model.parameters(), **_optimizer_kwargs(cfg))
    schedule = build_schedule(cfg.schedule, optimizer, horizon)
    history, start = History(), 0
    if ckpt is not None:
        _check_same_data(cfg.resume, ckpt, train, "--resume")
        ckpt.restore(model, optimizer, schedule, rng)
        history = History(records=list(ckpt.extra.get("history", [])))
        start = ckpt.epoch
        say(f"resumed from {cfg.resume} after epoch {start}")
    say(f"model: {cfg.model} ({model.num_parameters():,} parameters); optimizer "
        f"{cfg.optimizer} lr {cfg.lr}; schedule {cfg.schedule}; {cfg.epochs} epochs of batch "
        f"{cfg.batch_size}; seed {cfg.seed}")
    if comm.size > 1:
        say(f"data-parallel on {comm.size} processes: {cfg.batch_size // comm.size}-"
            f"{-(-cfg.batch_size // comm.size)} examples of each batch per process"
            + (", synchronized batch norm" if cfg.sync_bn else ""))

    if lead:
        os.makedirs(cfg.out, exist_ok=True)
    paths = {k: os.path.join(cfg.out, v) for k, v in (
        ("checkpoint", "checkpoint.safetensors"), ("history_json", "history.json"),
        ("history_csv", "history.csv"), ("metrics", "metrics.json"), ("plot", "curves.png"))}
    saved_cfg = {**asdict(cfg), "resume": None}
    extra = {"train_config": saved_cfg, "schedule_epochs": horizon,
             "classes": list(train.classes),
             "preprocess": {"mean": mean, "std": std, "channels": channels, "size": size,
                            "shape": list(spatial)},
             "dataset": cfg.dataset}
    # order matters: gradients are averaged over the ranks before they are recorded, and the
    # checkpoint is written last, with the epoch's complete record
    callbacks = []
    if comm.size > 1:
        callbacks.append(DataParallel(comm, check=cfg.check_sync))
    if cfg.record_gradients:
        callbacks.append(GradientNorms())
    if target_changed or (ckpt is not None and "epochs_target" in (history.records or [{}])[-1]):
        callbacks.append(_RecordTarget(cfg.epochs))
    if lead:
        callbacks.append(SaveCheckpoint(paths["checkpoint"], model_config=model.config,
                                        extra=extra))
    fit(model, loss, optimizer, (x_train, train.labels), epochs=cfg.epochs,
        batch_size=cfg.batch_size, val_data=(x_test, test.labels), schedule=schedule, rng=rng,
        callbacks=callbacks, verbose=cfg.verbose if lead else 0, initial_epoch=start,
        history=history,
        augment=_augmenter(channels) if cfg.augment and len(spatial) == 2 else None, file=file)
    metrics = evaluate(model, loss, (x_test, test.labels), topk=(1, 5))
    wall = time.perf_counter() - t_start
    report = {k: v for k, v in metrics.items() if k != "confusion"}
    report.update(confusion=metrics["confusion"].tolist(), wall_time_s=wall,
                  epochs=cfg.epochs, model=cfg.model, dataset=cfg.dataset)
    if not lead:
        return {"metrics": report, "paths": {}, "history": history}
    history.to_json(paths["history_json"])
    history.to_csv(paths["history_csv"])
    atomic_write(paths["metrics"], json.dumps(report, indent=2) + "\n")
    if have_matplotlib() and len(history):
        plot_history(history, paths["plot"], title=f"{cfg.model} on {cfg.dataset}",
                     val_label="test")
    else:
        paths.pop("plot")
    say(f"test: accuracy {metrics['accuracy']:.4f}, top-5 {metrics.get('top5', 0):.4f}, "
        f"loss {metrics['loss']:.4f} on {len(x_test)} images; total {wall:.1f}s")
    say("wrote " + ", ".join(paths.values()))
    return {"metrics": report, "paths": paths, "history": history}


def _check_same_data(path, ckpt, data, flag: str) -> None:
    """Refuse data whose example shape or class names differ from the checkpoint's, naming
    both data sets (the same shape with other classes would train or score garbage)."""
    pre = ckpt.extra.get("preprocess") or {}
    theirs = ckpt.extra.get("dataset", "?")
    shape = pre.get("shape") or ([pre["size"]] * 2 if type(pre.get("size")) is int
                                 else pre.get("size"))
    if shape is not None and "channels" in pre:
        want = (pre["channels"], *shape)
        if tuple(data.images.shape[1:]) != want:
            raise ValueError(f"{flag}: {path} was trained on {theirs} examples of shape {want}, "
                             f"but {data.name} holds examples of shape "
                             f"{tuple(data.images.shape[1:])}")
    classes = ckpt.extra.get("classes")
    if classes is not None and list(classes) != list(data.classes):
        raise ValueError(f"{flag}: {path} was trained on {theirs} with classes "
                         f"{list(classes)[:4]}..., but {data.name} has classes "
                         f"{list(data.classes)[:4]}...; they do not match")


class _RecordTarget(Callback):
    """A fit callback: record the epoch target in each epoch's history record (a resumed run
    whose --epochs changed it), before the checkpoint saves the history."""

    def __init__(self, target: int):
        self.target = target

    def on_epoch_end(self, state, logs):
        state.history.records[-1]["epochs_target"] = self.target
