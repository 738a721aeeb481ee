"""``dsqlbench sweep SWEEP.toml``: run a parameter sweep, resumably, on any executor.

Place in the pipeline: the command line front of ``dsqlbench.sweep`` (spec, folder,
driver, index) and ``dsqlbench.executors`` (where runs execute). It validates the
whole sweep before starting a worker, prints one line per finished run, and ends
with a table of the index.

Exit codes: 0 every run finished ok; 1 some runs failed (the others are stored, and
running the same command again redoes only the failed ones); 2 bad input (the sweep
file, a point's config, a folder holding another sweep); 130 interrupted (finished
runs stay; the command to resume is printed).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

EXIT_RUNS_FAILED = 1
EXIT_INTERRUPTED = 130
PIPED_WIDTH = 160
# (column in the index, heading, format) for the closing table.
_TABLE_COLUMNS = (
    ("throughput_per_s", "commits/s", "{:.1f}"),
    ("abort_rate", "abort", "{:.3f}"),
    ("latency_ms.all.p50", "p50 ms", "{:.2f}"),
    ("latency_ms.all.p99", "p99 ms", "{:.2f}"),
    ("read_wait_ms.p99", "rwait p99", "{:.2f}"),
    ("visibility_lag_ms.p99", "vis p99", "{:.2f}"),
    ("checks.oracle.stale_reads", "stale", "{}"),
    ("checks.oracle.realtime_violations", "rt viol", "{}"),
    ("host.wall_s", "wall s", "{:.1f}"),
)


@click.command("sweep")
@click.argument("sweep_file")
@click.option("--executor", "kind", type=click.Choice(["local", "dask"]), default="local",
              show_default=True, help="local: a process pool; dask: a Dask cluster.")
@click.option("--cluster", metavar="tcp://HOST:PORT",
              help="An existing Dask scheduler (implies --executor dask).")
@click.option("--jobs", "-j", type=click.IntRange(1, 4096),
              help="Worker processes (default: all cores; 1 runs in this process).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Sweep folder (default results/sweeps/<name>-s<seed>).")
@click.option("--results-root", type=click.Path(path_type=Path), default=Path("results"),
              show_default=True, help="Where the default sweep folder goes.")
@click.option("--resume", is_flag=True,
              help="Require an existing sweep folder and finish it (an existing folder "
                   "with the same spec is resumed anyway).")
@click.option("--seed", type=int, help="Base seed (replaces [sweep] seed).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Extra base override for every run (part of the spec).")
@click.option("--dry-run", is_flag=True, help="Validate and list the runs; run nothing.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the sweep folder.")
def sweep_command(sweep_file, kind, cluster, jobs, out_dir, results_root, resume, seed,
                  overrides, dry_run, quiet) -> None:
    """Run every point of SWEEP_FILE (a TOML file, or a shipped sweep's name such as
    clock-skew) as an ordinary run folder inside one sweep folder, with an
    index.parquet of parameters and headline figures. Running it again resumes."""
    from dsqlbench import sweep as sweep_mod

    console = _console(quiet)
    sweep_file = sweep_mod.locate_sweep(sweep_file)
    spec = sweep_mod.load_sweep(sweep_file, seed=seed, overrides=overrides)
    target = out_dir or sweep_mod.default_sweep_dir(results_root, spec)
    _header(console, spec, target)
    if dry_run:
        _list_runs(console, spec)
        return
    outcomes = sweep_mod.check_folder(spec, target, resume)
    from dsqlbench.results.folder import check_writable_dir

    check_writable_dir(target)  # an unwritable --out fails before any run starts
    todo = [run for run in spec.runs if run.name not in outcomes]
    if outcomes:
        console.print(f"resuming: {len(outcomes)} of {len(spec.runs)} runs already done",
                      highlight=False)
    started = time.perf_counter()  # host wall time of the sweep, shown, never stored
    try:
        _execute(console, spec, target, todo, outcomes, kind, cluster, jobs)
    except KeyboardInterrupt:
        _interrupted(spec, target, outcomes, sweep_file, out_dir)
    _finish(console, spec, target, outcomes, time.perf_counter() - started, quiet)


def _console(quiet: bool) -> Console:
    """A console; piped output gets room for the index table (rich assumes 80
    columns off a terminal) unless COLUMNS says otherwise."""
    console = Console(quiet=quiet)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(quiet=quiet, width=PIPED_WIDTH)
    return console


def _execute(console, spec, target, todo, outcomes, kind, cluster, jobs) -> None:
    from dsqlbench.executors import open_pool
    from dsqlbench.results.folder import git_revision
    from dsqlbench.sweep import execute, prepare_folder, write_index

    if not todo:
        prepare_folder(spec, target)
        write_index(target, spec, outcomes)
        return
    kind = "dask" if cluster else kind
    total = len(spec.runs)

    def report(run, outcome):
        done = sum(1 for o in outcomes.values() if o.status != "pending")
        wall = ((outcome.summary or {}).get("host") or {}).get("wall_s")
        note = f"{wall:.1f} s" if isinstance(wall, float) else escape(outcome.error or "")
        status = "ok" if outcome.status == "ok" else "[red]FAILED[/red]"
        console.print(f"[{done}/{total}] {run.name} {escape(run.label)}: {status} {note}",
                      highlight=False, soft_wrap=True)

    # The pool first: a cluster that cannot be reached leaves no folder behind.
    with open_pool(kind, jobs, cluster) as pool:
        prepare_folder(spec, target)
        console.print(f"running {len(todo)} of {total} runs on {pool.description}",
                      highlight=False)
        execute(spec, target, pool, todo, outcomes, git_revision(Path.cwd()), report)


def _header(console: Console, spec, target: Path) -> None:
    repeats = spec.spec["repeats"]
    points = len(spec.runs) // repeats
    console.print(f"SWEEP={spec.name} SEED={spec.seed} workload={spec.spec['workload']} "
                  f"points={points} repeats={repeats} runs={len(spec.runs)}", highlight=False)
    console.print(f"folder: {target}", highlight=False)


def _list_runs(console: Console, spec) -> None:
    from dsqlbench.sweep import toml_literal

    for run in spec.runs:
        settings = " ".join(f"{k}={toml_literal(v)}" for k, v in run.overrides.items())
        console.print(f"{run.name} seed={run.seed} {escape(run.label)}: {escape(settings)}",
                      highlight=False, soft_wrap=True)


def _interrupted(spec, target: Path, outcomes: dict, sweep_file: Path, out_dir) -> None:
    done = sum(1 for o in outcomes.values() if o.status == "ok")
    out = f" --out {target}" if out_dir else ""
    click.echo(f"dsqlbench: interrupted; {done} of {len(spec.runs)} runs are stored in "
               f"{target} and the index lists them. Resume with:\n"
               f"  dsqlbench sweep {sweep_file}{out} --resume", err=True)
    sys.exit(EXIT_INTERRUPTED)


def _finish(console: Console, spec, target: Path, outcomes: dict, wall_s: float,
            quiet: bool) -> None:
    from dsqlbench.sweep import counts, index_table

    table = index_table(spec, outcomes)
    console.print(render_index(table))
    tally = counts(outcomes.get(run.name) or _pending() for run in spec.runs)
    console.print(f"{tally['ok']} ok, {tally['failed']} failed, {tally['pending']} pending; "
                  f"wall {wall_s:.1f} s (host); index: {target / 'index.parquet'}",
                  highlight=False)
    if quiet:
        click.echo(str(target))
    if tally["failed"] or tally["pending"]:
        click.echo(f"dsqlbench: {tally['failed'] + tally['pending']} run(s) did not finish; "
                   "run the same command again to redo only those", err=True)
        sys.exit(EXIT_RUNS_FAILED)


def _pending():
    from dsqlbench.sweep import Outcome

    return Outcome("pending")


def render_index(table) -> Table:
    """The index as a rich table: run, label, status, then the headline figures."""
    rows = table.to_pylist()
    view = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    view.add_column("run", no_wrap=True)
    view.add_column("label", overflow="fold", min_width=12)
    view.add_column("status", no_wrap=True)
    columns = [c for c in _TABLE_COLUMNS if c[0] in table.column_names]
    for _, heading, _ in columns:
        view.add_column(heading, justify="right", no_wrap=True)
    failed = any(row["status"] == "failed" for row in rows)
    if failed:
        view.add_column("error", overflow="fold")
    for row in rows:
        cells = [row["run"], escape(row["label"]), _status(row["status"])]
        cells += [_cell(row.get(name), fmt) for name, _, fmt in columns]
        if failed:
            cells.append(escape(row["error"] or ""))
        view.add_row(*cells)
    return view


def _status(status: str) -> str:
    return {"ok": "ok", "failed": "[red]failed[/red]"}.get(status, f"[dim]{status}[/dim]")


def _cell(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)
