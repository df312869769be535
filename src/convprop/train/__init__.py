"""Training: the loop, evaluation, callbacks, progress and history."""

from .callbacks import Batch, Callback, EarlyStopping, KeepBest, SaveCheckpoint
from .evaluate import evaluate, predict, softmax
from .history import History
from .loop import NonFiniteLossError, TrainState, fit

__all__ = ["Batch", "Callback", "EarlyStopping", "History", "KeepBest", "NonFiniteLossError",
           "SaveCheckpoint", "TrainState", "evaluate", "fit", "predict", "softmax"]
