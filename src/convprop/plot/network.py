"""Pictures of a network: first-layer filters, feature maps, the confusion matrix and the
gradient norm of every layer over training. Each function returns a
``matplotlib.figure.Figure`` made without pyplot (no global state: the backend is left as
it is, and nothing piles up in pyplot's figure list; save it with ``fig.savefig(path)`` or
:func:`save_figure`), draws with a stated colour scale (a colour bar, or the scale in the
title) and raises ValueError for input it cannot draw.
"""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["feature_maps", "figure", "first_conv", "plot_confusion", "plot_feature_maps",
           "plot_filters", "plot_gradient_norms", "save_figure"]


def figure(width: float, height: float, **kw):
    """A new Figure of ``width`` x ``height`` inches, not registered with pyplot; an
    ImportError with the install hint when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("convprop.plot needs matplotlib: pip install 'convprop[plot]'") \
            from None
    return Figure(figsize=(width, height), **kw)


def save_figure(fig, path, *, dpi: int = 110) -> str:
    """Write ``fig`` to ``path`` (folders made) and return the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return os.fspath(path)


def _grid(n: int, max_cols: int = 8) -> tuple:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def first_conv(model):
    """(dotted name, module) of the first 2-D convolution of ``model``."""
    for name, m in model.named_modules():
        if type(m).__name__ == "Conv2d":
            return name, m
    raise ValueError(f"first_conv: {type(model).__name__} has no Conv2d layer")


def plot_filters(model_or_weight, *, max_filters: int = 64, title: str = ""):
    """The filters of the first Conv2d (or a weight array (C_out, C_in, KH, KW)) as a grid.

    One input channel: each filter in a diverging map, one symmetric scale for all (colour
    bar: weight value, 0 is white). Three channels: each filter as an RGB image, all mapped by
    one linear scale [min, max] -> [0, 1] stated in the title. Otherwise each filter is the
    mean over its input channels. The first ``max_filters`` filters are drawn."""
    name = "weight"
    if isinstance(model_or_weight, np.ndarray):
        w = model_or_weight
    else:
        name, conv = first_conv(model_or_weight)
        w = conv.weight.value
    w = np.asarray(w, np.float64)
    if w.ndim != 4:
        raise ValueError(f"plot_filters: expected a (C_out, C_in, KH, KW) weight, got shape "
                         f"{w.shape}")
    w = w[:max_filters]
    n, cin = w.shape[:2]
    rows, cols = _grid(n)
    fig = figure(1.2 * cols + 1.4, 1.2 * rows + 0.9)
    axes = fig.subplots(rows, cols, squeeze=False)
    if cin == 3:
        lo, hi = float(w.min()), float(w.max())
        imgs = ((w - lo) / (hi - lo if hi > lo else 1.0)).transpose(0, 2, 3, 1)
        kw = {}
        scale = f"RGB, one scale for all: [{lo:.3g}, {hi:.3g}] -> [0, 1]"
    else:
        imgs = w[:, 0] if cin == 1 else w.mean(axis=1)
        m = float(np.abs(imgs).max()) or 1.0
        kw = dict(cmap="RdBu_r", vmin=-m, vmax=m)
        scale = "one input channel" if cin == 1 else f"mean over {cin} input channels"
    im = None
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < n:
            im = ax.imshow(imgs[k], interpolation="nearest", **kw)
            ax.set_title(str(k), fontsize=8)
    what = "weight" if name == "weight" else f"layer {name} (the first Conv2d)"
    fig.suptitle(title or f"{what}: {n} filters {w.shape[2]}x{w.shape[3]} ({scale})",
                 fontsize=10)
    if cin != 3:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="weight value")
    return fig


def feature_maps(model, x, layer=None) -> tuple:
    """(layer name, the layer's output (C, H, W) for one input ``x`` (C, H, W) or (1, C, H,
    W)), in evaluation mode. ``layer``: any module of the model or its dotted name from
    ``named_modules()`` (a block such as a ResNet stage too, as for the attribution methods'
    ``layer=``); default the first Conv2d."""
    from ..explain._tap import resolve_layer, tap

    x = np.asarray(x)
    x = x[None] if x.ndim == 3 else x
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"feature_maps: x must be one image (C, H, W), got shape {x.shape}")
    if layer is None:
        named = [n for n, m in model.named_modules() if type(m).__name__ == "Conv2d"]
        if not named:
            raise ValueError("feature_maps: the model has no Conv2d; name the layer")
        layer = named[0]
    name, module = resolve_layer("feature_maps", model, layer)
    with tap(module, name) as rec:
        try:
            model.predict(x)
        except (ValueError, TypeError) as e:
            raise ValueError(f"feature_maps: the model rejects x of shape {x.shape}: {e}") \
                from None
    a = rec.outputs[0]   # a layer that runs twice: its first output
    if not isinstance(a, np.ndarray) or a.ndim != 4:
        raise ValueError(f"feature_maps: layer {name!r} outputs shape "
                         f"{getattr(a, 'shape', None)}, not feature maps (N, C, H, W)")
    return name, np.asarray(a[0], np.float64)


