"""PyTorch weights in and out: a ``state_dict`` from ``.safetensors`` (no torch needed) or
``.pt``/``.pth`` (through ``torch.load(weights_only=True)``, never an unpickler of our own)
into a convprop model, with names mapped and every shape or dtype mismatch listed in one
error; and a convprop model's weights written as a torch-compatible safetensors
``state_dict``.

convprop modules use PyTorch's parameter and buffer names (``0.weight``,
``1.running_mean``, ``1.num_batches_tracked``), so a torch model with the same structure
(the zoo's twins in ``twins/torch_zoo.py``) loads without a name map.
"""

from .init import init_model
from .torch_weights import (StateDictMismatch, load_torch_weights, read_state_dict,
                            save_torch_safetensors, torch_state_dict)

__all__ = ["StateDictMismatch", "init_model", "load_torch_weights", "read_state_dict",
           "save_torch_safetensors", "torch_state_dict"]
