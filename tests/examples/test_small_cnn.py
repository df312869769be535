"""examples/small_cnn.py reproduces the published digits of the small CNN example."""

import numpy as np
import pytest

import small_cnn as ex


def close(value, published: str):
    """``value`` agrees with ``published`` to every digit it was published with."""
    decimals = len(published.split(".")[1])
    assert abs(value - float(published)) < 0.5 * 10.0 ** -decimals, (value, published)


@pytest.fixture(scope="module")
def q():
    return ex.worked_example()


def test_forward_pass(q):
    # conv by hand: z[i, j] = sum of w * x[i:i+2, j:j+2] + 0.1
    np.testing.assert_allclose(q["conv"], [[0.2, 1.8, 1.2], [0.9, -0.1, 1.0],
                                           [0.4, 0.6, 1.2]], atol=1e-14)
    np.testing.assert_allclose(q["relu"], np.maximum(q["conv"], 0.0), atol=0)
    np.testing.assert_allclose(q["pool"], [[1.8, 1.8], [0.9, 1.2]], atol=1e-14)
    close(q["E"], "0.319306864")


def test_pooling_switches_and_accumulated_gradient(q):
    assert q["switches"] == {(0, 0): (0, 1), (0, 1): (0, 1), (1, 0): (1, 0), (1, 1): (2, 2)}
    dr = q["dE_drelu"]
    close(dr[0, 1], "0.053045155")
    assert dr[0, 1] == pytest.approx(q["dE_dpool"][0, 0] + q["dE_dpool"][0, 1], rel=1e-14)
    assert np.count_nonzero(dr) == 3  # only the three distinct winners get a gradient


def test_parameter_gradients(q):
    for (i, j), published in np.ndenumerate(np.array([["0.106090309", "-0.004682918"],
                                                      ["-0.028784741", "0.178607232"]])):
        close(q["dw"][i, j], published)
    close(q["db"], "0.024207550")


def test_one_sgd_step(q):
    np.testing.assert_allclose(q["w_new"], ex.CONV_W[0, 0] - 0.5 * q["dw"], rtol=1e-15)
    close(q["E_after_one_step"], "0.183121285")


def test_layer_by_layer_step_agrees_with_sequential(q):
    net = ex.build_network()
    y, cache = net.forward(ex.IMAGE, training=True)
    loss_fn = ex.MSELoss(reduction="half_sum")
    E, lc = loss_fn.forward(y, ex.TARGETS)
    net.backward(loss_fn.backward(1.0, lc), cache)
    conv = net[0]
    assert float(E) == pytest.approx(q["E"], rel=1e-15)
    np.testing.assert_allclose(conv.weight.grad[0, 0], q["dw"], rtol=1e-13)


def test_script_prints_switches_and_accumulation(capsys):
    ex.main([])
    out = capsys.readouterr().out
    for label in ("window (0, 0) -> r[0, 1] = 1.8", "window (0, 1) -> r[0, 1] = 1.8",
                  "r[0, 1] wins windows [(0, 0), (0, 1)]", "= 0.053045155",
                  "E = 1/2 sum (t - o)^2       = 0.319306864", "E after one step = 0.183121285"):
        assert label in out
