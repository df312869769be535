"""``init_model``: the starting point of ``convprop train --init FILE``."""

from __future__ import annotations

import os

import numpy as np

from ..layers.module import Module

__all__ = ["init_model"]


def init_model(path, model: Module | None = None, *, dtype=np.float32) -> Module:
    """The network to start training from.

    - ``FILE.onnx``: the imported graph (:func:`convprop.models.onnx_network`: parameters
      trainable, cast to ``dtype``, a last Softmax over the classes left out so the network
      outputs the logits a cross-entropy trains on); ``model`` must be None (the file is the
      architecture). The module gets ``config = {"name": "onnx", "path": <absolute path>,
      "sha256": <digest>}``, so a caller can record where its architecture came from.
    - ``FILE.safetensors`` / ``.pt`` / ``.pth``: a PyTorch ``state_dict`` loaded into
      ``model`` (:func:`~convprop.interop.load_torch_weights`, every mismatch in one error);
      returns ``model``.
    """
    p = os.fspath(path)
    if p.endswith(".onnx"):
        if model is not None:
            raise ValueError(f"init_model: {p} is a whole network (ONNX); give no model, or "
                             "give a .safetensors/.pt state_dict to initialise a zoo model")
        from ..models.imported import onnx_network
        return onnx_network(path=p, dtype=dtype)
    if model is None:
        raise ValueError(f"init_model: {p} holds weights only; give the model to load them "
                         "into (e.g. models.build(name))")
    from .torch_weights import load_torch_weights
    load_torch_weights(model, p)
    return model
