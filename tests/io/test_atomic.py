"""Durable atomic writes: fsync of the file and of its directory, nothing left behind."""

import os
import stat

import numpy as np
import pytest

from convprop.io import atomic_open, atomic_write, load_file, save_file
from convprop.train import History


def _record_fsyncs(monkeypatch):
    """Record what each os.fsync was called on: 'file' or 'dir'."""
    seen, real = [], os.fsync

    def fsync(fd):
        seen.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)
    monkeypatch.setattr("os.fsync", fsync)
    return seen


def _writers():
    return {
        "atomic_write-bytes": lambda p: atomic_write(p, b"\x00new"),
        "atomic_write-str": lambda p: atomic_write(p, "new\r\nline é"),
        "History.to_json": lambda p: History([{"epoch": 1}]).to_json(p),
        "History.to_csv": lambda p: History([{"epoch": 1}]).to_csv(p),
        "save_file": lambda p: save_file({"x": np.arange(3.0)}, p),
    }


@pytest.mark.parametrize("name", list(_writers()))
def test_writes_fsync_the_file_then_the_directory(tmp_path, monkeypatch, name):
    path = tmp_path / "sub" / "f.bin"  # the directory is created
    seen = _record_fsyncs(monkeypatch)
    _writers()[name](path)
    assert seen == ["file", "dir"]
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]


def test_contents_round_trip(tmp_path):
    atomic_write(tmp_path / "b", b"\x00\x01")
    atomic_write(tmp_path / "s", "a\r\nb é")
    assert (tmp_path / "b").read_bytes() == b"\x00\x01"
    assert (tmp_path / "s").read_bytes() == "a\r\nb é".encode()
    save_file({"x": np.arange(3.0)}, tmp_path / "t.safetensors")
    np.testing.assert_array_equal(load_file(tmp_path / "t.safetensors")[0]["x"], np.arange(3.0))


@pytest.mark.parametrize("name", list(_writers()))
@pytest.mark.parametrize("fails", ["os.fsync", "os.replace"])
def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch, name, fails):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(fails, boom)
    with pytest.raises(OSError, match="disk full"):
        _writers()[name](path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_error_inside_the_block_keeps_the_old_file(tmp_path):
    path = tmp_path / "f"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="half"), atomic_open(path, "w") as f:
        f.write("partial")
        raise RuntimeError("half-way")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f"]


def test_directory_fsync_is_best_effort(tmp_path, monkeypatch):
    real_open = os.open

    def no_dirs(p, flags, *a, **k):
        if os.path.isdir(p):
            raise PermissionError("directories cannot be opened here")
        return real_open(p, flags, *a, **k)
    monkeypatch.setattr("os.open", no_dirs)
    atomic_write(tmp_path / "f", "new")
    assert (tmp_path / "f").read_text() == "new"


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="atomic_write: data must be bytes or str"):
        atomic_write(tmp_path / "f", 3)
    with pytest.raises(ValueError, match="atomic_open: mode must be"), \
            atomic_open(tmp_path / "f", "a"):
        pass
    assert list(tmp_path.iterdir()) == []
