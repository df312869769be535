"""``load_dataset``: one entry point for the embedded MNIST sample, MNIST, Fashion-MNIST, CIFAR-10,
and the two sets built from MNIST digits: ``moving-mnist`` (3-D clips) and ``seq-mnist`` (1-D)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cifar import CIFAR10_ARCHIVE, load_cifar10_split, locate
from .download import default_cache_dir, download_files
from .idx import load_idx_split, split_files
from .moving import DIRECTIONS, MOVING_MNIST_SPLITS, moving_mnist
from .sample import load_sample_arrays
from .sequence import sequential_mnist

__all__ = ["DATASETS", "SPLITS", "ArrayDataset", "load_dataset"]

DATASETS = ("mnist-sample", "mnist", "fashion-mnist", "cifar10", "moving-mnist", "seq-mnist")
SPLITS = ("train", "test")

_MNIST_CLASSES = tuple(str(d) for d in range(10))
_FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True, eq=False)
class ArrayDataset:
    """A labelled set of images, clips or sequences held in memory.

    Attributes:
        images: (N, C, *spatial) uint8 with 1 to 3 spatial axes: sequences (N, C, L), images
            (N, C, H, W) or clips (N, C, T, H, W); 0 = background (convert with
            ``augment.to_float`` or ``augment.normalize``).
        labels: (N,) int64 in ``0 .. len(classes) - 1``.
        classes: class names; ``classes[k]`` names label ``k``.
        name: the data set's name, e.g. ``"mnist"``; ``split`` is ``"train"`` or ``"test"``.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple
    name: str
    split: str = ""

    def __post_init__(self):
        x, y = self.images, self.labels
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or not 3 <= x.ndim <= 5:
            raise TypeError(f"ArrayDataset: images must be a uint8 ndarray (N, C, *spatial) with "
                            f"1 to 3 spatial axes, got "
                            f"{type(x).__name__} {getattr(x, 'dtype', '')} "
                            f"{getattr(x, 'shape', '')}")
        if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.ndim != 1:
            raise TypeError(f"ArrayDataset: labels must be an int64 (N,) ndarray, got "
                            f"{type(y).__name__} {getattr(y, 'dtype', '')} "
                            f"{getattr(y, 'shape', '')}")
        if len(x) != len(y):
            raise ValueError(f"ArrayDataset: {len(x)} images but {len(y)} labels")
        if y.size and (int(y.min()) < 0 or int(y.max()) >= len(self.classes)):
            raise ValueError(f"ArrayDataset: labels must lie in 0..{len(self.classes) - 1} "
                             f"({len(self.classes)} classes), got {int(y.min())}..{int(y.max())}")
        object.__setattr__(self, "classes", tuple(self.classes))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (f"ArrayDataset(name={self.name!r}, split={self.split!r}, "
                f"images={self.images.shape}, classes={len(self.classes)})")


def _moving_mnist_split(digits: ArrayDataset, split: str):
    clips, labels = moving_mnist(digits.images, **MOVING_MNIST_SPLITS[split])
    return clips, labels, DIRECTIONS


def _seq_mnist_split(digits: ArrayDataset, split: str):
    return sequential_mnist(digits.images), digits.labels, digits.classes


_BUILT_FROM_MNIST = {"moving-mnist": _moving_mnist_split, "seq-mnist": _seq_mnist_split}


def _files_for(name: str, split: str) -> tuple[str, ...]:
    return (CIFAR10_ARCHIVE,) if name == "cifar10" else split_files(split)


def _present(name: str, directory: Path, split: str) -> bool:
    if name == "cifar10":
        return locate(directory) is not None
    return all((directory / f).is_file() or (directory / f.removesuffix(".gz")).is_file()
               for f in split_files(split))


def load_dataset(name: str, split: str = "train", *, root=None, download: bool = False,
                 cache_dir=None) -> ArrayDataset:
    """Load one split of a data set as uint8 arrays (N, C, *spatial) and int64 labels.

    Args:
        name: one of :data:`DATASETS`. ``"mnist-sample"`` is embedded in the package (10,000
            train / 2,000 test images) and needs no files; ``root``, ``download`` and
            ``cache_dir`` are ignored for it. Two sets are built in memory from MNIST digits
            of the same split (the embedded sample, or the full MNIST when ``root`` or
            ``download`` is given): ``"moving-mnist"``, clips (N, 1, 16, 32, 32) of a digit
            moving in one of 8 directions, the label (:func:`~convprop.data.moving_mnist`
            with the sizes and seeds of ``MOVING_MNIST_SPLITS``: 4,000 train / 1,000 test
            clips), and ``"seq-mnist"``, the images as pixel sequences (N, 1, 784) with
            their digit labels (:func:`~convprop.data.sequential_mnist`).
        split: ``"train"`` or ``"test"``.
        root: directory holding the original files (the four IDX ``.gz`` files, or
            ``cifar-10-binary.tar.gz`` / ``cifar-10-batches-bin/``). When None, the cache
            directory ``<cache>/<name>`` is used (``<cache>/mnist`` for the sets built from
            MNIST).
        download: fetch missing files (into ``root`` if given, else the cache) from the public
            mirrors, verifying their published MD5.
        cache_dir: cache root; default ``$CONVPROP_CACHE``, ``$XDG_CACHE_HOME/convprop`` or
            ``~/.cache/convprop``.
    """
    if name not in DATASETS:
        raise ValueError(f"load_dataset: unknown data set {name!r}, expected one of {DATASETS}")
    if split not in SPLITS:
        raise ValueError(f"load_dataset: split must be one of {SPLITS}, got {split!r}")

    if name == "mnist-sample":
        arrays, _ = load_sample_arrays()
        return ArrayDataset(arrays[f"x_{split}"], arrays[f"y_{split}"].astype(np.int64),
                            _MNIST_CLASSES, name, split)
    if name in _BUILT_FROM_MNIST:
        source = "mnist" if root is not None or download else "mnist-sample"
        digits = load_dataset(source, split, root=root, download=download, cache_dir=cache_dir)
        x, y, classes = _BUILT_FROM_MNIST[name](digits, split)
        return ArrayDataset(x, y, classes, name, split)

    directory = Path(root).expanduser() if root is not None else default_cache_dir(cache_dir) / name
    hint = (f"pass the directory holding {', '.join(_files_for(name, split))} as "
            f"root= (--data-dir), or use download=True to fetch it into "
            f"{directory}")
    if download and not _present(name, directory, split):
        download_files(name, _files_for(name, split), directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"load_dataset: data directory {directory} for {name!r} does not "
                                f"exist; {hint}")

    if name == "cifar10":
        images, labels, classes = load_cifar10_split(directory, split, hint=hint)
    else:
        images, labels = load_idx_split(directory, split, hint=hint)
        classes = _MNIST_CLASSES if name == "mnist" else _FASHION_CLASSES
    return ArrayDataset(images, labels, classes, name, split)
