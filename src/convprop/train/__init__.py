"""Training: the loop, evaluation, callbacks, progress and history."""

from .callbacks import Batch, Callback, EarlyStopping, KeepBest, SaveCheckpoint
from .evaluate import evaluate, predict, softmax
from .gradient_norms import GradientNorms, gradient_norm_series, layer_gradient_norms
from .history import History
from .loop import NonFiniteLossError, TrainState, fit
from .nem import NEMDraw, NEMNoise, nem_condition
from .relay import RelayCache, RelayHead, RelayNet, RelayTargets, split_at_max_pool

__all__ = ["Batch", "Callback", "EarlyStopping", "GradientNorms", "History", "KeepBest",
           "NEMDraw", "NEMNoise", "NonFiniteLossError", "RelayCache", "RelayHead", "RelayNet",
           "RelayTargets", "SaveCheckpoint", "TrainState", "evaluate", "fit",
           "gradient_norm_series", "layer_gradient_norms", "nem_condition", "predict",
           "softmax", "split_at_max_pool"]
