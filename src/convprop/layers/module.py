"""``Parameter`` and ``Module``: the stateful tier over the pure kernels.

A module owns parameters (value + grad), buffers (running statistics) and child modules,
and delegates its arithmetic to one kernel pair. ``forward(x, *, training) -> (y, cache)``
returns the cache to the caller (never stored on ``self``), so one module may run several
times in one step; ``backward(dy, cache, *, need_dx=True) -> dx`` *adds* parameter gradients
into ``.grad``. Every module takes ``need_dx`` (containers and ``fit`` pass it), so the one
contract needs no inspection of a subclass's signature.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import numpy as np


class StateDictError(KeyError, ValueError):
    """``load_state_dict`` found missing, unexpected or mis-shaped entries."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _value_problem(v: np.ndarray, target: np.dtype) -> str:
    """Why ``v`` cannot be loaded into an array of dtype ``target`` ("" when it can)."""
    if v.dtype.kind not in "biuf":
        return f"dtype {v.dtype} is not a real number type"
    if v.dtype.kind == "f" and not np.isfinite(v).all():
        return f"{int(np.count_nonzero(~np.isfinite(v)))} NaN or infinite values"
    if target.kind in "iu" and v.size:
        if v.dtype.kind == "f" and not np.array_equal(v, np.round(v)):
            return f"non-integral values for an {target} buffer"
        info = np.iinfo(target)
        if v.min() < info.min or v.max() > info.max:
            return f"values outside the range of {target}"
    return ""


class Parameter:
    """A trainable array and its accumulated gradient (same shape and dtype)."""

    __slots__ = ("grad", "value")

    def __init__(self, value: np.ndarray):
        value = np.array(value, copy=True)
        if value.dtype not in (np.float32, np.float64):
            raise TypeError(f"Parameter: value must be float32 or float64, got {value.dtype}")
        self.value = value
        self.grad = np.zeros_like(value)

    @property
    def shape(self) -> tuple:
        return self.value.shape

    def zero_grad(self) -> None:
        self.grad = np.zeros_like(self.value)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.value.shape}, dtype={self.value.dtype})"


class Module:
    """Base class. Subclasses set parameters, buffers and children as attributes."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())

    # -- registration ---------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call Module.__init__() before assigning attributes")
        keep_buffer = name in self._buffers and not isinstance(value, (Parameter, Module))
        for reg in (self._parameters, self._buffers, self._modules):
            reg.pop(name, None)
        if keep_buffer:  # plain assignment to a buffer rebinds it, it does not unregister it
            self._buffers[name] = True
        elif isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """A persistent non-trainable array (in ``state_dict``), e.g. running statistics."""
        object.__setattr__(self, name, value)
        self._buffers[name] = True

    def set_buffer(self, name: str, value: np.ndarray) -> None:
        """Rebind a registered buffer to a new array (kernels never update in place)."""
        if name not in self._buffers:
            raise KeyError(f"{type(self).__name__}: no buffer named {name!r}")
        object.__setattr__(self, name, value)

    # -- the contract -----------------------------------------------------------------------
    def forward(self, x: np.ndarray, *, training: bool = False):
        raise NotImplementedError

    def backward(self, dy: np.ndarray, cache, *, need_dx: bool = True):
        """Add the parameter gradients into ``.grad`` and return dx. Every module accepts
        ``need_dx``: with ``need_dx=False`` (the caller discards dx, e.g. for a network's
        first layer) a module may skip computing it and return None; modules with nothing to
        save ignore the flag and return dx anyway."""
        raise NotImplementedError

    def __call__(self, x: np.ndarray, *, training: bool = False):
        return self.forward(x, training=training)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Inference: the forward output in evaluation mode, without the cache."""
        return self.forward(x, training=False)[0]

    # -- traversal --------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "", _seen=None) -> Iterator[tuple[str, Module]]:
        """(dotted name, Module) pairs, the root first; a shared module once, first name."""
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, m in self.named_children():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name, seen)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) pairs, each shared parameter once, in definition order."""
        seen = set()
        for mname, m in self.named_modules(prefix):
            for pname, p in m._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for mname, m in self.named_modules(prefix):
            for bname in m._buffers:
                yield (f"{mname}.{bname}" if mname else bname), getattr(m, bname)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def num_parameters(self) -> int:
        return int(sum(p.value.size for p in self.parameters()))

    def astype(self, dtype) -> Module:
        """Cast every parameter and buffer to ``dtype`` (float32 or float64), in place."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"{type(self).__name__}.astype: dtype must be float32 or float64, "
                            f"got {dtype}")
        for _, m in self.named_modules():
            for p in m._parameters.values():
                p.value = p.value.astype(dtype)
                p.grad = p.grad.astype(dtype)
            for b in m._buffers:
                val = getattr(m, b)
                if isinstance(val, np.ndarray) and val.dtype.kind == "f":
                    object.__setattr__(m, b, val.astype(dtype))
        return self

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of every parameter value and buffer, by dotted name."""
        sd = OrderedDict((n, p.value.copy()) for n, p in self.named_parameters())
        sd.update((n, np.array(b, copy=True)) for n, b in self.named_buffers())
        return sd

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays into parameters and buffers (cast to their dtype).

        Shapes are always checked; with ``strict`` missing and unexpected keys are errors too.
        Values must be real numbers: complex, string, object and other dtypes are refused, as
        are NaN and infinities, and non-integral or out-of-range values for an integer buffer.
        One :class:`StateDictError` names every offender; nothing is loaded when it is raised."""
        name = type(self).__name__
        params = dict(self.named_parameters())
        buffers = {}
        for mname, m in self.named_modules():
            for b in m._buffers:
                buffers[f"{mname}.{b}" if mname else b] = (m, b)
        expected = set(params) | set(buffers)
        missing = sorted(expected - set(state)) if strict else []
        unexpected = sorted(set(state) - expected) if strict else []
        bad, values, wrong = [], {}, []
        for k in sorted(expected & set(state)):
            ref = params[k].value if k in params else getattr(*buffers[k])
            try:
                v = np.asarray(state[k])
            except (ValueError, TypeError) as e:  # e.g. a ragged nested list
                wrong.append(f"{k} (not an array: {str(e)[:80]})")
                continue
            problem = _value_problem(v, np.asarray(ref).dtype)
            if problem:
                wrong.append(f"{k} ({problem})")
            elif v.shape != np.shape(ref):
                bad.append(f"{k} (expected shape {np.shape(ref)}, got {v.shape})")
            values[k] = v
        if missing or unexpected or bad or wrong:
            parts = [f"{label} {keys}" for label, keys in (
                ("missing keys", missing), ("unexpected keys", unexpected),
                ("shape mismatch for", bad), ("bad values for", wrong)) if keys]
            raise StateDictError(f"{name}.load_state_dict: " + "; ".join(parts))
        for k in expected & set(state):
            v = values[k]
            if k in params:
                p = params[k]
                p.value = np.array(v, dtype=p.value.dtype, copy=True)
            else:
                m, b = buffers[k]
                old = getattr(m, b)
                object.__setattr__(m, b, np.array(v, dtype=np.asarray(old).dtype, copy=True))

    def summary(self, input_shape) -> str:
        """A table of every layer's output shape and parameter count (see
        :func:`convprop.layers.summary`)."""
        from ._summary import summary
        return summary(self, input_shape)

    # -- display ----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        kids = list(self.named_children())
        if not kids:
            return lines[0] + ")"
        for n, m in kids:
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({n}): {sub}")
        return "\n".join(lines) + "\n)"

