"""The `convprop train` flags wired from other packages: --record-gradients (the gradient-norm
callback: history columns per layer; a resumed run keeps the saved setting) and the
data-parallel flags, which in one process change nothing but are recorded."""

import json

from convprop.cli import main
from convprop.io import load_checkpoint


def _history(out):
    return json.loads((out / "history.json").read_text())["epochs"]


def test_record_gradients_writes_per_layer_columns_and_continues_on_resume(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--limit", "300", "--epochs", "1", "--quiet", "--out", str(out)]
    assert main([*args, "--record-gradients"]) == 0
    rec = _history(out)[0]
    cols = sorted(k for k in rec if k.startswith("grad_norm/"))
    assert cols and all(rec[k] > 0 for k in cols)
    assert {"grad_norm/0", "grad_norm_max/0"} <= set(rec)  # LeNet-5's first conv
    ckpt = out / "checkpoint.safetensors"
    assert load_checkpoint(ckpt).extra["train_config"]["record_gradients"] is True
    # resumed without the flag, the run continues as saved: still recording
    assert main(["train", "--resume", str(ckpt), "--epochs", "2", "--quiet"]) == 0
    recs = _history(out)
    assert len(recs) == 2 and set(cols) <= set(recs[1])


def test_distributed_flags_in_one_process_train_as_usual(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--limit", "300", "--epochs", "1", "--quiet", "--sync-bn",
                 "--check-sync", "--model", "cnn1d", "--dataset", "seq-mnist",
                 "--out", str(out)]) == 0
    cfg = load_checkpoint(out / "checkpoint.safetensors").extra["train_config"]
    assert cfg["sync_bn"] is True and cfg["check_sync"] is True
    assert "test accuracy:" in capsys.readouterr().out
