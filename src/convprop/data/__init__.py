"""Data: MNIST, Fashion-MNIST and CIFAR-10 readers, an embedded MNIST sample, batching, augmentation.

``load_dataset(name, split)`` returns an :class:`ArrayDataset` of uint8 images (N, C, H, W) and
int64 labels; ``batches`` iterates mini-batches with an explicit Generator; ``augment`` holds
vectorized batch augmentations and the uint8 -> float32 conversions.
"""

from .augment import normalize, random_crop, random_horizontal_flip, to_float
from .dataset import DATASETS, SPLITS, ArrayDataset, load_dataset
from .download import DownloadError, default_cache_dir
from .loader import batches

__all__ = [
           "DATASETS",
           "SPLITS",
           "ArrayDataset",
           "DownloadError",
           "batches",
           "default_cache_dir",
           "load_dataset",
           "normalize",
           "random_crop",
           "random_horizontal_flip",
           "to_float",
]
