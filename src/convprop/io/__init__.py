"""Reading and writing: safetensors (no pickle) and training checkpoints."""

from .checkpoint import (Checkpoint, CheckpointError, load_checkpoint, module_generators,
                         save_checkpoint)
from .safetensors import SafetensorsError, load_file, save_file

__all__ = ["Checkpoint", "CheckpointError", "SafetensorsError", "load_checkpoint",
           "load_file", "module_generators", "save_checkpoint", "save_file"]
