"""``PadShortcut``, ResNet's option-A shortcut as a module (its kernel is tested in
tests/functional/test_shortcut.py)."""

import numpy as np
import pytest

from convprop.layers import PadShortcut


def test_pad_shortcut_module():
    m = PadShortcut(8, 2)
    assert m.parameters() == [] and "out_channels=8, stride=2" in repr(m)
    x = np.ones((1, 4, 3, 3), np.float32)
    y, cache = m.forward(x, training=True)
    assert y.shape == (1, 8, 2, 2) and y.dtype == np.float32
    assert m.backward(np.ones_like(y), cache).sum() == 4 * 4
    assert m.backward(np.ones_like(y), cache, need_dx=False).shape == x.shape  # ignored
    with pytest.raises(ValueError, match="PadShortcut: stride must be >= 1"):
        PadShortcut(8, 0)


def test_still_importable_from_models():
    from convprop.models import PadShortcut as Old
    assert Old is PadShortcut
