"""Training: the loop, evaluation, callbacks, progress and history."""

from .callbacks import Batch, Callback, EarlyStopping, KeepBest, SaveCheckpoint
from .evaluate import evaluate, predict, softmax
from .gradient_norms import GradientNorms, gradient_norm_series, layer_gradient_norms
from .history import History
from .loop import NonFiniteLossError, TrainState, fit

__all__ = ["Batch", "Callback", "EarlyStopping", "GradientNorms", "History", "KeepBest",
           "NonFiniteLossError", "SaveCheckpoint", "TrainState", "evaluate", "fit",
           "gradient_norm_series", "layer_gradient_norms", "predict", "softmax"]
