"""The training recipe on 1-D sequences and 3-D clips: any-rank statistics, input_size, no
2-D augmentation (a Flatten + Linear probe model stands in for the zoo's 1-D/3-D nets)."""

import io
import json
import math

import numpy as np
import pytest

from convprop import models
from convprop.layers import Flatten, Linear, Sequential
from convprop.train.recipe import TrainConfig, run


@pytest.fixture
def probe(monkeypatch):
    seen = []

    def probe_net(*, in_channels, num_classes, input_size, rng=None, dtype=np.float32,
                  spatial_rank=2):
        seen.append(input_size)
        sizes = (input_size if isinstance(input_size, (tuple, list))
                 else (input_size,) * spatial_rank)
        return Sequential(Flatten(), Linear(in_channels * math.prod(sizes), num_classes, rng=rng,
                                            dtype=dtype))

    monkeypatch.setitem(models.MODELS, "probe", probe_net)
    return seen


@pytest.mark.parametrize("dataset, input_size, rank, shape", [
    ("seq-mnist", 784, 1, "1x784"),
    ("moving-mnist", (16, 32, 32), 3, "1x16x32x32"),
    ("mnist-sample", 28, 2, "1x28x28"),
])
def test_recipe_runs_on_every_rank(tmp_path, probe, dataset, input_size, rank, shape):
    log = io.StringIO()
    cfg = TrainConfig(model="probe", dataset=dataset, epochs=1, limit=48, batch_size=16,
                      augment=True, out=str(tmp_path), verbose=1,
                      model_args={"spatial_rank": rank} if rank != 3 else {})
    result = run(cfg, file=log)
    assert probe == [input_size]
    text = log.getvalue()
    assert f"48 training and 48 test examples of {shape}" in text
    assert ("is for 2-D images" in text) == (rank != 2)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and result["metrics"]["dataset"] == dataset
