"""``dsqlbench bench`` plumbing on tiny inputs: inputs, round-robin timing, ratios,
target checks and the table (the timings themselves live in tests/bench)."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from rich.console import Console

from dsqlbench import bench


def test_inputs_are_deterministic_and_well_formed():
    ts_flat, offsets = bench.merge_input(5, 10_000, bursty=True)
    again, _ = bench.merge_input(5, 10_000, bursty=True)
    assert (ts_flat == again).all() and offsets[-1] == len(ts_flat) == 10_000
    for j in range(5):
        assert (np.diff(ts_flat[offsets[j]:offsets[j + 1]]) >= 0).all()
    keys, key_offsets, t_start_ns, arrival_ns = bench.conflict_input(1000, 50, zipfian=True)
    lengths = np.diff(key_offsets)
    assert lengths.min() >= 1 and lengths.max() <= 8 and (t_start_ns <= arrival_ns).all()
    for i in range(1000):  # distinct keys within a transaction
        txn = keys[key_offsets[i]:key_offsets[i + 1]]
        assert len(np.unique(txn)) == len(txn)


def test_measure_group_ratios_and_targets():
    calls = []
    fast = bench.Case("merge k=4 random 1M", "dsqlbench (cython)", lambda: lambda: calls.append("a"), 100, "rec",
                      ours=True, rounds_max=3, key="ours")
    slow = bench.Case("merge k=4 random 1M", "numpy.argsort", lambda: lambda: sum(range(20_000)), 100, "rec",
                      rounds_max=3, key="argsort")
    broken = bench.Case("merge k=4 random 1M", "broken peer", lambda: lambda: 1 / 0, 100, "rec", key="x")
    results = bench.measure_group([fast, slow, broken], budget_s=10.0)
    assert [len(r.times_s) for r in results[:2]] == [3, 3] and "ZeroDivisionError" in results[2].error
    assert len(calls) == 4  # one warm-up call, then three timed rounds
    ratio = bench.ratios(results)[("merge k=4 random 1M", "numpy.argsort")]
    assert ratio > 1
    (target, group, measured, needed), = bench.target_checks(results)
    assert "k=4" in target and measured == ratio and needed == 2.5
    console = Console(record=True, width=200)
    console.print(bench.render_table(results))
    console.print(bench.render_targets(bench.target_checks(results)))
    text = console.export_text()
    assert "numpy.argsort" in text and "failed" in text


def test_erasure_cases_check_every_peer_before_timing():
    cases = bench.erasure_cases(4, 2, 4096, slow_peers=False)
    keys = {(case.group.split()[1], case.key) for case in cases}
    assert {("encode", "ours"), ("rebuild", "ours"), ("encode", "zfec"), ("rebuild", "reference")} <= keys
    for case in cases:
        case.prepare()()


def test_command_runs_one_small_group(monkeypatch):
    monkeypatch.setattr(bench, "QUICK", bench.Sizes(20_000, (4,), (4096,), 2000, (1000,), 0.1, 0.01, 1))
    result = CliRunner().invoke(bench.bench_command, ["--quick", "--only", "merge", "--no-slow-peers"])
    assert result.exit_code == 0, result.output
    assert "merge k=4 random" in result.output and "issue 3 targets" in result.output
