"""Backprop made visible: attribution (saliency) methods, the ReLU backward rules they rest
on, and DeconvNet projections.

- :func:`attribute` / :func:`saliency_map` (:mod:`.attribution`): gradient, guided
  backpropagation, DeconvNet, Grad-CAM, guided Grad-CAM, SmoothGrad, Integrated Gradients
  and forward and backward cues (:mod:`.cues`), Captum's conventions.
- :func:`relu_rule`: every ReLU of a model back-propagates by "gradient", "deconvnet" or
  "guided" inside a ``with`` block (per module: ``ReLU(rule=...)``).
- :func:`deconvnet_projection` (:mod:`.deconvnet`): one activation projected to pixel space
  through max unpooling with the recorded switches, ReLU and transposed filters.
- :func:`trace` (:mod:`.trace`): one training step of any model layer by layer, in the
  textbook's notation, as data (``Trace.to_dict``/``to_json``) or text; the worked examples
  (:func:`worked_example`, :mod:`.worked`) with their published digits.
"""

from ..layers.activation import RELU_RULES, relu_rule
from .attribution import METHODS, attribute, class_scores, saliency_map, score_gradient
from .cues import center_prior, cues, default_cue_layers
from .deconvnet import Projection, deconvnet_projection, strongest_channels
from .trace import Step, Trace, summarize, trace
from .worked import EXAMPLES, format_array, render_text, worked_example

__all__ = [
    # attribution (saliency)
    "METHODS", "RELU_RULES", "Projection", "attribute", "center_prior", "class_scores",
    "cues", "deconvnet_projection", "default_cue_layers", "relu_rule", "saliency_map",
    "score_gradient", "strongest_channels",
    # explain mode: traces and the worked examples
    "EXAMPLES", "Step", "Trace", "format_array", "render_text", "summarize", "trace",
    "worked_example",
]
