"""Training checkpoints: plain arrays in one safetensors file, everything else as JSON.

One file holds the model's parameters and buffers (``model.<name>``), the optimizer's
arrays (``optimizer.<key>``) and, in the header's metadata, a JSON document with the model
config (name and arguments, so it can be rebuilt), epoch, optimizer hyperparameters,
schedule state, every random generator's state, the preprocessing, and a SHA-256 of the
tensors and the metadata. The file is written durably and atomically (:mod:`.atomic`), so a
crash mid-write never corrupts the previous checkpoint; nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

import numpy as np

from ._schema import check_metadata
from .safetensors import SafetensorsError, load_file, parse_header, save_file

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "module_generators",
           "save_checkpoint"]

FORMAT = "convprop-checkpoint"
VERSION = 2  # 2: the SHA-256 covers the metadata too


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
        """Load every saved state into the given live objects, strictly and all-or-nothing:
        on any mismatch a CheckpointError names the part that failed and the model,
        optimizer, schedule and generators are left exactly as they were."""
        for part, live, saved in (("optimizer", optimizer, self.optimizer_state),
                                  ("schedule", schedule, self.schedule_state),
                                  ("training generator", rng, self.rng_state)):
            if live is not None and saved is None:
                raise CheckpointError(f"checkpoint has no {part} state to resume from, but a "
                                      f"{part} was given")
        gens = module_generators(model)

        def check_generators():
            if set(gens) != set(self.module_rng_states):
                raise CheckpointError(
                    f"checkpoint random generators {sorted(self.module_rng_states)} do not "
                    f"match the model's {sorted(gens)}")
        # Every step pairs an apply with an undo that restores the state from before it. On a
        # failure the failed step (which may have applied part of itself) and every step
        # before it are undone, in reverse.
        model_before = model.state_dict()
        steps = [("model", lambda: model.load_state_dict(self.model_state),
                  lambda: model.load_state_dict(model_before)),
                 ("random generators", check_generators, lambda: None)]
        steps += [(f"random generator of module {name!r}",
                   _setter(g, self.module_rng_states[name]), _setter(g, g.bit_generator.state))
                  for name, g in gens.items()]
        if optimizer is not None:
            opt_before = optimizer.state_dict()
            steps.append(("optimizer", lambda: optimizer.load_state_dict(self.optimizer_state),
                          lambda: optimizer.load_state_dict(opt_before)))
        if schedule is not None:
            sched_before = schedule.state_dict()
            lr_before = schedule.optimizer.lr  # loading a schedule also sets its optimizer's lr
            steps.append(("schedule", lambda: schedule.load_state_dict(self.schedule_state),
                          lambda: (schedule.load_state_dict(sched_before),
                                   setattr(schedule.optimizer, "lr", lr_before))))
        if rng is not None:
            steps.append(("training generator", _setter(rng, self.rng_state),
                          _setter(rng, rng.bit_generator.state)))
        done = []
        for part, apply, undo in steps:
            done.append(undo)
            try:
                apply()
            except BaseException as e:
                for u in reversed(done):
                    u()
                if isinstance(e, CheckpointError) or not isinstance(
                        e, (KeyError, ValueError, TypeError, OverflowError)):
                    raise
                if part == "model":
                    raise CheckpointError(f"checkpoint does not match the model: {e}") from None
                raise CheckpointError(f"checkpoint: cannot restore the {part}, so nothing was "
                                      f"restored: {e}") from None


def _setter(gen: np.random.Generator, state):
    def apply():
        gen.bit_generator.state = state
    return apply


def module_generators(model) -> dict:
    """Every ``numpy.random.Generator`` a module owns (e.g. Dropout's), by module name."""
    return {name: m.rng for name, m in model.named_modules()
            if isinstance(getattr(m, "rng", None), np.random.Generator)}


def _digest(tensors: dict, meta: dict) -> str:
    """SHA-256 of every tensor (name, dtype, shape, bytes) and of the metadata without its
    "sha256" entry, as canonical JSON (sorted keys), so a change to either is detected."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        h.update(k.encode() + b"\0" + str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    body = {k: v for k, v in meta.items() if k != "sha256"}
    h.update(b"\0meta\0" + json.dumps(body, sort_keys=True).encode())
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
    }
    try:  # hash exactly what a reader will parse back; JSON has no NaN or infinity
        meta = json.loads(json.dumps(meta, allow_nan=False))
    except ValueError:
        raise ValueError("save_checkpoint: the metadata (config, hyperparameters, history or "
                         "extra) holds a NaN or infinite number, which a checkpoint cannot "
                         "store") from None
    meta["sha256"] = _digest(tensors, meta)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file(tensors, path, metadata={"convprop": json.dumps(meta)})


def load_checkpoint(path) -> Checkpoint:
    """Read and verify a checkpoint; raise CheckpointError with the reason if it is not a
    regular file, corrupt, truncated, of another format or version, fails its checksum, or
    carries metadata outside its schema (see :mod:`._schema`) or a non-finite weight.

    The SHA-256 only catches accidental damage (anyone can recompute it), so every metadata
    value is validated as untrusted data before it is returned."""
    try:
        tensors, meta = load_file(path)
    except SafetensorsError as e:
        msg = str(e)
        if "no such file" in msg or "not a regular file" in msg or "cannot read" in msg:
            raise CheckpointError(msg.replace("safetensors:", "checkpoint:", 1)) from None
        raise CheckpointError(f"checkpoint: {path} is corrupt or truncated: {e}") from None
    if "convprop" not in meta:
        raise CheckpointError(f"checkpoint: {path} is a safetensors file but not a convprop "
                              "checkpoint (no convprop metadata)")
    try:
        info = parse_header(meta["convprop"].encode("utf-8"), path)
    except SafetensorsError as e:
        msg = (str(e).replace("safetensors:", "checkpoint:", 1)
               .replace("a corrupt header", "corrupt metadata"))
        if "not a JSON object" in msg:
            msg = f"checkpoint: {path} has metadata that is not a JSON object (expected one)"
        raise CheckpointError(msg) from None
    if info.get("format") != FORMAT or info.get("version") != VERSION:
        raise CheckpointError(f"checkpoint: {path} has format {str(info.get('format'))[:60]!r} "
                              f"version {str(info.get('version'))[:20]}; expected {FORMAT!r} "
                              f"version {VERSION}")
    if _digest(tensors, info) != info.get("sha256"):
        raise CheckpointError(f"checkpoint: {path} failed its SHA-256 check (corrupt or "
                              "modified data or metadata)")
    check_metadata(path, info, tensors)
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    opt = None
    if info["optimizer"] is not None:
        opt = {k: v for k, v in info["optimizer"].items() if k != "state_keys"}
        opt["state"] = {k: tensors[f"optimizer.{k}"] for k in info["optimizer"]["state_keys"]}
    return Checkpoint(model_state=model_state, model_config=info["model_config"],
                      epoch=info["epoch"], optimizer_state=opt,
                      schedule_state=info["schedule"], rng_state=info["rng"],
                      module_rng_states=info["module_rngs"], extra=info["extra"])
