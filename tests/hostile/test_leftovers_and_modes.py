"""Section 5: leftovers and permissions. A writer killed mid-write leaves a temporary file
that the next successful write in that directory removes (never a live writer's); output
files get the mode an ordinary write would give them (the umask, or the replaced file's
mode), not a temporary file's 0600."""

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from convprop.io import atomic_open, atomic_write, load_file, save_file
from convprop.io.atomic import TEMP_SUFFIX, clean_leftovers
from convprop.train import History

_KILLED_WRITER = """
import sys, time
from convprop.io import atomic_open
with atomic_open(sys.argv[1], "wb") as f:
    f.write(b"half a checkpoint")
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def _killed_writer(path):
    """Start a writer, SIGKILL it mid-write; return the temporary file it left."""
    p = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "writing"
    p.kill()
    p.wait()
    left = [n for n in os.listdir(path.parent) if n.endswith(TEMP_SUFFIX)]
    assert len(left) == 1 and str(p.pid) in left[0]
    return path.parent / left[0]


WRITERS = {
    "atomic_write": lambda d: atomic_write(d / "notes.txt", "x"),
    "save_file": lambda d: save_file({"a": np.zeros(2)}, d / "t.safetensors"),
    "History.to_json": lambda d: History([{"epoch": 1}]).to_json(d / "history.json"),
    "History.to_csv": lambda d: History([{"epoch": 1}]).to_csv(d / "history.csv"),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_next_successful_write_cleans_a_killed_writers_leftover(tmp_path, writer):
    target = tmp_path / "checkpoint.safetensors"
    save_file({"w": np.ones(3)}, target)
    leftover = _killed_writer(target)
    np.testing.assert_array_equal(load_file(target)[0]["w"], np.ones(3))  # old file intact
    WRITERS[writer](tmp_path)
    assert not leftover.exists()
    assert [n for n in os.listdir(tmp_path) if n.endswith(TEMP_SUFFIX)] == []


def test_a_live_writers_temporary_file_is_never_removed(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        name = tmp_path / f".ck.safetensors.{live.pid}-abcd1234{TEMP_SUFFIX}"
        name.write_bytes(b"in progress")
        mine = tmp_path / f".other.{os.getpid()}-efgh5678{TEMP_SUFFIX}"
        mine.write_bytes(b"this process, another thread")
        atomic_write(tmp_path / "x.txt", "done")
        assert name.exists() and mine.exists()
    finally:
        live.kill()
        live.wait()


def test_cleanup_touches_only_its_own_pattern(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    keep = ["notes.convprop-tmp", f".x.{dead}.convprop-tmp", "data.bin", f".x.{dead}-ab.tmp"]
    for n in keep:
        (tmp_path / n).write_text("user data")
    link = tmp_path / f".y.{dead}-abcd1234{TEMP_SUFFIX}"
    link.symlink_to(tmp_path / "data.bin")  # a symlink is not a leftover: not followed
    gone = tmp_path / f".z.{dead}-abcd1234{TEMP_SUFFIX}"
    gone.write_text("leftover")
    assert clean_leftovers(tmp_path) == [gone.name]
    assert all((tmp_path / n).read_text() == "user data" for n in keep)
    assert link.is_symlink()


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664),
                                        (0o027, 0o640)])
@pytest.mark.parametrize("writer", list(WRITERS))
def test_new_files_respect_the_umask(tmp_path, umask, mask, mode, writer):
    umask(mask)
    WRITERS[writer](tmp_path)
    (f,) = [p for p in tmp_path.iterdir()]
    assert stat.S_IMODE(f.stat().st_mode) == mode


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    p = tmp_path / "metrics.json"
    p.write_text("{}")
    p.chmod(0o640)
    umask(0o000)
    atomic_write(p, json.dumps({"accuracy": 1.0}))
    assert stat.S_IMODE(p.stat().st_mode) == 0o640


def test_checkpoints_of_a_training_run_respect_the_umask(tmp_path, umask):
    from convprop.train.recipe import TrainConfig, run
    umask(0o022)
    run(TrainConfig(limit=32, epochs=1, batch_size=32, out=str(tmp_path), verbose=0))
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes and all(m == 0o644 for m in modes.values()), modes


def test_writing_over_a_directory_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(IsADirectoryError, match="atomic_open: .*out is a directory"):
        atomic_write(tmp_path / "out", "x")
    assert os.listdir(tmp_path) == ["out"]


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_open(tmp_path / "f.bin") as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
