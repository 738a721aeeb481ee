"""Exports: CSV and JSON lines of the tables, and HdrHistogram-compatible latency
histograms (layout, V2 encoding, percentile text, logs, merging), checked against the
independent ``hdrh`` implementation and against the run's own summary."""

from __future__ import annotations

import base64
import csv
import io
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from dsqlbench.results.baseline import SuiteEntry, run_entry
from dsqlbench.cli import main
from dsqlbench.results.export import HIGHEST_NS, Histogram, read_hlog
from dsqlbench.results.folder import load_run, read_run_table, write_run

TINY = ("run.duration_s=0.4", "run.warmup_s=0.1", "clients.count=8",
        "load.record_count=2000")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    paths = {}
    for name, extra in (("a", ()), ("b", ("run.seed=2",))):
        summary, tables = run_entry(SuiteEntry(name, "ycsb-a", TINY + extra))
        paths[name] = write_run(root / name, summary, tables)
    return paths


def run_cli(capsysbinary, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
        raise SystemExit(0)
    out, err = capsysbinary.readouterr()
    return exit_info.value.code, out, err.decode()


# ---------------------------------------------------------------------- tables


def test_csv_has_every_row_and_plain_text_columns(runs, capsysbinary):
    code, out, err = run_cli(capsysbinary, "export", str(runs["a"]), "--format", "csv")
    assert code == 0, err
    table = pq.read_table(runs["a"] / "transactions.parquet")
    rows = list(csv.DictReader(io.StringIO(out.decode())))
    assert len(rows) == table.num_rows
    assert list(rows[0]) == table.column_names
    assert {row["txn_type"] for row in rows} == {"read", "update"}
    assert {row["outcome"] for row in rows} <= {"committed", "aborted"}
    reads = [row for row in rows if row["txn_type"] == "read"]
    assert reads[0]["t_commit_ns"] == ""  # null: a read-only commit has no t_commit


def test_jsonl_of_the_timeseries_round_trips(runs, capsysbinary, tmp_path):
    target = tmp_path / "ts.jsonl"
    code, out, _ = run_cli(capsysbinary, "export", str(runs["a"]), "--format", "jsonl",
                           "--table", "timeseries", "-o", str(target))
    assert code == 0 and out == b""
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert lines == pq.read_table(runs["a"] / "timeseries.parquet").to_pylist()
    assert [p.name for p in tmp_path.iterdir()] == ["ts.jsonl"]  # no temporary left


def test_jsonl_transactions_keep_nulls_as_null(runs, capsysbinary):
    _, out, _ = run_cli(capsysbinary, "export", str(runs["a"]), "--format", "jsonl")
    rows = [json.loads(line) for line in out.decode().splitlines()]
    assert any(row["abort_reason"] is None for row in rows)
    assert all(isinstance(row["txn_type"], str) for row in rows)


# ---------------------------------------------------------------------- layout


def reference(values) -> HdrHistogram:
    histogram = HdrHistogram(1, HIGHEST_NS, 3)
    for value in values:
        histogram.record_value(int(value))
    return histogram


def sample_values(seed: int = 1, n: int = 5000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(15, 1.2, n).astype(np.int64)
    edges = [0, 1, 2047, 2048, 2049, 4095, 4096, 10**6, 2**40, HIGHEST_NS]
    return np.concatenate([values, np.array(edges, dtype=np.int64)])


def test_layout_and_indexes_match_hdrhistogram():
    values = sample_values()
    ours, theirs = Histogram().record(values), reference(values)
    assert (ours.bucket_count, ours.sub_bucket_count, ours.counts.size) == (
        theirs.bucket_count, theirs.sub_bucket_count, theirs.counts_len)
    assert ours.index_of(values).tolist() == [theirs._counts_index_for(int(v)) for v in values]
    # Percentiles whose rank is not near .5: hdrh rounds the rank to nearest where Java's
    # HdrHistogram (and this module) rounds up.
    for percentile in (50, 90, 99, 99.9, 100):
        assert ours.value_at_percentile(percentile) == theirs.get_value_at_percentile(percentile)
    assert ours.max_value() == theirs.get_max_value()
    assert ours.mean() == pytest.approx(theirs.get_mean_value())
    assert ours.stddev() == pytest.approx(theirs.get_stddev())


def test_v2_encoding_decodes_both_ways_with_hdrh():
    values = sample_values(seed=2)
    ours = Histogram().record(values)
    decoded = HdrHistogram.decode(base64.b64encode(ours.encode()))
    assert decoded.get_total_count() == values.size
    assert decoded.get_value_at_percentile(99) == ours.value_at_percentile(99)
    back = Histogram.decode(base64.b64decode(reference(values).encode()))
    assert np.array_equal(back.counts, ours.counts)


def test_values_outside_the_range_are_refused():
    with pytest.raises(ValueError, match="values must lie"):
        Histogram().record([HIGHEST_NS + 1])


def test_percentile_text_follows_hdrhistogram_iteration():
    histogram = Histogram().record(np.arange(1, 10001) * 1000)  # 1 us .. 10 ms
    lines = histogram.percentile_distribution().splitlines()
    assert lines[0].split() == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    levels = [float(line.split()[1]) for line in lines[2:] if not line.startswith("#")]
    # 5 ticks per half distance: steps of 10% to 50%, 5% to 75%, 2.5% to 87.5% ...
    assert levels[:9] == pytest.approx([0, .1, .2, .3, .4, .5, .55, .6, .65])
    assert levels[-1] == 1.0 and lines[-4].split()[2] == "10000"
    assert len(lines[-4].split()) == 3  # the last step has no 1/(1-p) column
    assert lines[-3].startswith("#[Mean    =") and "StdDeviation" in lines[-3]
    assert lines[-2].split() == ["#[Max", "=", "10.002,", "Total", "count", "=", "10000]"]
    assert lines[-1].split()[:4] == ["#[Buckets", "=", str(histogram.bucket_count) + ",",
                                     "SubBuckets"]


def test_different_layouts_add_by_re_recording():
    values = sample_values(seed=3, n=500)
    coarse = Histogram(digits=2).record(values)
    total = Histogram().add(coarse)
    assert total.total_count == values.size
    assert total.value_at_percentile(50) == pytest.approx(coarse.value_at_percentile(50),
                                                          rel=0.01)


# ---------------------------------------------------------------------- runs


def test_hgrm_and_hlog_of_a_run_agree_with_its_summary(runs, capsysbinary, tmp_path):
    update = load_run(runs["a"])["simulated"]["latency_ms"]["update"]
    code, out, _ = run_cli(capsysbinary, "export", str(runs["a"]), "--format", "hgrm",
                           "--txn-type", "update")
    assert code == 0
    assert out.decode().splitlines()[-2].split()[-1] == f"{update['count']}]"
    log = tmp_path / "update.hlog"
    code, _, _ = run_cli(capsysbinary, "export", str(runs["a"]), "--format", "hlog",
                         "--txn-type", "update", "-o", str(log))
    assert code == 0
    [interval] = read_hlog(log)
    assert interval.tag == "a:update"
    assert (interval.start_s, interval.length_s) == (0.1, 0.3)  # simulated, after warm-up
    # Three significant digits: within 0.1% of a sample next to the summary's exact
    # percentile. The summary interpolates between the two samples around the rank
    # (numpy's linear method); HdrHistogram answers one of the samples (nearest rank),
    # so in a sparse tail the two differ by the gap between neighbours.
    table = read_run_table(runs["a"], "transactions").to_pydict()
    latencies_ms = sorted(
        ns / 1e6 for ns, kind, final, measured, outcome in zip(
            table["latency_ns"], table["txn_type"], table["final"], table["measured"],
            table["outcome"])
        if kind == "update" and final and measured and outcome == "committed")
    assert len(latencies_ms) == update["count"]
    for key, percentile in (("p50", 50), ("p99", 99), ("max", 100)):
        rank = percentile / 100 * (len(latencies_ms) - 1)
        below, above = latencies_ms[math.floor(rank)], latencies_ms[math.ceil(rank)]
        assert below <= update[key] <= above, key
        value = interval.histogram.value_at_percentile(percentile) / 1e6
        assert below * (1 - 1e-3) <= value <= above * (1 + 1e-3), key


def test_hlog_is_readable_by_hdrh_and_merges(runs, capsysbinary, tmp_path):
    logs = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.hlog"
        code, _, _ = run_cli(capsysbinary, "export", str(runs[name]), "--format", "hlog",
                             "-o", str(path))
        assert code == 0
        logs.append(path)
    reader = HistogramLogReader(str(logs[0]), HdrHistogram(1, HIGHEST_NS, 3))
    interval = reader.get_next_interval_histogram()
    count_a = load_run(runs["a"])["simulated"]["latency_ms"]["all"]["count"]
    assert interval.get_total_count() == count_a
    assert interval.get_tag() == "a"
    # Merging the logs gives the same distribution as merging the runs directly.
    _, from_logs, _ = run_cli(capsysbinary, "export", *map(str, logs), "--format", "hgrm")
    _, from_runs, _ = run_cli(capsysbinary, "export", str(runs["a"]), str(runs["b"]),
                              "--format", "hgrm")
    assert from_logs == from_runs
    count_b = load_run(runs["b"])["simulated"]["latency_ms"]["all"]["count"]
    assert from_runs.decode().splitlines()[-2].split()[-1] == f"{count_a + count_b}]"


# ---------------------------------------------------------------------- errors


def test_truncated_parquet_exits_3_with_one_line(runs, capsysbinary, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("summary.json", "timeseries.parquet"):
        (broken / name).write_bytes((runs["a"] / name).read_bytes())
    data = (runs["a"] / "transactions.parquet").read_bytes()
    (broken / "transactions.parquet").write_bytes(data[: len(data) // 2])
    code, out, err = run_cli(capsysbinary, "export", str(broken), "--format", "csv")
    assert code == 3 and out == b""  # the size summary.json records catches it first
    assert err.count("\n") == 1 and "the file is truncated or was replaced" in err
    # A folder written before summary.json listed its files: Parquet itself refuses.
    _without_manifest(broken / "summary.json")
    code, out, err = run_cli(capsysbinary, "export", str(broken), "--format", "csv")
    assert code == 3 and out == b""
    assert err.count("\n") == 1 and "cannot read as Parquet (truncated or corrupt?)" in err


def _without_manifest(file):
    summary = json.loads(file.read_text())
    del summary["files"]
    file.write_text(json.dumps(summary))


def test_future_schema_parquet_exits_3(runs, capsysbinary, tmp_path):
    future = tmp_path / "future"
    future.mkdir()
    (future / "summary.json").write_bytes((runs["a"] / "summary.json").read_bytes())
    table = pq.read_table(runs["a"] / "timeseries.parquet")
    metadata = {**table.schema.metadata, b"schema_version": b"99"}
    pq.write_table(table.replace_schema_metadata(metadata), future / "timeseries.parquet")
    _without_manifest(future / "summary.json")  # else its recorded SHA-256 refuses first
    code, _, err = run_cli(capsysbinary, "export", str(future), "--format", "csv",
                           "--table", "timeseries")
    assert code == 3 and "schema_version 99 is newer" in err


def test_bad_hlog_exits_3(capsysbinary, tmp_path):
    bad = tmp_path / "bad.hlog"
    bad.write_text("0.0,1.0,2.0,bm90IGEgaGlzdG9ncmFt\n")
    code, _, err = run_cli(capsysbinary, "export", str(bad), "--format", "hgrm")
    assert code == 3 and "not an HdrHistogram" in err and err.count("\n") == 1


@pytest.mark.parametrize("args, message", [
    (["--format", "csv", "TWO"], "exports one run"),
    (["--format", "hgrm", "--txn-type", "scan"], "--txn-type scan"),
    (["--format", "xml"], "Invalid value"),
])
def test_usage_errors_exit_2(runs, capsysbinary, args, message):
    args = [str(runs["b"]) if arg == "TWO" else arg for arg in args]
    code, _, err = run_cli(capsysbinary, "export", str(runs["a"]), *args)
    assert code == 2 and message in err


def test_a_summary_file_has_no_tables(runs, capsysbinary):
    code, _, err = run_cli(capsysbinary, "export", str(runs["a"] / "summary.json"),
                           "--format", "csv")
    assert code == 3 and "give the run folder" in err


def test_pyarrow_dictionary_columns_are_decoded():
    from dsqlbench.results.export import plain_columns

    table = pa.table({"t": pa.array(["x", "y", "x"]).dictionary_encode(), "n": [1, 2, 3]})
    assert plain_columns(table).schema.field("t").type == pa.string()
