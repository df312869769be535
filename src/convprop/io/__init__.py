"""Reading and writing: safetensors (no pickle), training checkpoints, atomic file writes."""

from .atomic import atomic_open, atomic_write
from .checkpoint import (Checkpoint, CheckpointError, load_checkpoint, module_generators,
                         save_checkpoint)
from .safetensors import SafetensorsError, load_file, save_file

__all__ = ["Checkpoint", "CheckpointError", "SafetensorsError", "atomic_open", "atomic_write",
           "load_checkpoint", "load_file", "module_generators", "save_checkpoint", "save_file"]
