"""Pictures (matplotlib, the optional ``plot`` extra), one module per subject: training
curves (:mod:`.history`)."""

from .history import have_matplotlib, plot_history

__all__ = ["have_matplotlib", "plot_history"]
