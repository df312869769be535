"""Section 4: no setting silently ignored. Every ``convprop train`` flag given with
``--resume`` either applies (and a changed epoch target is recorded in the history) or is
refused in one line saying it comes from the checkpoint; bad flag values and bad
environment variables are reported as what they are."""

import json

import numpy as np
import pytest
from attack import assert_one_line_error, run_many

from convprop.functional._engine import threads
from convprop.io import load_checkpoint
from convprop.train.recipe import FROM_CHECKPOINT, TrainConfig, run

# flag -> a value other than the trained checkpoint's (conftest: lenet5, mnist-sample, adam,
# lr 2e-3, batch 32, cosine, seed 0, limit 64, no augmentation)
CHANGED = {"--model": "resnet20", "--dataset": "fashion-mnist", "--batch-size": "64",
           "--lr": "0.1", "--optimizer": "sgd", "--momentum": "0.5", "--weight-decay": "0.01",
           "--schedule": "step", "--augment": None, "--seed": "7", "--limit": "32"}

BAD_FLAGS = {  # argv -> the flag the one error line must name (argparse: exit status 2)
    "lr-nan": (["--lr", "nan"], "--lr"), "lr-inf": (["--lr", "inf"], "--lr"),
    "lr-negative": (["--lr", "-0.1"], "--lr"), "lr-zero": (["--lr", "0"], "--lr"),
    "momentum-negative": (["--momentum", "-1"], "--momentum"),
    "momentum-nan": (["--momentum", "nan"], "--momentum"),
    "weight-decay-inf": (["--weight-decay", "inf"], "--weight-decay"),
    "seed-negative": (["--seed", "-1"], "--seed"), "seed-float": (["--seed", "1.5"], "--seed"),
    "seed-huge": (["--seed", str(2**64)], "--seed"),
    "epochs-zero": (["--epochs", "0"], "--epochs"), "limit-text": (["--limit", "ten"], "--limit"),
    "batch-size-huge-float": (["--batch-size", "1e9"], "--batch-size"),
}

ENVS = {  # environment -> the variable the one error line must name
    "threads-text": ({"CONVPROP_NUM_THREADS": "four"}, "CONVPROP_NUM_THREADS"),
    "threads-zero": ({"CONVPROP_NUM_THREADS": "0"}, "CONVPROP_NUM_THREADS"),
    "threads-negative": ({"CONVPROP_NUM_THREADS": "-2"}, "CONVPROP_NUM_THREADS"),
    "threads-float": ({"CONVPROP_NUM_THREADS": "1.5"}, "CONVPROP_NUM_THREADS"),
    "threads-huge": ({"CONVPROP_NUM_THREADS": "100000"}, "CONVPROP_NUM_THREADS"),
    "max-bytes-text": ({"CONVPROP_MAX_FILE_BYTES": "lots"}, "CONVPROP_MAX_FILE_BYTES"),
    # was "...: cannot rebuild the model it records: CONVPROP_MAX_ARRAY_BYTES must be ..."
    "max-array-bytes-text": ({"CONVPROP_MAX_ARRAY_BYTES": "lots"}, "CONVPROP_MAX_ARRAY_BYTES"),
    "max-array-bytes-zero": ({"CONVPROP_MAX_ARRAY_BYTES": "0"}, "CONVPROP_MAX_ARRAY_BYTES"),
    "max-array-bytes-float": ({"CONVPROP_MAX_ARRAY_BYTES": "1e100"},
                              "CONVPROP_MAX_ARRAY_BYTES"),
}


