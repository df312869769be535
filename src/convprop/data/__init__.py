"""Data: MNIST, Fashion-MNIST, CIFAR-10 readers, an embedded MNIST sample, moving-MNIST clips,
sequential MNIST, batching, augmentation.

``load_dataset(name, split)`` returns an :class:`ArrayDataset` of uint8 arrays (N, C, *spatial)
and int64 labels: images (N, C, H, W), and two sets built from MNIST digits, the 3-D
``moving-mnist`` clips (:func:`moving_mnist`) and the 1-D ``seq-mnist`` sequences
(:func:`sequential_mnist`). ``batches`` iterates mini-batches with an explicit Generator;
``augment`` holds vectorized batch augmentations and the uint8 -> float32 conversions.
"""

from .augment import channel_stats, normalize, random_crop, random_horizontal_flip, to_float
from .dataset import DATASETS, SPLITS, ArrayDataset, load_dataset
from .download import DownloadError, default_cache_dir
from .loader import batches
from .moving import DIRECTIONS, MOVING_MNIST_SPLITS, moving_mnist
from .sequence import SEQUENCE_FORMS, sequential_mnist

__all__ = [
           "DATASETS",
           "DIRECTIONS",
           "MOVING_MNIST_SPLITS",
           "SEQUENCE_FORMS",
           "SPLITS",
           "ArrayDataset",
           "DownloadError",
           "batches",
           "channel_stats",
           "default_cache_dir",
           "load_dataset",
           "moving_mnist",
           "normalize",
           "random_crop",
           "random_horizontal_flip",
           "sequential_mnist",
           "to_float",
]
