"""Pictures (matplotlib, the optional ``plot`` extra; imported only when a function is
called), one module per subject: training curves (:mod:`.history`), a network's filters,
feature maps, confusion matrix and gradient norms (:mod:`.network`), saliency maps and
DeconvNet projections (:mod:`.saliency`). Each function returns a matplotlib Figure (or
writes a PNG and returns its path)."""

from .history import have_matplotlib, plot_history
from .network import (feature_maps, first_conv, plot_confusion, plot_feature_maps, plot_filters,
                      plot_gradient_norms, save_figure)
from .saliency import deconvnet_panels, plot_deconvnet, plot_saliency, saliency_panels

__all__ = ["deconvnet_panels", "feature_maps", "first_conv", "have_matplotlib",
           "plot_confusion", "plot_deconvnet", "plot_feature_maps", "plot_filters",
           "plot_gradient_norms", "plot_history", "plot_saliency", "saliency_panels",
           "save_figure"]
