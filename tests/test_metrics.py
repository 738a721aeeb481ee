"""The recorder: exact percentiles, warm-up exclusion, latency from the intended start,
attempt/retry accounting, nulls for empty sets, byte-stable summaries, and tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsqlbench.metrics import KNOWN_ABORT_REASONS, Recorder, stats_ms

MS = 1_000_000
S = 1_000_000_000


def record(recorder: Recorder, **fields) -> None:
    """One attempt with plausible defaults; ``fields`` override them."""
    row = dict(
        txn_id=1, attempt=1, txn_type="update", client=0, qp="qp-0", region="r1",
        az="az1", intended_start_ns=0, start_ns=0, end_ns=5 * MS, t_start_ns=0,
        t_commit_ns=4 * MS, outcome="committed", abort_reason="", final=True,
        read_wait_ns=0, read_ns=MS, commit_ns=4 * MS, adjudicate_ns=MS,
        journal_ns=2 * MS, commit_wait_ns=0, qp_clock_offset_ns=0, keys_written=1,
        shards=1)
    row.update(fields)
    if "start_ns" not in fields:
        row["start_ns"] = row["intended_start_ns"]
    recorder.attempt(**row)


def fill(recorder: Recorder, seed: int, n: int = 400) -> None:
    """A deterministic mix: retries, aborts of several reasons, two types, warm-up."""
    rng = np.random.default_rng(seed)
    txn_id = 0
    for i in range(n):
        txn_id += 1
        intended = i * 10 * MS
        start = intended + int(rng.integers(0, 3 * MS))
        tries = int(rng.integers(1, 4))
        txn_type = "read" if i % 3 == 0 else "update"
        for attempt in range(1, tries + 1):
            end = start + int(rng.integers(MS, 9 * MS))
            last = attempt == tries
            committed = last and i % 5 != 0
            record(recorder, txn_id=txn_id, attempt=attempt, txn_type=txn_type,
                   client=i % 7, intended_start_ns=intended, start_ns=start, end_ns=end,
                   t_start_ns=start, t_commit_ns=end - MS if committed else -1,
                   outcome="committed" if committed else "aborted",
                   abort_reason="" if committed else ("OC000" if attempt % 2 else "TOO_OLD"),
                   final=last, read_wait_ns=int(rng.integers(0, 2)) * 1000,
                   commit_ns=int(rng.integers(MS, 5 * MS)))
            recorder.statement("read", int(rng.integers(MS // 2, 2 * MS)), end)
            recorder.read_wait(int(rng.integers(0, 3)) * 500, end)
            recorder.visibility(int(rng.integers(MS, 4 * MS)), end)
            start = end + MS
    recorder.count("crossbar.batches", 3)
    recorder.count("crossbar.batches")
    recorder.gauge_max("queue.depth_max", 4)
    recorder.gauge_max("queue.depth_max", 2)
    recorder.clock("true_offset_ns_max", 25_000)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=300))
def test_percentiles_match_numpy_linear(values):
    stats = stats_ms(np.array(values, dtype=np.int64))
    expected = np.percentile(np.array(values, dtype=np.float64), [50, 90, 99, 99.9])
    for key, want in zip(("p50", "p90", "p99", "p99_9"), expected):
        assert stats[key] == pytest.approx(want / MS, abs=1e-6)
    assert stats["max"] == pytest.approx(max(values) / MS, abs=1e-6)
    assert stats["mean"] == pytest.approx(sum(values) / len(values) / MS, abs=1e-6)
    assert stats["count"] == len(values)
    assert all(type(stats[k]) is float for k in ("p50", "p90", "p99", "p99_9", "max", "mean"))


def test_percentiles_on_random_data_in_the_summary():
    rng = np.random.default_rng(3)
    latencies = rng.lognormal(15, 1, size=5000).astype(np.int64)
    recorder = Recorder(0, S)
    for i, latency in enumerate(latencies):
        record(recorder, txn_id=i, intended_start_ns=i * MS, end_ns=i * MS + int(latency))
    summary = recorder.summarize(10 * S, 10 * S)
    expected = np.percentile(latencies, [50, 90, 99, 99.9]) / MS
    got = [summary["latency_ms"]["all"][k] for k in ("p50", "p90", "p99", "p99_9")]
    assert got == pytest.approx(list(expected), abs=1e-6)


def test_warmup_is_excluded_from_statistics_but_kept_in_the_table():
    recorder = Recorder(warmup_end_ns=S, interval_ns=S)
    record(recorder, txn_id=1, intended_start_ns=0, end_ns=900 * MS)  # warm-up: slow
    record(recorder, txn_id=2, intended_start_ns=S, end_ns=S + 5 * MS)
    recorder.statement("read", 50 * MS, 10 * MS)   # warm-up
    recorder.statement("read", 1 * MS, S + 1)
    recorder.read_wait(9 * MS, 0)                 # warm-up
    recorder.read_wait(0, S)
    summary = recorder.summarize(S, 2 * S)
    assert summary["transactions"]["attempted"] == 1
    assert summary["latency_ms"]["all"]["max"] == 5.0
    assert summary["statement_latency_ms"]["read"]["max"] == 1.0
    assert summary["read_wait_ms"]["max"] == 0.0
    assert summary["duration_s"] == 1.0
    assert summary["throughput_per_s"] == 1.0
    table = recorder.transactions_table()
    assert table.num_rows == 2
    assert table.column("measured").to_pylist() == [False, True]


def test_attempts_of_one_transaction_are_measured_by_its_intended_start():
    # The retry starts after warm-up, but its transaction was due during warm-up.
    recorder = Recorder(warmup_end_ns=S, interval_ns=S)
    record(recorder, attempt=1, intended_start_ns=S - MS, end_ns=S - 1, outcome="aborted",
           abort_reason="OC000", final=False, t_commit_ns=-1)
    record(recorder, attempt=2, intended_start_ns=S - MS, start_ns=S, end_ns=S + MS)
    summary = recorder.summarize(S, 2 * S)
    assert summary["transactions"]["attempted"] == 0
    assert summary["latency_ms"]["all"]["count"] == 0


def test_latency_is_from_the_intended_start_not_the_actual_start():
    recorder = Recorder(0, S)
    # Due at 10 ms, queued until 30 ms, first attempt aborts, retry ends at 42 ms.
    record(recorder, attempt=1, intended_start_ns=10 * MS, start_ns=30 * MS,
           end_ns=35 * MS, outcome="aborted", abort_reason="OC000", final=False,
           t_commit_ns=-1)
    record(recorder, attempt=2, intended_start_ns=10 * MS, start_ns=36 * MS,
           end_ns=42 * MS)
    summary = recorder.summarize(S, S)
    assert summary["latency_ms"]["all"]["p50"] == 32.0
    assert summary["latency_ms"]["update"]["max"] == 32.0
    latency = recorder.transactions_table().column("latency_ns").to_pylist()
    assert latency == [None, 32 * MS]


def test_final_and_retry_accounting():
    recorder = Recorder(0, S)
    # txn 1: aborts twice then commits; txn 2: aborts once, no retry left (failed);
    # txn 3: commits first time (read-only, no t_commit).
    for attempt in (1, 2):
        record(recorder, txn_id=1, attempt=attempt, outcome="aborted",
               abort_reason="OC000", final=False, t_commit_ns=-1)
    record(recorder, txn_id=1, attempt=3)
    record(recorder, txn_id=2, attempt=1, outcome="aborted", abort_reason="LIMIT_ROWS",
           final=True, t_commit_ns=-1)
    record(recorder, txn_id=3, txn_type="read", t_commit_ns=-1, keys_written=0)
    summary = recorder.summarize(S, S)
    assert summary["transactions"] == {"aborted": 3, "attempted": 5, "committed": 2,
                                       "retried": 2}
    assert summary["logical"] == {"committed": 2, "completed": 3, "failed": 1,
                                  "retried": 1}
    assert summary["aborts"]["OC000"] == 2
    assert summary["aborts"]["LIMIT_ROWS"] == 1
    assert set(KNOWN_ABORT_REASONS) <= set(summary["aborts"])
    assert summary["abort_rate"] == pytest.approx(3 / 5)
    assert summary["throughput_per_s"] == 2.0
    assert summary["goodput_per_s"] == 2.0
    assert summary["attempts_per_s"] == 5.0
    assert summary["latency_ms"]["all"]["count"] == 2
    # Only the read-write commit (txn 1) has commit phases.
    assert summary["commit_phase_ms"]["journal"]["count"] == 1
    assert summary["commit_phase_ms"]["journal"]["p50"] == 2.0


def test_empty_recorder_gives_nulls_not_nan():
    summary = Recorder(0, S).summarize(0, 0)
    text = json.dumps(summary, allow_nan=False, sort_keys=True)  # raises on NaN
    assert summary["latency_ms"] == {"all": {
        "count": 0, "max": None, "mean": None, "p50": None, "p90": None, "p99": None,
        "p99_9": None}}
    assert summary["throughput_per_s"] is None
    assert summary["abort_rate"] is None
    assert summary["read_wait_ms"]["waited_fraction"] is None
    assert "NaN" not in text
    assert Recorder(0, S).transactions_table().num_rows == 0
    assert Recorder(0, S).timeseries_table(0).num_rows == 0


def test_summary_bytes_are_stable_across_identical_recorders():
    first, second = Recorder(50 * MS, 100 * MS), Recorder(50 * MS, 100 * MS)
    fill(first, seed=11)
    fill(second, seed=11)
    dump = lambda r: json.dumps(r.summarize(4 * S, 5 * S), indent=2, sort_keys=True,
                                allow_nan=False)
    assert dump(first) == dump(second)
    other = Recorder(50 * MS, 100 * MS)
    fill(other, seed=12)
    assert dump(other) != dump(first)


def test_summary_values_are_plain_python_and_keys_sorted():
    recorder = Recorder(50 * MS, 100 * MS)
    fill(recorder, seed=5)
    summary = recorder.summarize(4 * S, 5 * S)

    def walk(value):
        if isinstance(value, dict):
            assert list(value) == sorted(value)
            for item in value.values():
                walk(item)
        else:
            assert value is None or type(value) in (int, float, str, bool)
            assert not (isinstance(value, float) and not math.isfinite(value))

    walk(summary)
    assert summary["counters"] == {"crossbar.batches": 4}
    assert summary["gauges"] == {"queue.depth_max": 4}
    assert summary["clock"] == {"true_offset_ns_max": 25_000}


def test_transactions_table_types():
    recorder = Recorder(50 * MS, 100 * MS)
    fill(recorder, seed=1, n=20)
    table = recorder.transactions_table()
    schema = table.schema
    for name in schema.names:
        if name.endswith("_ns"):
            assert schema.field(name).type == pa.int64(), name
    for name in ("txn_type", "outcome", "abort_reason", "region", "az", "qp"):
        assert pa.types.is_dictionary(schema.field(name).type), name
    assert schema.field("final").type == pa.bool_()
    assert schema.field("measured").type == pa.bool_()
    rows = table.to_pylist()
    for row in rows:
        assert (row["t_commit_ns"] is None) == (row["outcome"] == "aborted")
        assert (row["abort_reason"] is None) == (row["outcome"] == "committed")
        assert (row["latency_ns"] is None) == (not row["final"])


def test_timeseries_buckets_by_end_time():
    recorder = Recorder(warmup_end_ns=S, interval_ns=S)
    record(recorder, txn_id=1, intended_start_ns=100 * MS, end_ns=200 * MS)
    record(recorder, txn_id=2, intended_start_ns=S, end_ns=S + 10 * MS)
    record(recorder, txn_id=3, intended_start_ns=S, end_ns=S + 30 * MS)
    record(recorder, txn_id=4, intended_start_ns=S + MS, end_ns=S + 2 * MS,
           outcome="aborted", abort_reason="OC000", t_commit_ns=-1)
    recorder.read_wait(4 * MS, S + 5)
    table = recorder.timeseries_table(end_ns=2 * S + S // 2)
    rows = table.to_pylist()
    assert [r["start_s"] for r in rows] == [0.0, 1.0, 2.0]
    assert [r["end_s"] for r in rows] == [1.0, 2.0, 2.5]
    assert [r["committed"] for r in rows] == [1, 2, 0]
    assert [r["aborted"] for r in rows] == [0, 1, 0]
    assert [r["warmup"] for r in rows] == [True, False, False]
    assert rows[1]["abort_rate"] == pytest.approx(1 / 3)
    assert rows[2]["abort_rate"] is None
    assert rows[1]["latency_ms_p50"] == 20.0
    assert rows[1]["latency_ms_max"] == 30.0
    assert rows[2]["latency_ms_p99"] is None
    assert rows[1]["read_wait_ms_p99"] == 4.0
    assert rows[2]["throughput_per_s"] == 0.0


def test_progress_counts_and_recent_throughput():
    recorder = Recorder(S, S)
    for i in range(3):
        record(recorder, txn_id=i, intended_start_ns=i * MS, end_ns=i * MS + 1)
    first = recorder.progress(S // 2)
    assert first == {"aborted": 0, "committed": 3, "sim_s": 0.5, "throughput_per_s": 6.0,
                     "warmup": True}
    record(recorder, txn_id=9, outcome="aborted", abort_reason="OC000", t_commit_ns=-1)
    second = recorder.progress(S)
    assert second["throughput_per_s"] == 0.0
    assert second["aborted"] == 1
    assert second["warmup"] is False


def test_invalid_input_is_refused():
    recorder = Recorder(0, S)
    with pytest.raises(ValueError):
        record(recorder, outcome="maybe")
    record(recorder, intended_start_ns=10, start_ns=10, end_ns=5)
    with pytest.raises(ValueError, match="intended_start_ns <= start_ns <= end_ns"):
        recorder.summarize(S, S)
    with pytest.raises(ValueError):
        Recorder(0, 0)
