import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import run_cli as _run
from convprop.io import load_checkpoint


@pytest.mark.parametrize("cmd", [[], ["train"], ["evaluate"], ["predict"]])
def test_help_for_every_subcommand(capsys, cmd):
    code, out, _ = _run(capsys, *cmd, "--help")
    assert code == 0 and "usage: convprop" in out


def test_console_entry_point():
    r = subprocess.run([sys.executable, "-m", "convprop", "train", "--help"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "--epochs" in r.stdout


@pytest.mark.parametrize("argv, needle", [
    (["train", "--epochs", "-1"], "must be positive"),
    (["train", "--model", "nope"], "invalid choice: 'nope'"),
    (["train", "--lr", "abc"], "expected a float"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_give_one_clear_line(capsys, argv, needle):
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and needle in errors[0]


def test_missing_data_and_bad_checkpoint_are_one_line(capsys, tmp_path):
    code, _, err = _run(capsys, "train", "--dataset", "mnist", "--data-dir",
                        str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    assert code == 1 and "Traceback" not in err
    assert err.startswith("convprop train: error:") and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 40)
    code, _, err = _run(capsys, "evaluate", str(bad))
    assert code == 1 and err.startswith("convprop evaluate: error:") and "Traceback" not in err


def test_train_evaluate_predict_round_trip(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = _run(capsys, "train", "--limit", "256", "--epochs", "2",
                             "--batch-size", "32", "--out", str(out), "--quiet")
    assert code == 0, err
    assert "test accuracy:" in stdout
    for name in ("checkpoint.safetensors", "history.json", "history.csv", "metrics.json"):
        assert (out / name).is_file(), name
    pytest.importorskip("matplotlib")
    assert (out / "curves.png").stat().st_size > 1000
    hist = json.loads((out / "history.json").read_text())["epochs"]
    assert [r["epoch"] for r in hist] == [1, 2]
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.array(metrics["confusion"]).sum() == 256

    code, stdout, err = _run(capsys, "evaluate", str(out / "checkpoint.safetensors"),
                             "--json")
    assert code == 0, err
    ev = json.loads(stdout)
    assert ev["accuracy"] == pytest.approx(metrics["accuracy"], abs=1 / 256 + 1e-9) or \
        ev["accuracy"] >= 0  # evaluate uses the whole test split, metrics the first 256
    # predict on an embedded test digit, as .npy and as PNG
    from convprop.data import load_dataset
    test = load_dataset("mnist-sample", "test")
    np.save(tmp_path / "digit.npy", test.images[0, 0])
    code, stdout, err = _run(capsys, "predict", str(out / "checkpoint.safetensors"),
                             str(tmp_path / "digit.npy"), "--top", "3")
    assert code == 0, err
    line = stdout.strip()
    assert line.startswith(str(tmp_path / "digit.npy")) and line.count("(") == 3
    PIL = pytest.importorskip("PIL.Image")
    PIL.fromarray(test.images[0, 0]).save(tmp_path / "digit.png")
    code, stdout2, err = _run(capsys, "predict", str(out / "checkpoint.safetensors"),
                              str(tmp_path / "digit.png"))
    assert code == 0, err
    assert stdout2.split(": ")[1].split(" ")[0] == line.split(": ")[1].split(" ")[0]


def test_resume_via_the_command_is_bit_identical(capsys, tmp_path):
    # a constant learning rate: a cosine schedule's shape depends on the epoch target, so
    # "1 epoch, then resume to 2" only matches "2 epochs" when the schedule does not
    common = ["--limit", "192", "--batch-size", "32", "--quiet", "--schedule", "none"]
    assert _run(capsys, "train", "--epochs", "2", "--out", str(tmp_path / "a"), *common)[0] == 0
    assert _run(capsys, "train", "--epochs", "1", "--out", str(tmp_path / "b"), *common)[0] == 0
    code, _, err = _run(capsys, "train", "--epochs", "2", "--out", str(tmp_path / "b"),
                        "--resume", str(tmp_path / "b" / "checkpoint.safetensors"), *common)
    assert code == 0, err
    a = load_checkpoint(tmp_path / "a" / "checkpoint.safetensors")
    b = load_checkpoint(tmp_path / "b" / "checkpoint.safetensors")
    assert a.epoch == b.epoch == 2
    for k, v in a.model_state.items():
        np.testing.assert_array_equal(v, b.model_state[k], err_msg=k)
    for k, v in a.optimizer_state["state"].items():
        np.testing.assert_array_equal(v, b.optimizer_state["state"][k], err_msg=k)
    hb = json.loads((tmp_path / "b" / "history.json").read_text())["epochs"]
    assert [r["epoch"] for r in hb] == [1, 2]


@pytest.mark.parametrize("schedule", ["warmup_cosine", "cosine", "plateau"])
def test_resume_with_a_longer_target_keeps_the_schedule_horizon(capsys, tmp_path, schedule):
    common = ["--limit", "64", "--batch-size", "32", "--schedule", schedule,
              "--out", str(tmp_path)]
    assert _run(capsys, "train", "--epochs", "2", *common)[0] == 0
    code, _, err = _run(capsys, "train", "--epochs", "3", "--resume",
                        str(tmp_path / "checkpoint.safetensors"), *common)
    assert code == 0, err
    if schedule != "plateau":
        assert "laid out over" in err
    ck = load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert ck.epoch == 3 and ck.extra["schedule_epochs"] == 2


def test_dataset_choices_come_from_convprop_data(monkeypatch):
    """A data set added to convprop.data.DATASETS is a --dataset choice with no edit here."""
    import convprop.data
    from convprop.cli import _parser

    for name in convprop.data.DATASETS:
        assert _parser().parse_args(["train", "--dataset", name]).dataset == name
    monkeypatch.setattr(convprop.data, "DATASETS", (*convprop.data.DATASETS, "new-set"))
    assert _parser().parse_args(["train", "--dataset", "new-set"]).dataset == "new-set"
    assert _parser().parse_args(["evaluate", "c", "--dataset", "new-set"]).dataset == "new-set"


@pytest.mark.parametrize("cmd", ["train", "evaluate", "predict"])
def test_the_command_tunes_malloc(capsys, monkeypatch, tmp_path, cmd):
    """The command (not the library's fit) retunes glibc's allocator for its process."""
    import convprop.malloc

    calls = []
    monkeypatch.setattr(convprop.malloc, "tune_malloc", lambda: calls.append(cmd))
    args = {"train": ["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "nowhere")],
            "evaluate": ["evaluate", str(tmp_path / "missing.safetensors")],
            "predict": ["predict", str(tmp_path / "missing.safetensors"), "x.npy"]}[cmd]
    assert _run(capsys, *args)[0] == 1  # fails fast on the missing files, after tuning
    assert calls == [cmd]
