"""What a person sees of a run: the summary tables and the progress display.

Place in the pipeline: the CLI calls ``render_summary`` with the ``summary.json``
document (``dsqlbench.results.folder.build_summary``) after a run, and drives a
``ProgressReporter`` with ``Recorder.progress`` snapshots during it.

Invariants:

- Read only: this module formats a summary; it computes no metric of its own beyond
  shares of totals, so the screen never disagrees with ``summary.json``.
- Works without a terminal: a console that is not a terminal gets plain text with no
  colour codes (rich decides from the console), so piped output stays greppable.
- Simulated figures (exact, deterministic) and host wall-clock figures (noisy) are
  never mixed: the host line is printed last, on its own, labelled as wall clock.
- The progress bar shows only on a terminal; ``jsonl`` mode writes one JSON object per
  update instead, for CI logs and other programs.
"""

from __future__ import annotations

import json
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

_DASH = "-"
_PCT_COLUMNS = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p99_9"),
                ("max", "max"), ("mean", "mean"))
_PHASE_ORDER = ("read_wait", "read", "commit", "adjudicate", "journal", "commit_wait")


# ---------------------------------------------------------------------- summary


def render_summary(summary: dict, console: Console) -> None:
    """Print the run's summary: header, rates, latency per type, aborts, statements,
    read wait and commit phases, visibility lag, clock, then the host line."""
    sim = summary.get("simulated") or {}
    _line(console, _header(summary, sim))
    _line(console, _rates_line(sim))
    for table in (_latency_table(sim), _aborts_table(sim), _statements_table(sim)):
        console.line()
        console.print(table)
    console.line()
    _line(console, _read_wait_line(sim))
    console.print(_phases_table(sim))
    console.line()
    _line(console, _visibility_line(sim))
    if sim.get("nodes"):
        _line(console, _busiest_line(sim["nodes"]))
    clock = sim.get("clock") or {}
    if clock:
        figures = ", ".join(f"{k} {_num(v)}" for k, v in sorted(clock.items()))
        _line(console, f"clock: {escape(figures)}")
    for text in _checks_lines(sim.get("checks") or {}):
        _line(console, escape(text))
    console.line()
    _line(console, _host_line(summary.get("host") or {}))


def _checks_lines(checks: dict) -> list[str]:
    """One line per checker: what it judged and its verdict (figures from the summary)."""
    lines = []
    oracle = checks.get("oracle")
    if oracle:
        verdict = "ok" if oracle.get("ok") else "VIOLATIONS"
        lines.append(
            f"checks: oracle {verdict} ({oracle.get('writers_checked', 0):,} writes, "
            f"{oracle.get('reads_checked', 0):,} reads; stale reads {oracle.get('stale_reads', 0)}, "
            f"real-time violations {oracle.get('realtime_violations', 0)})")
    elle = checks.get("elle")
    if elle:
        anomalies = ", ".join(f"{k} {v}" for k, v in sorted((elle.get("anomalies") or {}).items()))
        lines.append(f"checks: elle {'valid' if elle.get('valid') else 'INVALID'}"
                     f" ({anomalies or 'no anomalies'}; allowed: {', '.join(elle.get('allowed') or []) or '-'})")
    for name in ("bank", "pgbench", "tpcc"):
        if name in checks:
            lines.append(f"checks: {name} audit {'ok' if checks[name].get('ok') else 'FAILED'}")
    faults = checks.get("faults")
    if faults:
        lines.append(
            f"faults: {', '.join(f'{k} {v}' for k, v in faults.get('injected', {}).items())}; "
            f"acknowledged commits lost {faults.get('acknowledged_commits_lost')}, wrong data "
            f"{faults.get('wrong_data_returned')}, unknown outcomes {faults.get('unknown_outcomes')} "
            f"({faults.get('unknown_resolved_committed')} committed); "
            f"{'ok' if faults.get('ok') else 'FAILED'}")
    return lines


def _line(console: Console, text: str) -> None:
    # soft_wrap: a piped line stays one line however narrow rich thinks the output is.
    console.print(text, highlight=False, soft_wrap=True)


