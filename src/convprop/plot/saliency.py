"""Pictures of attribution: the saliency maps of every method side by side with overlays on
the image, and the DeconvNet projections of a layer's strongest activations. The functions
return a ``matplotlib.figure.Figure`` (no pyplot state; save it with ``fig.savefig``); the
``*_panels`` functions compute the arrays a figure shows, so they can be checked and reused.
"""

from __future__ import annotations

import numpy as np

from ..explain.attribution import METHODS, attribute, saliency_map
from ..explain.deconvnet import deconvnet_projection, strongest_channels
from ..explain.resample import interpolate
from ..layers.container import Sequential

__all__ = ["default_layer", "saliency_panels", "plot_saliency", "deconvnet_panels",
           "plot_deconvnet", "TITLES"]

#: Panel titles of the methods.
TITLES = {"gradient": "gradient", "guided": "guided backprop", "deconvnet": "DeconvNet",
          "gradcam": "Grad-CAM", "guided_gradcam": "guided Grad-CAM",
          "smoothgrad": "SmoothGrad", "integrated_gradients": "integrated gradients",
          "cues": "fwd/bwd cues"}
_LAYER_METHODS = ("gradcam", "guided_gradcam")


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("the saliency pictures need matplotlib: pip install "
                          "'convprop[plot]'") from None
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def default_layer(model, x: np.ndarray) -> str:
    """Grad-CAM's usual layer: the last top-level child of a ``Sequential`` model whose
    output still has spatial maps (N, C, h, w)."""
    if not isinstance(model, Sequential):
        raise ValueError("default_layer: the model is not a Sequential; name the layer")
    last, h = None, x
    for name, m in model.named_children():
        h, _ = m.forward(h, training=False)
        if isinstance(h, np.ndarray) and h.ndim == 4:
            last = name
    if last is None:
        raise ValueError("default_layer: no layer of the model outputs spatial maps")
    return last


def saliency_panels(model, x: np.ndarray, target: int, methods=METHODS, *, layer=None,
                    options: dict | None = None) -> dict:
    """``{method: (H, W) map}`` for one example ``x`` (1, C, H, W): input-shaped attributions
    reduced by :func:`~convprop.explain.saliency_map` (max |.| over channels), the Grad-CAM
    map up-sampled bilinearly to the image, the cues map as it is. ``layer`` (default
    :func:`default_layer`) serves the Grad-CAM methods; ``options``: ``{method: {...}}``."""
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"saliency_panels: x must be one image (1, C, H, W), got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    options = options or {}
    if any(m in _LAYER_METHODS for m in methods) and layer is None:
        layer = default_layer(model, x)
    out = {}
    for m in methods:
        kw = dict(options.get(m, {}))
        if m in _LAYER_METHODS:
            kw.setdefault("layer", layer)
        a = attribute(model, x, target, m, **kw)
        if m == "gradcam":
            out[m] = interpolate(a, x.shape[2:], "bilinear")[0, 0]
        elif m == "cues":
            out[m] = a[0, 0]
        else:
            out[m] = saliency_map(a)[0]
    return out


