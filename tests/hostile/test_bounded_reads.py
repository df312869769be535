"""Section 1: bounded reads of untrusted files. Checkpoints, IDX and CIFAR files crafted to
exhaust memory, hang, or slip past the checks; each must fail fast with the exact exception
type and a message naming the file."""

import gzip
import json
import os
import struct
import tarfile

import numpy as np
import pytest
from attack import write_raw

from convprop.data import load_dataset
from convprop.data.idx import IMAGES_MAGIC, read_idx
from convprop.io import CheckpointError, SafetensorsError, load_checkpoint, load_file

GiB = 1 << 30


def _entry(dtype, shape, b, e):
    return {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}


# --- safetensors headers, as an attacker writes them -----------------------------------------
# (header dict or raw header text, data bytes, needle in the message)
HEADERS = {
    "shape-negative": ({"t": _entry("F32", [-1, 4], 0, 16)}, b"\0" * 16, "shape"),
    "shape-float": ({"t": _entry("F32", [2.0, 2], 0, 16)}, b"\0" * 16, "shape"),
    "shape-bool": ({"t": _entry("F32", [True, 4], 0, 16)}, b"\0" * 16, "shape"),
    "shape-string": ({"t": _entry("F32", "4", 0, 16)}, b"\0" * 16, "shape"),
    "shape-65-dims": ({"t": _entry("U8", [1] * 65, 0, 1)}, b"\0", "shape"),
    # np.prod in int64 wraps 2**32 * 2**32 to 0, which would "match" an empty range
    "shape-wraps-to-zero": ({"t": _entry("U8", [2**32, 2**32], 0, 0)}, b"", "needs"),
    "shape-wraps-negative": ({"t": _entry("F64", [2**62, 4], 0, 8)}, b"\0" * 8, "needs"),
    # empty (a 0 in the shape) but past what NumPy can describe: not a bare NumPy error
    "shape-zero-times-2**63": ({"t": _entry("F32", [0, 2**63], 0, 0)}, b"", "beyond any"),
    "shape-zero-times-2**400": ({"t": _entry("U8", [0] + [2**40] * 10, 0, 0)}, b"",
                                "beyond any"),
    "offsets-overlap": ({"a": _entry("F32", [2], 0, 8), "b": _entry("F32", [2], 4, 12)},
                        b"\0" * 12, "overlaps"),
    "offsets-gap": ({"a": _entry("F32", [1], 0, 4), "b": _entry("F32", [1], 8, 12)},
                    b"\0" * 12, "gap"),
    "trailing-bytes": ({"a": _entry("F32", [1], 0, 4)}, b"\0" * 12, "trailing"),
    "offsets-past-end": ({"a": _entry("F32", [4], 0, 16)}, b"\0" * 8, "too few"),
    "offsets-reversed": ({"a": _entry("F32", [2], 8, 0)}, b"\0" * 8, "data_offsets"),
    "offsets-three": ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}},
                      b"\0" * 4, "data_offsets"),
    "offsets-negative": ({"a": _entry("F32", [1], -4, 0)}, b"\0" * 4, "data_offsets"),
    "dtype-unknown": ({"a": _entry("F128", [1], 0, 16)}, b"\0" * 16, "dtype"),
    "dtype-object": ({"a": _entry("O", [1], 0, 8)}, b"\0" * 8, "dtype"),
    "entry-not-object": ({"a": [1, 2, 3]}, b"", "must be an object"),
    "entry-extra-key": ({"a": {**_entry("F32", [1], 0, 4), "pickle": "cos\nsystem"}},
                        b"\0" * 4, "exactly"),
    "metadata-not-strings": ({"__metadata__": {"k": 1}}, b"", "__metadata__"),
    "bool-not-0-or-1": ({"a": _entry("BOOL", [2], 0, 2)}, b"\x01\x07", "BOOL"),
    "header-list": ("[1, 2]", b"", "not a JSON object"),
    "header-nan": ('{"a": NaN}', b"", "corrupt header"),
    "header-duplicate-key": ('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},'
                             ' "a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}',
                             b"\0" * 4, "duplicate"),
    "header-deeply-nested": ("[" * 100000 + "]" * 100000, b"", "corrupt header"),
    "header-not-utf8": (b"\xff\xfe{}".decode("latin-1"), b"", "corrupt header"),
}


