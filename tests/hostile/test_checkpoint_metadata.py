"""Section 2: checkpoint metadata is data, not trusted configuration. Each case rewrites a
real checkpoint's metadata or tensors and recomputes its SHA-256, as anyone can; loading
must refuse it with a CheckpointError naming the file and the offending entry."""

import json

import numpy as np
import pytest
from attack import INF, assert_one_line_error, resign, run_many

from convprop import models
from convprop.io import CheckpointError, load_checkpoint
from convprop.optim import build_optimizer, build_schedule


def _set(path, value):
    """An edit setting ``info[path[0]][path[1]]...`` to ``value``."""
    def edit(info):
        d = info
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return edit


def _drop(path):
    def edit(info):
        d = info
        for k in path[:-1]:
            d = d[k]
        del d[path[-1]]
    return edit


# id -> (edit, needle naming the entry)
METADATA = {
    "epoch-negative": (_set(["epoch"], -1), "'epoch'"),
    "epoch-string": (_set(["epoch"], "3"), "'epoch'"),
    "epoch-float": (_set(["epoch"], 1.5), "'epoch'"),
    "epoch-bool": (_set(["epoch"], True), "'epoch'"),
    "epoch-huge": (_set(["epoch"], 10**40), "epoch"),
    "config-list": (_set(["model_config"], ["lenet5"]), "'model_config'"),
    "config-unknown-kwarg": (_set(["model_config", "depth"], 3), "'depth'"),
    "config-rng-key": (_set(["model_config", "rng"], {"seed": 1}), "'rng'"),
    "config-dtype-key": (_set(["model_config", "dtype"], "float16"), "'dtype'"),
    "config-classes-string": (_set(["model_config", "num_classes"], "10"), "num_classes"),
    "config-classes-zero": (_set(["model_config", "num_classes"], 0), "num_classes"),
    "config-channels-negative": (_set(["model_config", "in_channels"], -1), "in_channels"),
    "config-channels-float": (_set(["model_config", "in_channels"], 1.0), "in_channels"),
    "config-input-size-string": (_set(["model_config", "input_size"], "28"), "input_size"),
    "config-name-not-string": (_set(["model_config", "name"], 5), "model_config.name"),
    "std-zero": (_set(["extra", "preprocess", "std"], [0.0]), "std[0] must be > 0"),
    "std-negative": (_set(["extra", "preprocess", "std"], [-0.3]), "std[0] must be > 0"),
    "std-infinite": (_set(["extra", "preprocess", "std"], [INF]), "std[0] must be finite"),
    "std-string": (_set(["extra", "preprocess", "std"], ["0.3"]), "std[0]"),
    "mean-per-channel": (_set(["extra", "preprocess", "mean"], [0.1, 0.2, 0.3]),
                         "preprocess.mean"),
    "channels-mismatch": (_set(["extra", "preprocess", "channels"], 3), "preprocess"),
    "channels-huge": (_set(["extra", "preprocess", "channels"], 10**9), "channels"),
    "shape-mismatch": (_set(["extra", "preprocess", "shape"], [32, 32]), "input_size"),
    "shape-4d": (_set(["extra", "preprocess", "shape"], [1, 2, 3, 4]), "preprocess.shape"),
    "shape-zero": (_set(["extra", "preprocess", "shape"], [0, 28]), "shape[0]"),
    "shape-and-size-missing": (lambda i: [i["extra"]["preprocess"].pop(k) for k in
                                          ("shape", "size")] and None, "'shape'"),
    "preprocess-list": (_set(["extra", "preprocess"], [1, 2]), "extra.preprocess"),
    "classes-too-few": (_set(["extra", "classes"], ["a", "b"]), "num_classes"),
    "classes-numbers": (_set(["extra", "classes"], list(range(10))), "extra.classes[0]"),
    "classes-empty": (_set(["extra", "classes"], []), "extra.classes"),
    "classes-huge-name": (_set(["extra", "classes"], ["x" * 10**5] * 10), "extra.classes[0]"),
    "dataset-not-string": (_set(["extra", "dataset"], {"a": 1}), "extra.dataset"),
    "schedule-epochs-zero": (_set(["extra", "schedule_epochs"], 0), "schedule_epochs"),
    "history-not-list": (_set(["extra", "history"], "all good"), "extra.history"),
    "history-nested": (_set(["extra", "history"], [{"loss": [1, 2]}]), "history[0].loss"),
    # strings where a resumed run plots numbers: it trained an epoch, then failed in
    # matplotlib ("Failed to convert value(s) to axis units") without naming the file
    "history-loss-string": (_set(["extra", "history"], [{"epoch": 1, "loss": "low"}]),
                            "history[0].loss must be a number"),
    "history-epoch-string": (_set(["extra", "history"], [{"epoch": "one"}]), "history[0].epoch"),
    "history-epoch-zero": (_set(["extra", "history"], [{"epoch": 0}]), "history[0].epoch"),
    "train-config-list": (_set(["extra", "train_config"], [1]), "train_config"),
    "lr-infinite": (_set(["optimizer", "hyperparams", "lr"], INF), "lr must be finite"),
    "optimizer-steps-negative": (_set(["optimizer", "steps", "0"], -5), "steps.0"),
    "optimizer-type-number": (_set(["optimizer", "type"], 7), "optimizer.type"),
    "optimizer-hyper-string": (_set(["optimizer", "hyperparams", "eps"], "1e-8"), "eps"),
    "schedule-eta-infinite": (_set(["schedule", "eta_min"], "-" + INF), "eta_min must be finite"),
    "rng-unknown-generator": (_set(["rng", "bit_generator"], "os.system"), "bit_generator"),
    "rng-not-object": (_set(["rng"], 42), "'rng'"),
    "rng-state-129-bits": (_set(["rng", "state", "state"], 2**129), "rng.state.state"),
    "rng-state-negative": (_set(["rng", "state", "inc"], -1), "rng.state.inc"),
    "rng-state-float": (_set(["rng", "state", "state"], 1.5), "rng.state.state"),
    "rng-has-uint32-huge": (_set(["rng", "has_uint32"], 2**70), "rng.has_uint32"),
    "rng-uinteger-negative": (_set(["rng", "uinteger"], -5), "rng.uinteger"),
    "rng-state-extra-key": (_set(["rng", "state", "evil"], 1), "rng.state"),
    "module-rngs-not-objects": (_set(["module_rngs"], {"dropout": 1}), "module_rngs"),
    "int-2-to-200": (_set(["extra", "anything"], 2**200), "too large"),
    "nesting-too-deep": (_set(["extra", "deep"], json.loads("[" * 40 + "]" * 40)), "nested"),
    "missing-extra": (_drop(["extra"]), "missing entries ['extra']"),
}