def _header(summary: dict, sim: dict) -> str:
    config = summary.get("config") or {}
    kernels = summary.get("kernels") or {}
    kernel_text = " ".join(f"{k}={v}" for k, v in sorted(kernels.items())) or _DASH
    warmup_s = sim.get("warmup_s")
    warmup = f" ({_num(warmup_s)} s warm-up excluded)" if warmup_s else ""
    return (
        f"[bold]dsqlbench run[/bold]  workload {escape(_config_name(config, 'workload'))}"
        f"  topology {escape(_config_name(config, 'topology'))}"
        f"  seed {summary.get('seed', _DASH)}\n"
        f"simulated {_num(sim.get('duration_s'))} s measured{warmup}"
        f"  kernels {escape(kernel_text)}")


def _config_name(config: dict, section: str) -> str:
    """The name of the workload (``workload.name``) or topology (``topology.topology.name``)."""
    value = config.get(section)
    if section == "topology" and isinstance(value, dict):
        value = value.get("topology")
    if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"]:
        return value["name"]
    return _DASH


def _rates_line(sim: dict) -> str:
    txn = sim.get("transactions") or {}
    logical = sim.get("logical") or {}
    return (
        f"throughput {_num(sim.get('throughput_per_s'))} committed/s"
        f"  goodput {_num(sim.get('goodput_per_s'))} txn/s"
        f"  attempts {_num(sim.get('attempts_per_s'))}/s\n"
        f"attempts {_int(txn.get('attempted'))}: committed {_int(txn.get('committed'))},"
        f" aborted {_int(txn.get('aborted'))}, retries {_int(txn.get('retried'))}"
        f"  transactions {_int(logical.get('completed'))}:"
        f" committed {_int(logical.get('committed'))}, failed {_int(logical.get('failed'))}")


def _latency_table(sim: dict) -> Table:
    table = _pct_table("latency (ms, from intended start; committed transactions)",
                       "type")
    latency = sim.get("latency_ms") or {}
    names = ["all"] + sorted(name for name in latency if name != "all")
    for name in names:
        if name in latency:
            _add_pct_row(table, name, latency[name])
    return table


def _aborts_table(sim: dict) -> Table:
    rate = sim.get("abort_rate")
    rate_text = _DASH if rate is None else f"{rate * 100:.2f}%"
    table = _table(f"aborts: rate {rate_text} of attempts")
    table.add_column("reason")
    table.add_column("attempts", justify="right")
    table.add_column("share", justify="right")
    aborts = sim.get("aborts") or {}
    total = sum(aborts.values())
    for reason, n in sorted(aborts.items(), key=lambda item: (-item[1], item[0])):
        if n:
            table.add_row(reason, _int(n), f"{n / total * 100:.1f}%")
    if not total:
        table.add_row("none", "0", _DASH)
    return table


def _statements_table(sim: dict) -> Table:
    table = _pct_table("statement latency (ms)", "statement")
    statements = sim.get("statement_latency_ms") or {}
    for kind, stats in sorted(statements.items()):
        _add_pct_row(table, kind, stats)
    if not statements:
        table.add_row("none", "0", *(_DASH for _ in _PCT_COLUMNS))
    return table


def _read_wait_line(sim: dict) -> str:
    wait = sim.get("read_wait_ms") or {}
    fraction = wait.get("waited_fraction")
    waited = _DASH if fraction is None else f"{fraction * 100:.1f}%"
    return (f"read wait for storage (ms): p50 {_ms(wait.get('p50'))}"
            f"  p99 {_ms(wait.get('p99'))}  max {_ms(wait.get('max'))}"
            f"  mean {_ms(wait.get('mean'))}  waited {waited}"
            f" of {_int(wait.get('count'))} reads")


def _phases_table(sim: dict) -> Table:
    table = _pct_table("read-write commit phases (ms, committed attempts)", "phase")
    phases = sim.get("commit_phase_ms") or {}
    order = [p for p in _PHASE_ORDER if p in phases] + sorted(set(phases) - set(_PHASE_ORDER))
    for phase in order:
        _add_pct_row(table, phase, phases[phase])
    return table


def _visibility_line(sim: dict) -> str:
    lag = sim.get("visibility_lag_ms") or {}
    return (f"commit-to-visible lag (ms): p50 {_ms(lag.get('p50'))}"
            f"  p99 {_ms(lag.get('p99'))}  max {_ms(lag.get('max'))}"
            f"  ({_int(lag.get('count'))} applies)")


