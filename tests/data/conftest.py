"""Writers for small synthetic IDX and CIFAR-10 binary files (independent of convprop)."""

import gzip
import io
import tarfile
from typing import ClassVar

import numpy as np
import pytest


def idx_bytes(magic: int, shape, payload: bytes) -> bytes:
    head = magic.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in shape)
    return head + payload


class IdxWriter:
    """Writes MNIST-style file pairs into a directory."""

    names: ClassVar[dict] = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}

    idx_bytes = staticmethod(idx_bytes)

    def __init__(self, rng):
        self.rng = rng

    def arrays(self, n, rows=28, cols=28):
        x = self.rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
        y = self.rng.integers(0, 10, size=n, dtype=np.uint8)
        return x, y

    def files(self, n, rows=28, cols=28, *, x=None, y=None):
        """(images file bytes, labels file bytes, x, y) before gzip."""
        if x is None:
            x, y = self.arrays(n, rows, cols)
        img = idx_bytes(0x803, x.shape, x.tobytes())
        lab = idx_bytes(0x801, y.shape, y.tobytes())
        return img, lab, x, y

    def write(self, directory, split="train", n=7, *, img=None, lab=None, gz=True, **kw):
        directory.mkdir(parents=True, exist_ok=True)
        x = y = None
        if img is None or lab is None:
            img0, lab0, x, y = self.files(n, **kw)
            img = img0 if img is None else img
            lab = lab0 if lab is None else lab
        for name, data in zip(self.names[split], (img, lab)):
            if gz:
                (directory / name).write_bytes(gzip.compress(data, mtime=0))
            else:
                (directory / name.removesuffix(".gz")).write_bytes(data)
        return x, y


@pytest.fixture
def idx_writer(rng):
    return IdxWriter(rng)


CIFAR_DIR = "cifar-10-batches-bin"
CIFAR_MEMBERS = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


def cifar_records(x: np.ndarray, y: np.ndarray) -> bytes:
    out = bytearray()
    for img, lab in zip(x, y):
        out.append(int(lab))
        out += img.tobytes()  # (3, 32, 32) C order = R plane, G plane, B plane
    return bytes(out)


def write_cifar_tar(path, members: dict):
    """members: name inside cifar-10-batches-bin/ -> bytes."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{CIFAR_DIR}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


class CifarWriter:
    directory = CIFAR_DIR
    members = CIFAR_MEMBERS
    records = staticmethod(cifar_records)
    write_tar = staticmethod(write_cifar_tar)

    def __init__(self, rng):
        # Per member: (x (n, 3, 32, 32) uint8, y (n,) uint8), with 2-4 records each.
        self.data = {}
        for m in CIFAR_MEMBERS:
            n = int(rng.integers(2, 5))
            self.data[m] = (rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8),
                            rng.integers(0, 10, size=n, dtype=np.uint8))

    def member_bytes(self):
        return {m: cifar_records(*xy) for m, xy in self.data.items()}

    def expected(self, split):
        names = CIFAR_MEMBERS[:5] if split == "train" else CIFAR_MEMBERS[5:]
        return (np.concatenate([self.data[m][0] for m in names]),
                np.concatenate([self.data[m][1] for m in names]).astype(np.int64))


@pytest.fixture
def cifar_writer(rng):
    return CifarWriter(rng)
