"""Build convprop's embedded ``mnist-sample`` from the four original MNIST files.

Stratified sampling, proportional to class frequency: each class gets its share of the sample
size by the largest-remainder rule (so the total is exact), and that many source indices are drawn
without replacement from the class with a fixed-seed Generator, then sorted (the sample keeps the
source order). Writes ``src/convprop/data/_sample/mnist_sample.npz`` (np.savez_compressed) and
``mnist_sample.json`` (provenance and checksums).

    python scripts/make_mnist_sample.py --mnist-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from convprop.data.idx import load_idx_split, split_files
from convprop.data.sample import SAMPLE_DIR, content_sha256

SEED = 20261121
SIZES = {"train": 10_000, "test": 2_000}


def stratified_indices(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted source indices, ``size`` in all, per class proportional to its frequency."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    # Largest remainder; ties go to the lower class id (stable sort), so the result is fixed.
    extra = np.argsort(-(exact - quota), kind="stable")[: size - quota.sum()]
    quota[extra] += 1
    picks = [rng.choice(np.flatnonzero(labels == c), size=q, replace=False)
             for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picks))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist-dir", type=Path, required=True,
                    help="directory holding the four original MNIST .gz files")
    ap.add_argument("--out-dir", type=Path, default=SAMPLE_DIR)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    arrays, sources = {}, {}
    for split in ("train", "test"):  # order matters: both draws come from one Generator
        images, labels = load_idx_split(args.mnist_dir, split)
        idx = stratified_indices(labels, SIZES[split], rng)
        arrays[f"x_{split}"] = images[idx]
        arrays[f"y_{split}"] = labels[idx].astype(np.uint8)
        arrays[f"idx_{split}"] = idx.astype(np.int64)
        for fn in split_files(split):
            sources[fn] = sha256_file(args.mnist_dir / fn)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    npz = args.out_dir / "mnist_sample.npz"
    np.savez_compressed(npz, **arrays)
    record = {
        "name": "mnist-sample",
        "description": "stratified sample of MNIST (LeCun, Cortes, Burges); per class "
                       "proportional to class frequency, largest-remainder rounding, drawn "
                       "without replacement with numpy.random.default_rng(seed), train split "
                       "first, indices sorted",
        "script": "scripts/make_mnist_sample.py",
        "seed": args.seed,
        "sizes": SIZES,
        "source_files_sha256": sources,
        "indices": "idx_train and idx_test in the npz: positions in the full MNIST splits",
        "class_counts": {s: np.bincount(arrays[f"y_{s}"], minlength=10).tolist()
                         for s in ("train", "test")},
        "numpy_version": np.__version__,
        "content_sha256": content_sha256(arrays),
        "file_sha256": sha256_file(npz),
    }
    (args.out_dir / "mnist_sample.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {npz} ({npz.stat().st_size} bytes); content sha256 {record['content_sha256']}")


if __name__ == "__main__":
    main()