@pytest.mark.parametrize("case", list(METADATA))
def test_hostile_metadata_is_refused(ckpt, case):
    edit, needle = METADATA[case]
    resign(ckpt, edit)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(ckpt)
    msg = str(e.value)
    assert str(ckpt) in msg and needle in msg, msg


@pytest.mark.parametrize("raw, needle", [
    ('{"format": "convprop-checkpoint", "version": 2, "epoch": NaN}', "corrupt metadata"),
    ('{"format": "convprop-checkpoint", "format": "x"}', "duplicate key"),
    ("[" * 100000, "corrupt metadata"),
    ('"just a string"', "not a JSON object"),
], ids=["nan-literal", "duplicate-key", "deep-nesting", "string"])
def test_unparseable_metadata_is_refused(ckpt, raw, needle):
    resign(ckpt, raw_meta=raw)
    with pytest.raises(CheckpointError, match=needle) as e:
        load_checkpoint(ckpt)
    assert str(ckpt) in str(e.value)


def _poison(name, value):
    def edit(t):
        t[name].flat[3] = value
    return edit


@pytest.mark.parametrize("tensor, value", [("model.0.weight", np.nan),
                                           ("model.11.bias", np.inf),
                                           ("optimizer.3.exp_avg_sq", -np.inf)])
