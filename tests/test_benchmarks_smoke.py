"""Smoke test of the benchmark suite machinery (benchmarks/ at the repo root): tiny settings,
no timing assertions; it only keeps the code from rotting."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import child, cli, harness, memory
from benchmarks.harness import Row

ROW = "conv2d 32x64x8x8->128 k3 s1 p1"  # smallest conv: exercises flops and % matmul


def test_rows_ratio_verdict_and_tables():
    ok = Row("conv ok", target=1.3, convprop=2.0, torch=2.0, flops=1.2e9, mm_target=0.6,
             matmul_gflops=1000.0)
    assert ok.ratio == 1.0 and ok.gflops == pytest.approx(600.0)
    assert ok.mm_fraction == pytest.approx(0.6) and ok.verdict == "pass"
    slow = Row("conv slow", target=1.3, convprop=4.0, torch=2.0, flops=1.2e9, mm_target=0.6,
               matmul_gflops=1000.0)
    assert slow.verdict == "FAIL: ratio, matmul %"
    alone = Row("no torch", target=1.0, convprop=3.0, notes=["torch: not installed"])
    assert alone.ratio is None and alone.verdict == "n/a"
    mem = Row("memory x", kind="memory", target=1.5, convprop=300.0, torch=100.0)
    assert mem.verdict == "FAIL: ratio" and mem.gflops is None
    text = cli.format_table([ok, slow, alone, mem])
    assert "FAIL: ratio, matmul %" in text and "300.0 MB" in text and "torch: not installed" in text
    md = cli.format_table([ok, alone], markdown=True).splitlines()
    assert md[0].startswith("| workload | convprop | torch | ratio |")
    assert md[2].startswith("| conv ok | 2.00 ms | 2.00 ms | 1.00 |")
    assert json.dumps(slow.to_json())  # JSON-able


def test_time_calls_alternates_blocks_and_counts():
    calls = []
    t = harness.time_calls({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                           reps=5, warmup=1, rounds=2, settle_s=0)
    # warm-up, then per round and side: one untimed settling call + that round's share
    assert "".join(calls) == "a" "b" + "aaaa" "bbbb" + "aaa" "bbb"
    assert t["a"].reps == 5 and t["b"].reps == 5
    t = harness.time_calls({"a": lambda: calls.append("a")}, reps=3, warmup=0, settle_s=0)
    assert t["a"].reps == 3 and t["a"].min_ms <= t["a"].median_ms
    with pytest.raises(ValueError, match="time_calls"):
        harness.time_calls({"a": lambda: None}, reps=0, warmup=0)


def test_threads_and_matmul_rate():
    assert harness.blas_threads() >= 1
    assert harness.matmul_gflops(64, reps=2, warmup=1) > 0


@pytest.mark.parametrize("no_torch, isolate", [(False, True), (True, True), (False, False)])
def test_main_runs_one_workload(tmp_path, capsys, no_torch, isolate):
    out = tmp_path / "r.json"
    argv = ["--reps", "1", "--warmup", "1", "--settle", "0", "--only", ROW, "--no-memory",
            "--matmul-size", "64", "--json", str(out), "--markdown", str(tmp_path / "r.md")]
    argv += (["--no-torch"] if no_torch else []) + ([] if isolate else ["--no-isolate"])
    assert cli.main(argv) == 0
    res = json.loads(out.read_text())
    assert res["environment"]["isolated"] is isolate
    assert [r["name"] for r in res["rows"]] == [ROW]
    row = res["rows"][0]
    assert row["convprop"] is not None or row["notes"], row  # a time, or why not
    if row["convprop"] is not None:
        assert row["gflops"] > 0 and row["mm_fraction"] > 0 and "matmul" in row["timings"]
    if no_torch:
        assert row["torch"] is None and res["environment"]["torch"] is None
    assert res["environment"]["matmul_gflops"] > 0
    assert (tmp_path / "r.md").read_text().startswith("| workload |")
    assert ROW in capsys.readouterr().out


def test_openblas_coretype_reruns_with_the_kernel_set_recorded(tmp_path):
    """--openblas-coretype re-executes the command with OPENBLAS_CORETYPE set before NumPy
    loads; the JSON records the variable and the kernel set OpenBLAS reports."""
    import subprocess

    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "benchmarks", "--openblas-coretype", "Haswell",
                        "--no-torch", "--no-memory", "--reps", "1", "--warmup", "1",
                        "--settle", "0", "--matmul-size", "64", "--only", ROW,
                        "--json", str(out)], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    env = json.loads(out.read_text())["environment"]
    assert env["openblas_coretype_env"] == "Haswell"
    if env["openblas_core"] is not None:  # None where NumPy is not on scipy-openblas
        assert env["openblas_core"].lower() == "haswell"


def test_isolated_timing_merges_child_blocks():
    """Every block in a fresh child: reps split over rounds add up, per side and for the
    matmul reference timed in the convprop children."""
    wl = next(w for w in cli.all_workloads() if w.name == ROW)
    row = cli.run_workload(wl, reps=3, warmup=1, use_torch=True, mm_rate=None, mm_n=64,
                           rounds=2, isolate=True, threads=1)
    assert not [n for n in row.notes if "child" in n], row.notes
    assert row.convprop > 0 and row.timings["convprop"]["reps"] == 3
    assert row.timings["matmul"]["reps"] == 3 and row.matmul_gflops > 0
    if "torch" in row.timings:  # torch installed
        assert row.torch > 0 and row.timings["torch"]["reps"] == 3
        assert row.max_rel_diff is not None and row.max_rel_diff < 1e-4


def test_isolated_child_failures_become_notes(capsys):
    import numpy as np

    from benchmarks.workloads import Workload
    a = np.ones(3)
    ghost = Workload("not a suite workload", lambda: lambda: (a,), lambda: lambda: (a,))
    row = cli.run_workload(ghost, reps=2, warmup=1, use_torch=True, mm_rate=None,
                           isolate=True, rounds=2)
    assert row.convprop is None and row.torch is None
    assert len(row.notes) == 2 and all("unknown workload" in n for n in row.notes), row.notes
    assert child.main(["--workload", "nope", "--side", "convprop", "--reps", "1",
                       "--warmup", "0"]) == 2
    assert "unknown workload 'nope'" in capsys.readouterr().err
    calls = []
    assert len(child.time_fn(lambda: calls.append(1), reps=4, warmup=2, warm_s=0)) == 4
    assert len(calls) == 6


def test_list_names_every_workload(capsys):
    assert cli.main(["--list"]) == 0
    names = capsys.readouterr().out.splitlines()
    assert len(names) == 35 and sum(n.startswith("conv2d ") for n in names) == 5
    assert {n.split()[0] for n in names} >= {"conv1d", "conv3d", "max_pool3d", "c3d_mini",
                                             "lp_pool2d", "stochastic_pool2d", "alpha_pool2d",
                                             "wavelet_pool2d", "dft_pool2d", "gated_pool2d"}
    assert any(n.startswith("memory ResNet-20") for n in names)


def test_memory_child_reports_peak_rss():
    mb, note = memory.peak_rss_mb("convprop", "lenet5", 1, timeout=120)
    assert (mb is not None and mb > 10) or note, note


def test_run_workload_flags_sides_that_disagree():
    import numpy as np

    from benchmarks.workloads import Workload
    a = np.arange(6.0).reshape(2, 3)
    same = Workload("same", lambda: lambda: (a, a), lambda: lambda: (a.copy(), a), flops=1e6)
    row = cli.run_workload(same, reps=2, warmup=1, use_torch=True, mm_rate=None, mm_n=32,
                          settle_s=0)
    assert row.max_rel_diff == 0.0 and not row.notes
    assert row.convprop > 0 and row.torch > 0 and row.matmul_gflops > 0
    off = Workload("off", lambda: lambda: (a,), lambda: lambda: (a + 1,))
    row = cli.run_workload(off, reps=2, warmup=1, use_torch=True, mm_rate=None, settle_s=0)
    assert row.max_rel_diff > 1e-4 and "DISAGREE" in row.notes[0]

    def broken():
        raise RuntimeError("side broke while building")
    row = cli.run_workload(Workload("x", broken, lambda: lambda: a), reps=2, warmup=1,
                           use_torch=True, mm_rate=None, settle_s=0)
    assert row.convprop is None and row.torch > 0 and "side broke while building" in row.notes[0]


# -- benchmarks/train_torch.py: PyTorch under `convprop train`'s settings ------------------------
TINY = {"model": "lenet5", "dataset": "mnist-sample", "limit": 256, "epochs": 2,
        "batch_size": 64, "lr": 2e-3, "optimizer": "adam", "schedule": "cosine", "seed": 3}


def test_train_torch_matches_convprop_train(torch, tmp_path, capsys):
    """Same data, normalisation, initial weights (--init convprop), batch order, optimizer
    and schedule: the per-epoch records agree with `convprop train` up to float32 rounding."""
    from benchmarks import train_torch
    from convprop.train.recipe import TrainConfig, run

    out = tmp_path / "torch.json"
    argv = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    assert train_torch.main([*argv, "--threads", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.count("epoch ") == 2 and "test accuracy" in text.splitlines()[-1]
    res = json.loads(out.read_text())
    recs = res["epochs"]
    assert [r["epoch"] for r in recs] == [1, 2] and res["environment"]["threads"] == 1
    assert recs[1]["lr"] == pytest.approx(TINY["lr"] / 2)  # cosine, stepped per epoch

    ref = run(TrainConfig(**TINY, out=str(tmp_path / "cp"), verbose=0))["history"].records
    for mine, theirs in zip(recs, ref, strict=True):
        for key in ("loss", "val_loss", "lr"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-4), (key, mine, theirs)
        for key in ("accuracy", "val_accuracy"):
            assert abs(mine[key] - theirs[key]) <= 2 / 256, (key, mine, theirs)


@pytest.mark.parametrize("name", ["none", "step", "multistep", "exponential", "cosine",
                                  "warmup_cosine"])
def test_train_torch_schedules_follow_convprop(torch, name):
    from benchmarks import train_torch
    from convprop.layers.module import Parameter
    from convprop.optim import build_optimizer, build_schedule

    epochs = 10
    opt = build_optimizer("sgd", [Parameter(np.zeros(2))], lr=0.1)
    sched = build_schedule(name, opt, epochs)
    topt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    tsched = train_torch.build_schedule(name, topt, epochs)
    for _ in range(epochs):
        assert topt.param_groups[0]["lr"] == pytest.approx(opt.lr, rel=1e-12, abs=1e-15)
        topt.step()  # the epoch's updates (no gradient here), then the schedule
        for s in (sched, tsched):
            if s is not None:
                s.step()


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop"])
def test_train_torch_optimizers_follow_convprop(torch, name, rng):
    """Three steps from the same start with the hyperparameters `convprop train` passes."""
    from benchmarks import train_torch
    from convprop.layers.module import Parameter
    from convprop.optim import build_optimizer
    from convprop.train.recipe import TrainConfig, _optimizer_kwargs

    cfg = TrainConfig(optimizer=name, lr=0.01, momentum=0.8, weight_decay=1e-3)
    p = Parameter(rng.standard_normal(5))
    opt = build_optimizer(name, [p], **_optimizer_kwargs(cfg))
    tp = torch.tensor(p.value.copy(), requires_grad=True)
    topt = train_torch.build_optimizer(name, [tp], lr=cfg.lr, momentum=cfg.momentum,
                                       weight_decay=cfg.weight_decay)
    for _ in range(3):
        g = rng.standard_normal(5)
        p.grad = g.copy()
        tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    np.testing.assert_allclose(p.value, tp.detach().numpy(), rtol=0, atol=1e-12)


def test_train_torch_rejects_bad_flags(capsys):
    from benchmarks import train_torch
    with pytest.raises(SystemExit):
        train_torch.main(["--epochs", "0"])
    assert "--epochs must be >= 1" in capsys.readouterr().err


def test_pooling_zoo_rows_without_a_torch_op_report_a_multiple_of_max_pooling(tmp_path, capsys):
    """A pooling PyTorch lacks: convprop's time, and a note with its multiple of max pooling's
    time on the same window (the reference row runs in the same suite)."""
    from benchmarks import cli as bcli
    code = bcli.main(["--only", "max_pool2d 64x32x32x32 k2", "--only", "gated_pool2d (Lee) 64",
                      "--reps", "2", "--warmup", "1", "--no-memory", "--no-isolate", "--no-torch",
                      "--json", str(tmp_path / "r.json")])
    assert code == 0
    rows = {r["name"]: r for r in json.loads((tmp_path / "r.json").read_text())["rows"]}
    gated = rows["gated_pool2d (Lee) 64x32x32x32 k2 s2"]
    assert gated["convprop"] > 0 and any("x the time of max_pool2d 64x32x32x32 k2 s2" in n
                                        for n in gated["notes"])