@pytest.mark.parametrize("case", list(HEADERS))
def test_malformed_safetensors_header(tmp_path, case):
    header, data, needle = HEADERS[case]
    p = tmp_path / f"{case}.safetensors"
    if isinstance(header, str):
        text = header.encode("latin-1") if case == "header-not-utf8" else header.encode()
        p.write_bytes(struct.pack("<Q", len(text)) + text + data)
    else:
        write_raw(p, header, data)
    with pytest.raises(SafetensorsError, match=needle) as e:
        load_file(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("prefix", [b"", b"\x07" * 7, struct.pack("<Q", 2**64 - 1) + b"{}",
                                    struct.pack("<Q", 1000) + b"{}", struct.pack("<Q", 0),
                                    struct.pack("<Q", 101 * 2**20) + b"{}"],
                         ids=["empty", "7-bytes", "length-2**64", "length-past-end",
                              "length-0", "length-over-100MiB"])
def test_bad_header_length(tmp_path, prefix):
    p = tmp_path / "f.safetensors"
    p.write_bytes(prefix)
    with pytest.raises(SafetensorsError, match="safetensors: .*f.safetensors") as e:
        load_file(p)
    assert str(p) in str(e.value)


def _sparse(path, size):
    with open(path, "wb") as f:
        f.truncate(size)


@pytest.mark.parametrize("where", ["tensors", "metadata"])
def test_header_of_a_million_objects_is_refused_while_parsing(tmp_path, where):
    """One object per tensor: a 61 MiB header of a million empty tensors took 1.5 GB and 16 s
    before anything was refused; 100,001 objects are refused as they are parsed."""
    from convprop.io.safetensors import MAX_OBJECTS
    n = MAX_OBJECTS + 1
    p = tmp_path / "many.safetensors"
    if where == "tensors":
        write_raw(p, {f"t{i}": _entry("U8", [0], 0, 0) for i in range(n)}, b"")
        with pytest.raises(SafetensorsError, match="more than 100000 JSON objects") as e:
            load_file(p)
    else:  # inside a checkpoint's metadata, parsed by the same strict reader
        text = json.dumps({"format": "convprop-checkpoint", "x": [{}] * n})
        write_raw(p, {"__metadata__": {"convprop": text}}, b"")
        with pytest.raises(CheckpointError, match="more than 100000 JSON objects") as e:
            load_checkpoint(p)
    assert str(p) in str(e.value)


def test_header_over_the_limit_inside_the_file_is_named_as_such(tmp_path):
    # the file holds the 101 MiB it announces: the reason is the limit, not a truncation
    p = tmp_path / "f.safetensors"
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", 101 << 20) + b"{")
        f.truncate(8 + (102 << 20))
    with pytest.raises(SafetensorsError, match="declares a header of 105906176 bytes, more "
                                               "than the limit of 104857600") as e:
        load_file(p)
    assert str(p) in str(e.value)


def test_sparse_64_gib_of_zeros_is_refused_fast(tmp_path):
    p = tmp_path / "huge.safetensors"
    _sparse(p, 64 * GiB)
    with pytest.raises(SafetensorsError, match="empty header") as e:
        load_file(p)
    assert str(p) in str(e.value)


def test_sparse_64_gib_tensor_with_a_valid_header_is_refused(tmp_path):
    # a header that tiles a sparse 64 GiB data section exactly: legal layout, absurd size
    header = {"t": _entry("U8", [64 * GiB], 0, 64 * GiB)}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    p = tmp_path / "huge.safetensors"
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        f.truncate(8 + len(text) + 64 * GiB)
    with pytest.raises(SafetensorsError, match="more than the limit") as e:
        load_file(p)
    assert str(p) in str(e.value)
    with pytest.raises(CheckpointError, match="more than the limit"):
        load_checkpoint(p)


def test_limit_is_overridable(tmp_path, monkeypatch):
    p = tmp_path / "t.safetensors"
    write_raw(p, {"t": _entry("F32", [4], 0, 16)}, b"\0" * 16)
    assert load_file(p)[0]["t"].shape == (4,)
    with pytest.raises(SafetensorsError, match="more than the limit of 8"):
        load_file(p, max_bytes=8)
    monkeypatch.setenv("CONVPROP_MAX_FILE_BYTES", "8")
    with pytest.raises(SafetensorsError, match="CONVPROP_MAX_FILE_BYTES"):
        load_file(p)
    monkeypatch.setenv("CONVPROP_MAX_FILE_BYTES", "lots")
    with pytest.raises(ValueError, match="CONVPROP_MAX_FILE_BYTES: expected a positive"):
        load_file(p)


def _special(tmp_path, kind):
    if kind == "directory":
        p = tmp_path / "d.safetensors"
        p.mkdir()
    elif kind == "fifo":
        p = tmp_path / "pipe.safetensors"
        os.mkfifo(p)  # opening it for reading would block forever
    elif kind == "dev-zero":
        p = "/dev/zero"
    else:  # a symlink with an innocent name pointing at a device
        p = tmp_path / "link.safetensors"
        p.symlink_to("/dev/zero")
    return p


SPECIAL = ["directory", "fifo", "dev-zero", "symlink-to-dev-zero"]


@pytest.mark.parametrize("kind", SPECIAL)
def test_special_files_are_refused_without_reading(tmp_path, kind):
    p = _special(tmp_path, kind)
    with pytest.raises(SafetensorsError, match="not a regular file") as e:
        load_file(p)
    assert str(p) in str(e.value)
    with pytest.raises(CheckpointError, match="not a regular file") as e:
        load_checkpoint(p)
    assert str(p) in str(e.value)


# --- IDX ------------------------------------------------------------------------------------

def _idx_head(shape, magic=IMAGES_MAGIC):
    return magic.to_bytes(4, "big") + b"".join(s.to_bytes(4, "big") for s in shape)


def test_gzip_bomb_is_refused_after_the_announced_size(tmp_path):
    """6 MB of gzip that would inflate to 6 GiB: the header announces 10 images; the reader
    stops one byte past them, having inflated at most a chunk more."""
    p = tmp_path / "train-images-idx3-ubyte.gz"
    zeros = gzip.compress(b"\0" * (64 << 20), compresslevel=9, mtime=0)  # ~65 KB
    with open(p, "wb") as f:
        f.write(gzip.compress(_idx_head((10, 28, 28)) + b"\0" * 7840, mtime=0))
        for _ in range(96):  # 96 more gzip members: 6 GiB inflated
            f.write(zeros)
    assert p.stat().st_size < 8 << 20
    with pytest.raises(ValueError, match="longer than its header says") as e:
        read_idx(p, IMAGES_MAGIC)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("shape", [(2**32 - 1, 2**32 - 1, 2**32 - 1), (2**31, 2**31, 4),
                                   (60000, 1000, 1000), (0, 2**32 - 1, 2**32 - 1),
                                   (2**32 - 1, 0, 2**32 - 1)],
                         ids=["max-uint32", "wraps-int64", "60-GB", "no-images-of-2**64",
                              "zero-rows"])
@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
def test_idx_header_sizes_are_bounded_before_reading(tmp_path, shape, gz):
    p = tmp_path / "x.idx"
    data = _idx_head(shape) + b"\0" * 64
    p.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError, match="more than the limit") as e:
        read_idx(p, IMAGES_MAGIC)
    assert str(p) in str(e.value)


def test_idx_limit_is_overridable(tmp_path):
    p = tmp_path / "x.idx"
    p.write_bytes(_idx_head((2, 2, 2)) + b"\0" * 8)
    assert read_idx(p, IMAGES_MAGIC).shape == (2, 2, 2)
    with pytest.raises(ValueError, match=r"max_bytes"):
        read_idx(p, IMAGES_MAGIC, max_bytes=7)


@pytest.mark.parametrize("kind", SPECIAL)
def test_idx_special_files_are_refused(tmp_path, kind):
    p = _special(tmp_path, kind)
    with pytest.raises(ValueError, match="not a regular file") as e:
        read_idx(p, IMAGES_MAGIC)
    assert str(p) in str(e.value)


def test_idx_fifo_in_a_data_folder_is_named(tmp_path):
    os.mkfifo(tmp_path / "t10k-images-idx3-ubyte.gz")
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_head((0,), 0x801)))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz is a FIFO"):
        load_dataset("mnist", "test", root=tmp_path)