def _busiest_line(nodes: dict, shown: int = 3) -> str:
    """The most utilised QPs and storage replicas, with their queue waits."""
    busiest = sorted(nodes.items(), key=lambda item: (-item[1]["utilisation"], item[0]))[:shown]
    parts = [f"{name} {100 * load['utilisation']:.1f}% (queue wait p99 "
             f"{_ms(load['queue_wait_ms']['p99'])} ms)" for name, load in busiest]
    return "busiest nodes: " + ", ".join(parts)


def _host_line(host: dict) -> str:
    return (f"host (wall clock, noisy): wall {_num(host.get('wall_s'))} s"
            f"  {_num(host.get('sim_txn_per_wall_s'))} sim txn/wall s"
            f"  {_num(host.get('events_per_wall_s'))} events/wall s")


def _pct_table(title: str, first: str) -> Table:
    table = _table(title)
    table.add_column(first)
    table.add_column("count", justify="right")
    for label, _ in _PCT_COLUMNS:
        table.add_column(label, justify="right")
    return table


def _table(title: str) -> Table:
    # Wide enough for its title, so a narrow table does not wrap its own heading.
    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, title_justify="left",
                 min_width=len(title), title_style="bold")


def _add_pct_row(table: Table, name: str, stats: dict) -> None:
    table.add_row(name, _int(stats.get("count")),
                  *(_ms(stats.get(key)) for _, key in _PCT_COLUMNS))


def _ms(value: Any) -> str:
    """Milliseconds to the microsecond, the same for every cell so columns align."""
    return _DASH if value is None else f"{value:,.3f}"


def _num(value: Any) -> str:
    """A figure for reading: 3 significant decimals below 10, grouped thousands above."""
    if value is None:
        return _DASH
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def _int(value: Any) -> str:
    return _DASH if value is None else f"{value:,}"


# ---------------------------------------------------------------------- progress


class ProgressReporter:
    """Shows a run's progress: a bar on a terminal, JSON lines, or nothing.

    ``mode``: ``"auto"`` (a bar when ``console`` is a terminal, else nothing),
    ``"bar"``, ``"jsonl"`` (one JSON object per ``update`` on ``stream``) or
    ``"none"``. ``total_s`` is the simulated seconds the run will cover (``None`` when
    unknown, e.g. a run bounded by a transaction count). Use as a context manager;
    feed it ``Recorder.progress(now_ns)`` snapshots.
    """

    MODES = ("auto", "bar", "jsonl", "none")

    def __init__(self, total_s: float | None, console: Console | None = None,
                 mode: str = "auto", stream: IO[str] | None = None):
        if mode not in self.MODES:
            raise ValueError(f"progress mode must be one of {', '.join(self.MODES)}: {mode!r}")
        self.console = console or Console()
        if mode == "auto":
            mode = "bar" if self.console.is_terminal else "none"
        if mode == "jsonl" and stream is None:
            stream = self.console.file
        self.mode = mode
        self.total_s = total_s
        self.stream = stream
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> ProgressReporter:
        if self.mode == "bar":
            self._progress = Progress(
                TextColumn("simulating"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.completed:.1f}/{task.fields[total_text]} sim s"),
                TextColumn("committed {task.fields[committed]:,}"),
                TimeElapsedColumn(), console=self.console, transient=True)
            self._progress.start()
            total_text = _DASH if self.total_s is None else f"{self.total_s:.1f}"
            self._task = self._progress.add_task(
                "run", total=self.total_s, total_text=total_text, committed=0)
        return self

    def update(self, snapshot: dict) -> None:
        """Show one ``Recorder.progress`` snapshot (needs ``sim_s`` and ``committed``)."""
        if self.mode == "bar" and self._progress is not None:
            self._progress.update(self._task, completed=snapshot["sim_s"],
                                  committed=snapshot["committed"])
        elif self.mode == "jsonl":
            line = dict(snapshot, total_s=self.total_s)
            self.stream.write(json.dumps(line, sort_keys=True, allow_nan=False) + "\n")
            self.stream.flush()

    def __exit__(self, *exc_info: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
