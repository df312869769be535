"""Pure update rules: ``<rule>_update(param, grad, state, **hyper) -> (new_param, new_state)``.

Each rule follows ``torch.optim``'s single-tensor formulas and argument names. ``state`` is a
dict holding ``"step"`` (an int, the number of updates already applied) and the rule's buffers
(arrays shaped like ``param``); an empty dict means "before the first step". Nothing passed
in is written to: the new parameter and every new buffer are fresh arrays of ``param.dtype``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._checks import FLOAT_DTYPES

__all__ = ["sgd_update", "adam_update", "adamw_update", "rmsprop_update"]


# -- validation (shared with the optimizer classes, which pass their own name) -----------------
def _number(op: str, name: str, v) -> float:
    """A finite real (non-bool) number as a float: NaN and +-inf are refused (an infinite
    learning rate or weight decay turns every parameter into NaN in one step)."""
    if type(v) is float and math.isfinite(v):  # the common case, without the ABC checks
        return v
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {v!r}"[:300])
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{op}: {name} must be finite, got {v}")
    return v


def _nonneg(op: str, name: str, v) -> float:
    v = _number(op, name, v)
    if v < 0:
        raise ValueError(f"{op}: {name} must be >= 0, got {v}")
    return v


def _positive(op: str, name: str, v) -> float:
    v = _number(op, name, v)
    if not v > 0:
        raise ValueError(f"{op}: {name} must be > 0, got {v} (eps keeps the denominator away "
                         "from zero; 0 turns a zero gradient into 0/0 = NaN)")
    return v


def _beta(op: str, name: str, v) -> float:
    v = _number(op, name, v)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{op}: {name} must be in [0, 1), got {v}")
    return v


def _flag(op: str, name: str, v) -> bool:
    """A bool (NumPy's too, or the ints 0 and 1); "no" or 2 is an error, not True."""
    if isinstance(v, (bool, np.bool_)) or (isinstance(v, numbers.Integral) and v in (0, 1)):
        return bool(v)
    raise TypeError(f"{op}: {name} must be a bool, got {v!r}"[:300])


def check_sgd(op, *, lr, momentum, dampening, nesterov, weight_decay, maximize) -> dict:
    """lr, momentum, weight_decay finite and >= 0 (PyTorch's domains); dampening finite."""
    out = dict(lr=_nonneg(op, "lr", lr), momentum=_nonneg(op, "momentum", momentum),
               dampening=_number(op, "dampening", dampening),
               nesterov=_flag(op, "nesterov", nesterov),
               weight_decay=_nonneg(op, "weight_decay", weight_decay),
               maximize=_flag(op, "maximize", maximize))
    if out["nesterov"] and (out["momentum"] <= 0 or out["dampening"] != 0):
        raise ValueError(f"{op}: nesterov momentum requires momentum > 0 and dampening = 0, "
                         f"got momentum={out['momentum']}, dampening={out['dampening']}")
    return out


def check_adam(op, *, lr, betas, eps, weight_decay, amsgrad, maximize) -> dict:
    """lr, weight_decay finite and >= 0; betas in [0, 1); eps finite and > 0 (stricter than
    PyTorch's eps >= 0: eps = 0 makes a zero gradient's update 0/0 = NaN)."""
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise TypeError(f"{op}: betas must be a pair (beta1, beta2), got {betas!r}"[:300])
    return dict(lr=_nonneg(op, "lr", lr),
                betas=(_beta(op, "betas[0]", betas[0]), _beta(op, "betas[1]", betas[1])),
                eps=_positive(op, "eps", eps),
                weight_decay=_nonneg(op, "weight_decay", weight_decay),
                amsgrad=_flag(op, "amsgrad", amsgrad), maximize=_flag(op, "maximize", maximize))


def check_rmsprop(op, *, lr, alpha, eps, weight_decay, momentum, centered, maximize) -> dict:
    """lr, weight_decay, momentum finite and >= 0; eps finite and > 0; alpha finite and >= 0,
    as PyTorch allows. alpha is the decay of the running mean of squares s <- alpha s +
    (1 - alpha) g²: in [0, 1) it is an average; alpha = 1 freezes s at 0, so every step is
    g / eps (huge); alpha > 1 gives the new g² a negative weight, so s can turn negative and
    sqrt(s) NaN. Those two are accepted (PyTorch does) but almost never what is meant."""
    return dict(lr=_nonneg(op, "lr", lr), alpha=_nonneg(op, "alpha", alpha),
                eps=_positive(op, "eps", eps),
                weight_decay=_nonneg(op, "weight_decay", weight_decay),
                momentum=_nonneg(op, "momentum", momentum),
                centered=_flag(op, "centered", centered), maximize=_flag(op, "maximize", maximize))


def _arrays(op: str, param, grad, state, buffers: tuple[str, ...]):
    """Validate the arrays; return (param, effective grad source, step count)."""
    for name, a in (("param", param), ("grad", grad)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{op}: {name} must be a numpy.ndarray, got {type(a).__name__}")
        if a.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{op}: {name} must be float32 or float64, got dtype {a.dtype}")
    if grad.shape != param.shape:
        raise ValueError(f"{op}: grad must have the shape of param {param.shape}, got {grad.shape}")
    if grad.dtype != param.dtype:
        raise TypeError(f"{op}: grad must have the dtype of param ({param.dtype}), "
                        f"got {grad.dtype}")
    if not isinstance(state, dict):
        raise TypeError(f"{op}: state must be a dict, got {type(state).__name__}")
    step = state.get("step", 0)
    if type(step) is int and step >= 0:
        pass
    elif isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"{op}: state['step'] must be an int >= 0, got {step!r}")
    for key in buffers:
        buf = state.get(key)
        if buf is not None and (not isinstance(buf, np.ndarray) or buf.shape != param.shape):
            got = buf.shape if isinstance(buf, np.ndarray) else type(buf).__name__
            raise ValueError(f"{op}: state[{key!r}] must be an array of shape {param.shape}, "
                             f"got {got}")
    return int(step)


def _buffer(state: dict, key: str, like: np.ndarray) -> np.ndarray:
    """The stored buffer in the param's dtype, or zeros before the first step."""
    buf = state.get(key)
    return np.zeros(like.shape, like.dtype) if buf is None else buf.astype(like.dtype, copy=False)


# -- the rules ---------------------------------------------------------------------------------
def sgd_update(param, grad, state, *, lr, momentum=0, dampening=0, nesterov=False,
               weight_decay=0, maximize=False):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    g = ±grad + weight_decay * p;  b = g on the first step, else momentum * b + (1 - dampening) * g;
    d = g + momentum * b (nesterov) or b;  p <- p - lr * d.

    Args: param, grad: arrays of one shape and dtype; state: {"step", "momentum_buffer"?}.
    Returns: (new_param, new_state). The first momentum step copies g undamped, as PyTorch does.
    """
    h = check_sgd("sgd_update", lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                  weight_decay=weight_decay, maximize=maximize)
    step = _arrays("sgd_update", param, grad, state, ("momentum_buffer",))
    g = -grad if h["maximize"] else grad
    if h["weight_decay"] != 0:
        g = g + h["weight_decay"] * param
    new_state = {"step": step + 1}
    if h["momentum"] != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = np.array(g, dtype=param.dtype, copy=True)
        else:
            buf = h["momentum"] * buf.astype(param.dtype, copy=False) + (1 - h["dampening"]) * g
        new_state["momentum_buffer"] = buf
        g = g + h["momentum"] * buf if h["nesterov"] else buf
    return param - h["lr"] * g, new_state


def _adam(op, param, grad, state, *, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled):
    h = check_adam(op, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                   maximize=maximize)
    keys = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if h["amsgrad"] else ())
    step = _arrays(op, param, grad, state, keys) + 1
    beta1, beta2 = h["betas"]
    lr, wd = h["lr"], h["weight_decay"]
    g = -grad if h["maximize"] else grad
    p = param
    if wd != 0:
        if decoupled:
            p = param * (1 - lr * wd)
        else:
            g = g + wd * param
    m = _buffer(state, "exp_avg", param)
    v = _buffer(state, "exp_avg_sq", param)
    m = m + (1 - beta1) * (g - m)
    v = beta2 * v + (1 - beta2) * (g * g)
    new_state = {"step": step, "exp_avg": m, "exp_avg_sq": v}
    if h["amsgrad"]:
        v = np.maximum(_buffer(state, "max_exp_avg_sq", param), v)
        new_state["max_exp_avg_sq"] = v
    step_size = lr / (1 - beta1 ** step)
    denom = np.sqrt(v) / (1 - beta2 ** step) ** 0.5 + h["eps"]
    return p - step_size * (m / denom), new_state


def adam_update(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                amsgrad=False, maximize=False):
    """Adam with L2 weight decay folded into the gradient, as ``torch.optim.Adam``.

    g = ±grad + weight_decay * p;  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g²;
    v̂ = max(v̂, v) (amsgrad) or v;  p <- p - lr/(1-b1^t) * m / (sqrt(v̂)/sqrt(1-b2^t) + eps).

    Args: param, grad: arrays of one shape and dtype; state: {"step", "exp_avg", "exp_avg_sq",
    "max_exp_avg_sq"?}. Returns: (new_param, new_state). eps is added after the bias correction.
    """
    return _adam("adam_update", param, grad, state, lr=lr, betas=betas, eps=eps,
                 weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize, decoupled=False)


def adamw_update(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                 amsgrad=False, maximize=False):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    p <- p (1 - lr * weight_decay), then the Adam step of :func:`adam_update` on the raw gradient.

    Args and returns as :func:`adam_update`. The decay multiplies p before the moment update.
    """
    return _adam("adamw_update", param, grad, state, lr=lr, betas=betas, eps=eps,
                 weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize, decoupled=True)


def rmsprop_update(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0,
                   momentum=0, centered=False, maximize=False):
    """RMSprop, optionally centered and with momentum, as ``torch.optim.RMSprop``.

    g = ±grad + weight_decay * p;  s <- alpha s + (1-alpha) g²;  a = sqrt(s - ḡ²) with
    ḡ <- alpha ḡ + (1-alpha) g (centered) or sqrt(s);  b <- momentum b + g / (a + eps),
    p <- p - lr b (momentum > 0) or p <- p - lr g / (a + eps). See :func:`check_rmsprop` for
    what alpha >= 1 does.

    Args: param, grad: arrays of one shape and dtype; state: {"step", "square_avg",
    "momentum_buffer"?, "grad_avg"?}. Returns: (new_param, new_state). Buffers start at zero.
    """
    op = "rmsprop_update"
    h = check_rmsprop(op, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                      momentum=momentum, centered=centered, maximize=maximize)
    step = _arrays(op, param, grad, state, ("square_avg", "momentum_buffer", "grad_avg"))
    alpha = h["alpha"]
    g = -grad if h["maximize"] else grad
    if h["weight_decay"] != 0:
        g = g + h["weight_decay"] * param
    s = alpha * _buffer(state, "square_avg", param) + (1 - alpha) * (g * g)
    new_state = {"step": step + 1, "square_avg": s}
    if h["centered"]:
        gbar = _buffer(state, "grad_avg", param)
        gbar = gbar + (1 - alpha) * (g - gbar)
        new_state["grad_avg"] = gbar
        avg = np.sqrt(s - gbar * gbar) + h["eps"]
    else:
        avg = np.sqrt(s) + h["eps"]
    if h["momentum"] > 0:
        buf = h["momentum"] * _buffer(state, "momentum_buffer", param) + g / avg
        new_state["momentum_buffer"] = buf
        return param - h["lr"] * buf, new_state
    return param - h["lr"] * (g / avg), new_state
