"""predict's picture reader keeps the 0..255 scale of what the picture shows: Pillow's
``convert`` clips instead (a 16-bit grey PNG came out 99.5% white, a 0..1 float TIFF black,
a digit drawn on a transparent background black), and the prediction was printed with exit
status 0."""

import numpy as np
import pytest

from convprop.io import read_example

Image = pytest.importorskip("PIL.Image")


def _ramp(dtype, top):
    return (np.arange(28 * 28).reshape(28, 28) * (top / (28 * 28 - 1))).astype(dtype)


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_grey_is_scaled_not_clipped(tmp_path, channels):
    a = _ramp(np.uint16, 65535)
    Image.fromarray(a).save(tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").mode.startswith("I;16")
    got = read_example(tmp_path / "g.png", channels, (28, 28), False)
    assert got.shape == (channels, 28, 28)
    for c in got:
        np.testing.assert_allclose(c, a * (255 / 65535), atol=1e-3)


def test_16_bit_grey_is_resized_like_8_bit(tmp_path):
    a = _ramp(np.uint16, 65535)
    Image.fromarray(a).resize((56, 56), Image.NEAREST).save(tmp_path / "g.png")
    got = read_example(tmp_path / "g.png", 1, (28, 28), False)
    assert got.shape == (1, 28, 28) and 0 <= got.min() and got.max() <= 255
    assert abs(got.mean() - a.mean() * 255 / 65535) < 2


@pytest.mark.parametrize("mode, values", [("F", np.full((28, 28), 0.5, np.float32)),
                                          ("I", np.full((28, 28), 7, np.int32))])
def test_32_bit_pixels_of_unknown_scale_are_refused(tmp_path, mode, values):
    p = tmp_path / "x.tiff"
    Image.fromarray(values, mode).save(p)
    with pytest.raises(ValueError, match=rf"^predict: {p} has 32-bit .* pixels \(mode {mode}\) "
                                         "of unknown scale"):
        read_example(p, 1, (28, 28), False)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparency_is_composited_on_white(tmp_path, mode):
    # a black square drawn only through the alpha channel (colour 0 everywhere)
    bands = len(mode)
    a = np.zeros((28, 28, bands), np.uint8)
    a[10:18, 10:18, -1] = 255
    Image.fromarray(a, mode).save(tmp_path / "t.png")
    got = read_example(tmp_path / "t.png", 1, (28, 28), False)[0]
    assert (got[10:18, 10:18] == 0).all() and (got[:10] == 255).all()


def test_8_bit_pictures_are_unchanged(tmp_path):
    a = _ramp(np.uint8, 255)
    Image.fromarray(a).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_example(tmp_path / "g.png", 1, (28, 28), False)[0], a)
