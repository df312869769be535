"""The schema of a checkpoint's metadata: every value is checked before anything uses it.

The SHA-256 in a checkpoint catches accidental damage only; anyone can rewrite the metadata
and recompute it. So the metadata is treated as untrusted data: types, ranges, finite
numbers (JSON's ``1e400`` parses to infinity), ``std > 0``, class names matching the model's
output size, the model config through the checks of :func:`convprop.models.check_config`,
and every floating-point tensor finite (the error names the tensor).
"""

from __future__ import annotations

import inspect
import math

import numpy as np

__all__ = ["check_metadata"]

_MAX_INT = 1 << 130          # generator states hold 128-bit ints; nothing needs more
_MAX_DEPTH = 32
#: History entries a resumed run plots, prints and compares: numbers (or null) only.
_HISTORY_NUMBERS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time",
                    "examples_per_sec", "epochs_target")
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")

# key -> (allowed types, description); None in the types means the entry may be null
_FIELDS = {"epoch": ((int,), "an int >= 0"), "model_config": ((dict, None), "an object or null"),
           "optimizer": ((dict, None), "an object or null"),
           "schedule": ((dict, None), "an object or null"),
           "rng": ((dict, None), "an object or null"), "module_rngs": ((dict,), "an object"),
           "extra": ((dict,), "an object")}


class _Bad(Exception):
    pass


def _walk(v, where: str, depth: int = 0) -> None:
    """Every number finite and every int bounded, nesting bounded."""
    if depth > _MAX_DEPTH:
        raise _Bad(f"{where} is nested more than {_MAX_DEPTH} levels deep")
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _Bad(f"{where} must be finite, got {v}")
    elif isinstance(v, int) and not isinstance(v, bool):
        if abs(v) >= _MAX_INT:
            raise _Bad(f"{where} is an int of {v.bit_length()} bits, too large")
    elif isinstance(v, dict):
        for k, e in v.items():
            _walk(e, f"{where}.{k[:60]}", depth + 1)
    elif isinstance(v, list):
        for i, e in enumerate(v):
            _walk(e, f"{where}[{i}]", depth + 1)


def _int(v, where, lo=0, hi=None) -> int:
    if type(v) is not int or v < lo or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise _Bad(f"{where} must be an int {rng}, got {v!r}"[:300])
    return v


def _real(v, where) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(f"{where} must be a number, got {v!r}"[:300])
    return float(v)


def _str(v, where, maxlen=1000) -> str:
    if not isinstance(v, str) or len(v) > maxlen:
        raise _Bad(f"{where} must be a string of at most {maxlen} characters, got "
                   f"{str(v)[:60]!r}")
    return v


def _rng_state(v, where) -> None:
    if not isinstance(v, dict) or not isinstance(v.get("bit_generator"), str):
        raise _Bad(f"{where} must be a generator state (an object with 'bit_generator')")
    if v["bit_generator"] not in _BIT_GENERATORS:
        raise _Bad(f"{where}.bit_generator must be one of {list(_BIT_GENERATORS)}, got "
                   f"{v['bit_generator'][:40]!r}")
    if v["bit_generator"] in ("PCG64", "PCG64DXSM"):  # numpy's default; others: its setter
        st = v.get("state")
        if not isinstance(st, dict) or set(st) != {"state", "inc"}:
            raise _Bad(f"{where}.state must be an object with 'state' and 'inc'")
        for k in ("state", "inc"):
            _int(st[k], f"{where}.state.{k}", 0, (1 << 128) - 1)
        _int(v.get("has_uint32"), f"{where}.has_uint32", 0, 1)
        _int(v.get("uinteger"), f"{where}.uinteger", 0, (1 << 32) - 1)


def _builder_default(name: str, key: str):
    from .. import models
    p = inspect.signature(models.MODELS[name]).parameters.get(key)
    return None if p is None or p.default is inspect.Parameter.empty else p.default