def _display(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(C, H, W) -> an array imshow shows, min-max scaled to [0, 1], and its colormap."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        img = img[None]
    lo, hi = img.min(), img.max()
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    if img.shape[0] == 1:
        return img[0], "gray"
    return img[:3].transpose(1, 2, 0), None


def _unit(m: np.ndarray) -> np.ndarray:
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def plot_saliency(image: np.ndarray, maps: dict, *, title: str = "", cmap: str = "inferno"):
    """One column per method: top its map, bottom the map over the image (alpha 0.55). Each
    map is scaled to [0, 1] from its own minimum to its maximum (the colour bar says so, and
    the panel title gives the maximum in the method's units). ``image``: (C, H, W) or (H, W),
    shown min-max scaled. Returns the Figure."""
    if not maps:
        raise ValueError("plot_saliency: maps is empty")
    shown, icmap = _display(image)
    n = len(maps) + 1
    fig = _figure(2.3 * n, 5.2)
    axes = fig.subplots(2, n, squeeze=False)
    axes[0, 0].imshow(shown, cmap=icmap, vmin=0, vmax=1)
    axes[0, 0].set_title("input", fontsize=10)
    axes[1, 0].imshow(shown, cmap=icmap, vmin=0, vmax=1)
    axes[1, 0].set_title("input", fontsize=10)
    grey = shown if shown.ndim == 2 else shown.mean(axis=2)
    im = None
    for col, (method, m) in enumerate(maps.items(), start=1):
        u = _unit(np.asarray(m, dtype=np.float64))
        im = axes[0, col].imshow(u, cmap=cmap, vmin=0, vmax=1)
        axes[0, col].set_title(f"{TITLES.get(method, method)}\nmax {np.max(m):.3g}",
                               fontsize=10)
        axes[1, col].imshow(grey, cmap="gray", vmin=0, vmax=1)
        axes[1, col].imshow(u, cmap=cmap, vmin=0, vmax=1, alpha=0.55)
        axes[1, col].set_title("overlay", fontsize=10)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(im, ax=axes[:, -1], shrink=0.8)
    bar.set_label("map scaled per panel: min (0) to max (1)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=12)
    return fig


def deconvnet_panels(model, x: np.ndarray, layer, k: int = 8) -> dict:
    """The DeconvNet projections of the ``k`` strongest feature maps of ``layer`` for one
    example ``x`` (1, C, H, W): ``{"channels", "projections" (k, C, H, W), "positions",
    "activations"}``, strongest first."""
    channels = strongest_channels(model, x, layer, k)
    projs = [deconvnet_projection(model, x, layer, int(c)) for c in channels]
    return {"channels": channels,
            "projections": np.concatenate([p.image for p in projs]),
            "positions": np.concatenate([p.position for p in projs]),
            "activations": np.concatenate([p.activation for p in projs])}


def _support_box(p: np.ndarray, pad: int = 1) -> tuple[slice, slice]:
    mask = np.abs(p).sum(axis=0) > 0
    if not mask.any():
        return slice(None), slice(None)
    rows, cols = np.nonzero(mask)
    h, w = mask.shape
    return (slice(max(rows.min() - pad, 0), min(rows.max() + pad + 1, h)),
            slice(max(cols.min() - pad, 0), min(cols.max() + pad + 1, w)))


def plot_deconvnet(image: np.ndarray, panels: dict, *, layer: str = "", title: str = ""):
    """Zeiler and Fergus's figure for one image: top row, each strongest activation's
    projection to pixel space (diverging colours, symmetric about 0, scaled to the panel's
    largest |value|; a colour image's projection averaged over its channels); bottom row,
    the image patch under the projection's support. Returns the Figure."""
    projs = panels["projections"]
    k = len(projs)
    if k == 0:
        raise ValueError("plot_deconvnet: no projections")
    shown, icmap = _display(image)
    fig = _figure(2.2 * (k + 1), 5.0)
    axes = fig.subplots(2, k + 1, squeeze=False)
    axes[0, 0].imshow(shown, cmap=icmap, vmin=0, vmax=1)
    axes[0, 0].set_title("input", fontsize=10)
    axes[1, 0].axis("off")
    im = None
    for i in range(k):
        p = projs[i]
        q = p[0] if p.shape[0] == 1 else p.mean(axis=0)
        s = np.abs(q).max() or 1.0
        im = axes[0, i + 1].imshow(q / s, cmap="RdBu_r", vmin=-1, vmax=1)
        pos = ",".join(str(int(v)) for v in panels["positions"][i])
        axes[0, i + 1].set_title(f"map {int(panels['channels'][i])} at ({pos})\n"
                                 f"a = {panels['activations'][i]:.3g}", fontsize=9)
        rs, cs = _support_box(p)
        patch = shown[rs, cs]
        axes[1, i + 1].imshow(patch, cmap=icmap, vmin=0, vmax=1)
        axes[1, i + 1].set_title("image patch", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(im, ax=axes[0, -1], shrink=0.9)
    mean = f" (mean over the {projs.shape[1]} channels)" if projs.shape[1] > 1 else ""
    bar.set_label(f"projection{mean} / max |.|", fontsize=9)
    fig.suptitle(title or f"DeconvNet projections of the strongest activations of layer "
                          f"{layer!r}", fontsize=12)
    return fig
