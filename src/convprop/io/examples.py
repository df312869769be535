"""Reading one example for ``convprop predict`` (and the commands that take pictures) from an
untrusted file: a ``.npy`` array whose header is checked before its data is read, or a
PNG/JPEG (BMP, GIF, PPM, TIFF, WEBP) decoded by Pillow with its decompression-bomb guard;
either way refused in one line naming the file when it is malformed, of another shape, not
real-valued, non-finite or outside the range rule (:data:`RANGE_TOLERANCE`)."""

from __future__ import annotations

import os
import warnings

import numpy as np

__all__ = ["RANGE_TOLERANCE", "read_example"]


#: predict's range rule: an example's raw values must be finite and lie within the 0..255
#: range of the uint8 images every convprop model is trained on, give or take this fraction
#: of the range (-25.5 .. 280.5), which leaves room for resampling and rounding.
RANGE_TOLERANCE = 0.1
_NPY_KINDS = "biuf"  # bool, ints, floats; object, strings, complex, void and dates refused


def _read_npy(path, want):
    """A .npy array whose header (shape, dtype) is checked before its data is read."""
    from numpy.lib import format as npy

    from ..data._validate import open_regular_file

    f, size = open_regular_file("predict", path)
    with f:
        try:
            version = npy.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = npy.read_array_header_1_0(f, max_header_size=10000)
            elif version == (2, 0):
                shape, fortran, dtype = npy.read_array_header_2_0(f, max_header_size=10000)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        except (ValueError, SyntaxError, EOFError, OSError, TypeError) as e:
            raise ValueError(f"predict: {path} is not a valid .npy file ({str(e)[:120]})") \
                from None
        if dtype.hasobject or dtype.kind not in _NPY_KINDS or dtype.fields:
            raise ValueError(f"predict: {path} holds {dtype} values; expected real numbers "
                             "(bool, int or float): object, string and complex arrays are "
                             "refused")
        count = 1
        for d in shape:
            count *= d
        target = 1
        for d in want:
            target *= d
        if count != target or len(shape) > len(want) + 1:
            raise ValueError(f"predict: {path} has shape {shape}, expected {want}")
        nbytes = count * dtype.itemsize
        if size - f.tell() != nbytes:
            raise ValueError(f"predict: {path} is truncated or has trailing bytes: its header "
                             f"says {shape} {dtype} ({nbytes} bytes), {size - f.tell()} follow")
        buf = f.read(nbytes)
    a = np.frombuffer(buf, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return a.astype(np.float64)


_PICTURE_FORMATS = ["PNG", "JPEG", "BMP", "GIF", "PPM", "TIFF", "WEBP"]


class _Unreadable(Exception):
    pass


def _pixels(Image, img, channels, shape, path) -> np.ndarray:
    """The decoded picture as float64 (*shape) or (*shape, 3) on the 0..255 scale.

    Pillow's ``convert`` clips rather than rescales: a 16-bit grey picture would come out
    almost all 255, a 0..1 float TIFF all 0, and a digit drawn on a transparent background
    all black. So 16-bit pixels are scaled by 255/65535, transparency is composited on
    white (as a viewer shows it), and 32-bit integer or float pixels, whose scale is
    unknown, are refused."""
    size = (shape[1], shape[0])
    if img.mode in ("I", "F") or img.mode.startswith("I;") and not img.mode.startswith("I;16"):
        kind = "float" if img.mode == "F" else "integer"
        raise _Unreadable(f"predict: {path} has 32-bit {kind} pixels (mode {img.mode}) of "
                          "unknown scale; save it as an 8- or 16-bit picture, or pass its "
                          "0..255 values as a .npy array")
    if img.mode.startswith("I;16"):
        grey = Image.fromarray(np.asarray(img, np.float32) * np.float32(255 / 65535), "F")
        a = np.asarray(grey.resize(size, Image.BILINEAR) if grey.size != size else grey,
                       np.float64)
        return a if channels == 1 else np.repeat(a[..., None], 3, axis=-1)
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA"))
    img = img.convert("L" if channels == 1 else "RGB")
    if img.size != size:
        img = img.resize(size, Image.BILINEAR)
    return np.asarray(img, dtype=np.float64)


def _read_picture(path, channels, shape):
    """A PNG/JPEG (or BMP, GIF, PPM, TIFF, WEBP) as float64 (channels, *shape) on the 0..255
    scale (see :func:`_pixels` for 16-bit, 32-bit and transparent pictures). Any decoding
    failure, a truncated file or a decompression bomb (over Pillow's MAX_IMAGE_PIXELS) is a
    ValueError naming the file; other formats (EPS, which runs Ghostscript) are refused."""
    try:
        from PIL import Image
    except ImportError:
        raise ValueError("reading PNG/JPEG needs Pillow: pip install 'convprop[images]' "
                         "(or pass .npy arrays)") from None
    from ..data._validate import open_regular_file

    f, _ = open_regular_file("predict", path)
    with f, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(f, formats=_PICTURE_FORMATS)
            img.load()  # decode now, so a truncated file fails here
            a = _pixels(Image, img, channels, shape, path)
        except _Unreadable as e:
            raise ValueError(str(e)) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ValueError(f"predict: {path} is too large an image to decode ({e})") from None
        except Exception as e:  # noqa: BLE001 - any decoder failure on untrusted bytes
            raise ValueError(f"predict: cannot read the image {path} "
                             f"({type(e).__name__}: {str(e)[:160]})") from None
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def read_example(path, channels, shape, invert):
    """One example as float64 (channels, *shape) in 0..255: a .npy array of raw 0..255
    values (the channel axis may be left out when there is one), or a PNG/JPEG for 2-D
    models. Refused with a ValueError naming the file: unreadable or malformed files, other
    shapes, non-real dtypes, non-finite values and values outside the range rule
    (:data:`RANGE_TOLERANCE`)."""
    path = os.fspath(path)
    want = (channels, *shape)
    if path.endswith(".npy"):
        a = _read_npy(path, want)
        if a.ndim == len(shape) and channels == 1:
            a = a[None]
        if a.ndim == len(want) + 1 and a.shape[0] == 1:
            a = a[0]
    else:
        if len(shape) != 2:
            raise ValueError(f"predict: {path}: this model takes {len(shape)}-D examples of "
                             f"shape {want}; pass them as .npy arrays")
        a = _read_picture(path, channels, shape)
    if a.shape != want:
        alt = f" or {tuple(shape)}" if channels == 1 else ""
        raise ValueError(f"predict: {path} has shape {a.shape}, expected {want}{alt}")
    if not np.isfinite(a).all():
        raise ValueError(f"predict: {path} holds {int((~np.isfinite(a)).sum())} NaN or "
                         "infinite values")
    lo, hi = -RANGE_TOLERANCE * 255, 255 * (1 + RANGE_TOLERANCE)
    if a.size and (a.min() < lo or a.max() > hi):
        raise ValueError(f"predict: {path} has values in [{a.min():.4g}, {a.max():.4g}], far "
                         f"outside the 0..255 pixel range the model was trained on (allowed: "
                         f"{lo:g}..{hi:g})")
    return 255.0 - a if invert else a
