import os
import sys

import numpy as np
import pytest

# the repository root, for `from twins import torch_zoo` (the verified PyTorch twins of the
# zoo); tests/ itself, for `helpers` and `contract`
_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.dirname(_TESTS), _TESTS):
    if _p not in sys.path:
        sys.path.insert(0, _p)


@pytest.fixture
def lenet():
    """LeNet-5 in float64 with fixed random weights (28 x 28 grey input, 10 classes)."""
    from convprop.models import build
    return build("lenet5", rng=np.random.default_rng(5), dtype=np.float64)


def randomize_bn(model, rng):
    """Non-trivial batch-norm parameters and running statistics (evaluation mode uses them)."""
    from convprop.layers import BatchNorm2d
    for m in model.modules():
        if isinstance(m, BatchNorm2d):
            c = m.num_features
            m.weight.value = rng.uniform(0.5, 1.5, c)
            m.bias.value = rng.standard_normal(c) * 0.2
            m.set_buffer("running_mean", rng.standard_normal(c) * 0.3)
            m.set_buffer("running_var", rng.uniform(0.5, 2.0, c))


#: a small ResNet-20 (one block per stage, 8 x 8 input) for fast tests
RESNET_CONFIG = {"input_size": 8, "widths": (4, 6, 8), "blocks_per_stage": 1}


@pytest.fixture
def resnet():
    from convprop.models import build
    rng = np.random.default_rng(7)
    model = build("resnet20", rng=rng, dtype=np.float64, **RESNET_CONFIG)
    randomize_bn(model, rng)
    return model


@pytest.fixture
def twin(torch):
    """``make(name, config, rng) -> (model, torch_model)``: a float64 zoo model with random
    batch-norm statistics and its torch twin (twins/torch_zoo.py) holding the same weights,
    in evaluation mode."""
    from twins import torch_zoo

    def make(name, config, rng):
        from convprop.models import build
        model = build(name, rng=rng, dtype=np.float64, **config)
        randomize_bn(model, rng)
        tmodel = torch_zoo.TORCH_MODELS[name](**config).double().eval()
        tmodel.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                                model.state_dict().items()}, strict=True)
        return model, tmodel
    return make


@pytest.fixture
def captum(torch):
    """Captum (test-only, like torch), or skip."""
    return pytest.importorskip("captum.attr", reason="captum not installed: parity skipped")