@pytest.fixture(scope="module")
def command_results(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("resume")
    cases = {}
    for flag, value in CHANGED.items():
        argv = ["train", "--resume", trained, "--out", out / flag, flag]
        cases[f"resume{flag}"] = (argv + ([] if value is None else [value]), None)
    cases["resume-epochs-backwards"] = (["train", "--resume", trained, "--epochs", "0"], None)
    for k, (argv, _) in BAD_FLAGS.items():
        cases[f"flag-{k}"] = (["train", *argv], None)
    for k, (env, _) in ENVS.items():
        cases[f"env-{k}"] = (["evaluate", trained], env)
    return run_many(cases)


@pytest.mark.parametrize("flag", list(CHANGED))
def test_resume_refuses_a_changed_setting(command_results, flag):
    line = assert_one_line_error(command_results[f"resume{flag}"], "convprop train: error:",
                                 "--resume", flag, "come from the checkpoint")
    assert "the checkpoint's" in line


def test_resume_refuses_going_backwards(command_results):
    # --epochs 0 is refused by the parser itself (exit 2), naming the flag
    assert_one_line_error(command_results["resume-epochs-backwards"], "--epochs", code=2)


@pytest.mark.parametrize("case", list(BAD_FLAGS))
def test_bad_flag_values_name_the_flag(command_results, case):
    assert_one_line_error(command_results[f"flag-{case}"], BAD_FLAGS[case][1], code=2)


@pytest.mark.parametrize("case", list(ENVS))
def test_bad_environment_is_reported_as_such(command_results, case):
    line = assert_one_line_error(command_results[f"env-{case}"], ENVS[case][1])
    assert "model" not in line  # not wrapped in a model error


def test_every_setting_is_either_applied_or_from_the_checkpoint():
    from dataclasses import fields

    from convprop.train.recipe import APPLY_ON_RESUME
    names = {f.name for f in fields(TrainConfig)}
    assert names == set(FROM_CHECKPOINT) | set(APPLY_ON_RESUME)
    assert not set(FROM_CHECKPOINT) & set(APPLY_ON_RESUME)


def test_resume_to_a_later_epoch_applies_and_is_recorded(trained, tmp_path):
    out = tmp_path / "run"
    res = run(TrainConfig(resume=str(trained), epochs=2, out=str(out), verbose=0), given={
        "epochs", "out", "resume"})
    hist = json.loads((out / "history.json").read_text())["epochs"]
    assert [r["epoch"] for r in hist] == [1, 2]
    assert "epochs_target" not in hist[0] and hist[1]["epochs_target"] == 2
    ck = load_checkpoint(out / "checkpoint.safetensors")
    assert ck.epoch == 2 and ck.extra["train_config"]["epochs"] == 2
    assert res["metrics"]["epochs"] == 2


def test_resume_with_the_saved_values_is_accepted(trained, tmp_path):
    """Repeating the original command line with --resume is not an error."""
    cfg = TrainConfig(resume=str(trained), epochs=1, out=str(tmp_path), verbose=0, limit=64,
                      batch_size=32, lr=2e-3)
    res = run(cfg, given={"epochs", "limit", "batch_size", "lr", "out", "resume"})
    assert res["metrics"]["epochs"] == 1


def test_resume_refuses_an_earlier_target(trained, tmp_path):
    with pytest.raises(ValueError, match="--epochs 0: the checkpoint .* has already trained 1"):
        run(TrainConfig(resume=str(trained), epochs=0, out=str(tmp_path), verbose=0),
            given={"epochs"})


def test_library_resume_counts_non_defaults_as_given(trained, tmp_path):
    with pytest.raises(ValueError, match="--optimizer 'rmsprop' .*'adam'"):
        run(TrainConfig(resume=str(trained), optimizer="rmsprop", out=str(tmp_path), verbose=0))


@pytest.mark.parametrize("value", ["four", "0", "-1", "2.5", "99999"])
def test_bad_thread_count_is_not_wrapped_in_a_model_error(monkeypatch, value):
    from convprop import models
    monkeypatch.setattr(threads, "_num_threads", None)
    monkeypatch.setenv("CONVPROP_NUM_THREADS", value)
    with pytest.raises(threads.ThreadSettingError, match="^CONVPROP_NUM_THREADS") as e:
        models.build("lenet5", rng=np.random.default_rng(0))
    assert "models" not in str(e.value)


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_momentum_for_an_optimizer_without_it_is_refused(tmp_path, optimizer):
    # it was dropped without a word: --optimizer adam --momentum 0.5 trained plain Adam
    with pytest.raises(ValueError, match=rf"^--momentum 0.5: the {optimizer} optimizer has no "
                                         "momentum setting"):
        run(TrainConfig(optimizer=optimizer, momentum=0.5, out=str(tmp_path), verbose=0),
            given={"optimizer", "momentum"})
    with pytest.raises(ValueError, match="--momentum 0.3"):  # a library call: not the default
        run(TrainConfig(optimizer=optimizer, momentum=0.3, out=str(tmp_path), verbose=0))
