"""Over real MPI (mpiexec -n 2, the ``mpi`` extra): the same equivalence as the thread tests,
per-rank files from a script; a rank that raises stops the whole job with its rank named; a
rank killed mid-epoch stops the job instead of hanging it. Skipped where MPI is absent."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_data_parallel import _train  # noqa: E402

MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
try:
    import mpi4py  # noqa: F401
except ImportError:
    mpi4py = None
pytestmark = pytest.mark.skipif(MPIEXEC is None or mpi4py is None,
                                reason="needs mpiexec and mpi4py: pip install 'convprop[mpi]'")
SCRIPT = os.path.join(os.path.dirname(__file__), "_mpi_train.py")


def _mpiexec(tmp_path, *args, n=2, timeout=120):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "CONVPROP_NUM_THREADS": "1"}
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, SCRIPT, str(tmp_path), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("bn", [False, True])
def test_two_processes_equal_one_process(tmp_path, bn):
    r = _mpiexec(tmp_path, *(["--bn", "--opt", "sgd"] if bn else []))
    assert r.returncode == 0, r.stderr
    one, h1 = _train(bn=bn, opt="sgd" if bn else "adam")
    for rank in range(2):
        got = np.load(tmp_path / f"rank{rank}.npz")
        for k, v in one.state_dict().items():
            np.testing.assert_allclose(got[k], v, rtol=0, atol=1e-10, err_msg=k)


def test_a_rank_that_raises_stops_the_job_naming_it(tmp_path):
    r = _mpiexec(tmp_path, "--fail-rank", "1")
    assert r.returncode != 0
    assert "rank 1 of 2 failed with ValueError: an injected failure" in r.stderr
    assert not (tmp_path / "rank0.npz").exists()


def test_a_killed_rank_stops_the_job_instead_of_hanging(tmp_path):
    r = _mpiexec(tmp_path, "--kill-rank", "0", timeout=60)  # TimeoutExpired would fail
    assert r.returncode != 0
    assert not (tmp_path / "rank1.npz").exists()


def _cli(args, *, n=None, timeout=180):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "CONVPROP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "convprop", *args]
    if n is not None:
        cmd = [MPIEXEC, "-n", str(n), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def _weights(path):
    from convprop.io import load_checkpoint
    return load_checkpoint(path).model_state


def test_mpiexec_convprop_train_is_the_one_process_run_and_resumes_with_another_k(tmp_path):
    common = ["train", "--limit", "600", "--epochs", "2", "--optimizer", "sgd", "--lr", "0.05",
              "--schedule", "none", "--quiet"]
    one = _cli([*common, "--out", str(tmp_path / "one")])
    two = _cli([*common, "--out", str(tmp_path / "two"), "--check-sync"], n=2)
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    assert two.stdout.count("test accuracy:") == 1  # rank 0 alone prints and writes
    w1 = _weights(tmp_path / "one" / "checkpoint.safetensors")
    w2 = _weights(tmp_path / "two" / "checkpoint.safetensors")
    for k, v in w1.items():  # float32: the same run up to summation order
        np.testing.assert_allclose(w2[k], v, rtol=0, atol=2e-5, err_msg=k)
    h1 = json.loads((tmp_path / "one" / "history.json").read_text())
    h2 = json.loads((tmp_path / "two" / "history.json").read_text())
    for a, b in zip(h1["epochs"], h2["epochs"]):  # epoch metrics over both ranks
        assert abs(a["loss"] - b["loss"]) < 1e-5 and a["accuracy"] == b["accuracy"]
    # the 2-process checkpoint resumes in one process (and the other way round)
    r = _cli(["train", "--resume", str(tmp_path / "two" / "checkpoint.safetensors"),
              "--epochs", "3", "--quiet"])
    assert r.returncode == 0, r.stderr
    r = _cli(["train", "--resume", str(tmp_path / "one" / "checkpoint.safetensors"),
              "--epochs", "3", "--quiet"], n=2)
    assert r.returncode == 0, r.stderr
    for d in ("one", "two"):
        h = json.loads((tmp_path / d / "history.json").read_text())["epochs"]
        assert [e["epoch"] for e in h] == [1, 2, 3]


def test_a_failing_command_under_mpiexec_names_the_rank_and_stops(tmp_path):
    r = _cli(["train", "--resume", str(tmp_path / "missing.safetensors")], n=2, timeout=60)
    assert r.returncode != 0
    assert "convprop train: rank " in r.stderr and "of 2: error:" in r.stderr


def test_check_sync_passes_with_per_rank_batch_norm(tmp_path):
    # cnn1d has batch norm (per rank: its running statistics are averaged over the ranks);
    # the --check-sync run had stopped after epoch 1 with the ranks' buffers apart
    r = _cli(["train", "--model", "cnn1d", "--dataset", "seq-mnist", "--limit", "300",
              "--epochs", "2", "--quiet", "--check-sync", "--out", str(tmp_path)], n=2)
    assert r.returncode == 0, r.stderr
