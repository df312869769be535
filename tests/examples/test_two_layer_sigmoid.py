"""examples/two_layer_sigmoid.py reproduces the published digits of the classic example."""

import numpy as np
import pytest

import two_layer_sigmoid as ex


def close(value, published: str):
    """``value`` agrees with ``published`` to every digit it was published with."""
    decimals = len(published.split(".")[1])
    assert abs(value - float(published)) < 0.5 * 10.0 ** -decimals, (value, published)


@pytest.fixture(scope="module")
def step():
    return ex.first_step("original")


@pytest.fixture(scope="module")
def step_updated():
    return ex.first_step("updated")


def test_forward_pass_digits(step):
    close(step["net_h"][0], "0.3775")
    close(step["out_h"][0], "0.593269992")
    close(step["out_h"][1], "0.596884378")
    close(step["out_o"][0], "0.75136507")
    close(step["out_o"][1], "0.772928465")
    close(step["E_total"], "0.298371109")


def test_backward_and_update_digits(step):
    close(step["dE_dW_output"][0, 0], "0.082167041")
    close(step["w5+"], "0.35891648")
    close(step["w6+"], "0.408666186")
    close(step["w7+"], "0.511301270")
    close(step["w8+"], "0.561370121")
    close(step["w1+"], "0.149780716")
    close(step["w2+"], "0.19956143")
    close(step["w3+"], "0.24975114")
    close(step["w4+"], "0.29950229")
    close(step["E_after_one_step"], "0.291027774")


def test_biases_are_not_trained():
    net = ex.build_network()
    ex.train_step(net)
    hidden, _, output, _ = net.children()
    np.testing.assert_array_equal(hidden.bias.value, [0.35, 0.35])
    np.testing.assert_array_equal(output.bias.value, [0.60, 0.60])


def test_updated_variant_differs_only_in_the_hidden_layer(step, step_updated):
    for name in ("w5+", "w6+", "w7+", "w8+"):
        assert step_updated[name] == step[name]
    for name in ("w1+", "w2+", "w3+", "w4+"):
        assert step_updated[name] != step[name]
    close(step_updated["E_after_one_step"], "0.291027924")
    # the shortcut's hidden-layer gradient is delta_o routed through the updated w5..w8
    w_new = np.array([[step["w5+"], step["w6+"]], [step["w7+"], step["w8+"]]])
    np.testing.assert_allclose(step_updated["dE_dout_h"], step["delta_o"] @ w_new,
                               rtol=1e-14)


def test_layer_by_layer_step_agrees_with_sequential(step):
    net = ex.build_network()
    x, t = ex.INPUTS, ex.TARGETS
    y, cache = net.forward(x, training=True)
    loss_fn = ex.MSELoss(reduction="half_sum")
    E, lc = loss_fn.forward(y, t)
    net.backward(loss_fn.backward(1.0, lc), cache)
    hidden, _, output, _ = net.children()
    assert float(E) == step["E_total"]
    np.testing.assert_allclose(output.weight.grad, step["dE_dW_output"], rtol=1e-14)
    np.testing.assert_allclose(hidden.weight.grad, step["dE_dW_hidden"], rtol=1e-14)


def test_ten_thousand_updates():
    r = ex.train(10_000, "original")
    close(r["E_total"], "0.000035101878")
    u = ex.train(10_000, "updated")
    close(u["out_o1"], "0.015912196")
    close(u["out_o2"], "0.984065734")
    close(u["E_total"], "0.000035084786")  # measured here; the quoted 0.0000351085 is neither


def test_unknown_variant_is_rejected():
    with pytest.raises(ValueError, match="train_step: hidden_deltas_from"):
        ex.train_step(ex.build_network(), hidden_deltas_from="new")


def test_script_prints_labelled_quantities(capsys):
    ex.main(["--hidden-deltas-from", "updated", "--steps", "3"])
    out = capsys.readouterr().out
    for label in ("net_h1", "out_o1", "E_total", "dE/dw5", "w5+ = 0.358916480", "delta_h2",
                  "After 3 updates", "'updated' first applies the update"):
        assert label in out
    assert "using the updated w5..w8" in out