@pytest.mark.parametrize("payload, needle", [
    (b"\x1f\x8b" + os.urandom(64), "damaged or truncated gzip"),
    (_idx_head((5, 28, 28))[:10], "truncated: its header needs 16"),
    (_idx_head((5, 28, 28)) + b"\0" * 100, "truncated"),
])
def test_idx_damaged_files(tmp_path, payload, needle):
    p = tmp_path / "x.idx"
    p.write_bytes(payload)
    with pytest.raises(ValueError, match=needle) as e:
        read_idx(p, IMAGES_MAGIC)
    assert str(p) in str(e.value)


# --- CIFAR-10 -------------------------------------------------------------------------------

def _cifar_folder(tmp_path, missing=None):
    d = tmp_path / "cifar-10-batches-bin"
    d.mkdir()
    rec = bytes(1 + 3072)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        if name != missing:
            (d / name).write_bytes(rec * 2)
    return d


@pytest.mark.parametrize("missing, split", [("data_batch_3.bin", "train"),
                                            ("test_batch.bin", "test")])
def test_cifar_folder_missing_one_batch_names_it(tmp_path, missing, split):
    _cifar_folder(tmp_path, missing)
    with pytest.raises(FileNotFoundError, match=missing):
        load_dataset("cifar10", split, root=tmp_path)