def plot_feature_maps(model, x, layer: str | None = None, *, max_maps: int = 64,
                      title: str = ""):
    """The feature maps of ``layer`` for one input, one panel per channel, one scale for all
    (colour bar: activation)."""
    name, maps = feature_maps(model, x, layer)
    kind = type(dict(model.named_modules())[name]).__name__
    maps = maps[:max_maps]
    n = len(maps)
    rows, cols = _grid(n)
    fig = figure(1.5 * cols + 1.4, 1.5 * rows + 0.9)
    axes = fig.subplots(rows, cols, squeeze=False)
    lo, hi = float(maps.min()), float(maps.max())
    im = None
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < n:
            im = ax.imshow(maps[k], cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1,
                           interpolation="nearest")
            ax.set_title(f"channel {k}", fontsize=8)
    fig.suptitle(title or f"feature maps of layer {name} ({kind}): {n} channels "
                          f"{maps.shape[1]}x{maps.shape[2]}", fontsize=10)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="activation")
    return fig


def plot_confusion(confusion, classes=None, *, title: str = ""):
    """The confusion matrix (rows: true class, columns: predicted), counts written in the
    cells when there are at most 20 classes (colour bar: count)."""
    c = np.asarray(confusion)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] == 0:
        raise ValueError(f"plot_confusion: expected a square (K, K) matrix, got shape "
                         f"{c.shape}")
    k = c.shape[0]
    classes = [str(i) for i in range(k)] if classes is None else [str(s) for s in classes]
    if len(classes) != k:
        raise ValueError(f"plot_confusion: {len(classes)} class names for {k} classes")
    size = min(4 + 0.45 * k, 14)
    fig = figure(size + 1.2, size)
    ax = fig.subplots()
    im = ax.imshow(c, cmap="Blues", vmin=0, interpolation="nearest")
    ticks = range(k) if k <= 40 else range(0, k, max(1, k // 20))
    ax.set_xticks(list(ticks), [classes[i] for i in ticks], rotation=90 if k > 10 else 0)
    ax.set_yticks(list(ticks), [classes[i] for i in ticks])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 20:
        top = c.max() if c.size else 0
        for (i, j), v in np.ndenumerate(c):
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=8,
                    color="white" if v > top / 2 else "black")
    acc = np.trace(c) / c.sum() if c.sum() else float("nan")
    ax.set_title(title or f"confusion matrix: {int(c.sum())} examples, accuracy {acc:.4f}",
                 fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="count")
    fig.tight_layout()
    return fig


def plot_gradient_norms(history, *, kinds: dict | None = None, title: str = ""):
    """The gradient norm of every layer over training, from a history that
    :class:`~convprop.train.gradient_norms.GradientNorms` recorded (a ``History``, its
    records, or a checkpoint's ``extra["history"]``). Left: each layer's mean norm per epoch;
    right: the norms against depth, first and last epoch (vanishing gradients fall toward
    the input). Log scales; ``kinds`` ({layer: type name}) labels the layers."""
    from ..train.gradient_norms import gradient_norm_series
    epochs, means, _ = gradient_norm_series(history)
    kinds = kinds or {}
    names = list(means)
    n = len(names)
    labels = [f"{k} {kinds[k]}" if k in kinds else k for k in names]
    fig = figure(13, 5)
    ax, bx = fig.subplots(1, 2, width_ratios=(1.15, 1))
    from matplotlib import colormaps
    cmap = colormaps["viridis"]
    for i, name in enumerate(names):
        shown = np.where(means[name] > 0, means[name], np.nan)   # a log axis cannot show 0
        ax.plot(epochs, shown, "-o", lw=1.2, ms=3, color=cmap(i / max(n - 1, 1)),
                label=f"layer {labels[i]}")
    ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("gradient L2 norm (mean over the epoch's steps)")
    ax.grid(alpha=0.3, which="both")
    ax.set_title("each layer over training", fontsize=10)
    if n <= 12:
        ax.legend(fontsize=7)
    else:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize
        fig.colorbar(ScalarMappable(norm=Normalize(0, n - 1), cmap=cmap), ax=ax,
                     label=f"layer depth (0 = input side, {n - 1} = output side)")
    depth = np.arange(n)
    for k, style in ((0, "s--"), (len(epochs) - 1, "o-")):
        vals = np.array([means[name][k] for name in names])
        bx.plot(depth, np.where(vals > 0, vals, np.nan), style,
                label=f"epoch {epochs[k]:g}", ms=4)
        if len(epochs) == 1:
            break
    bx.set_yscale("log")
    step = max(1, n // 24)
    bx.set_xticks(depth[::step], labels[::step], rotation=60, ha="right", fontsize=7)
    bx.set_xlabel("layer (input side -> output side)")
    bx.set_ylabel("gradient L2 norm")
    bx.grid(alpha=0.3, which="both")
    bx.legend(fontsize=8)
    bx.set_title("against depth", fontsize=10)
    fig.suptitle(title or f"gradient norm per layer ({n} layers, {len(epochs)} epochs)",
                 fontsize=11)
    fig.tight_layout()
    return fig