def _check_model_config(cfg) -> dict:
    """The zoo config, checked as models.build checks it; {} when not a zoo model."""
    if cfg is None:
        return {}
    from .. import models
    if not isinstance(cfg.get("name"), str):
        raise _Bad("model_config.name must be a string")
    if cfg["name"] not in models.MODELS:
        return {}  # a user's own model: restore() checks its shapes
    try:
        models.check_config(cfg, op="model_config")
    except (TypeError, ValueError) as e:
        raise _Bad(str(e)) from None
    return cfg


def _check_optimizer(opt) -> None:
    for key, types in (("type", str), ("hyperparams", dict), ("steps", dict),
                       ("state_keys", list)):
        if not isinstance(opt.get(key), types):
            raise _Bad(f"optimizer.{key} must be {'a ' + types.__name__}, got "
                       f"{str(opt.get(key))[:60]}")
    for k, v in opt["hyperparams"].items():
        vals = v if isinstance(v, list) else [v]
        if not all(isinstance(e, (bool, int, float)) for e in vals):
            raise _Bad(f"optimizer.hyperparams.{k[:60]} must be a number, bool or list of "
                       f"numbers, got {str(v)[:60]}")
    for k, v in opt["steps"].items():
        _int(v, f"optimizer.steps.{k[:60]}")
    if not all(isinstance(k, str) for k in opt["state_keys"]):
        raise _Bad("optimizer.state_keys must be a list of strings")


def _check_preprocess(pre, cfg: dict) -> None:
    if not isinstance(pre, dict):
        raise _Bad("extra.preprocess must be an object")
    channels = _int(pre.get("channels"), "extra.preprocess.channels", 1, 4096)
    for key in ("mean", "std"):
        v = pre.get(key)
        if not isinstance(v, list) or len(v) != channels:
            raise _Bad(f"extra.preprocess.{key} must be a list of {channels} numbers (one per "
                       f"channel), got {str(v)[:80]}")
        for i, e in enumerate(v):
            e = _real(e, f"extra.preprocess.{key}[{i}]")
            if key == "std" and not e > 0:
                raise _Bad(f"extra.preprocess.std[{i}] must be > 0, got {e}")
    shape = pre.get("shape")
    if shape is not None:
        if not isinstance(shape, list) or not 1 <= len(shape) <= 3:
            raise _Bad(f"extra.preprocess.shape must be a list of 1 to 3 sizes, got "
                       f"{str(shape)[:80]}")
        for i, s in enumerate(shape):
            _int(s, f"extra.preprocess.shape[{i}]", 1, 1 << 20)
    size = pre.get("size")
    if size is None and shape is None:
        raise _Bad("extra.preprocess must record the example 'shape' (or 'size')")
    if size is not None and not (type(size) is int and size >= 1 or isinstance(size, list)
                                 and all(type(s) is int and s >= 1 for s in size)):
        raise _Bad(f"extra.preprocess.size must be an int or list of ints >= 1, got "
                   f"{str(size)[:80]}")
    if not cfg:
        return
    from .. import models
    name = cfg["name"]
    in_ch = cfg.get("in_channels", _builder_default(name, "in_channels"))
    if in_ch is not None and in_ch != channels:
        raise _Bad(f"extra.preprocess.channels is {channels} but the model takes {in_ch} "
                   "input channels")
    spatial = list(shape) if shape is not None else [size, size] if type(size) is int else size
    nd = models.SPATIAL_DIMS.get(name, len(spatial))
    if len(spatial) != nd:
        raise _Bad(f"extra.preprocess.shape {spatial} has {len(spatial)} axes but {name} "
                   f"takes {nd}-D examples")
    want = cfg.get("input_size", _builder_default(name, "input_size"))
    if want is not None:
        want = [want] * nd if isinstance(want, int) else list(want)
        if want != spatial:
            raise _Bad(f"extra.preprocess.shape {spatial} does not match the model's "
                       f"input_size {want}")


