"""fit's accuracy and evaluate's metrics for dense pixelwise networks: one prediction per
labelled position (label >= 0), unlabelled positions (-1) left out; per-example labels as
before."""

import numpy as np

from convprop import layers as L
from convprop.models.dense import PixelCrossEntropyLoss
from convprop.optim import SGD
from convprop.train import evaluate, fit


class Fixed(L.Module):
    """A 'network' whose score maps are given: its predictions are known in advance."""

    def __init__(self, maps):
        super().__init__()
        self.maps = maps
        self.w = L.Parameter(np.zeros(1))

    def forward(self, x, *, training=False):
        idx = x[:, 0, 0, 0].astype(int)
        return self.maps[idx] + self.w.value[0], idx

    def backward(self, dy, cache, *, need_dx=True):
        self.w.grad = self.w.grad + dy.sum(keepdims=True).reshape(1)
        return None


def test_dense_accuracy_counts_labelled_positions():
    rng = np.random.default_rng(0)
    maps = rng.standard_normal((4, 3, 5, 6))              # 4 examples, 3 classes, 5x6 pixels
    pred = maps.argmax(axis=1)
    labels = rng.integers(0, 3, (4, 5, 6))
    labels[rng.random((4, 5, 6)) < 0.5] = -1               # half the pixels unlabelled
    x = np.arange(4, dtype=np.float64).reshape(4, 1, 1, 1) * np.ones((4, 1, 2, 2))
    keep = labels >= 0
    want = np.count_nonzero((pred == labels) & keep) / np.count_nonzero(keep)
    m = Fixed(maps)
    ev = evaluate(m, PixelCrossEntropyLoss(), (x, labels), topk=(1, 2))
    assert abs(ev["accuracy"] - want) < 1e-12
    assert ev["confusion"].sum() == np.count_nonzero(keep)
    h = fit(m, PixelCrossEntropyLoss(), SGD(m.parameters(), lr=0.0), (x, labels), epochs=1,
            batch_size=4, rng=np.random.default_rng(1), verbose=0)
    assert abs(h["accuracy"][0] - want) < 1e-12 and 0 <= h["accuracy"][0] <= 1
