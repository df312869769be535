"""Backprop made visible: attribution (saliency) methods, the ReLU backward rules they rest
on, and DeconvNet projections.

- :func:`attribute` / :func:`saliency_map` (:mod:`.attribution`): gradient, guided
  backpropagation, DeconvNet, Grad-CAM, guided Grad-CAM, SmoothGrad, Integrated Gradients
  and forward and backward cues (:mod:`.cues`), Captum's conventions.
- :func:`relu_rule`: every ReLU of a model back-propagates by "gradient", "deconvnet" or
  "guided" inside a ``with`` block (per module: ``ReLU(rule=...)``).
- :func:`deconvnet_projection` (:mod:`.deconvnet`): one activation projected to pixel space
  through max unpooling with the recorded switches, ReLU and transposed filters.
"""

from ..layers.activation import RELU_RULES, relu_rule
from .attribution import METHODS, attribute, class_scores, saliency_map, score_gradient
from .cues import center_prior, cues, default_cue_layers
from .deconvnet import Projection, deconvnet_projection, strongest_channels

__all__ = [
    # attribution (saliency)
    "METHODS", "RELU_RULES", "Projection", "attribute", "center_prior", "class_scores",
    "cues", "deconvnet_projection", "default_cue_layers", "relu_rule", "saliency_map",
    "score_gradient", "strongest_channels",
    # explain mode / trace: added by the explain-mode work
]
