"""Click commands over stored results: ``compare``, ``baseline``, ``report``, ``export``.

Place in the pipeline: ``cli._register_optional_commands`` adds these to the
``dsqlbench`` group; the work is done in ``compare``, ``baseline``, ``report`` and
``export``. Heavy imports (pyarrow, plotly, the simulator) happen inside each command,
so ``dsqlbench --help`` stays fast.

Exit codes (documented in ``results/README.md``): 0 no regression, 1 a regression
(or a stale baseline), 2 a usage error (``UserError`` or a click usage error), 3 an
unreadable input (``ResultError``: missing, truncated or corrupt file, unknown or newer
schema version, config hash mismatch). Each error is one line on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dsqlbench.errors import UserError

_FAIL_ON_HELP = (
    "Threshold for one metric, repeatable; the last rule matching a metric wins. "
    "METRIC:[+|-]AMOUNT[%] or METRIC:off. METRIC is a dotted name (latency_ms.all.p99, "
    "host.wall_s), its flat alias (latency_ms_p99) or a glob ('latency_ms.*.p99'). "
    "+ fails on a rise beyond AMOUNT, - on a fall, no sign on a move in the metric's "
    "worse direction; % makes AMOUNT relative to BASE, else it is in the metric's unit.")
_FORMATS = click.Choice(["table", "markdown", "json"])


def register(group: click.Group) -> None:
    """Add this module's commands to the ``dsqlbench`` group."""
    for command in (compare_command, baseline_group, report_command, export_command):
        group.add_command(command)


# ---------------------------------------------------------------------- compare


@click.command("compare")
@click.argument("base", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--fail-on", "fail_on", multiple=True, metavar="METRIC:LIMIT", help=_FAIL_ON_HELP)
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.05, show_default=True,
              help="Significance level of the Mann-Whitney U test on host metrics.")
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Also list unchanged (=) metrics.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Write the report to this file instead of standard output.")
def compare_command(base, new, fail_on, alpha, fmt, show_all, output) -> None:
    """Compare run NEW with run BASE (run folders or summary/baseline JSON files).

    One row per metric with a mark: + worse (regression), - better, = same,
    ~ changed within threshold / not significant / no direction, ? too few samples,
    x not comparable. Exit 0 no regression, 1 regression, 2 usage error,
    3 unreadable input.
    """
    from dsqlbench.results.compare import compare_paths, parse_fail_on

    _refuse_writing_into_inputs(output, [base, new])
    rules = [parse_fail_on(text) for text in fail_on]
    comparison = compare_paths(base, new, rules, alpha)
    _emit_comparisons([comparison], fmt, show_all, output)
    sys.exit(comparison.exit_code)


def _emit_comparisons(comparisons, fmt: str, show_all: bool, output: Path | None,
                      titles: list[str] | None = None, extra: dict | None = None) -> None:
    """Print (or write to ``output``) comparisons in one of the three formats."""
    from dsqlbench.results import compare

    if fmt == "json":
        documents = [compare.to_json(c) for c in comparisons]
        document = documents[0] if titles is None else dict(extra or {}, entries=[
            dict(doc, entry=title) for doc, title in zip(documents, titles)])
        text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"
    elif fmt == "markdown":
        last = len(comparisons) - 1  # the legend of the marks once, at the end
        parts = [compare.to_markdown(c, show_all, legend=index == last)
                 for index, c in enumerate(comparisons)]
        if titles is not None:
            parts = [f"### {title}\n\n{part}" for title, part in zip(titles, parts)]
        text = "\n".join(parts)
    else:
        text = _tables_text(comparisons, show_all, titles, output is None)
    if output is None:
        if text:
            click.echo(text, nl=False)
        return
    from dsqlbench.results.folder import write_bytes_atomically

    write_bytes_atomically(output, text.encode("utf-8"))


def _tables_text(comparisons, show_all: bool, titles: list[str] | None, to_terminal: bool) -> str:
    """Print the tables (``to_terminal``: returns "") or return them as plain text."""
    import io

    from rich.console import Console

    from dsqlbench.results.compare import render_table

    # rich drops colour by itself when stdout is not a terminal; a file gets plain text
    # at a fixed width so it reads the same wherever it was written.
    buffer = None if to_terminal else io.StringIO()
    console = Console(file=buffer)
    if buffer is not None or not console.is_terminal:
        console = Console(file=buffer, width=160)
    for index, comparison in enumerate(comparisons):
        if titles is not None:
            console.print(f"[bold]== {titles[index]}[/bold]", highlight=False)
        render_table(comparison, console, show_all)
    return "" if buffer is None else buffer.getvalue()


# ---------------------------------------------------------------------- baseline


@click.group("baseline")
def baseline_group() -> None:
    """The CI smoke suite and its committed baselines (results/baselines/)."""


