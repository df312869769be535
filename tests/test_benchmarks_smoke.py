"""Smoke test of the benchmark suite machinery (benchmarks/ at the repo root): tiny settings,
no timing assertions; it only keeps the code from rotting."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import cli, harness, memory
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


@pytest.mark.parametrize("no_torch", [False, True])
def test_main_runs_one_workload(tmp_path, capsys, no_torch):
    out = tmp_path / "r.json"
    argv = ["--reps", "1", "--warmup", "1", "--settle", "0", "--only", ROW, "--no-memory",
            "--matmul-size", "64", "--json", str(out), "--markdown", str(tmp_path / "r.md")]
    assert cli.main(argv + (["--no-torch"] if no_torch else [])) == 0
    res = json.loads(out.read_text())
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


def test_list_names_every_workload(capsys):
    assert cli.main(["--list"]) == 0
    names = capsys.readouterr().out.splitlines()
    assert len(names) == 12 and sum(n.startswith("conv2d ") for n in names) == 5
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