def _check_extra(extra: dict, cfg: dict) -> None:
    if "classes" in extra:
        classes = extra["classes"]
        if not isinstance(classes, list) or not classes:
            raise _Bad("extra.classes must be a non-empty list of class names")
        for i, c in enumerate(classes):
            _str(c, f"extra.classes[{i}]", 200)
        if cfg:
            k = cfg.get("num_classes", _builder_default(cfg["name"], "num_classes"))
            if k is not None and k != len(classes):
                raise _Bad(f"extra.classes names {len(classes)} classes but the model has "
                           f"{k} outputs (num_classes)")
    if "preprocess" in extra:
        _check_preprocess(extra["preprocess"], cfg)
    if "dataset" in extra:
        _str(extra["dataset"], "extra.dataset", 200)
    if "schedule_epochs" in extra:
        _int(extra["schedule_epochs"], "extra.schedule_epochs", 1)
    if "train_config" in extra and not isinstance(extra["train_config"], dict):
        raise _Bad("extra.train_config must be an object")
    if "history" in extra:
        h = extra["history"]
        if not isinstance(h, list) or not all(isinstance(r, dict) for r in h):
            raise _Bad("extra.history must be a list of objects (one per epoch)")
        for i, r in enumerate(h):
            for k, v in r.items():
                if not (v is None or isinstance(v, (int, float, str))):
                    raise _Bad(f"extra.history[{i}].{k[:60]} must be a number or string")
                if k in _HISTORY_NUMBERS and v is not None:  # plotted and compared
                    _real(v, f"extra.history[{i}].{k}")
            if "epoch" in r:
                _int(r["epoch"], f"extra.history[{i}].epoch", 1)


def check_metadata(path, info: dict, tensors: dict) -> None:
    """Raise CheckpointError naming ``path`` and the offending entry unless the metadata
    follows the schema and every floating-point tensor is finite."""
    from .checkpoint import CheckpointError
    try:
        _check(info, tensors)
    except _Bad as e:
        raise CheckpointError(f"checkpoint: {path} has malformed metadata: {e}") from None
    for name, t in tensors.items():
        if t.dtype.kind == "f" and not np.isfinite(t).all():
            bad = int(np.count_nonzero(~np.isfinite(t)))
            raise CheckpointError(f"checkpoint: {path}: tensor {name[:100]!r} holds {bad} "
                                  "non-finite values (NaN or infinity); refusing to load it")


def _check(info: dict, tensors: dict) -> None:
    missing = sorted(set(_FIELDS) - set(info))
    if missing:
        raise _Bad(f"missing entries {missing}")
    for key, (types, what) in _FIELDS.items():
        v = info[key]
        ok = (v is None and None in types) or isinstance(v, tuple(t for t in types if t))
        if not ok or (key == "epoch" and (isinstance(v, bool) or v < 0)):
            raise _Bad(f"{key!r} must be {what}, got {v!r}"[:300])
    _walk(info, "metadata")
    _int(info["epoch"], "epoch", 0, 10**9)
    cfg = _check_model_config(info["model_config"])
    if info["rng"] is not None:
        _rng_state(info["rng"], "rng")
    for name, st in info["module_rngs"].items():
        if not isinstance(st, dict):
            raise _Bad("'module_rngs' must map module names to generator states (objects)")
        _rng_state(st, f"module_rngs.{name[:60]}")
    _check_extra(info["extra"], cfg)
    odd = sorted(k for k in tensors if not k.startswith(("model.", "optimizer.")))
    if odd:
        raise _Bad(f"unexpected tensors {odd[:5]} (expected 'model.*' and 'optimizer.*')")
    opt = info["optimizer"]
    stored = sorted(k[10:] for k in tensors if k.startswith("optimizer."))
    if opt is None:
        if stored:
            raise _Bad(f"optimizer tensors {stored[:5]} but no optimizer entry")
        return
    keys = opt.get("state_keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise _Bad(f"'optimizer' must have 'state_keys', a list of strings, got {keys!r}"[:300])
    _check_optimizer(opt)
    if sorted(keys) != stored:
        raise _Bad(f"optimizer state_keys {sorted(keys)[:5]} do not match its tensors "
                   f"{stored[:5]} (missing {sorted(set(keys) - set(stored))[:5]}, unlisted "
                   f"{sorted(set(stored) - set(keys))[:5]})")