@baseline_group.command("update")
@click.option("--dir", "directory", type=click.Path(path_type=Path),
              default=Path("results/baselines"), show_default=True)
def baseline_update(directory: Path) -> None:
    """Run the smoke suite and rewrite its baseline files (review and commit them)."""
    from dsqlbench.results import baseline

    files = baseline.update(directory, say=_say)
    click.echo(f"wrote {len(files)} baseline(s) to {directory}; review with "
               f"`git diff {directory}` and commit them")


@baseline_group.command("check")
@click.option("--dir", "directory", type=click.Path(path_type=Path),
              default=Path("results/baselines"), show_default=True)
@click.option("--fail-on", "fail_on", multiple=True, metavar="METRIC:LIMIT", help=_FAIL_ON_HELP)
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Also list unchanged (=) metrics.")
@click.option("--runs-dir", type=click.Path(path_type=Path),
              help="Also keep each smoke run's full folder here (e.g. results/smoke).")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Write the report to this file instead of standard output.")
def baseline_check(directory, fail_on, fmt, show_all, runs_dir, output) -> None:
    """Run the smoke suite and compare each run with its baseline: exit 1 on any
    worse simulated metric or a stale baseline, 3 on a missing or unreadable one."""
    from dsqlbench.results import baseline
    from dsqlbench.results.compare import parse_fail_on

    rules = [parse_fail_on(text) for text in fail_on]
    results = baseline.check(directory, fail_on=rules, runs_dir=runs_dir, say=_say)
    failed = [result.entry.name for result in results if result.failed]
    titles = [result.entry.name + (" (STALE baseline)" if result.stale else "")
              for result in results]
    _emit_comparisons([result.comparison for result in results], fmt, show_all, output,
                      titles, {"failed": failed})
    verdict = (f"smoke: {len(failed)} of {len(results)} failed: {', '.join(failed)}"
               if failed else f"smoke: all {len(results)} runs match their baselines")
    click.echo(verdict, err=True)
    sys.exit(1 if failed else 0)


def _say(line: str) -> None:
    click.echo(line, err=True)


# ---------------------------------------------------------------------- report


@click.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              default=Path("dashboard.html"), show_default=True)
@click.option("--title", help="Page title (default: from the runs).")
def report_command(runs, output, title) -> None:
    """Write one self-contained HTML dashboard (opens offline) of RUNS (run folders).

    Several runs are shown side by side; when their configs differ in exactly one
    parameter (a sweep), that parameter is on the x axis.
    """
    from dsqlbench.results.report import build_dashboard

    _refuse_writing_into_inputs(output, list(runs))
    path = build_dashboard(list(runs), output, title)
    click.echo(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")


# ---------------------------------------------------------------------- export


@click.command("export")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "hgrm", "hlog"]),
              required=True, help="csv/jsonl: a table of one run. hgrm: HdrHistogram "
              "percentile distribution of the latencies of all INPUTS merged. hlog: "
              "HdrHistogram log, one histogram line per run (mergeable).")
@click.option("--table", type=click.Choice(["transactions", "timeseries"]),
              default="transactions", show_default=True, help="Table for csv/jsonl.")
@click.option("--txn-type", help="hgrm/hlog: only this transaction type of the run "
              "folders (default all; .hlog inputs are taken as they are).")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Write to this file (atomically) instead of standard output.")
def export_command(inputs, fmt, table, txn_type, output) -> None:
    """Export results for tools outside Arrow.

    INPUTS: one run folder for csv/jsonl; run folders and/or .hlog files for hgrm/hlog
    (their latency histograms are merged into one for hgrm, kept per run for hlog).
    """
    from dsqlbench.results import export

    _refuse_writing_into_inputs(output, list(inputs))
    if fmt in export.TABLE_FORMATS:
        if len(inputs) != 1:
            raise UserError(f"--format {fmt} exports one run; got {len(inputs)} inputs")
        _write_output(output, lambda out: export.export_table(inputs[0], table, fmt, out))
        return
    intervals = export.load_intervals(list(inputs), txn_type)
    if fmt == "hgrm":
        text = export.merged(intervals).percentile_distribution()
    else:
        text = export.hlog_text(intervals)
    _write_output(output, lambda out: out.write(text.encode("utf-8")))


def _refuse_writing_into_inputs(output: Path | None, inputs: list[Path]) -> None:
    """``-o`` must not replace an input, nor write into a run folder it reads: a
    report written over ``summary.json`` would destroy the run it describes."""
    if output is None:
        return
    target = Path(output).resolve()
    for given in inputs:
        source = Path(given).resolve()
        if target == source or (source.is_dir() and source in target.parents):
            raise UserError(f"-o {output}: would write over or into the input {given}; "
                            "choose a file outside the result folders")


def _write_output(output: Path | None, write) -> None:
    from dsqlbench.results.folder import atomic_output

    if output is None:
        write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    with atomic_output(output) as handle:
        write(handle)
