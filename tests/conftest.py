import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # so tests can `import helpers`


@pytest.fixture
def rng():
    return np.random.default_rng(20261121)


@pytest.fixture
def torch():
    """PyTorch in float64, or skip (the suite passes without it; CI installs it)."""
    t = pytest.importorskip("torch", reason="PyTorch not installed: parity test skipped")
    t.set_num_threads(1)
    return t
