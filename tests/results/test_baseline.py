"""The CI smoke suite and its baselines: update writes stable files, check passes on
an unchanged simulation and fails on a worse figure, a stale or a missing baseline."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dsqlbench.results import baseline
from dsqlbench.results.baseline import SMOKE_SUITE, SuiteEntry, baseline_file, check, update
from dsqlbench.cli import main
from dsqlbench.errors import ResultError
from dsqlbench.results.folder import config_sha256, load_run

REPO = Path(__file__).resolve().parents[2]
TINY_SUITE = (
    SuiteEntry("tiny-a", "ycsb-a", ("run.duration_s=0.4", "run.warmup_s=0.1",
                                    "clients.count=8")),
    SuiteEntry("tiny-bank", "bank", ("run.duration_s=0.4", "run.warmup_s=0.1",
                                     "clients.count=8")),
)


@pytest.fixture(scope="module")
def baselines(tmp_path_factory):
    directory = tmp_path_factory.mktemp("baselines")
    update(directory, TINY_SUITE)
    return directory


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def rewrite(file: Path, change) -> None:
    document = json.loads(file.read_text())
    change(document)
    document["config_sha256"] = config_sha256(document["config"])
    file.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def test_the_smoke_suite_spans_the_workloads_and_its_baselines_are_committed():
    assert {entry.workload for entry in SMOKE_SUITE} >= {"ycsb-a", "hot-key", "bank", "ycsb-e"}
    assert len({entry.name for entry in SMOKE_SUITE}) == len(SMOKE_SUITE)
    for entry in SMOKE_SUITE:
        summary = load_run(baseline_file(REPO / "results" / "baselines", entry))
        assert summary["host"] == {} and summary["git_revision"] is None
        assert summary["config"]["workload"]["name"] == entry.workload
        assert summary["simulated"]["duration_s"] <= 2.0  # small: CI runs all of them


def test_ci_smoke_script_runs_the_baseline_check():
    script = REPO / ".ci" / "smoke"
    assert os.access(script, os.X_OK)
    assert "baseline check" in script.read_text()


def test_update_writes_stripped_stable_summaries(baselines, tmp_path):
    files = sorted(p.name for p in baselines.iterdir())
    assert files == ["tiny-a.json", "tiny-bank.json"]  # nothing half-written left over
    first = (baselines / "tiny-a.json").read_bytes()
    update(tmp_path, TINY_SUITE[:1])
    assert (tmp_path / "tiny-a.json").read_bytes() == first  # same suite, same bytes


def test_check_passes_on_an_unchanged_simulation(baselines, tmp_path):
    results = check(baselines, TINY_SUITE, runs_dir=tmp_path / "runs")
    assert [r.failed for r in results] == [False, False]
    assert all(row.mark == "=" for r in results for row in r.comparison.rows)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["tiny-a", "tiny-bank"]


def test_check_fails_on_a_worse_simulated_figure(baselines, tmp_path):
    for entry in TINY_SUITE:
        (tmp_path / f"{entry.name}.json").write_bytes(baseline_file(baselines, entry).read_bytes())

    def better_baseline(document):  # the baseline was faster: the new run is worse
        document["simulated"]["latency_ms"]["all"]["p99"] *= 0.9

    rewrite(tmp_path / "tiny-a.json", better_baseline)
    results = check(tmp_path, TINY_SUITE)
    assert [r.failed for r in results] == [True, False]
    assert [row.metric for row in results[0].comparison.regressions] == ["latency_ms.all.p99"]
    assert not results[0].stale


def test_a_baseline_of_another_config_is_stale(baselines, tmp_path):
    (tmp_path / "tiny-a.json").write_bytes(baseline_file(baselines, TINY_SUITE[0]).read_bytes())
    rewrite(tmp_path / "tiny-a.json",
            lambda d: d["config"]["clients"].update(count=9))
    [result] = check(tmp_path, TINY_SUITE[:1])
    assert result.stale and result.failed


def test_a_missing_baseline_fails_before_simulating(tmp_path, monkeypatch):
    monkeypatch.setattr(baseline, "run_entry", lambda entry: pytest.fail("simulated"))
    with pytest.raises(ResultError, match="baseline update"):
        check(tmp_path, TINY_SUITE)


def test_cli_check_exit_codes(baselines, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(baseline, "SMOKE_SUITE", TINY_SUITE)
    code, out, err = run_cli(capsys, "baseline", "check", "--dir", str(baselines),
                             "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["failed"] == [] and len(document["entries"]) == 2
    assert "smoke: all 2 runs match their baselines" in err
    for entry in TINY_SUITE:
        (tmp_path / f"{entry.name}.json").write_bytes(baseline_file(baselines, entry).read_bytes())
    rewrite(tmp_path / "tiny-bank.json",
            lambda d: d["simulated"].update(throughput_per_s=d["simulated"]["throughput_per_s"] * 2))
    code, out, err = run_cli(capsys, "baseline", "check", "--dir", str(tmp_path),
                             "--format", "markdown")
    assert code == 1
    assert "### tiny-bank" in out and "| `+` | `throughput_per_s` |" in out
    assert out.count("Marks:") == 1
    assert "smoke: 1 of 2 failed: tiny-bank" in err
    code, _, err = run_cli(capsys, "baseline", "check", "--dir", str(tmp_path / "empty"))
    assert code == 3 and err.count("\n") == 1


def test_cli_update_writes_the_suite(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(baseline, "SMOKE_SUITE", TINY_SUITE[:1])
    code, out, _ = run_cli(capsys, "baseline", "update", "--dir", str(tmp_path / "b"))
    assert code == 0 and "wrote 1 baseline(s)" in out
    assert load_run(tmp_path / "b" / "tiny-a.json")["seed"] == 1
