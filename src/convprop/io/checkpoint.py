"""Training checkpoints: plain arrays in one safetensors file, everything else as JSON.

One file holds the model's parameters and buffers (``model.<name>``), the optimizer's
arrays (``optimizer.<key>``) and, in the header's metadata, a JSON document with the model
config (name and arguments, so it can be rebuilt), epoch, optimizer hyperparameters,
schedule state, every random generator's state, the preprocessing, and a SHA-256 of the
tensor bytes. The file is written atomically (temporary file, fsync, rename), so a crash
mid-write never corrupts the previous checkpoint; nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

import numpy as np

from .safetensors import SafetensorsError, load_file, save_file

__all__ = ["Checkpoint", "CheckpointError", "save_checkpoint", "load_checkpoint",
           "module_generators"]

FORMAT = "convprop-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is corrupt, of another format, or does not match the model."""


@dataclass
class Checkpoint:
    model_state: dict
    model_config: dict | None = None
    epoch: int = 0
    optimizer_state: dict | None = None
    schedule_state: dict | None = None
    rng_state: dict | None = None
    module_rng_states: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def restore(self, model, optimizer=None, schedule=None, rng=None) -> None:
        """Load every saved state into the given live objects (strictly)."""
        try:
            model.load_state_dict(self.model_state)
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"checkpoint does not match the model: {e}") from None
        gens = module_generators(model)
        if set(gens) != set(self.module_rng_states):
            raise CheckpointError(
                f"checkpoint random generators {sorted(self.module_rng_states)} do not match "
                f"the model's {sorted(gens)}")
        for name, g in gens.items():
            g.bit_generator.state = self.module_rng_states[name]
        if optimizer is not None:
            if self.optimizer_state is None:
                raise CheckpointError("checkpoint has no optimizer state to resume from")
            optimizer.load_state_dict(self.optimizer_state)
        if schedule is not None and self.schedule_state is not None:
            schedule.load_state_dict(self.schedule_state)
        if rng is not None and self.rng_state is not None:
            rng.bit_generator.state = self.rng_state


def module_generators(model) -> dict:
    """Every ``numpy.random.Generator`` a module owns (e.g. Dropout's), by module name."""
    return {name: m.rng for name, m in model.named_modules()
            if isinstance(getattr(m, "rng", None), np.random.Generator)}


def _digest(tensors: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        h.update(k.encode() + b"\0" + str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_checkpoint(path, model, *, optimizer=None, schedule=None, epoch: int = 0,
                    rng: np.random.Generator | None = None, model_config: dict | None = None,
                    extra: dict | None = None) -> None:
    """Write a checkpoint of ``model`` (and optionally the optimizer, schedule, epoch and
    training Generator) to ``path`` atomically."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_meta = None
    if optimizer is not None:
        sd = optimizer.state_dict()
        tensors.update({f"optimizer.{k}": np.asarray(v) for k, v in sd["state"].items()})
        opt_meta = {k: v for k, v in sd.items() if k != "state"}
        opt_meta["state_keys"] = sorted(sd["state"])
    meta = {
        "format": FORMAT, "version": VERSION, "epoch": int(epoch),
        "model_config": model_config if model_config is not None
        else getattr(model, "config", None),
        "optimizer": opt_meta,
        "schedule": schedule.state_dict() if schedule is not None else None,
        "rng": rng.bit_generator.state if rng is not None else None,
        "module_rngs": {k: g.bit_generator.state for k, g in module_generators(model).items()},
        "extra": extra or {},
        "sha256": _digest(tensors),
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file(tensors, path, metadata={"convprop": json.dumps(meta)})


def load_checkpoint(path) -> Checkpoint:
    """Read and verify a checkpoint; raise CheckpointError with the reason if it is corrupt,
    truncated, of another format or version, or fails its checksum."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint: no such file {path}")
    try:
        tensors, meta = load_file(path)
    except SafetensorsError as e:
        raise CheckpointError(f"checkpoint: {path} is corrupt or truncated: {e}") from None
    try:
        info = json.loads(meta["convprop"])
    except (KeyError, json.JSONDecodeError):
        raise CheckpointError(f"checkpoint: {path} is a safetensors file but not a convprop "
                              "checkpoint (no convprop metadata)") from None
    if info.get("format") != FORMAT or info.get("version") != VERSION:
        raise CheckpointError(f"checkpoint: {path} has format {info.get('format')!r} version "
                              f"{info.get('version')!r}; expected {FORMAT!r} version {VERSION}")
    if _digest(tensors) != info.get("sha256"):
        raise CheckpointError(f"checkpoint: {path} failed its SHA-256 check (corrupt data)")
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    opt = None
    if info.get("optimizer") is not None:
        o = dict(info["optimizer"])
        keys = o.pop("state_keys")
        o["state"] = {k: tensors[f"optimizer.{k}"] for k in keys}
        opt = o
    return Checkpoint(model_state=model_state, model_config=info.get("model_config"),
                      epoch=int(info["epoch"]), optimizer_state=opt,
                      schedule_state=info.get("schedule"), rng_state=info.get("rng"),
                      module_rng_states=info.get("module_rngs") or {},
                      extra=info.get("extra") or {})
