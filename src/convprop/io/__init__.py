"""Reading and writing: safetensors (no pickle), training checkpoints, atomic file writes,
and one example for prediction from an untrusted ``.npy`` or picture file."""

from .atomic import atomic_open, atomic_write
from .checkpoint import (Checkpoint, CheckpointError, load_checkpoint, module_generators,
                         save_checkpoint)
from .examples import RANGE_TOLERANCE, read_example
from .safetensors import SafetensorsError, load_file, save_file

__all__ = ["RANGE_TOLERANCE", "Checkpoint", "CheckpointError", "SafetensorsError",
           "atomic_open", "atomic_write", "load_checkpoint", "load_file", "module_generators",
           "read_example", "save_checkpoint", "save_file"]
