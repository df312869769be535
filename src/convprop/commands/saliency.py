"""``convprop saliency``: what a trained network looks at, as a PNG.

    convprop saliency CHECKPOINT IMAGE [--method all|M[,M...]] [--target K] [--layer NAME]
                      [--projections K] [--out PNG]

Draws the saliency maps of the chosen methods (default all of
:data:`convprop.explain.METHODS`) for class ``--target`` (default: the predicted class), each
beside its overlay on the image; ``--layer`` is the layer of the Grad-CAM methods (default the
last layer with spatial maps); Integrated Gradients start from the black image (raw 0). With
``--projections K`` it draws instead the DeconvNet
projections of the K strongest activations of ``--layer``. Writes ``--out`` (default
``<checkpoint>-saliency.png`` / ``-deconvnet.png``) and prints where. The image must have
the model's size and channel count (a saliency map is about the pixels the network saw, so
nothing is resized).
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("saliency", help="saliency maps (gradient, guided backprop, DeconvNet, "
                       "Grad-CAM, SmoothGrad, integrated gradients, cues) of an image as PNG")
    p.add_argument("checkpoint")
    p.add_argument("image", help="the example: .npy of raw 0..255 values, or PNG/JPEG of the "
                   "model's size")
    p.add_argument("--method", default="all", help="'all' or a comma-separated list of "
                   "gradient, guided, deconvnet, gradcam, guided_gradcam, smoothgrad, "
                   "integrated_gradients, cues")
    p.add_argument("--target", type=int, metavar="K", help="the class to explain (default: "
                   "the predicted class)")
    p.add_argument("--layer", help="the layer of Grad-CAM / the projections (a dotted name "
                   "from the model, e.g. 3); default the last layer with spatial maps")
    p.add_argument("--projections", type=int, metavar="K", help="draw the DeconvNet "
                   "projections of the K strongest activations of --layer instead")
    p.add_argument("--invert", action="store_true", help="invert the image (white digits on "
                   "black for MNIST models)")
    p.add_argument("--out", metavar="PNG", help="where to write the picture")


def _methods(spec: str) -> list[str]:
    from ..explain import METHODS
    if spec == "all":
        return list(METHODS)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise ValueError("--method is empty; give 'all' or method names")
    for n in names:
        if n not in METHODS:
            raise ValueError(f"unknown method {n!r}; methods are {', '.join(METHODS)} "
                             "(or 'all')")
    return names


def _out(a, kind: str) -> str:
    if a.out:
        if not a.out.lower().endswith(".png"):
            raise ValueError(f"--out must name a .png file, got {a.out!r}")
        return a.out
    return f"{os.path.splitext(a.checkpoint)[0]}-{kind}.png"


def run(a) -> int:
    from ..cli import _load_model
    from ..explain.attribution import class_scores
    from ..plot.saliency import (deconvnet_panels, default_layer, plot_deconvnet,
                                 plot_saliency, saliency_panels)
    from ._example import example_shape, read_example

    methods = _methods(a.method)
    if a.projections is not None and a.projections < 1:
        raise ValueError(f"--projections must be >= 1, got {a.projections}")
    out = _out(a, "deconvnet" if a.projections is not None else "saliency")
    ckpt, model, pre = _load_model(a.checkpoint)
    shape = example_shape(pre)
    if len(shape) != 2:
        raise ValueError(f"saliency pictures are 2-D; this model takes {len(shape)}-D examples")
    img, x = read_example(a.image, pre, a.invert)
    mean = np.asarray(pre["mean"], np.float64).reshape(1, -1, 1, 1) * 255.0
    std = np.asarray(pre["std"], np.float64).reshape(1, -1, 1, 1) * 255.0
    model.astype(np.float64)  # attribution in float64: the maps are small differences
    scores = class_scores(model, x)[0]
    k = scores.shape[0]
    classes = ckpt.extra.get("classes") or [str(i) for i in range(k)]
    target = int(np.argmax(scores)) if a.target is None else a.target
    if not 0 <= target < k:
        raise ValueError(f"--target {target} is out of range for a model with {k} classes "
                         f"(0..{k - 1})")
    needs_layer = a.projections is not None or {"gradcam", "guided_gradcam"} & set(methods)
    layer = a.layer if a.layer is not None or not needs_layer else default_layer(model, x)
    if a.projections is not None:
        panels = deconvnet_panels(model, x, layer, a.projections)
        fig = plot_deconvnet(img, panels, layer=layer)
    else:
        black = (0.0 - mean) / std  # Integrated Gradients from the black image (raw 0)
        maps = saliency_panels(model, x, target, methods, layer=layer, options={
            "integrated_gradients": {"baseline": np.broadcast_to(black, x.shape)}})
        label = classes[target] if target < len(classes) else str(target)
        where = f"; Grad-CAM layer {layer!r}" if layer is not None else ""
        fig = plot_saliency(img, maps, title=f"{os.path.basename(a.image)}: class {label} "
                            f"(score {scores[target]:.3g}){where}")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out)
    what = (f"DeconvNet projections of layer {layer!r}" if a.projections is not None
            else f"{len(methods)} saliency map{'s' * (len(methods) > 1)} for class {target}")
    print(f"wrote {out} ({what})")
    return 0
