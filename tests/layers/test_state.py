"""state_dict / load_state_dict, buffers, repr and summary."""

import numpy as np
import pytest

import convprop.layers as L


def cnn(rng):
    return L.Sequential(
        L.Conv2d(1, 4, 3, padding=1, rng=rng), L.BatchNorm2d(4), L.ReLU(), L.MaxPool2d(2),
        L.Residual(L.Conv2d(4, 4, 3, padding=1, bias=False, rng=rng)),
        L.Flatten(), L.Dropout(0.5, rng=np.random.default_rng(0)), L.Linear(4 * 3 * 2, 5, rng=rng))


def test_state_dict_names_and_round_trip(rng):
    net = cnn(rng)
    sd = net.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "4.body.weight",
                        "7.weight", "7.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked"]
    x = rng.standard_normal((3, 1, 6, 4)).astype(np.float32)
    net.forward(x, training=True)  # moves the running statistics
    assert int(net[1].num_batches_tracked) == 1
    other = cnn(np.random.default_rng(99))
    other.load_state_dict(net.state_dict())
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v, net.state_dict()[k], err_msg=k)
        assert v.dtype == net.state_dict()[k].dtype
    np.testing.assert_array_equal(other.predict(x), net.predict(x))
    # state_dict holds copies; loading copies too
    sd = net.state_dict()
    sd["0.weight"][...] = 0
    assert net[0].weight.value.any()
    other.load_state_dict(sd)
    sd["0.weight"][...] = 1
    assert not other[0].weight.value.any()


def test_load_state_dict_names_every_offender(rng):
    net = cnn(rng)
    sd = net.state_dict()
    del sd["0.bias"], sd["1.running_var"]
    sd["extra.weight"] = np.zeros(2)
    sd["7.weight"] = np.zeros((5, 7))
    with pytest.raises(KeyError) as e:
        net.load_state_dict(sd)
    msg = str(e.value)
    for key in ("Sequential.load_state_dict", "'0.bias'", "'1.running_var'",
                "'extra.weight'", "7.weight", "(5, 24)", "(5, 7)"):
        assert key in msg, (key, msg)
    assert isinstance(e.value, L.StateDictError) and isinstance(e.value, ValueError)
    before = net[0].weight.value.copy()
    sd2 = {k: v + 1 for k, v in net.state_dict().items()}
    sd2["7.weight"] = np.zeros((5, 7))
    with pytest.raises(ValueError, match="shape mismatch for.*7.weight"):
        net.load_state_dict(sd2, strict=False)
    np.testing.assert_array_equal(net[0].weight.value, before)  # nothing loaded
    partial = {"0.weight": np.ones((4, 1, 3, 3)), "nonsense": np.zeros(1)}
    net.load_state_dict(partial, strict=False)
    assert net[0].weight.value.dtype == np.float32 and (net[0].weight.value == 1).all()


def test_buffers(rng):
    bn = L.BatchNorm2d(2)
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var",
                                                  "num_batches_tracked"]
    bn.running_mean = np.full(2, 3.0, np.float32)  # plain assignment keeps it a buffer
    assert dict(bn.named_buffers())["running_mean"][0] == 3
    with pytest.raises(KeyError, match="BatchNorm2d"):
        bn.set_buffer("nope", np.zeros(2))
    x = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    rm = bn.running_mean
    bn.forward(x, training=True)
    assert bn.running_mean is not rm and rm[0] == 3  # rebound, never written
    state = bn.state_dict()
    bn.forward(x, training=False)
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v, state[k])  # evaluation leaves the statistics alone
    assert list(L.BatchNorm1d(2, track_running_stats=False).state_dict()) == ["weight", "bias"]
    assert list(L.BatchNorm1d(2, affine=False).state_dict()) == [
        "running_mean", "running_var", "num_batches_tracked"]


def test_repr(rng):
    r = repr(cnn(rng))
    for s in ("Sequential(", "(0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))", "(1): BatchNorm2d(4, eps=1e-05, momentum=0.1",
              "(4): Residual(\n    (body): Conv2d(4, 4", "bias=False", "(shortcut): Identity()",
              "Dropout(p=0.5)", "Linear(in_features=24, out_features=5, bias=True)",
              "MaxPool2d(kernel_size=(2, 2), stride=(2, 2)"):
        assert s in r, (s, r)
    assert repr(L.ConvTranspose2d(2, 4, 3, 2, 1, 1, groups=2)).startswith(
        "ConvTranspose2d(2, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
        "output_padding=(1, 1), groups=2")
    assert repr(L.CrossEntropyLoss()) == "CrossEntropyLoss(reduction='mean')"


def test_summary_shapes_and_counts(rng):
    net = cnn(rng)
    rows = L.layer_table(net, (2, 1, 6, 4))
    got = {name: (shapes, n) for name, _, shapes, n in rows}
    assert got["0"] == ([(2, 4, 6, 4)], 4 * 9 + 4)
    assert got["1"] == ([(2, 4, 6, 4)], 8)
    assert got["3"] == ([(2, 4, 3, 2)], 0)
    assert got["4"] == ([(2, 4, 3, 2)], 0)
    assert got["4.body"] == ([(2, 4, 3, 2)], 4 * 4 * 9)
    assert got["5"] == ([(2, 24)], 0)
    assert got["7"] == ([(2, 5)], 24 * 5 + 5)
    assert sum(n for *_, n in rows) == net.num_parameters() == 40 + 8 + 144 + 125
    text = net.summary((2, 1, 6, 4))
    assert text == L.summary(net, (2, 1, 6, 4))
    assert "Total params: 317" in text and "Output shape: (2, 5)" in text
    assert "4.body" in text and "Conv2d(4, 4, kernel_size=(3, 3)" in text
    assert "(2, 4, 3, 2)" in text
    assert "forward" not in net[0].__dict__  # the tracing hooks are gone
    assert int(net[1].num_batches_tracked) == 0  # evaluation pass: no state change


def test_summary_shared_module_and_errors(rng):
    lin = L.Linear(3, 3, rng=rng)
    rows = L.layer_table(L.Sequential(lin, L.ReLU(), lin), (1, 3))
    assert [(n, s, c) for n, _, s, c in rows] == [("0", [(1, 3), (1, 3)], 12),
                                                   ("1", [(1, 3)], 0)]
    with pytest.raises(TypeError, match="summary"):
        L.summary("net", (1, 3))
    with pytest.raises(ValueError, match="summary"):
        L.summary(lin, (0, 3))
    assert "Linear" in L.summary(lin, (2, 3))
