"""Reading, matching and writing PyTorch ``state_dict``\\ s (see the package docstring)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np

from ..io.safetensors import load_file, save_file
from ..layers.module import Module

__all__ = ["StateDictMismatch", "load_torch_weights", "read_state_dict",
           "save_torch_safetensors", "torch_state_dict"]

_NESTED = ("state_dict", "model_state_dict", "model")


class StateDictMismatch(ValueError):
    """The file's state_dict does not fit the model; the message lists every mismatch."""


def _from_torch_file(path: str) -> dict:
    try:
        import torch
    except ImportError:
        raise ImportError(f"load_torch_weights: {path} is a PyTorch pickle (.pt/.pth), which "
                          "needs torch installed (pip install torch) to be read safely; or "
                          "save it as .safetensors, which convprop reads without torch") \
            from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for code or unknown objects, RuntimeError, ...
        raise ValueError(f"load_torch_weights: {path} was refused by torch.load(weights_only="
                         f"True) (it is not a plain state_dict of tensors: it may hold code or "
                         f"other objects, which are never executed): "
                         f"{type(e).__name__}: {str(e).splitlines()[0][:300]}") from None
    if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in _NESTED:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise ValueError(f"load_torch_weights: {path} holds a {type(obj).__name__}, not a "
                         "state_dict (a mapping of names to tensors)")
    out, bad = {}, []
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            bad.append(f"{k} ({type(v).__name__})")
            continue
        t = v.detach().cpu()
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        out[str(k)] = t.numpy().copy()
    if bad:
        raise ValueError(f"load_torch_weights: {path} has entries that are not tensors: "
                         f"{', '.join(bad)}")
    return out


def read_state_dict(path) -> dict[str, np.ndarray]:
    """A ``state_dict`` file as name -> array: ``.safetensors`` by convprop's own reader,
    ``.pt``/``.pth``/``.bin`` by ``torch.load(weights_only=True)`` (a checkpoint dict holding
    it under ``state_dict``/``model_state_dict``/``model`` is unwrapped)."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        return load_file(path)[0]
    if path.endswith((".pt", ".pth", ".bin", ".ckpt")):
        return _from_torch_file(path)
    raise ValueError(f"load_torch_weights: {path}: expected a .safetensors, .pt or .pth file")


def _mapper(name_map, keys) -> Callable[[str], str]:
    """convprop name -> file name: ``name_map`` (dict or callable), else the identity after
    the common wrapper prefixes ("module." of DataParallel, "model.") are stripped."""
    if callable(name_map):
        return name_map
    if isinstance(name_map, Mapping):
        return lambda k: name_map.get(k, k)
    if name_map is not None:
        raise TypeError(f"load_torch_weights: name_map must be a dict, a callable or None, "
                        f"got {type(name_map).__name__}")
    for prefix in ("module.", "model."):
        if keys and all(k.startswith(prefix) for k in keys):
            return lambda k, p=prefix: p + k
    return lambda k: k


def _by_order(model, ours, state) -> dict:
    """convprop name -> file name, pairing the entries module by module in definition order
    (PyTorch's state_dict order: each module's parameters, then its buffers); the counters
    ``num_batches_tracked`` are paired among themselves."""
    order = []
    for mname, m in model.named_modules():
        for n in list(m._parameters) + list(m._buffers):
            key = f"{mname}.{n}" if mname else n
            if key in ours and key not in order:
                order.append(key)

    def split(keys):
        nbt = [k for k in keys if k.endswith("num_batches_tracked")]
        return [k for k in keys if k not in set(nbt)], nbt
    (a, a_nbt), (b, b_nbt) = split(order), split(list(state))
    if len(a) != len(b) or (b_nbt and len(a_nbt) != len(b_nbt)):
        raise StateDictMismatch(f"load_torch_weights: name_map='order' pairs entries one to "
                                f"one, but {type(model).__name__} has {len(a)} (and "
                                f"{len(a_nbt)} num_batches_tracked) and the file {len(b)} "
                                f"(and {len(b_nbt)})")
    return dict(zip(a, b)) | dict(zip(a_nbt, b_nbt))


def load_torch_weights(model: Module, source, *, name_map=None, strict: bool = True) -> dict:
    """Load a PyTorch ``state_dict`` (a path, or a dict of arrays) into ``model``.

    Every model entry is looked up under ``name_map(name)`` (identity by default, so twins
    with equal structure need no map; a file whose keys all start with "module." or "model."
    is unwrapped; ``name_map="order"`` pairs the entries in definition order, for a torch
    model of the same layers under other names, e.g. torchvision's ``features.0.weight``).
    Checked before anything is loaded, all listed in one
    :class:`StateDictMismatch`: missing entries, unexpected ones (``strict``), shape
    mismatches, and dtypes that cannot be cast (a float parameter from an integer or bool
    tensor). Floats are cast to the model's dtype. Returns ``{model name: file name}``."""
    state = dict(source) if isinstance(source, Mapping) else read_state_dict(source)
    state = {k: np.asarray(v) for k, v in state.items()}
    ours = model.state_dict()
    if isinstance(name_map, str) and name_map == "order":
        name_map = _by_order(model, ours, state)
    to_file = _mapper(name_map, list(state))
    missing, shape, dtype, pairs = [], [], [], {}
    for name, ref in ours.items():
        key = to_file(name)
        if key not in state:
            if name.endswith("num_batches_tracked"):  # not in older PyTorch files
                continue
            missing.append(name if key == name else f"{name} (as {key})")
            continue
        v = state[key]
        if v.shape != ref.shape:
            shape.append(f"{key}: file {v.shape}, model {ref.shape}")
        elif ref.dtype.kind == "f" and v.dtype.kind not in "f":
            dtype.append(f"{key}: file {v.dtype}, model {ref.dtype}")
        pairs[name] = key
    unexpected = sorted(set(state) - set(pairs.values())) if strict else []
    problems = [f"{what}: {', '.join(items)}" for what, items in (
        ("missing", missing), ("unexpected", unexpected), ("shape mismatch", shape),
        ("dtype mismatch", dtype)) if items]
    if problems:
        raise StateDictMismatch(f"load_torch_weights: the state_dict does not fit "
                                f"{type(model).__name__}: " + "; ".join(problems))
    model.load_state_dict({n: state[k] for n, k in pairs.items()}, strict=False)
    return pairs


def torch_state_dict(model: Module) -> dict[str, np.ndarray]:
    """The model's parameters and buffers under PyTorch's names (convprop's own), in the
    dtypes PyTorch uses (``num_batches_tracked`` int64)."""
    return {k: np.ascontiguousarray(v) for k, v in model.state_dict().items()}


def save_torch_safetensors(model: Module, path, *, dtype=None) -> str:
    """Write the model's weights as a safetensors ``state_dict`` that
    ``safetensors.torch.load_file`` + ``torch_model.load_state_dict`` take as it is
    (metadata ``format: pt``); ``dtype`` (e.g. float32) casts the float entries."""
    sd = torch_state_dict(model)
    if dtype is not None:
        sd = {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in sd.items()}
    save_file(sd, os.fspath(path), metadata={"format": "pt"})
    return os.fspath(path)
