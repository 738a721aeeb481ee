"""The metrics recorder: what a simulated run measured, and its deterministic summary.

Place in the pipeline: the SimPy runtime calls one ``Recorder`` while the run goes
(``attempt``, ``statement``, ``read_wait``, ``visibility``, ``count``, ...). At the end
``summarize`` gives the ``simulated`` section of ``summary.json`` (DESIGN.md section 4)
and ``transactions_table`` / ``timeseries_table`` give the two Parquet tables that
``dsqlbench.results.folder.write_run`` stores.

Invariants:

- Recording is cheap: each call appends plain integers to ``array('q')`` columns or
  references to Python lists. No numpy, no dicts per row, no allocation beyond the
  append. numpy only runs at the end, once per column.
- Everything is a pure function of what was recorded and in which order. No wall clock,
  no randomness, no set or hash ordering reaches a result: dict keys are sorted, values
  are Python ``int``/``float``/``None`` (never NaN or inf), so the same run gives the
  same bytes.
- Time is simulated integer nanoseconds everywhere inside; milliseconds (floats, rounded
  to the nanosecond) and seconds appear only in the outputs, with the unit last in the
  name (``latency_ms``, ``throughput_per_s``).
- Warm-up is excluded from every statistic but kept in the tables, flagged. An attempt
  is *measured* when its logical transaction's intended start is at or after
  ``warmup_end_ns``, so all attempts of one logical transaction are in or out together.
  A statement, read wait or visibility sample is measured when its ``at_ns`` is.
- Latency is from the *intended* start of the logical transaction (for open-loop
  arrivals the scheduled arrival) to the end of its final attempt, so queueing in the
  load generator and time lost to retries are not hidden (no coordinated omission).

Percentiles are exact, computed with ``numpy.percentile(..., method="linear")`` (the
numpy default, type 7 of Hyndman and Fan: linear interpolation between the two closest
ranks). Every percentile set has the same keys: ``count``, ``p50``, ``p90``, ``p99``,
``p99_9``, ``max``, ``mean``; an empty set has ``count`` 0 and ``None`` for the rest.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

import numpy as np
import pyarrow as pa

from dsqlbench.components.messages import AbortReason

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000

# The percentile set of every distribution in the summary: (key, percentile).
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9))

# Milliseconds are rounded to 6 decimals: the simulated clock ticks in nanoseconds, so
# finer digits are interpolation noise and only make the JSON harder to read and diff.
MS_DECIMALS = 6

# Abort reasons that appear in every summary, with 0 when none happened, so dashboards
# and CI gates can read ``aborts.OC000`` without guarding against a missing key.
KNOWN_ABORT_REASONS = tuple(
    sorted(v for k, v in vars(AbortReason).items() if k.isupper() and isinstance(v, str))
)

OUTCOME_COMMITTED = "committed"
OUTCOME_ABORTED = "aborted"

# The commit-phase breakdown: summary key -> attempt column holding the phase's time.
COMMIT_PHASES = {
    "read_wait": "read_wait_ns",
    "read": "read_ns",
    "commit": "commit_ns",
    "adjudicate": "adjudicate_ns",
    "journal": "journal_ns",
    "commit_wait": "commit_wait_ns",
}

TIMESERIES_SCHEMA = pa.schema([
    ("start_s", pa.float64()), ("end_s", pa.float64()),
    ("committed", pa.int64()), ("aborted", pa.int64()),
    ("throughput_per_s", pa.float64()), ("abort_rate", pa.float64()),
    ("latency_ms_p50", pa.float64()), ("latency_ms_p90", pa.float64()),
    ("latency_ms_p99", pa.float64()), ("latency_ms_max", pa.float64()),
    ("read_wait_ms_p99", pa.float64()), ("warmup", pa.bool_()),
])

# Integer columns of one attempt row, in call order (all int64 nanoseconds or counts).
_INT_COLUMNS = (
    "txn_id", "attempt", "client", "intended_start_ns", "start_ns", "end_ns",
    "t_start_ns", "t_commit_ns", "read_wait_ns", "read_ns", "commit_ns",
    "adjudicate_ns", "journal_ns", "commit_wait_ns", "qp_clock_offset_ns",
    "keys_written", "shards",
)
# Text columns (stored as references to the caller's strings, dictionary-encoded later).
_TEXT_COLUMNS = ("txn_type", "qp", "region", "az", "abort_reason")


class Recorder:
    """Collects a run's measurements; summarizes and exports them at the end.

    ``warmup_end_ns``: simulated time at which warm-up ends (0 for none).
    ``interval_ns``: width of one time-series interval (e.g. 1 s = 1_000_000_000).
    """

    def __init__(self, warmup_end_ns: int, interval_ns: int):
        if warmup_end_ns < 0:
            raise ValueError(f"warmup_end_ns must be >= 0, got {warmup_end_ns}")
        if interval_ns <= 0:
            raise ValueError(f"interval_ns must be > 0, got {interval_ns}")
        self.warmup_end_ns = int(warmup_end_ns)
        self.interval_ns = int(interval_ns)
        self._ints: dict[str, array] = {name: array("q") for name in _INT_COLUMNS}
        self._texts: dict[str, list[str]] = {name: [] for name in _TEXT_COLUMNS}
        self._committed = array("b")
        self._final = array("b")
        # Bound appends, so the per-attempt call does no attribute or dict look-ups.
        self._append_ints = tuple(self._ints[name].append for name in _INT_COLUMNS)
        self._append_texts = tuple(self._texts[name].append for name in _TEXT_COLUMNS)
        # kind -> (latency_ns, at_ns) columns
        self._statements: dict[str, tuple[array, array]] = {}
        self._read_wait_ns = array("q")
        self._read_wait_at_ns = array("q")
        self._visibility_lag_ns = array("q")
        self._visibility_at_ns = array("q")
        self._counters: dict[str, int] = {}
        self._gauges: dict[str, int | float] = {}
        self._clock: dict[str, Any] = {}
        # Running totals for ``progress`` (all attempts, warm-up included).
        self._committed_total = 0
        self._aborted_total = 0
        self._progress_last = (0, 0)  # (now_ns, committed_total) at the previous call
        self._end_ns: int | None = None

    # ------------------------------------------------------------------ recording

    def attempt(
        self, txn_id: int, attempt: int, txn_type: str, client: int, qp: str,
        region: str, az: str, intended_start_ns: int, start_ns: int, end_ns: int,
        t_start_ns: int, t_commit_ns: int, outcome: str, abort_reason: str, final: bool,
        read_wait_ns: int, read_ns: int, commit_ns: int, adjudicate_ns: int,
        journal_ns: int, commit_wait_ns: int, qp_clock_offset_ns: int,
        keys_written: int, shards: int,
    ) -> None:
        """One transaction attempt, recorded when it ends.

        ``attempt`` counts from 1 within logical transaction ``txn_id``;
        ``intended_start_ns`` is the logical transaction's due time (the same on every
        attempt); ``t_commit_ns`` is -1 when there is none (aborts, read-only commits);
        ``abort_reason`` is "" when committed; ``final`` marks the last attempt of the
        logical transaction (committed, or aborted with no retry to follow).
        """
        if outcome == OUTCOME_COMMITTED:
            committed = 1
            self._committed_total += 1
        elif outcome == OUTCOME_ABORTED:
            committed = 0
            self._aborted_total += 1
        else:
            raise ValueError(f"outcome must be 'committed' or 'aborted', got {outcome!r}")
        a = self._append_ints
        a[0](txn_id); a[1](attempt); a[2](client); a[3](intended_start_ns)
        a[4](start_ns); a[5](end_ns); a[6](t_start_ns); a[7](t_commit_ns)
        a[8](read_wait_ns); a[9](read_ns); a[10](commit_ns); a[11](adjudicate_ns)
        a[12](journal_ns); a[13](commit_wait_ns); a[14](qp_clock_offset_ns)
        a[15](keys_written); a[16](shards)
        t = self._append_texts
        t[0](txn_type); t[1](qp); t[2](region); t[3](az); t[4](abort_reason)
        self._committed.append(committed)
        self._final.append(1 if final else 0)

    def statement(self, kind: str, latency_ns: int, at_ns: int) -> None:
        """One statement's latency. ``kind``: "read" (a QP's storage read round trip,
        wait included), "scan", "commit" (read-write COMMIT, client send to ack),
        "commit_ro", ... ``at_ns``: when it completed (warm-up test, time bucket)."""
        columns = self._statements.get(kind)
        if columns is None:
            columns = self._statements[kind] = (array("q"), array("q"))
        columns[0].append(latency_ns)
        columns[1].append(at_ns)

    def read_wait(self, wait_ns: int, at_ns: int) -> None:
        """One storage read's wait for the replica watermark (0 when it did not wait)."""
        self._read_wait_ns.append(wait_ns)
        self._read_wait_at_ns.append(at_ns)

    def visibility(self, lag_ns: int, at_ns: int) -> None:
        """Commit-to-visible lag: adjudicator decision to the local replica applying it."""
        self._visibility_lag_ns.append(lag_ns)
        self._visibility_at_ns.append(at_ns)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to component counter ``name`` (e.g. "crossbar.batches")."""
        self._counters[name] = self._counters.get(name, 0) + n

    def counters(self) -> dict[str, int]:
        """The component counters so far (a copy)."""
        return dict(self._counters)

    def gauge_max(self, name: str, value: int | float) -> None:
        """Keep the largest ``value`` seen for gauge ``name`` (e.g. a queue depth)."""
        previous = self._gauges.get(name)
        if previous is None or value > previous:
            self._gauges[name] = value

    def clock(self, name: str, value: Any) -> None:
        """A clock figure to report as given (e.g. "true_offset_ns_max"); last wins."""
        self._clock[name] = value

    def progress(self, now_ns: int) -> dict:
        """Counts so far (warm-up included) for a progress bar or a JSON line.

        ``throughput_per_s`` is committed attempts per simulated second since the
        previous ``progress`` call (since time 0 for the first). O(1).
        """
        last_ns, last_committed = self._progress_last
        elapsed_ns = now_ns - last_ns
        recent = self._committed_total - last_committed
        throughput = recent * NS_PER_S / elapsed_ns if elapsed_ns > 0 else 0.0
        self._progress_last = (now_ns, self._committed_total)
        return {
            "sim_s": now_ns / NS_PER_S,
            "committed": self._committed_total,
            "aborted": self._aborted_total,
            "throughput_per_s": float(throughput),
            "warmup": now_ns < self.warmup_end_ns,
        }

    # ------------------------------------------------------------------ summary

    def summarize(self, duration_ns: int, end_ns: int) -> dict:
        """The deterministic ``simulated`` section of ``summary.json``.

        ``end_ns``: simulated time at which the run stopped. The measured window is
        ``[warmup_end_ns, end_ns)``; every rate divides by its length, ``duration_s``.
        ``duration_ns``: the measured length the run was configured for, reported as
        ``planned_duration_s`` (it differs from ``duration_s`` when a run is bounded by
        a transaction count).

        Counting, over measured attempts (see the module docstring):

        - ``transactions.attempted``: attempts; ``.committed``: attempts that
          committed; ``.aborted``: attempts that aborted (retried or not);
          ``.retried``: attempts with ``attempt > 1`` (each retry is one attempt).
        - ``logical.completed``: logical transactions (final attempts);
          ``.committed`` / ``.failed``: those whose final attempt committed / aborted;
          ``.retried``: those that needed more than one attempt.
        - ``throughput_per_s``: committed attempts per simulated second;
          ``goodput_per_s``: logical transactions that committed per simulated second.
          A commit is always final, so the two are equal today; they part when an
          attempt can commit and still be followed by another (none does yet).
          ``attempts_per_s`` and ``aborted_per_s`` show the work spent and wasted.
        - ``latency_ms``: end of the final attempt minus the intended start, over
          logical transactions that committed, for ``"all"`` and per ``txn_type``.
        - ``aborts``: aborted attempts by reason (known reasons always present);
          ``abort_rate``: aborted attempts / attempts.
        - ``commit_phase_ms``: per-attempt phase times over read-write attempts that
          committed (those with a ``t_commit``).
        """
        if end_ns < self.warmup_end_ns:
            raise ValueError(f"end_ns {end_ns} is before warm-up end {self.warmup_end_ns}")
        self._end_ns = int(end_ns)
        window_ns = end_ns - self.warmup_end_ns
        cols = self._attempt_arrays()
        measured = cols["intended_start_ns"] >= self.warmup_end_ns
        committed = cols["committed"] & measured
        aborted = ~cols["committed"] & measured
        final = cols["final"] & measured
        final_committed = final & cols["committed"]
        n_committed = int(committed.sum())
        n_attempts = int(measured.sum())
        n_aborted = int(aborted.sum())
        n_good = int(final_committed.sum())
        summary = {
            "duration_s": window_ns / NS_PER_S,
            "planned_duration_s": duration_ns / NS_PER_S,
            "warmup_s": self.warmup_end_ns / NS_PER_S,
            "end_s": end_ns / NS_PER_S,
            "transactions": {
                "attempted": n_attempts,
                "committed": n_committed,
                "aborted": n_aborted,
                "retried": int((measured & (cols["attempt"] > 1)).sum()),
            },
            "logical": {
                "completed": int(final.sum()),
                "committed": n_good,
                "failed": int((final & ~cols["committed"]).sum()),
                "retried": int((final & (cols["attempt"] > 1)).sum()),
            },
            "throughput_per_s": _rate(n_committed, window_ns),
            "goodput_per_s": _rate(n_good, window_ns),
            "attempts_per_s": _rate(n_attempts, window_ns),
            "aborted_per_s": _rate(n_aborted, window_ns),
            "latency_ms": self._latency_section(cols, final_committed),
            "aborts": self._abort_counts(aborted),
            "abort_rate": n_aborted / n_attempts if n_attempts else None,
            "statement_latency_ms": self._statement_section(),
            "read_wait_ms": self._read_wait_section(),
            "commit_phase_ms": self._commit_phase_section(cols, committed),
            "visibility_lag_ms": self._measured_stats(
                self._visibility_lag_ns, self._visibility_at_ns),
            "counters": _sorted_plain(self._counters),
            "gauges": _sorted_plain(self._gauges),
            "clock": _sorted_plain(self._clock),
        }
        return _sorted_plain(summary)

    def _latency_section(self, cols: dict, final_committed: np.ndarray) -> dict:
        latency_ns = cols["end_ns"] - cols["intended_start_ns"]
        section = {"all": stats_ms(latency_ns[final_committed])}
        codes, names = _categories(self._texts["txn_type"])
        for code, name in enumerate(names):
            selected = final_committed & (codes == code)
            if selected.any():
                section[name] = stats_ms(latency_ns[selected])
        return section

    def _abort_counts(self, aborted: np.ndarray) -> dict:
        counts = {reason: 0 for reason in KNOWN_ABORT_REASONS}
        codes, names = _categories(self._texts["abort_reason"])
        tally = np.bincount(codes[aborted], minlength=len(names)) if len(names) else []
        for code, n in enumerate(tally):
            if n:
                reason = names[code] or "UNKNOWN"  # an abort must name its reason
                counts[reason] = counts.get(reason, 0) + int(n)
        return counts

    def _statement_section(self) -> dict:
        return {
            kind: self._measured_stats(latency, at)
            for kind, (latency, at) in self._statements.items()
        }

    def _read_wait_section(self) -> dict:
        wait_ns, _ = self._measured(self._read_wait_ns, self._read_wait_at_ns)
        section = stats_ms(wait_ns)
        section["waited_fraction"] = float((wait_ns > 0).mean()) if wait_ns.size else None
        return section

    def _commit_phase_section(self, cols: dict, committed: np.ndarray) -> dict:
        read_write = committed & (cols["t_commit_ns"] >= 0)
        return {phase: stats_ms(cols[column][read_write])
                for phase, column in COMMIT_PHASES.items()}

    def _measured(self, values: array, at: array) -> tuple[np.ndarray, np.ndarray]:
        values_np = _np(values)
        at_np = _np(at)
        keep = at_np >= self.warmup_end_ns
        return values_np[keep], at_np[keep]

    def _measured_stats(self, values: array, at: array) -> dict:
        return stats_ms(self._measured(values, at)[0])

    def _attempt_arrays(self) -> dict[str, np.ndarray]:
        """Attempt columns as numpy arrays (int64, and bool for flags), checked."""
        cols = {name: _np(values) for name, values in self._ints.items()}
        cols["committed"] = np.frombuffer(self._committed, dtype=np.int8).astype(bool)
        cols["final"] = np.frombuffer(self._final, dtype=np.int8).astype(bool)
        _check_attempts(cols)
        return cols

    # ------------------------------------------------------------------ tables

    def transactions_table(self) -> pa.Table:
        """One row per attempt, in recording order, warm-up included (``measured``).

        ``t_commit_ns`` and ``abort_reason`` are null when there is none;
        ``latency_ns`` (end minus intended start) is set on final attempts only.
        """
        cols = self._attempt_arrays()
        measured = cols["intended_start_ns"] >= self.warmup_end_ns
        latency_ns = cols["end_ns"] - cols["intended_start_ns"]
        texts = self._texts
        columns = {
            "txn_id": pa.array(cols["txn_id"], pa.int64()),
            "attempt": pa.array(cols["attempt"], pa.int32()),
            "txn_type": _dictionary(texts["txn_type"]),
            "client": pa.array(cols["client"], pa.int64()),
            "qp": _dictionary([str(qp) for qp in texts["qp"]]),
            "region": _dictionary(texts["region"]),
            "az": _dictionary(texts["az"]),
            "outcome": pa.DictionaryArray.from_arrays(
                pa.array((~cols["committed"]).astype(np.int32)),
                pa.array([OUTCOME_COMMITTED, OUTCOME_ABORTED])),
            "abort_reason": _dictionary([r or None for r in texts["abort_reason"]]),
            "final": pa.array(cols["final"], pa.bool_()),
            "measured": pa.array(measured, pa.bool_()),
        }
        for name in ("intended_start_ns", "start_ns", "end_ns", "t_start_ns"):
            columns[name] = pa.array(cols[name], pa.int64())
        t_commit = cols["t_commit_ns"]
        columns["t_commit_ns"] = pa.array(t_commit, pa.int64(), mask=t_commit < 0)
        columns["latency_ns"] = pa.array(latency_ns, pa.int64(), mask=~cols["final"])
        for name in ("read_wait_ns", "read_ns", "commit_ns", "adjudicate_ns",
                     "journal_ns", "commit_wait_ns", "qp_clock_offset_ns"):
            columns[name] = pa.array(cols[name], pa.int64())
        columns["keys_written"] = pa.array(cols["keys_written"], pa.int32())
        columns["shards"] = pa.array(cols["shards"], pa.int32())
        return pa.table(columns)

    def timeseries_table(self, end_ns: int | None = None) -> pa.Table:
        """One row per interval ``[k * interval_ns, (k + 1) * interval_ns)`` from 0.

        ``end_ns`` defaults to the one given to ``summarize`` (else the latest time
        recorded); the last interval is cut there and its rate uses its real length.
        Attempts count in the interval where they end; latencies are of logical
        transactions that committed there. ``warmup`` is true for an interval that
        starts before warm-up ends. Empty sets give null, never NaN.
        """
        cols = self._attempt_arrays()
        end_ns = self._resolve_end(end_ns, cols)
        n_intervals = -(-end_ns // self.interval_ns)  # ceil: the last may be partial
        if n_intervals <= 0:
            return TIMESERIES_SCHEMA.empty_table()
        starts_ns = np.arange(n_intervals, dtype=np.int64) * self.interval_ns
        ends_ns = np.minimum(starts_ns + self.interval_ns, end_ns)
        bucket = self._bucket(cols["end_ns"], n_intervals)
        committed = np.bincount(bucket[cols["committed"]], minlength=n_intervals)
        aborted = np.bincount(bucket[~cols["committed"]], minlength=n_intervals)
        done = cols["final"] & cols["committed"]
        latency = _grouped_ms(
            bucket[done], cols["end_ns"][done] - cols["intended_start_ns"][done],
            n_intervals, (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0)))
        wait_bucket = self._bucket(_np(self._read_wait_at_ns), n_intervals)
        wait = _grouped_ms(wait_bucket, _np(self._read_wait_ns), n_intervals,
                           (("p99", 99.0),))
        seconds = (ends_ns - starts_ns) / NS_PER_S
        attempts = committed + aborted
        return pa.Table.from_pydict({
            "start_s": pa.array(starts_ns / NS_PER_S, pa.float64()),
            "end_s": pa.array(ends_ns / NS_PER_S, pa.float64()),
            "committed": pa.array(committed, pa.int64()),
            "aborted": pa.array(aborted, pa.int64()),
            "throughput_per_s": pa.array(committed / seconds, pa.float64()),
            "abort_rate": pa.array(aborted / np.maximum(attempts, 1), pa.float64(),
                                   mask=attempts == 0),
            "latency_ms_p50": latency["p50"],
            "latency_ms_p90": latency["p90"],
            "latency_ms_p99": latency["p99"],
            "latency_ms_max": latency["max"],
            "read_wait_ms_p99": wait["p99"],
            "warmup": pa.array(starts_ns < self.warmup_end_ns, pa.bool_()),
        }, schema=TIMESERIES_SCHEMA)

    def _resolve_end(self, end_ns: int | None, cols: dict) -> int:
        if end_ns is not None:
            return int(end_ns)
        if self._end_ns is not None:
            return self._end_ns
        latest = [int(cols["end_ns"].max())] if cols["end_ns"].size else [0]
        latest += [max(at) for at in (self._read_wait_at_ns, self._visibility_at_ns) if at]
        return max(latest)

    def _bucket(self, at_ns: np.ndarray, n_intervals: int) -> np.ndarray:
        # Something recorded exactly at (or after) the end lands in the last interval.
        return np.clip(at_ns // self.interval_ns, 0, n_intervals - 1)


# ---------------------------------------------------------------------- helpers


def stats_ms(values_ns: np.ndarray) -> dict:
    """Percentile set of ``values_ns`` (nanoseconds) in milliseconds; nulls when empty."""
    values_ns = np.asarray(values_ns, dtype=np.int64)
    if values_ns.size == 0:
        stats: dict = {key: None for key, _ in PERCENTILES}
        stats.update(count=0, max=None, mean=None)
        return stats
    points = np.percentile(values_ns, [q for _, q in PERCENTILES], method="linear")
    stats = {key: _ms(value) for (key, _), value in zip(PERCENTILES, points)}
    stats["count"] = int(values_ns.size)
    stats["max"] = _ms(values_ns.max())
    # Sum in exact integers: a float running sum depends on order and can overflow.
    stats["mean"] = _ms(int(values_ns.sum(dtype=np.int64)) / values_ns.size)
    return dict(sorted(stats.items()))


def _ms(value_ns: float) -> float:
    return round(float(value_ns) / NS_PER_MS, MS_DECIMALS)


def _rate(count: int, window_ns: int) -> float | None:
    return count * NS_PER_S / window_ns if window_ns > 0 else None


def _np(values: array) -> np.ndarray:
    return np.frombuffer(values, dtype=np.int64) if len(values) else np.zeros(0, np.int64)


def _categories(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """Codes into a list of distinct values, in first-seen order (deterministic)."""
    if not values:
        return np.zeros(0, np.int64), []
    encoded = pa.array(values, pa.string()).dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()


def _dictionary(values: list) -> pa.DictionaryArray:
    return pa.array(values, pa.string()).dictionary_encode()


def _grouped_ms(bucket: np.ndarray, values_ns: np.ndarray, n_groups: int,
                points: tuple) -> dict[str, pa.Array]:
    """Per-group percentiles in ms (one float64 array per point, null for empty)."""
    out = {key: np.zeros(n_groups) for key, _ in points}
    empty = np.ones(n_groups, dtype=bool)
    order = np.lexsort((values_ns, bucket))
    bucket, values_ns = bucket[order], values_ns[order]
    bounds = np.searchsorted(bucket, np.arange(n_groups + 1))
    for group in range(n_groups):
        low, high = bounds[group], bounds[group + 1]
        if high == low:
            continue
        empty[group] = False
        found = np.percentile(values_ns[low:high], [q for _, q in points], method="linear")
        for (key, _), value in zip(points, found):
            out[key][group] = _ms(value)
    return {key: pa.array(column, pa.float64(), mask=empty) for key, column in out.items()}


def _check_attempts(cols: dict[str, np.ndarray]) -> None:
    """Invariants every recorded attempt keeps; a violation is a simulator bug."""
    bad = np.flatnonzero((cols["start_ns"] < cols["intended_start_ns"])
                         | (cols["end_ns"] < cols["start_ns"])
                         | (cols["attempt"] < 1))
    if bad.size:
        row = int(bad[0])
        raise ValueError(
            f"attempt row {row} (txn {int(cols['txn_id'][row])}): needs "
            "intended_start_ns <= start_ns <= end_ns and attempt >= 1")


def _sorted_plain(value: Any) -> Any:
    """Sorted dicts of plain ``int``/``float``/``str``/``bool``/``None`` (no numpy, no
    NaN or inf: those become ``None``), so JSON output is byte-stable."""
    if isinstance(value, dict):
        return {str(k): _sorted_plain(v) for k, v in sorted(value.items(), key=_key)}
    if isinstance(value, (list, tuple)):
        return [_sorted_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise TypeError(f"not a summary value: {value!r} ({type(value).__name__})")


def _key(item: tuple) -> str:
    return str(item[0])
