"""The end-to-end table of issue 11 (``dsqlbench bench --e2e``).

``test_e2e_table_tiny`` runs the table's code on tiny sizes in normal CI (no timing
assertions: host figures are noisy). The benchmark twin runs under
``pytest tests/bench --benchmark-only`` (skipped by default via ``--benchmark-skip``).
"""

from dsqlbench import bench_e2e


def test_e2e_table_tiny():
    bare, rows = bench_e2e.measure(bench_e2e.TINY)
    assert bare > 0
    assert [r.key for r in rows] == ["bare", "ycsb", "tpcb", "load"]
    for row in rows:
        assert row.rate > 0 and row.ratio > 0
    assert {r.key: r.must_reach for r in rows if r.must_reach} == bench_e2e.TARGETS
    assert bench_e2e.render(rows).row_count == 4


def test_bench_bare_loop(benchmark):
    benchmark.pedantic(bench_e2e.bare_loop_events_per_s, args=(100_000, 1), rounds=3, iterations=1)


def test_bench_e2e_quick(benchmark):
    result = benchmark.pedantic(bench_e2e.measure, args=(bench_e2e.QUICK,), rounds=1, iterations=1)
    benchmark.extra_info["ratios"] = {r.key: r.ratio for r in result[1]}


def test_json_is_written_whole_and_an_unwritable_one_fails_first(tmp_path, monkeypatch, capsys):
    """``bench --json``: nothing is measured when the file cannot be written, and the
    file appears whole (valid JSON, no temporary sibling left) when it can."""
    import json

    from tests.cli.test_cli import run_cli

    measured = []

    def run_e2e(console, quick):
        measured.append(quick)
        return bench_e2e.measure(bench_e2e.TINY)[1]
    monkeypatch.setattr(bench_e2e, "run_e2e", run_e2e)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "bench", "--e2e", "--json", str(blocker / "out.json"))
    assert code == 2 and not measured
    assert len(err.strip().splitlines()) == 1 and "a-file/out.json" in err, err
    target = tmp_path / "e2e.json"
    code, _, err = run_cli(capsys, "bench", "--e2e", "--quick", "--json", str(target))
    assert code == 0, err
    assert [row["key"] for row in json.loads(target.read_text())["e2e"]] == ["bare", "ycsb", "tpcb", "load"]
    assert {p.name for p in tmp_path.iterdir()} == {"a-file", "e2e.json"}
