"""Fixtures of the hostile-input suite: a small trained checkpoint and private copies of it."""

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # so the tests can `import attack`


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A checkpoint of LeNet-5 after one epoch on 64 images of the embedded MNIST sample."""
    from convprop.train.recipe import TrainConfig, run

    out = tmp_path_factory.mktemp("trained")
    run(TrainConfig(limit=64, epochs=1, batch_size=32, out=str(out), verbose=0))
    return out / "checkpoint.safetensors"


@pytest.fixture
def ckpt(trained, tmp_path):
    """A private copy of the trained checkpoint, free to vandalise."""
    p = tmp_path / "ck.safetensors"
    shutil.copy(trained, p)
    return p


