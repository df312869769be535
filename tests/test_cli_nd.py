"""The command on 1-D and 3-D data: train, evaluate and predict like the 2-D main job."""

import json

import numpy as np
import pytest

from helpers import run_cli as _run


@pytest.mark.parametrize("model, dataset, example", [
    ("c3d_mini", "moving-mnist", (1, 16, 32, 32)),
    ("cnn1d", "seq-mnist", (1, 784)),
])
def test_train_evaluate_predict(tmp_path, capsys, model, dataset, example):
    out = tmp_path / "run"
    code, text, err = _run(capsys, "train", "--model", model, "--dataset", dataset,
                           "--epochs", "1", "--limit", "64", "--batch-size", "32",
                           "--out", str(out), "--quiet")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and len(metrics["confusion"]) in (8, 10)
    ckpt = str(out / "checkpoint.safetensors")
    code, text, err = _run(capsys, "evaluate", ckpt, "--json")
    assert code == 0, err
    clip = np.random.default_rng(0).integers(0, 256, example).astype(np.uint8)
    np.save(tmp_path / "x.npy", clip)
    np.save(tmp_path / "no_channel.npy", clip[0])
    code, text, err = _run(capsys, "predict", ckpt, str(tmp_path / "x.npy"),
                           str(tmp_path / "no_channel.npy"), "--top", "2")
    assert code == 0, err
    lines = text.strip().splitlines()
    assert len(lines) == 2 and lines[0].split(":", 1)[1] == lines[1].split(":", 1)[1]
    np.save(tmp_path / "bad.npy", clip[..., :-1])
    code, _, err = _run(capsys, "predict", ckpt, str(tmp_path / "bad.npy"))
    assert code != 0 and "bad.npy has shape" in err


def test_model_and_data_of_different_dimensions_is_one_clear_error(tmp_path, capsys):
    code, _, err = _run(capsys, "train", "--model", "lenet5", "--dataset", "moving-mnist",
                        "--epochs", "1", "--limit", "8", "--out", str(tmp_path), "--quiet")
    assert code != 0
    assert "model lenet5 takes inputs with 2 spatial axes" in err and "c3d_mini" in err
