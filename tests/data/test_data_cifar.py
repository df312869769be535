"""CIFAR-10 binary reader: tarball read in place (no pickle), extracted folder, errors."""

import numpy as np
import pytest

from convprop.data import load_dataset

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")


def _decode_loop(data: bytes):
    """Independent per-record decoder: label byte, then R, G, B planes of 32x32."""
    n = len(data) // 3073
    x = np.zeros((n, 3, 32, 32), np.uint8)
    y = np.zeros(n, np.int64)
    for i in range(n):
        rec = data[i * 3073:(i + 1) * 3073]
        y[i] = rec[0]
        for c in range(3):
            for r in range(32):
                for col in range(32):
                    x[i, c, r, col] = rec[1 + c * 1024 + r * 32 + col]
    return x, y


@pytest.mark.parametrize("split", ["train", "test"])
def test_tarball(tmp_path, cifar_writer, split):
    members = cifar_writer.member_bytes()
    members["batches.meta.txt"] = ("\n".join(CLASSES) + "\n\n").encode()
    cifar_writer.write_tar(tmp_path / "cifar-10-binary.tar.gz", members)
    ds = load_dataset("cifar10", split, root=tmp_path)
    x, y = cifar_writer.expected(split)
    assert ds.images.dtype == np.uint8 and ds.images.shape == x.shape
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.images, x)
    np.testing.assert_array_equal(ds.labels, y)
    assert ds.classes == CLASSES and ds.images.flags.writeable


def test_record_layout_against_loop_decoder(tmp_path, cifar_writer):
    members = cifar_writer.member_bytes()
    cifar_writer.write_tar(tmp_path / "cifar-10-binary.tar.gz", members)
    ds = load_dataset("cifar10", "test", root=tmp_path)
    x, y = _decode_loop(members["test_batch.bin"])
    np.testing.assert_array_equal(ds.images, x)
    np.testing.assert_array_equal(ds.labels, y)
    assert ds.classes == CLASSES  # default names when batches.meta.txt is absent


def test_meta_names_are_used(tmp_path, cifar_writer):
    members = cifar_writer.member_bytes()
    names = [f"c{i}" for i in range(10)]
    members["batches.meta.txt"] = "\n".join(names).encode()
    cifar_writer.write_tar(tmp_path / "cifar-10-binary.tar.gz", members)
    assert load_dataset("cifar10", "test", root=tmp_path).classes == tuple(names)


def test_extracted_folder(tmp_path, cifar_writer):
    d = tmp_path / cifar_writer.directory
    d.mkdir()
    for m, data in cifar_writer.member_bytes().items():
        (d / m).write_bytes(data)
    ds = load_dataset("cifar10", "train", root=tmp_path)
    x, y = cifar_writer.expected("train")
    np.testing.assert_array_equal(ds.images, x)
    np.testing.assert_array_equal(ds.labels, y)


def test_missing(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r"cifar10: neither cifar-10-binary.tar.gz "
                             r".*--data-dir.*download=True"):
        load_dataset("cifar10", root=tmp_path)


def test_truncated_record(tmp_path, cifar_writer):
    members = cifar_writer.member_bytes()
    members["test_batch.bin"] = members["test_batch.bin"][:-10]
    cifar_writer.write_tar(tmp_path / "cifar-10-binary.tar.gz", members)
    with pytest.raises(ValueError, match=r"cifar10: .*test_batch.bin is truncated"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_truncated_archive(tmp_path, cifar_writer):
    p = tmp_path / "cifar-10-binary.tar.gz"
    cifar_writer.write_tar(p, cifar_writer.member_bytes())
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cifar10: .*damaged or truncated archive"):
        load_dataset("cifar10", "train", root=tmp_path)


def test_missing_member(tmp_path, cifar_writer):
    members = cifar_writer.member_bytes()
    del members["data_batch_3.bin"]
    cifar_writer.write_tar(tmp_path / "cifar-10-binary.tar.gz", members)
    with pytest.raises(ValueError, match=r"cifar10: .*no member cifar-10-batches-bin/data_batch_3"):
        load_dataset("cifar10", "train", root=tmp_path)


def test_label_out_of_range(tmp_path, cifar_writer):
    members = cifar_writer.member_bytes()
    data = bytearray(members["test_batch.bin"])
    data[3073] = 12  # label byte of record 1
    members["test_batch.bin"] = bytes(data)
    cifar_writer.write_tar(tmp_path / "cifar-10-binary.tar.gz", members)
    with pytest.raises(ValueError, match=r"cifar10: .*label 12 in record 1"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_bad_meta(tmp_path, cifar_writer):
    members = cifar_writer.member_bytes()
    members["batches.meta.txt"] = b"cat\ndog\n"
    cifar_writer.write_tar(tmp_path / "cifar-10-binary.tar.gz", members)
    with pytest.raises(ValueError, match=r"cifar10: .*lists 2 class names, expected 10"):
        load_dataset("cifar10", "test", root=tmp_path)
