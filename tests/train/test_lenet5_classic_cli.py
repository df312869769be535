"""LeNet-5 as published through the command: ``convprop train --model lenet5_classic`` on the
embedded MNIST sample (28x28 digits: the model pads them to 32x32 with the background; the
paper's input scaling is recorded as the checkpoint's mean/std), then ``evaluate``,
``predict`` and ``explain`` on its checkpoint. Every number the commands print is recomputed
here from the checkpoint's model by the RBF rule itself (argmin of the penalties,
softmax(-y)), so a command that read the penalties as logits (argmax) fails."""

import json

import numpy as np
import pytest

from helpers import run_cli as _run
from convprop.cli import _load_model, main
from convprop.data import load_dataset
from convprop.layers.lenet_classic import RBFLoss, rbf_predict
from convprop.train.recipe import prepare_images

LIMIT = 2000


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short run (2000 images, 5 epochs, about 2 s) shared by the tests below."""
    out = tmp_path_factory.mktemp("lenet5_classic")
    code = main(["train", "--model", "lenet5_classic", "--limit", str(LIMIT), "--epochs", "5",
                 "--batch-size", "32", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def _test_split():
    d = load_dataset("mnist-sample", "test")
    return d.images, d.labels


def test_train_reaches_a_sensible_accuracy_counted_by_the_argmin(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    hist = json.loads((trained / "history.json").read_text())["epochs"]
    assert metrics["model"] == "lenet5_classic"
    assert metrics["accuracy"] >= 0.75  # 0.86 measured (seed 0); chance is 0.1
    ckpt, model, pre = _load_model(str(trained / "checkpoint.safetensors"))
    assert ckpt.model_config == {"name": "lenet5_classic", "in_channels": 1,
                                 "num_classes": 10, "input_size": 28}
    # the paper's scaling, as mean/std: pixel 0 -> -0.1, 255 -> 1.175
    mean, std = np.array(pre["mean"]), np.array(pre["std"])
    np.testing.assert_allclose((0 - mean) / std, -0.1, rtol=1e-12)
    np.testing.assert_allclose((1 - mean) / std, 1.175, rtol=1e-12)
    images, labels = _test_split()
    x = prepare_images(images[:LIMIT], pre["mean"], pre["std"])
    y = model.predict(x)
    acc = float(np.mean(rbf_predict(y) == labels[:LIMIT]))
    assert metrics["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert hist[-1]["val_accuracy"] == pytest.approx(acc, abs=1e-12)
    assert float(np.mean(y.argmax(axis=1) == labels[:LIMIT])) < 0.3  # argmax would be wrong
    loss, _ = RBFLoss().forward(y, labels[:LIMIT])
    assert metrics["loss"] == pytest.approx(float(loss), rel=1e-5)  # eq. 9, not cross-entropy


def test_evaluate_uses_the_argmin_for_accuracy_top5_and_confusion(capsys, trained):
    code, stdout, err = _run(capsys, "evaluate", str(trained / "checkpoint.safetensors"),
                             "--json")
    assert code == 0, err
    ev = json.loads(stdout)
    _, model, pre = _load_model(str(trained / "checkpoint.safetensors"))
    images, labels = _test_split()
    y = model.predict(prepare_images(images, pre["mean"], pre["std"]))
    pred = rbf_predict(y)
    assert ev["accuracy"] == pytest.approx(float(np.mean(pred == labels)), abs=1e-12)
    top5 = np.argsort(y, axis=1, kind="stable")[:, :5]  # the five smallest penalties
    assert ev["top5"] == pytest.approx(float(np.mean((top5 == labels[:, None]).any(1))),
                                       abs=1e-12)
    conf = np.zeros((10, 10), np.int64)
    np.add.at(conf, (labels, pred), 1)
    np.testing.assert_array_equal(ev["confusion"], conf)
    assert ev["loss"] == pytest.approx(float(RBFLoss().forward(y, labels)[0]), rel=1e-5)


def test_predict_prints_the_argmin_class_with_softmax_of_minus_the_penalties(
        capsys, trained, tmp_path):
    images, labels = _test_split()
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"d{i}.npy"))
        np.save(paths[-1], images[i, 0])
    code, stdout, err = _run(capsys, "predict", str(trained / "checkpoint.safetensors"),
                             *paths, "--top", "2")
    assert code == 0, err
    _, model, pre = _load_model(str(trained / "checkpoint.safetensors"))
    y = model.predict(prepare_images(images[:3], pre["mean"], pre["std"])).astype(np.float64)
    e = np.exp(-(y - y.min(axis=1, keepdims=True)))
    p = e / e.sum(axis=1, keepdims=True)
    lines = stdout.strip().splitlines()
    assert len(lines) == 3
    for line, row, prob in zip(lines, y, p):
        best, second = np.argsort(row, kind="stable")[:2]
        assert line.split(": ")[1] == f"{best} ({prob[best]:.4f}), {second} ({prob[second]:.4f})"


def test_explain_runs_on_the_checkpoint(capsys, trained, tmp_path):
    images, labels = _test_split()
    np.save(tmp_path / "d.npy", images[0, 0])
    code, stdout, err = _run(capsys, "explain", str(trained / "checkpoint.safetensors"),
                             "--input", str(tmp_path / "d.npy"), "--target",
                             str(labels[0]))
    assert code == 0, err
    for part in ("ConstantPad", "MaskedConv2d", "Subsampling2d", "EuclideanRBF"):
        assert part in stdout


def test_trace_with_the_models_criterion(trained, tmp_path):
    """The library call ``explain`` makes, with the model's own criterion (eq. 9): the trace
    names it, and the checkpoint's model is left unchanged (the step runs on a copy)."""
    from convprop.explain.trace import trace
    from convprop.layers.loss import criterion_for
    _, model, pre = _load_model(str(trained / "checkpoint.safetensors"))
    images, labels = _test_split()
    x = prepare_images(images[:1], pre["mean"], pre["std"])
    loss = criterion_for(model)
    before = float(loss.forward(model.predict(x), labels[:1])[0])
    tr = trace(model, x, labels[:1], loss=loss, lr=0.01, training=True)
    assert "RBFLoss" in tr.to_json()
    assert float(loss.forward(model.predict(x), labels[:1])[0]) == pytest.approx(before)


def test_resume_is_bit_identical(capsys, tmp_path):
    """1 epoch then --resume to 2 equals 2 epochs straight: the criterion and the fixed input
    scaling come back with the model."""
    base = ["--model", "lenet5_classic", "--limit", "300", "--batch-size", "50", "--quiet",
            "--schedule", "none"]  # a cosine horizon of 1 or 2 epochs would differ
    assert main(["train", *base, "--epochs", "2", "--out", str(tmp_path / "a")]) == 0
    assert main(["train", *base, "--epochs", "1", "--out", str(tmp_path / "b")]) == 0
    assert main(["train", "--resume", str(tmp_path / "b" / "checkpoint.safetensors"),
                 "--epochs", "2", "--quiet"]) == 0
    capsys.readouterr()
    a = _load_model(str(tmp_path / "a" / "checkpoint.safetensors"))[1].state_dict()
    b = _load_model(str(tmp_path / "b" / "checkpoint.safetensors"))[1].state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    ha = json.loads((tmp_path / "a" / "history.json").read_text())["epochs"]
    hb = json.loads((tmp_path / "b" / "history.json").read_text())["epochs"]
    assert [r["loss"] for r in ha] == [r["loss"] for r in hb]
