"""The kernel contract's checks can fail: each clause catches a kernel with a planted bug
and passes the correct one."""

import numpy as np
import pytest
from contract import Kernel, arrays, ntuple, on_zeros, raises


def _check(name, a):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"toy: {name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"toy: {name} must be float32 or float64, got dtype {a.dtype}")


def toy_forward(x, w, *, scale=1.0):
    """y = scale * x * w (elementwise), the toy kernel under test."""
    _check("x", x)
    _check("w", w)
    if x.dtype != w.dtype:
        raise TypeError(f"toy: all arrays must share one dtype, got x={x.dtype}, w={w.dtype}")
    return x * w * x.dtype.type(scale), (x, w, x.dtype.type(scale))


def toy_backward(dy, cache):
    x, w, s = cache
    if dy.shape != x.shape:
        raise ValueError(f"toy_backward: dy must have shape {x.shape}, got {dy.shape}")
    if dy.dtype != x.dtype:
        raise TypeError(f"toy_backward: dy must have the forward dtype {x.dtype}, "
                        f"got {dy.dtype}")
    return dy * w * s, dy * x * s


def oracle(x, w):
    return np.array([[float(a) * float(b) for a, b in zip(r, q)] for r, q in zip(x, w)])


GOOD = Kernel("toy", toy_forward, toy_backward, ("x", "w"))


@pytest.fixture
def inputs(rng):
    return arrays(rng, (3, 4), (3, 4))


def test_the_correct_kernel_passes_every_clause(inputs, rng):
    GOOD.check_forward(inputs, oracle)
    GOOD.check_gradient(inputs, rng)
    GOOD.check_hostile(inputs, rng)
    GOOD.check_dtypes(inputs, rng)
    GOOD.check_type_errors(inputs)
    GOOD.check_dy_errors(inputs)
    with GOOD.raises("x must be", TypeError):
        toy_forward([1.0], inputs[1])


def test_of_names_the_op_and_binds_the_hyperparameters(inputs):
    k = Kernel.of(toy_forward, toy_backward, names=("x", "w"), scale=3.0)
    assert k.op == "toy" and k.names == ("x", "w")
    np.testing.assert_allclose(k.forward(*inputs)[0], 3 * inputs[0] * inputs[1])


def test_forward_off_the_oracle_fails(inputs):
    with pytest.raises(AssertionError):
        GOOD.check_forward(inputs, lambda x, w: oracle(x, w) * (1 + 1e-9))
    with pytest.raises(AssertionError):
        GOOD.check_forward(inputs, lambda x, w: oracle(x, w)[:, :3])


def test_a_wrong_gradient_fails(inputs, rng):
    swapped = Kernel("toy", toy_forward, lambda dy, c: toy_backward(dy, c)[::-1], ("x", "w"))
    with pytest.raises(AssertionError, match="toy"):
        swapped.check_gradient(inputs, rng)
    ones_only = Kernel("toy", toy_forward, lambda dy, c: (c[1] * c[2], c[0] * c[2]), ("x", "w"))
    with pytest.raises(AssertionError):  # right for dy = 1 only: the random dy catches it
        ones_only.check_gradient(inputs, rng)


def test_writing_into_an_input_fails(inputs, rng):
    def clobbering(x, w):
        y, cache = toy_forward(x, w)
        x[...] = 0.0  # after use: only the untouched-inputs check can see it
        return y, cache

    with pytest.raises((AssertionError, ValueError)):
        Kernel("toy", clobbering, toy_backward, ("x", "w")).check_hostile(inputs, rng)
    with pytest.raises(AssertionError, match="wrote an input"):
        Kernel("toy", clobbering, toy_backward, ("x", "w")).check_hostile(
            inputs, rng, variants=["noncontiguous"])


def test_writing_into_dy_fails(inputs, rng):
    def clobbering(dy, cache):
        grads = toy_backward(dy, cache)
        dy *= 2.0
        return grads

    with pytest.raises((AssertionError, ValueError)):
        Kernel("toy", toy_forward, clobbering, ("x", "w")).check_hostile(inputs, rng)


def test_assuming_contiguous_memory_fails(inputs, rng):
    def contiguous_only(x, w):
        c = np.lib.stride_tricks.as_strided(x, x.shape, (x.shape[1] * x.itemsize, x.itemsize))
        return toy_forward(np.array(c), w)

    with pytest.raises(AssertionError):
        Kernel("toy", contiguous_only, toy_backward, ("x", "w")).check_hostile(inputs, rng)


def test_an_upcast_fails(inputs, rng):
    def upcasting(x, w):
        y, cache = toy_forward(x, w)
        return y.astype(np.float64), cache

    with pytest.raises(AssertionError, match="float32 run gave float64"):
        Kernel("toy", upcasting, toy_backward, ("x", "w")).check_dtypes(inputs, rng)


def test_missing_or_unprefixed_errors_fail(inputs):
    lax = Kernel("toy", lambda x, w: toy_forward(np.asarray(x, np.float64), np.asarray(w)),
                 toy_backward, ("x", "w"))
    with pytest.raises(pytest.fail.Exception):
        lax.check_type_errors(inputs)
    unchecked = Kernel("toy", toy_forward, lambda dy, c: (dy, dy), ("x", "w"))
    with pytest.raises(pytest.fail.Exception):
        unchecked.check_dy_errors(inputs)
    with pytest.raises(AssertionError):  # the message does not start with the op name
        with raises("toy", "bad"):
            raise ValueError("bad value in toy")


def test_helpers():
    assert ntuple(3, 2) == (3, 3) and ntuple((1, 2), 2) == (1, 2)
    assert on_zeros(lambda a, b, c: (a.shape, b, c), [(2, 3), None, [1]]) == ((2, 3), None, [1])
    x, none = arrays(np.random.default_rng(0), (2,), None, dtype=np.float32)
    assert x.dtype == np.float32 and none is None
