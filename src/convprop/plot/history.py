"""Training curves: loss and accuracy per epoch as a PNG."""

from __future__ import annotations

import os

__all__ = ["plot_history", "have_matplotlib"]


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_history(history, path, *, title: str = "", val_label: str = "validation") -> str:
    """Draw loss (left) and accuracy (right) per epoch, training and validation, to ``path``
    (``val_label`` names the held-out curve, e.g. "test" when the test split was used).

    Raises ImportError with the install hint when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone
    except ImportError:
        raise ImportError("plot_history needs matplotlib: pip install 'convprop[plot]'") from None
    epochs = history["epoch"]
    fig = Figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    for ax, key, label in ((ax1, "loss", "loss"), (ax2, "accuracy", "accuracy")):
        ax.plot(epochs, history[key], "o-", label=f"train {label}")
        val = history[f"val_{key}"]
        if any(v is not None for v in val):
            ax.plot(epochs, val, "s--", label=f"{val_label} {label}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    ax1.set_yscale("log")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    return os.fspath(path)
