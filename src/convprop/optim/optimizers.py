"""Optimizer classes: small stateful wrappers that apply a pure update rule to ``Parameter``s.

``step()`` rebinds each ``param.value`` to the array returned by the rule (never an in-place
write), so a caller holding the old array keeps it unchanged. One parameter group: ``lr`` is a
plain settable attribute that the schedules in :mod:`convprop.optim.schedules` read and write.

``state_dict()`` is ``{"type", "hyperparams", "state", "steps"}``: ``state`` maps
``"<param index>.<buffer name>"`` to arrays (for safetensors), everything else is JSON-able.
"""

from __future__ import annotations

import numbers

import numpy as np

from .updates import (_nonneg, adam_update, adamw_update, check_adam, check_rmsprop, check_sgd,
                      rmsprop_update, sgd_update)

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "OPTIMIZERS"]


class Optimizer:
    """Base class: holds the parameters, the hyperparameters and one state dict per parameter."""

    _rule = None            # the pure update function, set by subclasses
    _buffers: tuple = ()    # every buffer name the rule may keep

    def __init__(self, params, hyperparams: dict):
        name = type(self).__name__
        if hasattr(params, "parameters") and callable(params.parameters):
            params = params.parameters()
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        for i, p in enumerate(params):
            if not (hasattr(p, "value") and hasattr(p, "grad")
                    and isinstance(p.value, np.ndarray)):
                raise TypeError(f"{name}: params[{i}] must be a Parameter (with .value and .grad "
                                f"arrays), got {type(p).__name__}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter appears more than once in params")
        self.params = params
        self._hyper = self._check(hyperparams)
        self.initial_lr = None  # set by the first schedule attached, as torch's "initial_lr"
        self.state: list[dict] = [{} for _ in params]

    # -- hyperparameters ------------------------------------------------------------------------
    def _check(self, hyperparams: dict) -> dict:
        raise NotImplementedError

    @property
    def hyperparams(self) -> dict:
        return dict(self._hyper)

    @property
    def lr(self) -> float:
        return self._hyper["lr"]

    @lr.setter
    def lr(self, value) -> None:
        self._hyper = self._check({**self._hyper, "lr": value})

    # -- the training-step contract -----------------------------------------------------------
    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        rule = type(self)._rule
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            p.value, self.state[i] = rule(p.value, p.grad, self.state[i], **self._hyper)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = np.zeros_like(p.value)

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Copies of the state: arrays under "state", JSON-able values everywhere else."""
        hyper = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self._hyper.items()}
        if self.initial_lr is not None:
            hyper["initial_lr"] = self.initial_lr
        arrays, steps = {}, {}
        for i, st in enumerate(self.state):
            steps[str(i)] = int(st.get("step", 0))
            for k, v in st.items():
                if k != "step":
                    arrays[f"{i}.{k}"] = np.array(v, copy=True)
        return {"type": type(self).__name__, "hyperparams": hyper, "state": arrays,
                "steps": steps}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and buffers; refuse a state of another optimizer type, another
        number of parameters or other shapes. Arrays are copied into each parameter's dtype."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict) or set(state_dict) != {"type", "hyperparams", "state",
                                                                   "steps"}:
            got = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}: expected a dict with keys ['hyperparams', 'state', "
                             f"'steps', 'type'], got {got}")
        if state_dict["type"] != type(self).__name__:
            raise ValueError(f"{name}: the state is of a {state_dict['type']} optimizer, "
                             f"expected {type(self).__name__}")
        for key, kind in (("hyperparams", dict), ("state", dict), ("steps", dict)):
            if not isinstance(state_dict[key], kind):
                raise ValueError(f"{name}: {key} must be a dict, got "
                                 f"{type(state_dict[key]).__name__}")
        hyper = dict(state_dict["hyperparams"])
        initial_lr = hyper.pop("initial_lr", None)
        if initial_lr is not None:
            initial_lr = _nonneg(name, "initial_lr", initial_lr)
        if set(hyper) != set(self._hyper):
            raise ValueError(f"{name}: expected hyperparams {sorted(self._hyper)}, "
                             f"got {sorted(hyper)}")
        steps = state_dict["steps"]
        n = len(self.params)
        if set(steps) != {str(i) for i in range(n)}:
            raise ValueError(f"{name}: the state is for {len(steps)} parameters, this optimizer "
                             f"has {n}")
        new_state: list[dict] = [{} for _ in range(n)]
        for i in range(n):
            s = steps[str(i)]
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0:
                raise ValueError(f"{name}: steps[{i!r}] must be an int >= 0, got {s!r}")
            if s:
                new_state[i]["step"] = int(s)
        for key, arr in state_dict["state"].items():
            idx, _, buf = key.partition(".")
            if not (idx.isdigit() and int(idx) < n and buf in self._buffers):
                raise ValueError(f"{name}: unexpected state entry {key!r} (expected "
                                 f"'<index < {n}>.<one of {list(self._buffers)}>')")
            p = self.params[int(idx)].value
            arr = np.asarray(arr)
            if arr.dtype.kind not in "fiu":
                raise TypeError(f"{name}: state {key!r} must be a real array, got dtype "
                                f"{arr.dtype}")
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise ValueError(f"{name}: state {key!r} holds NaN or infinite values")
            if arr.shape != p.shape:
                raise ValueError(f"{name}: state {key!r} has shape {arr.shape}, but parameter "
                                 f"{idx} has shape {p.shape}")
            new_state[int(idx)][buf] = np.array(arr, dtype=p.dtype, copy=True)
        for i, st in enumerate(new_state):
            if len(st) > ("step" in st) and "step" not in st:
                raise ValueError(f"{name}: parameter {i} has buffers but steps[{i!r}] is 0")
        checked = self._check({k: (tuple(v) if isinstance(v, list) else v)
                               for k, v in hyper.items()})
        self._hyper, self.state = checked, new_state
        self.initial_lr = None if initial_lr is None else float(initial_lr)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyper.items())
        return f"{type(self).__name__}({len(self.params)} parameters, {args})"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum; see :func:`sgd_update`."""

    _rule = staticmethod(sgd_update)
    _buffers = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      nesterov=nesterov, weight_decay=weight_decay,
                                      maximize=maximize))

    def _check(self, h):
        return check_sgd(type(self).__name__, **h)


class Adam(Optimizer):
    """Adam with L2 weight decay added to the gradient; see :func:`adam_update`."""

    _rule = staticmethod(adam_update)
    _buffers = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _check(self, h):
        return check_adam(type(self).__name__, **h)


class AdamW(Adam):
    """Adam with decoupled weight decay; see :func:`adamw_update`."""

    _rule = staticmethod(adamw_update)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum; see :func:`rmsprop_update`."""

    _rule = staticmethod(rmsprop_update)
    _buffers = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _check(self, h):
        return check_rmsprop(type(self).__name__, **h)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}
