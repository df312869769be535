"""``convprop show``: pictures of a trained network, each written as a PNG.

    convprop show filters CHECKPOINT                     the first Conv2d's filters
    convprop show features CHECKPOINT --input IMAGE [--layer NAME]
    convprop show confusion CHECKPOINT [--dataset D] [--split test] [--limit N]
    convprop show gradients CHECKPOINT                   gradient norm per layer over training
                                                         (train with --record-gradients)

Each writes ``--out`` (default: next to the checkpoint, ``<checkpoint>-<picture>.png``) and
prints where.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["add_parser", "run"]

PICTURES = ("filters", "features", "confusion", "gradients")


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="pictures of a network as PNG: filters, feature maps, "
                       "confusion matrix, gradient norms over training")
    p.add_argument("picture", choices=PICTURES)
    p.add_argument("checkpoint")
    p.add_argument("--out", metavar="PNG", help="where to write the picture")
    p.add_argument("--input", metavar="IMAGE", help="features: the example (.npy of raw "
                   "0..255 values, or PNG/JPEG)")
    p.add_argument("--invert", action="store_true", help="features: invert the image")
    p.add_argument("--layer", help="features: the layer, a module's dotted name (e.g. 3, or "
                   "3.0.body.0 inside a block); default the first Conv2d")
    p.add_argument("--dataset", help="confusion: the dataset (default the checkpoint's)")
    p.add_argument("--data-dir")
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--limit", type=int, metavar="N", help="confusion: the first N examples")


def _out(a) -> str:
    if a.out:
        if not a.out.lower().endswith(".png"):
            raise ValueError(f"--out must name a .png file, got {a.out!r}")
        return a.out
    stem = os.path.splitext(a.checkpoint)[0]
    return f"{stem}-{a.picture}.png"


def _features(a, model, pre):
    from ..plot.network import plot_feature_maps
    from ._example import example_shape, read_example

    if a.input is None:
        raise ValueError("show features needs --input IMAGE")
    shape = example_shape(pre)
    if len(shape) != 2:
        raise ValueError(f"show features draws 2-D feature maps; this model takes "
                         f"{len(shape)}-D examples")
    x = read_example(a.input, pre, a.invert)[1]
    return plot_feature_maps(model, x.astype(np.float32), a.layer)


def _confusion(a, ckpt, model, pre):
    from ..data import load_dataset
    from ..layers.loss import criterion_for
    from ..plot.network import plot_confusion
    from ..train import evaluate
    from ..train.recipe import _check_same_data, prepare_images

    if a.limit is not None and a.limit < 1:
        raise ValueError(f"--limit must be positive, got {a.limit}")
    name = a.dataset or ckpt.extra.get("dataset") or "mnist-sample"
    data = load_dataset(name, a.split, root=a.data_dir)
    _check_same_data(a.checkpoint, ckpt, data, "show confusion")   # as evaluate does
    images, labels = data.images[:a.limit], data.labels[:a.limit]
    m = evaluate(model, criterion_for(model), (prepare_images(images, pre["mean"], pre["std"]),
                                             labels))
    return plot_confusion(m["confusion"], ckpt.extra.get("classes"),
                          title=f"confusion matrix, {name} {a.split}: {len(labels)} examples, "
                                f"accuracy {m['accuracy']:.4f}")


def run(a) -> int:
    from ..cli import _load_model
    try:
        from ..plot.network import figure, plot_filters, plot_gradient_norms, save_figure
        figure(1, 1)   # matplotlib is there
    except ImportError as e:
        raise ValueError(str(e)) from None

    out = _out(a)
    ckpt, model, pre = _load_model(a.checkpoint)
    if a.picture == "gradients":
        kinds = {n: type(m).__name__ for n, m in model.named_modules()}
        try:
            fig = plot_gradient_norms(ckpt.extra.get("history", []), kinds=kinds,
                                      title=f"gradient norm per layer: {a.checkpoint}")
        except ValueError:
            raise ValueError(f"{a.checkpoint}: its history has no gradient norms; train with "
                             "--record-gradients (fit(callbacks=[GradientNorms()]))") from None
    else:
        if a.picture == "filters":
            fig = plot_filters(model)
        elif a.picture == "features":
            fig = _features(a, model, pre)
        else:
            fig = _confusion(a, ckpt, model, pre)
    print(f"wrote {save_figure(fig, out)}")
    return 0
