"""Validation helpers shared by every public entry point.

Every message starts with the op name, then says what was expected and what was received,
e.g. ``conv2d: x must be 4-D (N, C, H, W), got shape (3, 5, 5)``.
"""

from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def as_float_array(op: str, name: str, a) -> np.ndarray:
    """Return ``a`` as a float32/float64 ndarray (no copy when it already is one)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: {name} must be float32 or float64, got dtype {a.dtype}")
    return a


def check_ndim(op: str, name: str, a: np.ndarray, ndims, layout: str = "") -> None:
    """Raise ValueError unless ``a.ndim`` is ``ndims`` (an int or a tuple of ints)."""
    allowed = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    if a.ndim not in allowed:
        want = " or ".join(f"{n}-D" for n in allowed)
        extra = f" {layout}" if layout else ""
        raise ValueError(f"{op}: {name} must be {want}{extra}, got shape {a.shape}")


def check_same_dtype(op: str, **arrays) -> np.dtype:
    """All given (non-None) arrays share one dtype; return it."""
    items = [(k, v) for k, v in arrays.items() if v is not None]
    dtypes = {v.dtype for _, v in items}
    if len(dtypes) > 1:
        got = ", ".join(f"{k}={v.dtype}" for k, v in items)
        raise TypeError(f"{op}: all arrays must share one dtype, got {got}")
    return items[0][1].dtype


def pair(op: str, name: str, v, *, minimum: int = 1) -> tuple[int, int]:
    """Normalise an int or a pair of ints to a pair, each at least ``minimum``."""
    return ntuple(op, name, v, 2, minimum=minimum)


def ntuple(op: str, name: str, v, n: int, *, minimum: int = 1) -> tuple:
    """Normalise an int or a length-``n`` sequence of ints to an ``n``-tuple, each at least
    ``minimum`` (``pair`` is ``ntuple(..., 2)``)."""
    if type(v) is int and v >= minimum:
        return (v,) * n
    if type(v) is tuple and len(v) == n:  # the common case, checked without a generator
        for e in v:
            if type(e) is not int or e < minimum:
                break
        else:
            return v
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        out = (int(v),) * n
    elif isinstance(v, (tuple, list)) and len(v) == n and all(
        isinstance(e, numbers.Integral) and not isinstance(e, bool) for e in v
    ):
        out = tuple(int(e) for e in v)
    else:
        what = "a pair" if n == 2 else f"a tuple of {n}"
        raise TypeError(f"{op}: {name} must be an int or {what} of ints, got {v!r}")
    if min(out) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return out


def boolean(op: str, name: str, v) -> bool:
    """A bool (or NumPy bool) as a Python bool; anything else is a TypeError."""
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a bool, got {v!r}")
    return bool(v)


def training_rng(op: str, training, rng) -> bool:
    """The random ops' pair: ``training`` a bool, and ``rng`` a numpy Generator when training
    (it draws) or a Generator or None otherwise. Returns ``training`` as a Python bool."""
    training = boolean(op, "training", training)
    if training and not isinstance(rng, np.random.Generator):
        raise TypeError(f"{op}: rng must be a numpy.random.Generator when training, "
                        f"got {type(rng).__name__}")
    if not training and rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"{op}: rng must be a numpy.random.Generator or None, "
                        f"got {type(rng).__name__}")
    return training


def positive_int(op: str, name: str, v, *, minimum: int = 1) -> int:
    if type(v) is int and v >= minimum:
        return v
    if not (isinstance(v, numbers.Integral) and not isinstance(v, bool)):
        raise TypeError(f"{op}: {name} must be an int, got {v!r}")
    if v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v}")
    return int(v)


def real_number(op: str, name: str, v, *, minimum: float | None = None) -> float:
    """A real (non-bool) number as a Python float, at least ``minimum`` when given."""
    if type(v) is float and (minimum is None or v >= minimum):
        return v
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        raise TypeError(f"{op}: {name} must be a real number, got {v!r}")
    if minimum is not None and not v >= minimum:  # "not >=" also rejects NaN
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v}")
    return float(v)


def check_shape(op: str, name: str, a: np.ndarray, shape: tuple, what: str = "") -> None:
    if a.shape != tuple(shape):
        extra = f" ({what})" if what else ""
        raise ValueError(f"{op}: {name} must have shape {tuple(shape)}{extra}, got {a.shape}")


def check_dy(op: str, dy, shape: tuple, dtype) -> np.ndarray:
    """The one upstream-gradient check of every backward: an ndarray with the forward
    output's ``shape`` and the forward's ``dtype`` (a float64 dy after a float32 forward is
    a TypeError, not a silent upcast of every gradient)."""
    dy = as_float_array(op, "dy", dy)
    check_shape(op, "dy", dy, shape, "the forward output's shape")
    if dy.dtype != dtype:
        raise TypeError(f"{op}: dy must have the forward dtype {np.dtype(dtype)}, "
                        f"got {dy.dtype}")
    return dy


def check_cache(op: str, cache, expected: type):
    """Every backward's first check: ``cache`` is the ``expected`` cache its own forward
    returned, not another op's cache or None (a clear TypeError naming both, instead of an
    AttributeError deep inside or a silently wrong gradient). Returns ``cache``."""
    if type(cache) is expected or isinstance(cache, expected):
        return cache
    forward = op[: -len("_backward")] + "_forward" if op.endswith("_backward") else "its forward"
    got = "None" if cache is None else f"a {type(cache).__name__}"
    if cache is not None and type(cache).__name__.endswith("Cache"):
        got += " (another op's cache)"
    raise TypeError(f"{op}: cache must be the {expected.__name__} that {forward} returned, "
                    f"got {got}")


def finite_number(op: str, name: str, v, *, low: float | None = None,
                  high: float | None = None, low_open: bool = False,
                  high_open: bool = False) -> float:
    """A finite real (non-bool) number as a Python float, inside ``[low, high]`` (either end
    open when ``low_open`` / ``high_open``; None: unbounded). NaN and +-inf are ValueErrors
    naming the argument."""
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        raise TypeError(f"{op}: {name} must be a real number, got {v!r}")
    v = float(v)
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if np.isfinite(v) and not too_low and not too_high:
        return v
    if low is not None and high is not None:
        domain = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        domain = f"a finite number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        domain = f"a finite number {'<' if high_open else '<='} {high:g}"
    else:
        domain = "a finite number"
    raise ValueError(f"{op}: {name} must be {domain}, got {v}")


def one_of(op: str, name: str, v, options, *, shown: str | None = None):
    """``v`` checked to be one of ``options`` (strings compared as strings only: an unhashable
    or other-typed value is the same ValueError). ``shown`` replaces the listing of the
    options in the message (default ``'a', 'b', 'c'``). Returns ``v``."""
    if not isinstance(v, str) or v not in options:
        listing = ", ".join(map(repr, options)) if shown is None else shown
        raise ValueError(f"{op}: {name} must be one of {listing}, got {v!r}")
    return v
