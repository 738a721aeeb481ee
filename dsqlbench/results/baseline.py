"""The CI smoke suite and its committed baselines (``dsqlbench baseline update|check``).

Place in the pipeline: ``.ci/smoke`` runs ``dsqlbench baseline check``, which simulates
every entry of ``SMOKE_SUITE`` in this process and compares each result with its
baseline file, ``results/baselines/<entry>.json``, by the rules of
``dsqlbench.results.compare``. ``dsqlbench baseline update`` rewrites those files on purpose
(after a deliberate change to the simulation), to be reviewed and committed.

Invariants:

- A baseline file is a ``summary.json`` with the noisy and machine-specific parts
  stripped (``host`` emptied, ``git_revision`` null), so it loads with
  ``results.load_run`` and the same suite on any machine gives the same bytes.
- Every entry is small (a few thousand keys, 16 clients, 1.5 simulated seconds), so the
  whole suite runs in well under a minute of wall time.
- The check is exact: the suite's config and seed are those of the baseline, so any
  worse simulated figure is a regression. A baseline whose config differs from the
  suite's is stale, and that fails too (the comparison would no longer be exact).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dsqlbench.errors import ResultError
from dsqlbench.results.compare import Comparison, FailOn, compare_summaries
from dsqlbench.results.folder import (
    check_writable_dir, load_run, summary_bytes, write_bytes_atomically, write_run,
)

BASELINE_DIR = Path("results/baselines")

# Shared by every entry: small enough for CI, large enough that each workload's
# character (conflicts, scans, multi-shard commits) shows in the figures.
SMOKE_OVERRIDES = ("run.duration_s=1.5", "run.warmup_s=0.5", "load.record_count=2000",
                   "clients.count=16")


@dataclass(frozen=True)
class SuiteEntry:
    """One run of the smoke suite: a shipped workload and its ``--set`` overrides."""

    name: str
    workload: str
    overrides: tuple[str, ...] = ()

    def all_overrides(self) -> list[str]:
        return [*SMOKE_OVERRIDES, *self.overrides]


SMOKE_SUITE = (
    SuiteEntry("ycsb-a", "ycsb-a"),
    SuiteEntry("hot-key", "hot-key"),
    SuiteEntry("bank", "bank"),
    SuiteEntry("ycsb-e", "ycsb-e"),
)


@dataclass
class CheckResult:
    """One entry's verdict: its comparison with the baseline, and whether it failed."""

    entry: SuiteEntry
    comparison: Comparison
    wall_s: float

    @property
    def stale(self) -> bool:
        return self.comparison.basis != "exact"

    @property
    def failed(self) -> bool:
        return self.stale or bool(self.comparison.regressions)


def run_entry(entry: SuiteEntry) -> tuple[dict, dict]:
    """Simulate one entry: ``(summary, tables)`` as ``dsqlbench run`` would write them."""
    from dsqlbench import config as config_mod
    from dsqlbench.runner import cwd_revision, run_config

    cfg = config_mod.load_config(entry.workload, overrides=entry.all_overrides())
    result = run_config(cfg, git_revision=cwd_revision())
    return result.summary, result.tables


def strip(summary: dict) -> dict:
    """The baseline form of a summary: same keys, no host figures, no git revision."""
    return dict(summary, host={}, git_revision=None)


def baseline_file(directory: Path, entry: SuiteEntry) -> Path:
    return Path(directory) / f"{entry.name}.json"


def update(directory: Path = BASELINE_DIR, suite: tuple[SuiteEntry, ...] | None = None,
           say: Callable[[str], None] = lambda _line: None) -> list[Path]:
    """Run the suite (default ``SMOKE_SUITE``) and (re)write one baseline file per
    entry; returns the files."""
    suite = SMOKE_SUITE if suite is None else suite
    directory = Path(directory)
    check_writable_dir(directory)  # before the first simulation, not after it
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in suite:
        started = time.perf_counter()
        summary, _ = run_entry(entry)
        file = baseline_file(directory, entry)
        write_bytes_atomically(file, summary_bytes(strip(summary)))
        say(f"{entry.name}: wrote {file} ({time.perf_counter() - started:.1f} s)")
        written.append(file)
    return written


def check(directory: Path = BASELINE_DIR, suite: tuple[SuiteEntry, ...] | None = None,
          fail_on: list[FailOn] = (), runs_dir: Path | None = None,
          say: Callable[[str], None] = lambda _line: None) -> list[CheckResult]:
    """Run the suite (default ``SMOKE_SUITE``) and compare each entry with its baseline.

    Every baseline is loaded first, so a missing or unreadable one is a
    ``ResultError`` (exit 3) before any time is spent simulating. With ``runs_dir``,
    each entry's full run folder is kept there too (``<runs_dir>/<entry>``).
    """
    suite = SMOKE_SUITE if suite is None else suite
    baselines = [_load_baseline(directory, entry) for entry in suite]
    if runs_dir is not None:
        check_writable_dir(runs_dir)
    results = []
    for entry, baseline in zip(suite, baselines):
        started = time.perf_counter()
        summary, tables = run_entry(entry)
        if runs_dir is not None:
            write_run(Path(runs_dir) / entry.name, summary, tables, overwrite=True)
        comparison = compare_summaries(baseline, strip(summary), fail_on,
                                       base_label=str(baseline_file(directory, entry)),
                                       new_label=f"smoke run {entry.name}")
        result = CheckResult(entry, comparison, time.perf_counter() - started)
        say(f"{entry.name}: {_verdict(result)} ({result.wall_s:.1f} s)")
        results.append(result)
    return results


def _load_baseline(directory: Path, entry: SuiteEntry) -> dict:
    file = baseline_file(directory, entry)
    if not file.is_file():
        raise ResultError(f"{file}: missing baseline; create it with "
                          "`dsqlbench baseline update` and commit it")
    return load_run(file)


def _verdict(result: CheckResult) -> str:
    if result.stale:
        return ("STALE baseline: its config differs from the suite's; rerun "
                "`dsqlbench baseline update` if the change is intended")
    regressions = result.comparison.regressions
    if regressions:
        return f"REGRESSION in {len(regressions)} simulated metric(s)"
    changed = sum(row.mark != "=" for row in result.comparison.rows)
    if changed:
        return (f"ok: {changed} metric(s) changed, none worse; `dsqlbench baseline update` "
                "records the new figures")
    return "ok (identical)"

