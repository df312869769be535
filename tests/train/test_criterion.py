"""Models whose outputs are not class scores: the criterion reads them.

``criterion_for(model)`` is the model's ``criterion()`` or cross-entropy; ``Loss.scores /
classify / probabilities`` are what fit's accuracy, ``evaluate`` and ``predict`` use. A plain
logit model gives exactly what the argmax/softmax code did before (compared bit for bit with
that code, copied here), and a penalty model (RBF outputs) is read by the argmin."""

import numpy as np
import pytest

from convprop.layers import CrossEntropyLoss, Linear, MSELoss, Sequential
from convprop.layers.lenet_classic import EuclideanRBF, RBFLoss
from convprop.layers.loss import Loss, criterion_for
from convprop.optim import SGD
from convprop.train import evaluate, fit, predict


def _old_softmax(logits):  # convprop.train.evaluate.softmax before the criterion owned it
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _old_evaluate(model, loss, x, y, topk=(1, 5)):  # the argmax evaluate, as it was
    logits = model.predict(x)
    value, _ = loss.forward(logits, y)
    k = logits.shape[1]
    order = np.argsort(-logits, axis=1, kind="stable")
    pred = order[:, 0]
    out = {"loss": float(value), "accuracy": float(np.mean(pred == y))}
    for t in topk:
        if t != 1:
            out[f"top{t}"] = float(np.mean(np.any(order[:, :min(t, k)] == y[:, None], axis=1)))
    out["confusion"] = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    return out


class PenaltyNet(Sequential):
    """Linear features -> Euclidean RBF penalties over fixed codes; trains with eq. 9."""

    def criterion(self):
        return RBFLoss(j=1.0)


def _penalty_net(rng, d=4, k=3):
    codes = np.sign(rng.standard_normal((k, 6))).astype(np.float64)
    return PenaltyNet(Linear(d, 6, rng=rng, dtype=np.float64),
                      EuclideanRBF(codes, dtype=np.float64))


def _data(rng, n=60, d=4, k=3):
    y = rng.integers(0, k, n)
    x = rng.standard_normal((n, d)) + 2.0 * np.eye(d)[y % d]
    return x, y


def test_criterion_for():
    assert type(criterion_for(Sequential(Linear(2, 2)))) is CrossEntropyLoss
    assert isinstance(criterion_for(_penalty_net(np.random.default_rng(0))), RBFLoss)

    class Bad(Sequential):
        def criterion(self):
            return "mse"
    with pytest.raises(TypeError, match=r"criterion_for: Bad.criterion\(\) must return a Loss"):
        criterion_for(Bad())


@pytest.mark.parametrize("loss", [CrossEntropyLoss(), MSELoss()])
def test_logit_losses_read_outputs_exactly_as_before(rng, loss):
    out = rng.standard_normal((50, 7)).astype(np.float32)
    out[3, 2] = out[3, 5] = out[3].max() + 1  # a tie: the first wins
    np.testing.assert_array_equal(loss.classify(out), out.argmax(axis=1))
    assert loss.classify(out)[3] == 2
    for dt in (np.float32, np.float64):
        got = loss.probabilities(out.astype(dt))
        assert got.dtype == dt
        np.testing.assert_array_equal(got, _old_softmax(out.astype(dt)))
    assert loss.scores(out) is out


def test_evaluate_and_predict_of_a_logit_model_are_unchanged(rng):
    model = Sequential(Linear(4, 5, rng=rng, dtype=np.float64))
    x, y = _data(rng, k=5)
    new = evaluate(model, CrossEntropyLoss(), (x, y), topk=(1, 2, 5))
    old = _old_evaluate(model, CrossEntropyLoss(), x, y, topk=(1, 2, 5))
    assert new.keys() == old.keys()
    for key in old:
        np.testing.assert_array_equal(new[key], old[key], err_msg=key)
    np.testing.assert_array_equal(predict(model, x, batch_size=7),
                                  _old_softmax(model.predict(x).astype(np.float64)))


def test_penalty_model_is_read_by_the_argmin_everywhere(rng):
    model = _penalty_net(rng)
    x, y = _data(rng)
    pen = model.predict(x)
    ev = evaluate(model, criterion_for(model), (x, y), topk=(1, 2))
    pred = pen.argmin(axis=1)
    assert ev["accuracy"] == float(np.mean(pred == y))
    second = np.argsort(pen, axis=1, kind="stable")[:, :2]
    assert ev["top2"] == float(np.mean((second == y[:, None]).any(axis=1)))
    np.testing.assert_array_equal(ev["confusion"],
                                  np.bincount(y * 3 + pred, minlength=9).reshape(3, 3))
    p = predict(model, x)
    e = np.exp(-pen)
    np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(p.argmax(axis=1), pred)


def test_fit_counts_accuracy_with_the_losss_classify(rng):
    """A one-epoch, one-batch fit with lr 0: the epoch's accuracy is that of the outputs
    before the (null) step, counted by the argmin for penalties."""
    model = _penalty_net(rng)
    x, y = _data(rng)
    pen = model.predict(x)
    opt = SGD(model.parameters(), lr=0.0)
    h = fit(model, criterion_for(model), opt, (x, y), epochs=1, batch_size=len(x),
            rng=np.random.default_rng(0), verbose=0)
    assert h.records[-1]["accuracy"] == float(np.mean(pen.argmin(axis=1) == y))
    assert h.records[-1]["accuracy"] != float(np.mean(pen.argmax(axis=1) == y))


def test_fit_accepts_a_duck_typed_loss_without_classify(rng):
    class Plain:  # forward/backward only: fit counts the argmax
        def __init__(self):
            self.inner = CrossEntropyLoss()

        def forward(self, pred, target):
            return self.inner.forward(pred, target)

        def backward(self, dy, cache):
            return self.inner.backward(dy, cache)

    assert not isinstance(Plain(), Loss)
    model = Sequential(Linear(4, 3, rng=rng, dtype=np.float64))
    x, y = _data(rng)
    logits = model.predict(x)
    h = fit(model, Plain(), SGD(model.parameters(), lr=0.0), (x, y), epochs=1,
            batch_size=len(x), rng=np.random.default_rng(0), verbose=0)
    assert h.records[-1]["accuracy"] == float(np.mean(logits.argmax(axis=1) == y))