def test_cifar_oversized_batch_file_is_refused_before_reading(tmp_path):
    d = _cifar_folder(tmp_path)
    _sparse(d / "test_batch.bin", 8 * GiB)
    with pytest.raises(ValueError, match="test_batch.bin is 8589934592 bytes, more than"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_cifar_fifo_batch_is_refused(tmp_path):
    d = _cifar_folder(tmp_path, "test_batch.bin")
    os.mkfifo(d / "test_batch.bin")
    with pytest.raises(ValueError, match="test_batch.bin is a FIFO"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_cifar_tar_member_claiming_gigabytes_is_refused(tmp_path):
    """A forged tar header claims a 10 GB member; nothing of it is read."""
    info = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
    info.size = 10 * 10**9
    block = info.tobuf(format=tarfile.GNU_FORMAT)
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(gzip.compress(block + bytes(1024)))
    with pytest.raises(ValueError, match="test_batch.bin claims 10000000000 bytes"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_cifar_archive_that_is_a_fifo_is_named(tmp_path):
    # it was "neither cifar-10-binary.tar.gz nor cifar-10-batches-bin/ found"
    os.mkfifo(tmp_path / "cifar-10-binary.tar.gz")
    with pytest.raises(ValueError, match="cifar-10-binary.tar.gz is a FIFO"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_cifar_archive_of_endless_members_is_refused_early(tmp_path):
    """Every member's header stays in tarfile's memory: 300k empty members (a 3 MB .gz)
    took 170 MB and 5 s before being refused; a 300 MB one would take 17 GB."""
    with tarfile.open(tmp_path / "cifar-10-binary.tar.gz", "w:gz") as tar:
        for i in range(100):
            tar.addfile(tarfile.TarInfo(f"junk{i}"))
    with pytest.raises(ValueError, match="has more than 64 members"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_cifar_archive_truncated(tmp_path):
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(40))
    with pytest.raises(ValueError, match="cifar-10-binary.tar.gz is a damaged"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_reading_stays_exact_on_good_files(tmp_path):
    """The hardened readers still read what they should, bit for bit."""
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "x.idx.gz"
    p.write_bytes(gzip.compress(_idx_head(x.shape) + x.tobytes()))
    got = read_idx(p, IMAGES_MAGIC)
    np.testing.assert_array_equal(got, x)
    assert got.flags.writeable