def test_non_finite_weights_are_refused_naming_the_tensor(ckpt, tensor, value):
    resign(ckpt, edit_tensors=_poison(tensor, value))
    with pytest.raises(CheckpointError, match=f"tensor '{tensor}' holds 1 non-finite"):
        load_checkpoint(ckpt)


def test_an_unexpected_tensor_is_refused(ckpt):
    def add(t):
        t["payload.exe"] = np.zeros(4, np.float32)
    resign(ckpt, edit_tensors=add)
    with pytest.raises(CheckpointError, match="unexpected tensors \\['payload.exe'\\]"):
        load_checkpoint(ckpt)


def _live(ck):
    model = models.build(**ck.model_config)
    opt = build_optimizer("adam", model.parameters(), lr=1e-3)
    sched = build_schedule("cosine", opt, 1)
    return model, opt, sched, np.random.default_rng(0)


# restore() validates what load_checkpoint cannot know (the live objects' types)
@pytest.mark.parametrize("edit, part", [
    (_set(["schedule", "T_max"], "many"), "schedule"),
    (_set(["schedule", "last_lr"], -1.0), "schedule"),
    (_set(["rng", "bit_generator"], "MT19937"), "training generator"),
    (_set(["optimizer", "hyperparams", "betas"], [0.9, 1.5]), "optimizer"),
    (_set(["optimizer", "hyperparams", "amsgrad"], 2), "optimizer"),
], ids=["T_max-string", "last-lr-negative", "rng-of-another-kind", "beta-above-1",
        "amsgrad-not-bool"])
def test_restore_refuses_bad_states_and_changes_nothing(ckpt, edit, part):
    resign(ckpt, edit)
    ck = load_checkpoint(ckpt)
    model, opt, sched, rng = _live(ck)
    before = (model.state_dict(), opt.lr, rng.bit_generator.state)
    with pytest.raises(CheckpointError, match=f"cannot restore the {part}"):
        ck.restore(model, opt, sched, rng)
    after = (model.state_dict(), opt.lr, rng.bit_generator.state)
    assert before[1:] == after[1:]
    for k, v in before[0].items():
        np.testing.assert_array_equal(v, after[0][k])


@pytest.mark.parametrize("key, value", [("lr", float("nan")), ("lr", -1.0), ("model", "gpt"),
                                        ("epochs", 0), ("batch_size", "32"),
                                        ("optimizer", ["adam"]), ("seed", -1),
                                        ("limit", 0), ("download", "yes")])
def test_resume_refuses_a_bad_saved_train_config(ckpt, tmp_path, key, value):
    from convprop.train.recipe import TrainConfig, run
    if isinstance(value, float) and value != value:  # JSON cannot hold NaN: 1e400 parses to inf
        resign(ckpt, _set(["extra", "train_config", key], INF))
        with pytest.raises(CheckpointError, match="train_config.lr must be finite"):
            run(TrainConfig(resume=str(ckpt), out=str(tmp_path), verbose=0))
        return
    resign(ckpt, _set(["extra", "train_config", key], value))
    with pytest.raises(ValueError, match=f"--resume: .*malformed train_config: {key} must be"):
        run(TrainConfig(resume=str(ckpt), out=str(tmp_path), verbose=0))


def test_the_command_reports_bad_metadata_in_one_line(ckpt, tmp_path):
    bad = {}
    for case in ("std-zero", "classes-too-few", "config-dtype-key", "epoch-negative"):
        p = tmp_path / f"{case}.safetensors"
        p.write_bytes(ckpt.read_bytes())
        bad[case] = resign(p, METADATA[case][0])
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((28, 28)))
    cases = {f"{c}-{cmd}": ([cmd, p] + ([x] if cmd == "predict" else []), None)
             for c, p in bad.items() for cmd in ("evaluate", "predict")}
    results = run_many(cases)
    for k, r in results.items():
        case = k.rsplit("-", 1)[0]
        assert_one_line_error(r, "error: checkpoint:", str(bad[case]), METADATA[case][1])
